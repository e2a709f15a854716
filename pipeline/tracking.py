"""The MLflow edge: every tracking call of the pipeline goes through here.

What it guarantees: a run opened with `step_run` never stays RUNNING. It ends FINISHED,
FAILED (with the error recorded in the `error` tag) or KILLED (Ctrl-C / SIGTERM). Artifacts
are staged in a temporary folder and logged only when the step succeeds, so a failed step
leaves no half-written artifacts.
"""

import functools
import hashlib
import platform
import signal
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric, RunStatus
from mlflow.tracking import MlflowClient

from pipeline.config import UserError

STEP_TAG = "step"
ERROR_TAG = "error"
PACKAGES = ("mlflow", "keras", "tensorflow", "jax", "numpy", "scikit-learn", "pandas")
_CODE_DIR = Path(__file__).resolve().parent


def install_signal_handlers() -> None:
    """Turn SIGTERM into KeyboardInterrupt so that open runs end KILLED, not RUNNING."""

    def _terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _terminate)


@functools.cache
def code_version() -> str:
    """Hash of the pipeline's source: runs made by different code are never mistaken as equal."""
    digest = hashlib.sha256()
    for path in sorted(_CODE_DIR.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


@functools.cache
def environment_tags() -> dict[str, str]:
    """Package versions and the code hash, read once per process (shared: copy, don't edit)."""
    tags = {"versions.python": platform.python_version(), "code_version": code_version()}
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

    With no parent, attaches to the run `mlflow run` created (MLFLOW_RUN_ID) or starts one;
    inside an active run, or given `parent_run_id`, starts a child run named after the step.
    """
    nested = mlflow.active_run() is not None
    all_tags = {STEP_TAG: step, **environment_tags(), **(tags or {})}
    if nested or parent_run_id:
        run = mlflow.start_run(
            run_name=run_name or step, nested=nested, parent_run_id=parent_run_id, tags=all_tags
        )
    else:
        run = mlflow.start_run(run_name=run_name)
    try:
        if not (nested or parent_run_id):
            # Possibly the run `mlflow run` created: resuming it ignores start_run's tags.
            mlflow.set_tags(all_tags)
        log_params(params)
        yield run
    except KeyboardInterrupt:
        mlflow.end_run(RunStatus.to_string(RunStatus.KILLED))
        raise
    except BaseException as exc:
        mlflow.set_tag(ERROR_TAG, one_line(exc))
        mlflow.end_run(RunStatus.to_string(RunStatus.FAILED))
        raise
    else:
        mlflow.end_run()


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, UserError) else f"{type(exc).__name__}: {text}"


def record_failure(step: str, params: Mapping[str, Any], message: str) -> None:
    """For input rejected before any work: a FAILED run that says why."""
    mlflow.start_run()
    try:
        mlflow.set_tags({STEP_TAG: step, ERROR_TAG: message})
        log_params({k: v for k, v in params.items() if v is not None})
    finally:
        mlflow.end_run(RunStatus.to_string(RunStatus.FAILED))


def log_params(params: Mapping[str, Any]) -> None:
    """Log params not yet on the active run (`mlflow run` logs the entry point's own)."""
    run = mlflow.active_run()
    existing = MlflowClient().get_run(run.info.run_id).data.params
    missing = {k: v for k, v in params.items() if k not in existing}
    if missing:
        mlflow.log_params(missing)


def log_metrics(metrics: Mapping[str, float]) -> None:
    run_id = mlflow.active_run().info.run_id
    now = int(time.time() * 1000)
    batch = [Metric(k, float(v), now, 0) for k, v in metrics.items()]
    MlflowClient().log_batch(run_id, metrics=batch, synchronous=True)


def log_series(name: str, values: list[float]) -> None:
    """One metric with step = index (e.g. the loss per epoch), in batches of MLflow's maximum."""
    run_id = mlflow.active_run().info.run_id
    now = int(time.time() * 1000)
    points = [Metric(name, float(v), now, i) for i, v in enumerate(values)]
    for start in range(0, len(points), 1000):
        MlflowClient().log_batch(run_id, metrics=points[start : start + 1000], synchronous=True)


class SeriesLogger:
    """Collects a per-epoch metric and flushes it every `every_s` seconds, so a long run's
    learning curve grows live in the UI without paying for one database write per epoch."""

    def __init__(self, name: str, every_s: float = 10.0):
        self.name, self.every_s = name, every_s
        self.run_id = mlflow.active_run().info.run_id
        self.pending: list[Metric] = []
        self.last_flush = time.monotonic()

    def __call__(self, epoch: int, value: float) -> None:
        self.pending.append(Metric(self.name, float(value), int(time.time() * 1000), epoch))
        if time.monotonic() - self.last_flush >= self.every_s:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            MlflowClient().log_batch(self.run_id, metrics=self.pending, synchronous=True)
        self.pending, self.last_flush = [], time.monotonic()


def set_tags(tags: Mapping[str, Any]) -> None:
    mlflow.set_tags({k: str(v) for k, v in tags.items()})


@contextmanager
def staged_artifacts() -> Iterator[Path]:
    """Yield a scratch folder; its contents become the run's artifacts only if no error."""
    with tempfile.TemporaryDirectory(prefix="sinelstm-") as folder:
        yield Path(folder)
        mlflow.log_artifacts(folder)


def download(artifact_uri: str) -> Path:
    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=artifact_uri))
    except Exception as exc:  # MLflow raises several types for a missing run or path
        raise UserError(f"cannot fetch artifacts {artifact_uri!r}: {one_line(exc)}") from None


def get_run(run_id: str, expected_step: str, param: str):
    """The run `run_id`, which must be a FINISHED run of `expected_step`."""
    try:
        run = MlflowClient().get_run(run_id)
    except Exception:
        raise UserError(f"{param}={run_id!r} is not allowed: no such run in this store") from None
    step = run.data.tags.get(STEP_TAG)
    if step != expected_step or run.info.status != "FINISHED":
        raise UserError(
            f"{param}={run_id!r} is not allowed: expected a FINISHED {expected_step} run, "
            f"found a {run.info.status} {step or 'untagged'} run"
        )
    return run


def find_finished_run(experiment_id: str, tags: Mapping[str, str]) -> str | None:
    """The newest FINISHED run in the experiment carrying all `tags`, if any."""
    query = " and ".join(f"tags.{k} = '{v}'" for k, v in tags.items())
    runs = MlflowClient().search_runs(
        [experiment_id],
        filter_string=f"{query} and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0].info.run_id if runs else None
