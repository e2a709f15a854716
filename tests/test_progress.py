"""The training budget in updates, the plateau checks during training, and how a run failed."""

import math

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from pipeline import evaluate, names, progress
from pipeline import train as training
from pipeline.config import DataConfig, EvalConfig, PipelineConfig, TrainConfig
from pipeline.generate_data import Dataset, generate

keras = pytest.importorskip("keras")


def _data(max_freq: int, per_freq: int) -> Dataset:
    return generate(DataConfig(max_freq=max_freq, samples_per_freq=per_freq))["train"]


# --- the budget -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_freq", "per_freq", "batch_size", "train_steps", "per_epoch"),
    [
        (4, 3, 4, 7, 3),  # 9 series in batches of 4: the last batch of each epoch holds one
        (6, 5, 8, 11, 4),  # 25 series: partial last batch, and the last epoch cut after 3
        (5, 4, 16, 3, 1),  # one full batch per epoch
        (3, 2, 32, 5, 1),  # a batch larger than the data set
    ],
)
def test_train_steps_makes_exactly_that_many_updates(
    max_freq, per_freq, batch_size, train_steps, per_epoch
):
    data = _data(max_freq, per_freq)
    cfg = TrainConfig(
        epochs=1, train_steps=train_steps, batch_size=batch_size, lstm_units=4, dense_units=3
    )
    result = training.train(cfg, data)
    assert result.steps == train_steps and result.steps_per_epoch == per_epoch
    assert int(result.model.optimizer.iterations.numpy()) == train_steps  # Keras's own count
    assert len(result.loss) == math.ceil(train_steps / per_epoch)  # the last epoch partial
    assert result.progress[-1][0] == train_steps


def test_without_train_steps_the_budget_is_whole_epochs():
    data = _data(4, 3)  # 9 series, batch 4: 3 updates per epoch
    result = training.train(TrainConfig(epochs=2, batch_size=4, lstm_units=4, dense_units=3), data)
    assert result.steps == 6 and result.steps_per_epoch == 3 and len(result.loss) == 2
    assert progress.budget(2, 0, 9, 4) == (2, 6)
    assert progress.budget(200, 7, 9, 4) == (3, 7)


def test_checkpoints_are_evenly_spaced_and_at_least_twenty():
    for total in (25, 400, 2000, 6000, 3801):
        checks = progress.checkpoints(total)
        assert 20 <= len(checks) <= progress.CHECKPOINTS
        assert checks[0] > 0 and checks[-1] < total
        assert len(set(np.diff(checks))) == 1
    assert progress.checkpoints(5) == [1, 2, 3, 4]  # fewer updates than checks: every one


def test_progress_checks_do_not_change_the_training(monkeypatch):
    data = _data(5, 3)
    cfg = TrainConfig(epochs=3, batch_size=4, lstm_units=4, dense_units=3, seed=3)
    checked = training.train(cfg, data)
    monkeypatch.setattr(progress, "CHECKPOINTS", 0)
    unchecked = training.train(cfg, data)
    assert len(checked.progress) == 2 + len(progress.checkpoints(checked.steps, 40))
    assert len(unchecked.progress) == 2  # update 0 and the end
    assert checked.loss == unchecked.loss
    np.testing.assert_array_equal(checked.train_prediction, unchecked.train_prediction)


# --- the plateau and the escape step ---------------------------------------------------------


def test_escape_step_is_the_first_check_after_the_last_on_the_plateau():
    steps = [0, 10, 20, 30, 40, 50]
    assert progress.escape_step(steps, [2, 0.4, 0.7, 0.3, 0.2, 0.1], 0.5) == 30
    assert progress.escape_step(steps, [2, 0.4, 0.3, 0.3, 0.2, 0.1], 0.5) == 10
    assert progress.escape_step(steps, [2, 0.4, 0.3, 0.3, 0.2, 0.5], 0.5) is None  # at: on it
    assert progress.escape_step(steps, [2, 0.4, 0.3, 0.3, 0.2, math.nan], 0.5) is None
    assert progress.escape_step(steps, [0.1] * 6, 0.5) == 0
    assert progress.escape_step(steps, [0.6, 0.6, 0.4, 0.4, 0.4, 0.4], 0.7) == 0
    with pytest.raises(ValueError):
        progress.escape_step([0, 1], [1.0], 0.5)


class _Scripted:
    """Stands in for the network's predictions on the training set: frequency + an offset
    chosen by how many updates the model has made, so the mae_ratio_train curve is known."""

    def __init__(self, data: Dataset, offsets: dict[int, float]):
        self.freq = data.freq.astype(np.float64)
        self.baseline = progress.baseline_mae(data.freq)
        self.offsets = offsets

    def ratio(self, step: int) -> float:
        return self.offsets[max(k for k in self.offsets if k <= step)]

    def __call__(self, model, x: np.ndarray) -> np.ndarray:
        step = int(model.optimizer.iterations.numpy()) if model.optimizer else 0
        return (self.freq + self.ratio(step) * self.baseline)[:, None].astype(np.float32)


def test_the_logged_curve_and_escape_step_follow_a_known_model(store, monkeypatch):
    """A main run whose training-set predictions are scripted: mae_ratio_train is 2 until
    update 6, 0.3 from 6, 0.8 again from 12 (a relapse) and 0.2 from 18 on, so the run left
    the plateau for good at the first check at or after update 18."""
    from pipeline.main import run_pipeline

    cfg = PipelineConfig.from_strings(
        {"max_freq": "4", "samples_per_freq": "3", "test_samples_per_freq": "2",
         "batch_size": "3", "train_steps": "30", "lstm_units": "4", "dense_units": "3"}
    )  # fmt: skip
    data = generate(cfg.data)["train"]
    script = _Scripted(data, {0: 2.0, 6: 0.3, 12: 0.8, 18: 0.2})
    monkeypatch.setattr(training, "predict", script)
    monkeypatch.setattr(progress, "CHECKPOINTS", 9)  # checks every 3 updates: 3, 6, …, 27
    run_id, metrics = run_pipeline(cfg)
    client = MlflowClient()
    main = client.get_run(run_id)
    train_id = main.data.tags["train_run_id"]
    for rid in (run_id, train_id):
        points = sorted(
            (m.step, m.value) for m in client.get_metric_history(rid, "mae_ratio_train")
        )
        assert [s for s, _ in points] == [0, *range(3, 30, 3), 30]
        expected = [script.ratio(s) for s, _ in points]
        assert [v for _, v in points] == pytest.approx(expected)
    assert main.data.metrics["mae_ratio_train"] == pytest.approx(0.2)  # the last point
    assert main.data.metrics["optimizer_steps"] == 30 and main.data.metrics["steps_per_epoch"] == 3
    assert main.data.metrics["escape_step"] == 18 and metrics["diverged"] == 0
    evaluation = client.get_run(main.data.tags["eval_run_id"])
    assert evaluation.data.metrics["escape_step"] == 18
    assert client.get_run(train_id).data.metrics["optimizer_steps"] == 30
    assert "failure_mode" not in main.data.tags


def test_a_run_that_ends_on_the_plateau_has_no_escape_step_and_a_failure_mode(store, monkeypatch):
    from pipeline.main import run_pipeline

    cfg = PipelineConfig.from_strings(
        {"max_freq": "4", "samples_per_freq": "2", "test_samples_per_freq": "2",
         "train_steps": "4", "lstm_units": "4", "dense_units": "3"}
    )  # fmt: skip
    monkeypatch.setattr(training, "predict", lambda model, x: np.zeros((len(x), 1), np.float32))
    run_id, metrics = run_pipeline(cfg)
    main = MlflowClient().get_run(run_id)
    assert metrics["diverged"] == 1 and "escape_step" not in main.data.metrics
    assert main.data.tags["failure_mode"] == names.DEAD
    assert main.data.metrics["prediction_spread_train"] == 0


# --- failure modes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "loss", "mode"),
    [
        (lambda f: f, (1.0,), None),  # perfect: no failure
        (lambda f: np.zeros_like(f), (1.0,), names.DEAD),
        (lambda f: np.full_like(f, 1e-7), (1.0,), names.DEAD),
        (lambda f: np.full_like(f, 3.0) + 0.01 * np.sin(np.arange(len(f))), (1.0,),
         names.CONSTANT),
        (lambda f: 3.0 + 0.05 * (f - 3.0), (1.0,), names.CONSTANT),  # spread 0.05
        (lambda f: 3.0 + 0.3 * (f - 3.0), (1.0,), names.PARTIAL),  # follows f, too weakly
        (lambda f: f, (1.0, math.nan), names.NONFINITE),
        (lambda f: np.where(f > 2, np.nan, f), (1.0,), names.NONFINITE),
    ],
)  # fmt: skip
def test_each_failure_mode_is_recognised(make, loss, mode):
    sets = generate(DataConfig(max_freq=6, samples_per_freq=4, test_samples_per_freq=2))
    pred = make(sets["train"].freq.astype(np.float64))
    predictions = {"train": pred, "test": sets["test"].freq}
    ev = evaluate.evaluate(EvalConfig(), sets, predictions, list(loss), references={})
    assert ev.failure_mode == mode
    assert (ev.metrics["diverged"] == 1) == (mode is not None)


def test_prediction_spread_is_one_for_perfect_and_scales_with_the_slope():
    freq = np.repeat(np.arange(1.0, 6.0), 3)
    assert evaluate.prediction_spread(freq, freq) == pytest.approx(1.0)
    assert evaluate.prediction_spread(freq, 2 + 0.25 * freq) == pytest.approx(0.25)
    assert evaluate.prediction_spread(freq, np.full_like(freq, 7.0)) == 0
    assert math.isnan(evaluate.prediction_spread(freq, np.full_like(freq, np.nan)))


# --- stopping once confirmed off the plateau ------------------------------------------------


def test_the_stopping_rule_needs_two_checks_in_a_row_off_the_plateau():
    assert not progress.confirmed_escape([2.0, 0.3], 0.5, confirm=3)
    assert progress.confirmed_escape([2.0, 0.3, 0.4], 0.5)
    assert not progress.confirmed_escape([2.0, 0.3, 0.8], 0.5)  # back on it
    assert not progress.confirmed_escape([0.3, math.nan], 0.5)  # not finite: on it
    assert not progress.confirmed_escape([0.3], 0.5)
    assert progress.first_confirmed([2.0, 0.3, 0.8, 0.3, 0.2, 0.9], 0.5) == 4
    assert progress.first_confirmed([2.0, 0.3, 0.8, 0.3], 0.5) is None
    assert progress.first_confirmed([0.1, 0.1], 0.5) == 1


def test_checks_on_a_fixed_grid_are_the_same_for_every_budget():
    assert progress.checkpoints(6000, every=150)[:3] == [150, 300, 450]
    assert progress.checkpoints(6000, every=150)[-1] == 5850
    assert progress.checkpoints(24000, every=150)[:39] == progress.checkpoints(6000, every=150)
    assert 6000 in progress.checkpoints(24000, every=150)


def _scripted_cfg(stop: bool) -> PipelineConfig:
    return PipelineConfig.from_strings(
        {"max_freq": "4", "samples_per_freq": "3", "test_samples_per_freq": "2",
         "batch_size": "3", "train_steps": "30", "lstm_units": "4", "dense_units": "3",
         "check_every": "3", "stop_on_escape": str(stop).lower()}
    )  # fmt: skip


def test_a_run_that_leaves_and_reenters_the_plateau_is_not_stopped_at_its_first_exit(
    store, monkeypatch
):
    """mae_ratio_train is 2 until update 6, 0.3 from 6, 0.8 again from 9 (back on the
    plateau) and 0.3 from 12: checks every 3 updates see on, off, on, off, off, so the rule
    stops at update 15, not at 6, and the escape is the first of the two checks, 12."""
    from pipeline.main import run_pipeline

    cfg = _scripted_cfg(stop=True)
    script = _Scripted(generate(cfg.data)["train"], {0: 2.0, 6: 0.3, 9: 0.8, 12: 0.3})
    monkeypatch.setattr(training, "predict", script)
    run_id, metrics = run_pipeline(cfg)
    client = MlflowClient()
    main = client.get_run(run_id)
    train_run = client.get_run(main.data.tags["train_run_id"])
    for run in (main, train_run):
        assert run.data.metrics["optimizer_steps"] == 15
        assert run.data.metrics["stop_step"] == 15
        assert run.data.tags["stopped_on_escape"] == "true"
        history = client.get_metric_history(run.info.run_id, "mae_ratio_train")
        points = sorted((m.step, m.value) for m in history)
        assert [s for s, _ in points] == [0, 3, 6, 9, 12, 15]  # no point repeated at the stop
    assert int(train_run.data.metrics["epochs_completed"]) == 5  # 3 updates an epoch
    assert main.data.metrics["escape_step"] == 12 and metrics["diverged"] == 0
    assert metrics["stop_step"] == 15


def test_without_the_rule_the_same_run_trains_its_whole_budget(store, monkeypatch):
    from pipeline.main import run_pipeline

    cfg = _scripted_cfg(stop=False)
    script = _Scripted(generate(cfg.data)["train"], {0: 2.0, 6: 0.3, 9: 0.8, 12: 0.3})
    monkeypatch.setattr(training, "predict", script)
    run_id, metrics = run_pipeline(cfg)
    main = MlflowClient().get_run(run_id)
    assert main.data.metrics["optimizer_steps"] == 30 and "stop_step" not in main.data.metrics
    assert main.data.tags["stopped_on_escape"] == "false"
    assert main.data.metrics["escape_step"] == 12 and metrics["diverged"] == 0


def test_a_run_on_the_plateau_to_the_end_is_never_stopped():
    data = _data(4, 3)
    cfg = TrainConfig(
        train_steps=9, batch_size=3, lstm_units=4, dense_units=3, check_every=2,
        stop_on_escape=True,
    )  # fmt: skip
    result = training.train(cfg, data)
    assert result.steps == 9 and not result.stopped_on_escape
    assert [s for s, _ in result.progress] == [0, 2, 4, 6, 8, 9]


def test_a_longer_budget_repeats_the_shorter_ones_updates_first():
    """Same seed and check grid: the first 12 updates of a 24-update run are the 12-update
    run (its losses per epoch and every check), so extending a budget extends the run."""
    data = _data(4, 3)  # 9 series, batches of 3: 3 updates an epoch
    configs = [
        TrainConfig(train_steps=n, batch_size=3, lstm_units=4, dense_units=3, seed=5,
                    check_every=3)
        for n in (12, 24)
    ]  # fmt: skip
    short, long = (training.train(cfg, data) for cfg in configs)
    assert long.loss[:4] == short.loss
    checks = dict(long.progress)
    for step, ratio in short.progress:
        assert checks[step] == pytest.approx(ratio, rel=1e-6), step


def test_a_longer_budget_at_its_reference_epochs_is_the_run_of_that_many_epochs():
    """What the report's 200-epoch reading rests on: a run given more updates, checked at
    every epoch, is at E × its updates per epoch exactly where an E-epoch run of the same seed
    ends (its final mae_ratio_train, the value its divergence verdict reads)."""
    data = _data(4, 3)  # 9 series, batches of 3: 3 updates an epoch
    epochs = training.train(
        TrainConfig(epochs=4, batch_size=3, lstm_units=4, dense_units=3, seed=2), data
    )
    longer = training.train(
        TrainConfig(train_steps=18, batch_size=3, lstm_units=4, dense_units=3, seed=2,
                    check_every=3),
        data,
    )  # fmt: skip
    assert epochs.steps == 12 and epochs.steps_per_epoch == 3
    at = dict(longer.progress)
    assert at[4 * epochs.steps_per_epoch] == pytest.approx(epochs.progress[-1][1], rel=1e-6)
    assert longer.loss[:4] == pytest.approx(epochs.loss, rel=1e-6)
