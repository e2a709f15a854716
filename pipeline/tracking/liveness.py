"""Liveness: which RUNNING runs still have a process behind them, and which pair a sweep may
train.

Every open run refreshes its `heartbeat` tag every HEARTBEAT_EVERY_S. A RUNNING run whose
heartbeat is older than `stale_after` has lost its process (SIGKILL, OOM, a lost node):
`reap_stale` marks it KILLED. `stale_after` is at least MIN_STALE_AFTER_MIN, four missed beats,
so a live run (whose last beat is at most one interval old) is never taken for dead.

**One live attempt per pair.** A sweep's `main` run is its claim on a pair (tags `study` and
`run_key`). Right after creating it, the sweep looks for other claims on the pair
(`earlier_claim`): a FINISHED run, or a RUNNING run that is alive and started earlier (ties
broken by run id). If there is one, this attempt gives way: its run is deleted (it trained
nothing) and the pair is skipped. Every claimant makes its claim before it looks, so of two
sweeps that claim at once at least one sees the other, and both order them the same way: at
most one trains. A dead claimant stops beating; its claim no longer counts, and the next sweep
of the study reaps it and runs the pair.
"""

import threading
import time
from collections.abc import Sequence

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from pipeline import names
from pipeline.names import (
    ERROR_TAG,
    HEARTBEAT_EVERY_S,
    HEARTBEAT_TAG,
    MIN_STALE_AFTER_MIN,
    RUN_KEY_TAG,
    STEP_TAG,
    STUDY_TAG,
)
from pipeline.tracking.records import runs_with_tags

MIN_STALE_AFTER_S = names.seconds(MIN_STALE_AFTER_MIN)


class PairTaken(Exception):
    """Another attempt holds this pair (a FINISHED run, or a live RUNNING one that claimed it
    first); this one gives way."""

    def __init__(self, holder: Run):
        self.holder = holder
        super().__init__(
            f"another sweep holds this pair: run {holder.info.run_id} ({holder.info.status})"
        )


def beat() -> dict[str, str]:
    """The heartbeat tag of a run, now (pipeline/names.py keeps the clock)."""
    return {HEARTBEAT_TAG: names.beat()}


class Heartbeat:
    """One daemon thread per process refreshing the `heartbeat` tag of every open run."""

    def __init__(self, every_s: float):
        self.every_s = every_s
        self.runs: set[str] = set()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def add(self, run_id: str) -> None:
        with self.lock:
            self.runs.add(run_id)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)
                self.thread.start()

    def __contains__(self, run_id: str) -> bool:
        with self.lock:
            return run_id in self.runs

    def discard(self, run_id: str) -> None:
        with self.lock:
            self.runs.discard(run_id)

    def _loop(self) -> None:
        client = MlflowClient()
        while True:
            time.sleep(self.every_s)
            with self.lock:
                runs = list(self.runs)
            for run_id in runs:
                try:
                    client.set_tag(run_id, HEARTBEAT_TAG, beat()[HEARTBEAT_TAG])
                except Exception:
                    pass  # the store may be briefly away; the next beat tries again


heartbeat = Heartbeat(HEARTBEAT_EVERY_S)


def end_run_as(run_id: str, status: str, error: str | None = None) -> None:
    """Close a run from outside its process (e.g. one whose process died)."""
    client = MlflowClient()
    if error:
        client.set_tag(run_id, ERROR_TAG, error)
    client.set_terminated(run_id, status)


def last_sign_of_life(run: Run) -> float:
    """Unix seconds of the run's last heartbeat (its start for runs made before heartbeats)."""
    return names.last_beat(run.data.tags.get(HEARTBEAT_TAG), run.info.start_time)


def _end_with_children(run: Run, why: str, client: MlflowClient) -> list[str]:
    ended = []
    for child in client.search_runs(
        [run.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}' "
        "and attributes.status = 'RUNNING'",
    ):
        ended += _end_with_children(child, why, client)
    end_run_as(run.info.run_id, "KILLED", why)
    return [*ended, run.info.run_id]


def reap_stale(
    experiment_ids: Sequence[str], study: str, stale_after_s: float, now: float | None = None
) -> list[Run]:
    """Mark RUNNING `main` and `sweep` runs of `study` whose heartbeat is older than
    `stale_after_s` as KILLED (their open child runs too); returns the reaped runs."""
    check_stale_after(stale_after_s)
    now = time.time() if now is None else now
    client, reaped = MlflowClient(), []
    for run in runs_with_tags(experiment_ids, {"study": study}, ("RUNNING",)):
        if run.data.tags.get(STEP_TAG) not in ("main", "sweep") or run.info.run_id in heartbeat:
            continue  # not a pipeline run, or one this very process keeps alive
        age = now - last_sign_of_life(run)
        if age > stale_after_s:
            why = (
                f"stale: no heartbeat for {age / 60:.0f} min, so its process died without "
                "closing it (killed, out of memory, or its machine was lost)"
            )
            _end_with_children(run, why, client)
            reaped.append(run)
    return reaped


def end_previous_attempts(experiment_id: str, parent_run_id: str, run_key: str) -> list[str]:
    """Before a job is retried in the same sweep: close the runs its dead attempts left
    RUNNING. Within one sweep a job runs one attempt at a time, so any such run is dead."""
    client, ended = MlflowClient(), []
    tags = {"mlflow.parentRunId": parent_run_id, RUN_KEY_TAG: run_key}
    for run in runs_with_tags([experiment_id], tags, ("RUNNING",)):
        why = "its worker process died before the run ended; the job was run again"
        ended += _end_with_children(run, why, client)
    return ended


def earlier_claim(
    run: Run, experiment_id: str, study: str, run_key: str, stale_after_s: float
) -> Run | None:
    """The claim on the pair that comes before `run`'s (module docstring), if any."""
    now = time.time()
    mine = (run.info.start_time, run.info.run_id)
    tags = {STEP_TAG: "main", STUDY_TAG: study, RUN_KEY_TAG: run_key}
    for other in runs_with_tags(
        [experiment_id], tags, ("FINISHED", "RUNNING"), newest_first=False
    ):
        if other.info.run_id == run.info.run_id:
            continue
        if other.info.status == "FINISHED":
            return other
        alive = now - last_sign_of_life(other) <= stale_after_s
        if alive and (other.info.start_time, other.info.run_id) < mine:
            return other
    return None


def live_claims(
    experiment_id: str, study: str, stale_after_s: float, exclude_parent: str
) -> set[str]:
    """run_keys of the study's RUNNING `main` runs that are alive and belong to another sweep
    than `exclude_parent`."""
    now, keys = time.time(), set()
    for run in runs_with_tags([experiment_id], {STEP_TAG: "main", STUDY_TAG: study}, ("RUNNING",)):
        if run.data.tags.get("mlflow.parentRunId") == exclude_parent:
            continue
        if now - last_sign_of_life(run) <= stale_after_s and run.data.tags.get(RUN_KEY_TAG):
            keys.add(run.data.tags["run_key"])
    return keys


def check_stale_after(stale_after_s: float) -> None:
    """Refuse a window in which a live run could look dead (a bug, not a user's input: the
    configs validate what users give)."""
    if stale_after_s < MIN_STALE_AFTER_S:
        raise ValueError(f"stale_after_s={stale_after_s} is below {MIN_STALE_AFTER_S} s")
