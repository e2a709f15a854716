"""Integration: a tiny real sweep (2 max_freqs × 2 backends × 1 seed × 2 epochs, 2 workers),
its resume, its interruption, and the report built from it."""

import signal
import subprocess
import sys

import pandas as pd
import pytest
from conftest import ROOT
from mlflow.tracking import MlflowClient

from pipeline.names import UserError

SWEEP = {
    "max_freqs": "3,4",
    "seeds": "1",
    "backend": "tensorflow,jax",  # a grid axis: each worker process runs one backend
    "epochs": "2",
    "workers": "2",
    "study": "tiny",
    "samples_per_freq": "2",
    "test_samples_per_freq": "2",
}


def _analysis(store, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "analysis", *args],
        cwd=ROOT,
        env=store.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_sweep_resume_and_report(store, tmp_path, monkeypatch):
    cache = tmp_path / "jax-cache"
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(cache))  # reaches the runs' processes
    done = store.mlflow_run("sweep", **SWEEP)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "database is locked" not in done.stderr
    (sweep,) = store.runs(step="sweep")
    assert sweep.info.status == "FINISHED"
    runs = store.runs(step="main", study="tiny")
    assert sorted(r.info.run_name for r in runs) == [
        "max_freq=3 seed=0 backend=jax",
        "max_freq=3 seed=0 backend=tensorflow",
        "max_freq=4 seed=0 backend=jax",
        "max_freq=4 seed=0 backend=tensorflow",
    ]
    assert all(r.info.status == "FINISHED" for r in runs)
    assert {r.data.params["backend"] for r in runs} == {"tensorflow", "jax"}
    assert {r.data.tags["grid_axes"] for r in runs} == {"backend"}
    trains = store.runs(step="train")
    assert {(r.data.params["backend"], r.data.tags["keras_backend"]) for r in trains} == {
        ("tensorflow", "tensorflow"),
        ("jax", "jax"),
    }
    assert sweep.data.params["backend"] == "tensorflow,jax"
    assert sweep.data.params["grid_axes"] == "max_freq,seed,backend"
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {sweep.info.run_id}
    assert {r.data.params["epochs"] for r in runs} == {"2"}
    assert {r.data.params["samples_per_freq"] for r in runs} == {"2"}
    assert len(store.runs(step="evaluate")) == 4
    assert all("ref_fft_mae_test" in r.data.metrics for r in runs)
    assert sweep.data.metrics["runs_finished"] == 4 and sweep.data.metrics["runs_skipped"] == 0
    # One line per finished run, with its figures.
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("max_freq=")]
    assert len(lines) == 4 and all("mae_test=" in ln and "diverged=" in ln for ln in lines)
    assert "━" not in done.stdout + done.stderr  # no Keras progress bar in the sweep log

    # jax's compiled training steps went to the persistent cache (pipeline/keras_backend.py).
    assert list(cache.glob("jit_train_step-*"))

    # Resume: only the run that is no longer FINISHED is trained again; a jax run, whose
    # compiles now come from the cache, and which must score exactly as before.
    failed = next(r for r in runs if r.data.params["backend"] == "jax")
    MlflowClient().set_terminated(failed.info.run_id, "FAILED")
    again = store.mlflow_run("sweep", **SWEEP)
    assert again.returncode == 0, again.stderr[-3000:]
    second = store.runs(step="sweep")[-1]
    assert second.data.metrics["runs_skipped"] == 3 and second.data.metrics["runs_finished"] == 1
    assert len(store.runs(step="main", study="tiny")) == 5
    assert "1 to run" in again.stdout
    (rerun,) = [
        r
        for r in store.runs(step="main", study="tiny")
        if r.info.run_name == failed.info.run_name and r.info.run_id != failed.info.run_id
    ]
    for metric in ("mae_train", "mae_test", "loss"):
        assert rerun.data.metrics[metric] == failed.data.metrics[metric], metric

    # The report: files, contents, and the same files on an `analysis` run.
    out = tmp_path / "reports"
    report = _analysis(store, "--study", "tiny", "--out", str(out))
    assert report.returncode == 0, report.stderr[-3000:]
    folder = out / "tiny"
    summary = pd.read_csv(folder / "summary.csv")  # one row per (backend, max_freq): no pooling
    assert summary[["backend", "max_freq"]].values.tolist() == [
        ["jax", 3],
        ["jax", 4],
        ["tensorflow", 3],
        ["tensorflow", 4],
    ]
    assert summary["finished"].tolist() == [1, 1, 1, 1] and summary["failed"].sum() == 1
    assert sorted(summary["runs"]) == [1, 1, 1, 2]
    table = pd.read_csv(folder / "runs.csv")
    assert len(table) == 5
    finished = table[table["status"] == "FINISHED"].set_index(["backend", "max_freq"])
    for row in summary.itertuples():  # the numbers are the runs' numbers (one per cell here)
        run = finished.loc[(row.backend, row.max_freq)]
        assert row.mae_test_median == pytest.approx(run["mae_test"])
        assert row.diverged == int(run["diverged"])
    # The error-by-frequency figure is drawn from every sampled run's prediction file.
    from analysis import load
    from analysis import report as reporting

    sample = reporting.sample_runs(load.load_runs(study="tiny"), 20)
    errors = reporting.prediction_errors(sample)
    assert len(sample) == 4 and len(errors) == 2 * 4 + 2 * 6  # (max_freq − 1) × 2 test series
    figures = ("error_and_divergence", "mae_vs_max_freq", "divergence_rate", "learning_curves",
               "error_by_frequency", "escape_survival")  # fmt: skip
    for name in figures:
        assert (folder / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    html = (folder / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 6 and "<table" in html
    assert html.index('alt="error_and_divergence.png"') < html.index("<h2>Findings</h2>")
    md = (folder / "report.md").read_text()
    assert "## Findings" in md
    assert md.index("(error_and_divergence.png)") < md.index("## Findings")  # the figure first
    assert "## Leaving the plateau: failure or delay?" in md  # the runs carry progress checks
    assert "Grid axes backend (jax, tensorflow)" in md
    (analysis,) = store.runs(step="analysis")
    logged = {a.path for a in MlflowClient().list_artifacts(analysis.info.run_id)}
    assert {"summary.csv", "runs.csv", "report.html", "report.md"} <= logged

    # The same through the MLproject entry point, with a re-judged threshold.
    entry = store.mlflow_run("analyze", study="tiny", divergence_ratio="0.01", out=str(out))
    assert entry.returncode == 0, entry.stderr[-3000:]
    assert len(store.runs(step="analysis")) == 2
    rejudged = pd.read_csv(folder / "summary.csv")
    assert rejudged["diverged"].tolist() == rejudged["finished"].tolist()  # ratio 0.01: all
    md = (folder / "report.md").read_text()
    assert "re-judged at mae_ratio_train ≥ 0.01" in md
    assert "0 of 2 runs escaped" in md  # escapes re-judged from the histories too


def test_analysis_of_unknown_or_empty_selection_is_an_error(store, tmp_path):
    for args, expected in (
        (["--study", "nope"], "error: study='nope' is not allowed: it has no pipeline runs"),
        (["--experiment", "nope"], "error: experiment='nope' is not allowed: no such experiment"),
    ):
        done = _analysis(store, *args, "--out", str(tmp_path / "reports"))
        assert done.returncode == 2
        assert done.stderr.strip().splitlines()[-1].startswith(expected)
    assert not (tmp_path / "reports").exists()


@pytest.mark.slow  # a sweep stopped with SIGTERM mid-training; CI runs it (make test-slow)
def test_interrupted_sweep_leaves_nothing_running(store):
    args = [
        "--max_freqs",
        "3,4",
        "--seeds",
        "1",
        "--epochs",
        "100000",
        "--workers",
        "2",
        "--samples_per_freq",
        "2",
        "--study",
        "stop",
    ]
    proc = store.start("pipeline.sweep", *args)
    store.wait_for(2, step="train")
    proc.send_signal(signal.SIGTERM)
    _, err = store.finish(proc, 120)
    assert proc.returncode == 130, err[-3000:]
    statuses = {(r.data.tags["step"], r.info.status) for r in store.runs()}
    assert ("sweep", "KILLED") in statuses and ("main", "KILLED") in statuses
    assert not any(status == "RUNNING" for _, status in statuses)


def test_sqlite_fast_path_reads_what_the_mlflow_api_reads(store, monkeypatch):
    """analysis.store reads MLflow's tables directly; it must agree with the public API, and
    the fast path must really be the one taken (its fallback is the API itself)."""
    import mlflow
    import numpy as np

    from analysis import store as fast_store
    from analysis.load import load_runs

    for seed, value in ((0, 1.5), (1, float("nan"))):
        with mlflow.start_run(run_name=f"r{seed}") as run:
            mlflow.set_tags({"step": "main", "study": "s", "eval_run_id": run.info.run_id})
            mlflow.log_params({"max_freq": "5", "seed": str(seed), "dropout": "0.1"})
            mlflow.log_metrics({"mae_test": value, "diverged": float(seed)})
            for step, loss in enumerate((3.0, float("nan"), 1.0)):
                mlflow.log_metric("loss", loss, step=step)
    with mlflow.start_run():
        mlflow.set_tags({"step": "main", "study": "other"})
    api = load_runs(study="s", fast=False)
    ids = list(api["run_id"])
    slow = fast_store.metric_histories(ids, "loss", fast=False)
    slow_uris = fast_store.artifact_uris(ids, fast=False)

    def no_api(*args, **kwargs):
        raise AssertionError("the fast path fell back to the MLflow API")

    from pipeline import tracking

    for name in ("search_frame", "metric_history", "artifact_uri"):
        monkeypatch.setattr(tracking, name, no_api)
    fast = load_runs(study="s")
    assert len(fast) == 2 and fast["study"].eq("s").all()
    assert set(fast.columns) == set(api.columns)  # every column, not only the fast path's own
    pd.testing.assert_frame_equal(fast, api, check_like=True)
    quick = fast_store.metric_histories(ids, "loss")
    assert quick.keys() == slow.keys()
    for run_id in ids:
        np.testing.assert_array_equal(quick[run_id], slow[run_id])
        assert len(quick[run_id]) == 3 and np.isnan(quick[run_id][1])
    assert fast_store.artifact_uris(ids) == slow_uris


def test_several_studies_load_as_one(store):
    """The slices of one study, run apart under different names, report together."""
    import mlflow

    from analysis.load import load_runs

    for study, seed in (("s1", 0), ("s2", 1), ("other", 2)):
        with mlflow.start_run():
            mlflow.set_tags({"step": "main", "study": study})
            mlflow.log_params({"max_freq": "5", "seed": str(seed)})
            mlflow.log_metric("mae_test", seed + 0.5)
    for fast in (True, False):
        runs = load_runs(study=["s1", "s2"], fast=fast)
        assert sorted(runs["study"]) == ["s1", "s2"]
        assert runs["mae_test"].tolist() == [0.5, 1.5]
    with pytest.raises(
        UserError, match=r"^study='s1,nope' is not allowed: .* \('nope' has none\)"
    ):
        load_runs(study=["s1", "nope"])
