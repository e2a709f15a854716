"""Faults of the machine, injected for real: a file size limit hit while writing artifacts, a
store locked by another process, a corrupt store, an unwritable report folder. Each ends with
one line and exit 2, loses nothing silently and leaves nothing half-written or RUNNING."""

import hashlib
import resource
import sqlite3
import subprocess
import sys
import time

from conftest import ROOT, TINY
from mlflow.tracking import MlflowClient


def _run(store, args, env=None, limit_bytes=None, timeout=120) -> subprocess.CompletedProcess:
    def limit():  # in the child only: writes past this size fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env={**store.env(), **(env or {})},
        capture_output=True, text=True, timeout=timeout,
        preexec_fn=limit if limit_bytes else None,
    )  # fmt: skip


def _one_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1, done.stderr[-3000:]
    return errors[0].removeprefix("error: ")


def test_a_file_size_limit_hit_while_writing_artifacts_fails_the_step_cleanly(store):
    room = (store.root / "mlflow.db").stat().st_size + 4 * 2**20  # the store may grow a little
    args = ["-m", "pipeline.generate_data", "--time_steps", "20000", "--samples_per_freq", "10"]
    message = _one_error(_run(store, args, limit_bytes=room))  # the data are 15 MB
    assert message.startswith("cannot write") and "the file size limit was hit" in message
    (run,) = store.runs()
    assert run.info.status == "FAILED" and run.data.tags["error"] == message
    assert MlflowClient().list_artifacts(run.info.run_id) == []  # nothing half-written


def test_a_store_locked_past_the_wait_is_one_line_and_nothing_runs(store):
    locker = sqlite3.connect(store.root / "mlflow.db", isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        start = time.monotonic()
        done = _run(
            store, ["-m", "pipeline.main", *(f"--{k}={v}" for k, v in TINY.items())],
            env={"MLFLOW_TRACKING_URI": store.uri + "?timeout=1"},
        )  # fmt: skip
        message = _one_error(done)
        assert time.monotonic() - start < 60
    finally:
        locker.rollback()
        locker.close()
    assert message == (
        f"tracking store {store.uri}?timeout=1 is locked by another process and stayed "
        "locked past the wait; run again when it is free"
    )
    assert [r.info.status for r in store.runs()] in ([], ["FAILED"])  # never RUNNING


def test_a_corrupt_store_is_refused_and_left_as_it_was(store, tmp_path):
    bad = tmp_path / "not-mlflow.db"
    bad.write_bytes(b"this is not SQLite, it only has its name " * 100)
    before = hashlib.sha256(bad.read_bytes()).hexdigest()
    done = _run(
        store, ["-m", "pipeline.main", "--epochs", "1"],
        env={"MLFLOW_TRACKING_URI": f"sqlite:///{bad}"},
    )  # fmt: skip
    assert _one_error(done) == (
        f"tracking store sqlite:///{bad} is not a readable MLflow database (not SQLite); it "
        "was not modified: point MLFLOW_TRACKING_URI at a new file or an MLflow store"
    )
    assert hashlib.sha256(bad.read_bytes()).hexdigest() == before


def test_an_unwritable_report_folder_is_one_line_and_the_store_untouched(store, tmp_path):
    from pipeline.config import PipelineConfig
    from pipeline.main import run_pipeline

    run_pipeline(PipelineConfig.from_strings({**TINY, "epochs": "1"}))
    before = len(MlflowClient().search_runs([store.experiment_id]))
    blocker = tmp_path / "a-file"
    blocker.write_text("reports cannot go under a file")
    done = _run(store, ["-m", "analysis", "--out", str(blocker / "reports")])
    message = _one_error(done)
    assert message.startswith(f"out='{blocker / 'reports'}': cannot write ")
    assert "a part of the path is a file, not a folder" in message
    assert len(MlflowClient().search_runs([store.experiment_id])) == before
