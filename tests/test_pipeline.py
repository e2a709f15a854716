"""Integration: the real `mlflow run . --env-manager local` against a temporary store."""

import dataclasses
import io
import os
import signal
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TINY
from mlflow.tracking import MlflowClient

from pipeline.config import DataConfig, EvalConfig, TrainConfig
from pipeline.generate_data import Dataset, generate

HEADLINE = {
    "mae_train",
    "mae_test",
    "rmse_train",
    "rmse_test",
    "r2_train",
    "r2_test",
    "baseline_mae_train",
    "baseline_mae_test",
    "mae_ratio_train",
    "mae_ratio_test",
    "diverged",
    "fit_seconds",
}


def _artifact_text(run_id: str, path: str) -> str:
    local = MlflowClient().download_artifacts(run_id, path)
    with open(local) as f:
        return f.read()


def test_main_logs_one_parent_with_three_children_and_reuses_data(store):
    done = store.mlflow_run("main", **TINY)
    assert done.returncode == 0, done.stderr[-3000:]
    (parent,) = store.runs(step="main")
    assert parent.info.status == "FINISHED"
    assert f"main run {parent.info.run_id}: max_freq=4 seed=0" in done.stdout
    # names that read in a chart's legend, not MLflow's random ones
    assert parent.info.run_name == "max_freq=4 seed=0"
    assert {r.info.run_name for r in store.runs() if r.info.run_id != parent.info.run_id} == {
        "generate_data max_freq=4 seed=0", "train max_freq=4 seed=0",
        "evaluate max_freq=4 seed=0",
    }  # fmt: skip
    for noise in ("absl::InitializeLog", "oneDNN", "cuda drivers", "cuInit", "NodeDef"):
        assert noise not in done.stderr  # TensorFlow's start-up chatter is filtered

    params = parent.data.params
    assert params["max_freq"] == "4" and params["epochs"] == "2"
    assert params["backend"] == "tensorflow" and params["divergence_ratio"] == "0.5"
    assert params["target_scale"] == "none"
    assert params["train_steps"] == "0" and params["check_every"] == "0"
    assert params["stop_on_escape"] == "false"  # as the CLI and MLproject write it
    assert len(params) == 17
    assert HEADLINE <= set(parent.data.metrics)
    reason = parent.data.tags["diverged_reason"]
    assert parent.data.metrics["diverged"] == float(reason != "none")
    ratio = parent.data.metrics["mae_ratio_train"]  # the verdict follows from the logged ratio
    assert reason == ("mae_ratio" if ratio >= 0.5 else "none")
    assert parent.data.tags["versions.keras"] == metadata.version("keras")
    assert parent.data.tags["data_reused"] == "false"
    loss = MlflowClient().get_metric_history(parent.info.run_id, "loss")
    assert sorted(m.step for m in loss) == [0, 1]
    # 9 series in one batch: 2 epochs are 2 updates; checked at 0, 1 and after the last.
    assert parent.data.metrics["optimizer_steps"] == 2
    assert parent.data.metrics["steps_per_epoch"] == 1
    curve = MlflowClient().get_metric_history(parent.info.run_id, "mae_ratio_train")
    assert sorted(m.step for m in curve) == [0, 1, 2]
    assert max(curve, key=lambda m: m.step).value == ratio
    assert ("escape_step" in parent.data.metrics) == (reason == "none")
    assert ("failure_mode" in parent.data.tags) == (reason != "none")

    children = store.runs(**{"mlflow.parentRunId": parent.info.run_id})
    assert [c.data.tags["step"] for c in children] == ["generate_data", "train", "evaluate"]
    assert all(c.info.status == "FINISHED" for c in children)
    data_run, train_run, eval_run = children
    assert parent.data.tags["data_run_id"] == data_run.info.run_id
    for name in HEADLINE - {"fit_seconds"}:
        assert eval_run.data.metrics[name] == parent.data.metrics[name]
    assert eval_run.data.metrics["mae_train"] == pytest.approx(
        eval_run.data.metrics["mae_ratio_train"] * eval_run.data.metrics["baseline_mae_train"]
    )
    # Three frequencies × 3 train series, × 2 test series.
    assert data_run.data.metrics == {"n_train": 9.0, "n_test": 6.0}

    # Artifacts: data, predictions, plots, and a loadable model with signature and example.
    client = MlflowClient()
    data_dir = client.download_artifacts(data_run.info.run_id, "data")
    with np.load(os.path.join(data_dir, "train.npz"), allow_pickle=False) as z:
        assert z["x"].shape == (9, 100, 1) and sorted(set(z["freq"].tolist())) == [1, 2, 3]
    for split, n in (("train", 9), ("test", 6)):
        table = pd.read_csv(
            io.StringIO(_artifact_text(eval_run.info.run_id, f"predictions/{split}.csv"))
        )
        assert list(table.columns) == ["true_freq", "phase", "prediction", "error"]
        assert len(table) == n
        assert np.allclose(table["error"], table["prediction"] - table["true_freq"])
        mae = table["error"].abs().mean()
        assert mae == pytest.approx(eval_run.data.metrics[f"mae_{split}"], rel=1e-6)
    for run, path in (
        (train_run, "plots/learning_curve.png"),
        (eval_run, "plots/predicted_vs_true.png"),
    ):
        png = client.download_artifacts(run.info.run_id, path)
        assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"

    import mlflow

    info = mlflow.models.get_model_info(f"runs:/{train_run.info.run_id}/model")
    assert info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"] == (-1, 100, 1)
    assert info.saved_input_example_info is not None
    model = mlflow.keras.load_model(f"runs:/{train_run.info.run_id}/model")
    assert model.count_params() == 40800 + 10100 + 101

    # Same data parameters, other training: the data run is reused, not regenerated.
    again = store.mlflow_run("main", **{**TINY, "epochs": "1"})
    assert again.returncode == 0, again.stderr[-3000:]
    second = store.runs(step="main")[-1]
    assert second.data.tags["data_reused"] == "true"
    assert second.data.tags["data_run_id"] == data_run.info.run_id
    assert len(store.runs(step="generate_data")) == 1
    steps = [c.data.tags["step"] for c in store.runs(**{"mlflow.parentRunId": second.info.run_id})]
    assert steps == ["train", "evaluate"]


@pytest.mark.slow  # three `mlflow run` launches on jax (~95 s)
def test_steps_run_alone_chained_by_run_id_on_jax(store):
    data_params = {k: TINY[k] for k in ("max_freq", "samples_per_freq", "test_samples_per_freq")}
    assert store.mlflow_run("generate_data", **data_params).returncode == 0
    (data_run,) = store.runs(step="generate_data")
    done = store.mlflow_run("train", data=data_run.info.run_id, epochs="2", backend="jax")
    assert done.returncode == 0, done.stderr[-3000:]
    (train_run,) = store.runs(step="train")
    assert train_run.data.params["backend"] == "jax"
    assert train_run.data.tags["data_uri"] == f"runs:/{data_run.info.run_id}/data"
    assert train_run.data.metrics["epochs_completed"] == 2
    done = store.mlflow_run("evaluate", train_run_id=train_run.info.run_id)
    assert done.returncode == 0, done.stderr[-3000:]
    (eval_run,) = store.runs(step="evaluate")
    assert HEADLINE - {"fit_seconds"} <= set(eval_run.data.metrics)
    assert eval_run.data.params["train_run_id"] == train_run.info.run_id


@pytest.mark.parametrize(
    ("entry", "params", "message"),
    [
        (  # max_freq=2 once crashed in evaluate (one frequency: a zero baseline MAE)
            "main",
            {"max_freq": "2"},
            "max_freq=2 is not allowed: expected an integer from 3 to 2147483647 (at 2 there is "
            "one frequency: nothing to tell apart)",
        ),
        (
            "main",
            {"backend": "torch"},
            "backend='torch' is not allowed: expected tensorflow or jax",
        ),
        (
            "train",
            {"data": "0" * 32},
            f"data='{'0' * 32}' is not allowed: no such run in this store",
        ),
    ],
)
def test_bad_input_fails_with_one_line_and_a_failed_run(store, entry, params, message):
    done = store.mlflow_run(entry, **params)
    assert done.returncode != 0
    ours = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert ours == [f"error: {message}"]
    assert "Traceback" not in done.stderr
    (run,) = store.runs()
    assert run.info.status == "FAILED"
    assert run.data.tags["error"] == message
    assert not MlflowClient().list_artifacts(run.info.run_id)


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)]
)
def test_a_signal_marks_runs_killed_and_keeps_every_finished_epoch(store, signum):
    proc = store.start(
        "pipeline.main", "--max_freq", "4", "--samples_per_freq", "2", "--epochs", "100000"
    )
    store.wait_for(1, step="train")  # then 2 s more: some epochs done, none flushed yet
    proc.send_signal(signum)
    _, err = store.finish(proc, 60)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted; the run was marked KILLED" in err
    statuses = {r.data.tags["step"]: r.info.status for r in store.runs()}
    assert statuses == {"main": "KILLED", "generate_data": "FINISHED", "train": "KILLED"}


def test_an_interrupted_training_keeps_every_epoch_it_finished(store, monkeypatch):
    """In process: the interrupt lands after 5 epochs, before the 10-s flush of the loss and
    of the plateau checks."""
    from pipeline import generate_data, train

    def five_epochs_then_ctrl_c(cfg, data, on_epoch, on_progress):
        for epoch in range(5):
            on_epoch(epoch, 1.0 / (epoch + 1))
            on_progress(3 * epoch, 2.0 - epoch / 10)
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "train", five_epochs_then_ctrl_c)
    data_run_id = generate_data.run_step(DataConfig(max_freq=3, samples_per_freq=2))
    with pytest.raises(KeyboardInterrupt):
        train.run_step(TrainConfig(epochs=100), data_run_id)
    (run,) = store.runs(step="train")
    assert run.info.status == "KILLED"
    history = MlflowClient().get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(e, 1.0 / (e + 1)) for e in range(5)]
    checks = MlflowClient().get_metric_history(run.info.run_id, "mae_ratio_train")
    assert [(m.step, m.value) for m in checks] == [(3 * e, 2.0 - e / 10) for e in range(5)]


def test_nan_loss_finishes_as_diverged(store):
    """In process: a non-finite loss stops training, and the run still finishes."""
    from pipeline import evaluate, generate_data, train

    cfg = TrainConfig(epochs=5, lstm_units=4, dense_units=4)
    sets = generate(DataConfig(max_freq=3, samples_per_freq=2, test_samples_per_freq=1))
    nan_targets = {s: Dataset(d.x, np.full_like(d.freq, np.nan), d.phase) for s, d in sets.items()}
    data_run_id = generate_data.run_step(DataConfig(max_freq=3, samples_per_freq=2))
    train_id, trained = train.run_step(cfg, data_run_id, nan_targets)
    eval_id, _ev = evaluate.run_step(EvalConfig(), train_id, trained.model, sets, trained.loss)
    train_run, eval_run = MlflowClient().get_run(train_id), MlflowClient().get_run(eval_id)
    assert train_run.info.status == eval_run.info.status == "FINISHED"
    assert train_run.data.tags["nonfinite_loss"] == "true"
    assert train_run.data.metrics["epochs_completed"] < 5
    assert eval_run.data.metrics["diverged"] == 1
    assert eval_run.data.tags["diverged_reason"] == "nonfinite_loss"


def test_the_original_preset_runs_with_one_epoch_and_a_tiny_network(store):
    """In process: the full original data (300 series × 2,000 points), shrunk network."""
    from pipeline.config import ORIGINAL, PipelineConfig
    from pipeline.main import run_pipeline

    raw = {**ORIGINAL, "epochs": 1, "lstm_units": 2, "dense_units": 2, "batch_size": 100}
    _, metrics = run_pipeline(PipelineConfig.from_strings(raw))
    (run,) = store.runs(step="main")
    assert run.info.status == "FINISHED" and run.data.params["time_steps"] == "2000"
    assert metrics["baseline_mae_train"] == pytest.approx(75.0)  # |f − 150.5| over f = 1…300
    assert "aliasing_warning" not in run.data.tags


def test_data_is_reused_only_from_a_finished_run_of_the_same_data_with_its_files(store):
    """In process: which generate_data run `main` takes its data from."""
    import mlflow

    from pipeline import tracking
    from pipeline.main import data_for

    tracking.use_experiment(experiment_id=store.experiment_id)
    cfg = DataConfig(max_freq=3, samples_per_freq=2, test_samples_per_freq=1)
    with mlflow.start_run():  # as under a main run
        _reuse_rules(cfg, data_for)


def _reuse_rules(cfg, data_for) -> None:
    import shutil

    first, _, reused = data_for(cfg)
    assert not reused
    assert data_for(cfg)[:1] == (first,) and data_for(cfg)[2]  # same data: reused
    other, _, reused = data_for(dataclasses.replace(cfg, test_samples_per_freq=2))
    assert other != first and not reused  # any changed data parameter: new data

    MlflowClient().set_terminated(first, "KILLED")  # an unfinished data run is never reused
    again, _, reused = data_for(cfg)
    assert again != first and not reused

    folder = Path(MlflowClient().get_run(again).info.artifact_uri.removeprefix("file://"))
    shutil.rmtree(folder / "data")  # its files are gone: regenerate instead of failing
    third, sets, reused = data_for(cfg)
    assert third not in (first, again) and not reused and len(sets["train"]) == 4
