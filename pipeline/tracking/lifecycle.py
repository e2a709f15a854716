"""A run's life: opened with the configuration and environment it ran with, refreshed by the
heartbeat while open, closed FINISHED, FAILED (its `error` tag says why) or KILLED (Ctrl-C,
SIGTERM), never left RUNNING while its process lives; its artifacts logged only if it
succeeds. A sweep's `main` run is also its claim on a pair (liveness.py): one that gives way
is deleted."""

import functools
import os
import platform
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import metadata
from typing import Any

import mlflow
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

from pipeline import keys
from pipeline.names import ERROR_TAG, STEP_TAG
from pipeline.tracking import liveness, records, signals
from pipeline.tracking.faults import one_line
from pipeline.tracking.liveness import PairTaken
from pipeline.tracking.store import local_folder

PACKAGES = ("mlflow", "keras", "tensorflow", "jax", "numpy", "scikit-learn", "pandas")


def code_version() -> str:
    """Hash of the pipeline's source: runs made by different code are never mistaken as equal."""
    return keys.code_version()


@functools.cache
def environment_tags() -> dict[str, str]:
    """Package versions and the code hash, read once per process (shared: copy, don't edit)."""
    tags = {
        "versions.python": platform.python_version(),
        "code_version": code_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
    }
    for package in PACKAGES:
        try:
            tags[f"versions.{package}"] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return tags


@contextmanager
def step_run(
    step: str,
    params: Mapping[str, Any],
    parent_run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
    run_name: str | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """Open the run of one pipeline step and close it with the right status.

    With no parent, attaches to the run `mlflow run` created (MLFLOW_RUN_ID) or starts one
    (named `run_name` either way); inside an active run, or given `parent_run_id`, starts a
    child run named after the step and its parent (`train max_freq=20 seed=3`), unless
    `run_name` is given. A `PairTaken` raised inside deletes the run.
    """
    parent = mlflow.active_run()
    nested = parent is not None
    all_tags = {STEP_TAG: step, **environment_tags(), **(tags or {}), **liveness.beat()}
    if nested or parent_run_id:
        if run_name is None:  # `train max_freq=20 seed=3`: it reads in a chart's legend
            parent_name = (
                parent.info.run_name
                if parent
                else MlflowClient().get_run(parent_run_id).info.run_name
            )
            run_name = f"{step} {parent_name}" if parent_name else step
        run = mlflow.start_run(
            run_name=run_name, nested=nested, parent_run_id=parent_run_id, tags=all_tags
        )
    else:
        run = mlflow.start_run(run_name=run_name)
    run_id = run.info.run_id
    liveness.heartbeat.add(run_id)
    try:
        records.mark_experiment(run.info.experiment_id)
        if nested or parent_run_id:
            records.log_params(params, new_run=True)
        else:
            # Possibly the run `mlflow run` created: resuming it ignores start_run's tags and
            # keeps its random name.
            mlflow.set_tags(all_tags)
            if run_name and run.info.run_name != run_name:
                records.name_run(run_id, run_name)
            records.log_params(params)
        yield run
    except PairTaken:
        liveness.heartbeat.discard(run_id)
        _quietly(mlflow.end_run, RunStatus.to_string(RunStatus.KILLED))
        _quietly(MlflowClient().delete_run, run_id)  # it trained nothing: no trace in the study
        raise
    except KeyboardInterrupt as exc:
        _end_stopped(run, getattr(exc, "reason", None) or signals.interrupt_reason())
        raise
    except BaseException as exc:
        if signals.interrupted():  # the stop, turned into another error by a library
            reason = signals.interrupt_reason() or f"stopped by a signal ({one_line(exc)})"
            _end_stopped(run, reason)
            raise signals.Interrupted(reason) from exc
        liveness.heartbeat.discard(run_id)
        _quietly(mlflow.set_tag, ERROR_TAG, one_line(exc))
        _quietly(_drop_local_artifacts, run.info.artifact_uri)
        _quietly(mlflow.end_run, RunStatus.to_string(RunStatus.FAILED))
        raise
    else:
        liveness.heartbeat.discard(run_id)
        mlflow.end_run()


def _end_stopped(run: mlflow.ActiveRun, reason: str | None) -> None:
    """Close a run that a stop (Ctrl-C, SIGTERM) ended: KILLED, with the reason if any."""
    signals.stopping()
    liveness.heartbeat.discard(run.info.run_id)
    if reason:
        _quietly(mlflow.set_tag, ERROR_TAG, reason)
    _quietly(_drop_local_artifacts, run.info.artifact_uri)
    _quietly(mlflow.end_run, RunStatus.to_string(RunStatus.KILLED))


def claim_pair(run: mlflow.ActiveRun, study: str, run_key: str, stale_after_s: float) -> None:
    """Raise PairTaken if an earlier claim holds the pair (liveness.earlier_claim)."""
    holder = liveness.earlier_claim(
        MlflowClient().get_run(run.info.run_id), run.info.experiment_id, study, run_key,
        stale_after_s,
    )  # fmt: skip
    if holder is not None:
        raise PairTaken(holder)


def _drop_local_artifacts(artifact_uri: str) -> None:
    """A step that did not finish keeps no artifacts: whatever it had written when it failed
    (a disk filling up mid-copy, say) would be half of a whole. Local artifact folders only;
    a server's artifact store keeps what it received."""
    folder = local_folder(artifact_uri)
    if folder is None:
        return
    for child in folder.iterdir() if folder.is_dir() else ():
        shutil.rmtree(child) if child.is_dir() else child.unlink()


def _quietly(call, *args: Any) -> None:
    """Closing a run that already failed: if the store is gone too, the original error is the
    one to report (the run is reaped as stale later). `mlflow.end_run` leaves the run's
    stack before it writes, so a failed write leaves no phantom active run behind."""
    try:
        call(*args)
    except Exception:
        pass


def record_failure(step: str, params: Mapping[str, Any], message: str) -> None:
    """For input rejected before any work: a FAILED run that says why."""
    run = mlflow.start_run()
    try:
        mlflow.set_tags({STEP_TAG: step, ERROR_TAG: message})
        records.log_params({k: v for k, v in params.items() if v is not None})
        records.mark_experiment(run.info.experiment_id)
    finally:
        mlflow.end_run(RunStatus.to_string(RunStatus.FAILED))
