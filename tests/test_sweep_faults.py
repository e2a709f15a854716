"""The local executor under faults, for real: a worker killed with SIGKILL mid-run, and the
sweep's own process killed with SIGKILL while its workers train."""

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT
from mlflow.tracking import MlflowClient
from procs import alive, kill_all, spawned_workers, wait_until

from pipeline import names
from pipeline.executors.local import SWEEP_DIED
from pipeline.names import HEARTBEAT_TAG

# Long enough (tens of seconds) to be killed mid-training, short enough to finish after.
SWEEP = [
    "--max_freqs", "3", "--seeds", "2", "--epochs", "300", "--workers", "2",
    "--samples_per_freq", "2", "--test_samples_per_freq", "2",
]  # fmt: skip
RETRIED = "its worker process died before the run ended; the job was run again"


def _training_workers(store, proc, study: str) -> list[int]:
    def ready():
        training = [r for r in store.runs(step="train") if r.info.status == "RUNNING"]
        workers = spawned_workers(proc.pid)
        return workers if len(training) == 2 and len(workers) == 2 else None

    try:
        return wait_until(ready, 240, f"both workers of study {study!r} training")
    except AssertionError:
        proc.kill()
        print(store.finish(proc, 30)[1][-3000:], file=sys.stderr)
        raise


def _mains(store, study: str) -> dict[str, list]:
    by_status: dict[str, list] = {}
    for run in store.runs(step="main", study=study):
        by_status.setdefault(run.info.status, []).append(run)
    return by_status


@pytest.mark.slow  # a real sweep to the end (~90 s); test_ray kills a worker in make test
def test_a_killed_worker_is_replaced_and_its_job_run_again(store):
    proc = store.start("pipeline.sweep", *SWEEP, "--study", "w9")
    victim = _training_workers(store, proc, "w9")[0]
    os.kill(victim, signal.SIGKILL)
    out, err = store.finish(proc, 300)
    assert proc.returncode == 0, err[-3000:]
    assert "killed by SIGKILL; running it again" in err
    mains = _mains(store, "w9")
    assert set(mains) == {"FINISHED", "KILLED"}
    assert sorted(r.info.run_name for r in mains["FINISHED"]) == [
        "max_freq=3 seed=0",
        "max_freq=3 seed=1",
    ]
    (dead,) = mains["KILLED"]
    assert dead.data.tags["error"] == RETRIED
    assert not [r for r in store.runs() if r.info.status == "RUNNING"]
    (sweep,) = store.runs(step="sweep")
    assert sweep.info.status == "FINISHED"
    assert sweep.data.metrics["runs_finished"] == 2 and sweep.data.metrics["runs_failed"] == 0
    assert sum(line.startswith("max_freq=") for line in out.splitlines()) == 2


@pytest.mark.slow  # ~95 s; test_ray kills a worker in make test
def test_a_killed_sweep_takes_its_workers_along_and_resumes_cleanly(store):
    proc = store.start("pipeline.sweep", *SWEEP, "--study", "k9")
    workers = _training_workers(store, proc, "k9")
    os.kill(proc.pid, signal.SIGKILL)
    try:
        wait_until(lambda: not any(alive(p) for p in workers), 60, "the orphaned workers to exit")
    except AssertionError:  # show where they are stuck: SIGUSR1 prints every thread's stack
        stuck = [p for p in workers if alive(p)]
        kill_all(stuck, signal.SIGUSR1)
        time.sleep(3)
        kill_all(stuck, signal.SIGKILL)
        print(store.finish(proc, 30)[1][-12000:], file=sys.stderr)
        raise
    store.finish(proc, 10)  # the workers held its pipes; they are gone now

    # A worker that started well before the other (its TensorFlow imported sooner) may have
    # finished its pair before the kill; the other was still training.
    mains = _mains(store, "k9")
    killed = mains.get("KILLED", [])
    assert (
        set(mains) <= {"KILLED", "FINISHED"} and len(killed) + len(mains.get("FINISHED", [])) == 2
    )
    assert killed and {r.data.tags["error"] for r in killed} == {SWEEP_DIED}
    (orphan,) = store.runs(step="sweep")
    assert orphan.info.status == "RUNNING"  # nobody left to close it: the stale-run rule will
    assert orphan.data.tags[HEARTBEAT_TAG].isdigit()

    # Resume: the sweep run's heartbeat stopped, so it is reaped; every pair runs once more.
    # Its last beat is made 3 minutes old rather than waited for: past the 2-minute window.
    MlflowClient().set_tag(orphan.info.run_id, HEARTBEAT_TAG, names.beat(time.time() - 180))
    again = subprocess.run(
        [sys.executable, "-m", "pipeline.sweep", *SWEEP, "--study", "k9",
         "--stale_after_min", "2"],
        cwd=ROOT, env=store.env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{len(killed)} to run" in again.stdout
    assert "1 stale RUNNING runs marked KILLED" in again.stdout
    mains = _mains(store, "k9")
    assert sorted(r.info.run_name for r in mains["FINISHED"]) == [
        "max_freq=3 seed=0",
        "max_freq=3 seed=1",
    ]
    reaped = next(r for r in store.runs(step="sweep") if r.info.run_id == orphan.info.run_id)
    assert reaped.info.status == "KILLED" and reaped.data.tags["error"].startswith("stale:")
    assert not [r for r in store.runs() if r.info.status == "RUNNING"]
