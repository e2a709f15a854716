"""The MLflow edge: every tracking call of the pipeline and the analysis goes through here.

What it guarantees:
- **The store answers before any work.** `check_store` asks a tracking server one cheap
  question with a short timeout, so an unreachable server or rejected credentials end the
  command in seconds with one line instead of minutes of retries and a traceback.
- **A run opened with `step_run` never stays RUNNING** while its process lives: it ends
  FINISHED, FAILED (the error in the `error` tag) or KILLED (Ctrl-C / SIGTERM). While open it
  refreshes its `heartbeat` tag every HEARTBEAT_EVERY_S, so a run whose process died without
  closing it (SIGKILL, OOM, a lost node) can be told from a live one and reaped (`reap_stale`).
- **No half-written artifacts**: they are staged in a temporary folder and logged only when
  the step succeeds.
- **One query** for "runs carrying these tags, in these states" (`find_runs`).
"""

import errno
import functools
import hashlib
import os
import platform
import shutil
import signal
import sys
import tempfile
import threading
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import mlflow
from mlflow.entities import Metric, Run, RunStatus
from mlflow.tracking import MlflowClient

from pipeline.config import UserError

STEP_TAG = "step"
ERROR_TAG = "error"
HEARTBEAT_TAG = "heartbeat"  # unix seconds of the last sign of life of the run's process
HEARTBEAT_EVERY_S = 30.0
STORE_CHECK_TIMEOUT_S = 5.0
# MLflow retries a failed request 7 times with doubling waits (about 4 minutes). A shorter
# ladder (2+4+8+16 s) rides out a server restart without hanging for minutes when it is gone.
HTTP_RETRIES, HTTP_TIMEOUT_S = "4", "30"
PACKAGES = ("mlflow", "keras", "tensorflow", "jax", "numpy", "scikit-learn", "pandas")
_CODE_DIR = Path(__file__).resolve().parent


class StoreError(UserError):
    """The tracking store cannot be used: unreachable, or it refused us."""


class Interrupted(KeyboardInterrupt):
    """An interrupt with a reason worth recording on the run (e.g. its sweep died). The reason
    is also kept process-wide: a library between the signal and `step_run` may re-raise the
    interrupt as a plain KeyboardInterrupt."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
        _interrupt_reason.append(reason)


_interrupt_reason: list[str] = []


_stopping = threading.Event()  # an interrupt reached code that is now closing down
RESEND_LIMIT = 20


def stopping() -> None:
    """Say that an interrupt has been caught and runs are being closed: from now on SIGTERM is
    ignored, so that a second one cannot cut the close short."""
    _stopping.set()


def install_signal_handlers(reason: Callable[[], str | None] = lambda: None) -> None:
    """Turn SIGTERM into KeyboardInterrupt (`Interrupted` when `reason()` gives one) so that
    open runs end KILLED, not RUNNING.

    A signal handler's exception is lost when Python happens to be running a finaliser (a
    `__del__`, a weakref callback; TensorFlow has many): it prints "Exception ignored" and
    carries on. Such a lost interrupt is sent again, until some code says it is `stopping()`.
    """

    def _terminate(signum: int, frame: Any) -> None:
        if _stopping.is_set():
            return
        why = reason()
        raise Interrupted(why) if why else KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _terminate)
    if not isinstance(sys.unraisablehook, _ResendLost):
        sys.unraisablehook = _ResendLost(sys.unraisablehook)


class _ResendLost:
    """sys.unraisablehook: an interrupt swallowed by a finaliser is signalled again."""

    def __init__(self, previous: Callable[[Any], object]):
        self.previous, self.resent = previous, 0

    def __call__(self, info: Any) -> None:
        self.previous(info)
        lost = isinstance(info.exc_value, KeyboardInterrupt) and not _stopping.is_set()
        if lost and self.resent < RESEND_LIMIT:
            self.resent += 1
            # From a timer: the finaliser we are in would swallow it again.
            timer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGTERM))
            timer.daemon = True
            timer.start()


# --- the store ------------------------------------------------------------------------------


def configure_client() -> None:
    """Process-wide client settings (environment defaults a user can still override)."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", HTTP_RETRIES)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", HTTP_TIMEOUT_S)
    # Progress bars for artifact copies are noise in a pipeline's log.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def tracking_uri() -> str:
    return mlflow.get_tracking_uri()


def set_tracking_uri(uri: str) -> None:
    mlflow.set_tracking_uri(uri)


def is_shared_store(uri: str) -> bool:
    """Whether other machines can reach this store (a server or a database server), as
    opposed to a file on this machine (SQLite, a local folder)."""
    return urlparse(uri).scheme in ("http", "https", "postgresql", "mysql", "mssql") or any(
        uri.startswith(f"{s}+") for s in ("postgresql", "mysql", "mssql")
    )


def check_store(uri: str | None = None, timeout_s: float = STORE_CHECK_TIMEOUT_S) -> None:
    """Raise StoreError with one line unless the tracking store answers within `timeout_s`."""
    uri = uri or tracking_uri()
    scheme = urlparse(uri).scheme
    if scheme in ("http", "https"):
        _check_server(uri, timeout_s)
    elif scheme.split("+")[0] in ("postgresql", "mysql", "mssql"):
        _check_database(uri, timeout_s)


def _credentials() -> tuple[tuple[str, str] | None, dict[str, str]]:
    user, password = (os.environ.get(f"MLFLOW_TRACKING_{k}") for k in ("USERNAME", "PASSWORD"))
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return ((user, password or "") if user else None), headers


def _check_server(uri: str, timeout_s: float) -> None:
    import requests

    auth, headers = _credentials()
    url = f"{uri.rstrip('/')}/api/2.0/mlflow/experiments/search"
    try:
        answer = requests.post(
            url, json={"max_results": 1}, auth=auth, headers=headers, timeout=timeout_s
        )
    except requests.exceptions.RequestException as exc:
        why = _why(exc, timeout_s)
        raise StoreError(f"tracking server {uri} is not reachable: {why}") from None
    if answer.status_code == 401:
        hint = (
            "check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
            if auth or headers
            else "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
        )
        raise StoreError(f"tracking server {uri} rejected the credentials (HTTP 401): {hint}")
    if answer.status_code == 403:
        who = f"user {auth[0]!r}" if auth else "this client"
        raise StoreError(
            f"tracking server {uri} refused {who} (HTTP 403): ask its admin for permission"
        )
    if not answer.ok:
        raise StoreError(
            f"tracking server {uri} is not usable: it answered HTTP {answer.status_code}"
        )


def _why(exc: BaseException, timeout_s: float) -> str:
    import requests

    text = str(exc)
    if isinstance(exc, requests.exceptions.Timeout) or "timed out" in text:
        return f"no answer within {timeout_s:g} s"
    if "Connection refused" in text:
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "host name not found"
    if "No route to host" in text or "Network is unreachable" in text:
        return "no route to host"
    return type(exc).__name__


def _check_database(uri: str, timeout_s: float) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(uri, connect_args={"connect_timeout": int(timeout_s)})
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.SQLAlchemyError as exc:
        first = str(exc.orig if hasattr(exc, "orig") else exc).strip().splitlines()[0]
        safe = urlparse(uri)._replace(netloc=urlparse(uri).hostname or "").geturl()
        raise StoreError(f"tracking database {safe} is not reachable: {first}") from None
    finally:
        engine.dispose()


# --- runs -----------------------------------------------------------------------------------


@functools.cache
def code_version() -> str:
    """Hash of the pipeline's source: runs made by different code are never mistaken as equal."""
    digest = hashlib.sha256()
    for path in sorted(_CODE_DIR.rglob("*.py")):
        digest.update(str(path.relative_to(_CODE_DIR)).encode() + b"\0" + path.read_bytes())
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
    all_tags = {STEP_TAG: step, **environment_tags(), **(tags or {}), **_beat()}
    if nested or parent_run_id:
        run = mlflow.start_run(
            run_name=run_name or step, nested=nested, parent_run_id=parent_run_id, tags=all_tags
        )
    else:
        run = mlflow.start_run(run_name=run_name)
    run_id = run.info.run_id
    _heartbeat.add(run_id)
    try:
        if nested or parent_run_id:
            mlflow.log_params(params)  # a new run: nothing logged yet
        else:
            # Possibly the run `mlflow run` created: resuming it ignores start_run's tags.
            mlflow.set_tags(all_tags)
            log_params(params)
        yield run
    except KeyboardInterrupt as exc:
        stopping()
        _heartbeat.discard(run_id)
        reason = getattr(exc, "reason", None) or next(iter(_interrupt_reason), None)
        if reason:
            _quietly(mlflow.set_tag, ERROR_TAG, reason)
        _quietly(_drop_local_artifacts, run.info.artifact_uri)
        _quietly(mlflow.end_run, RunStatus.to_string(RunStatus.KILLED))
        raise
    except BaseException as exc:
        _heartbeat.discard(run_id)
        _quietly(mlflow.set_tag, ERROR_TAG, one_line(exc))
        _quietly(_drop_local_artifacts, run.info.artifact_uri)
        _quietly(mlflow.end_run, RunStatus.to_string(RunStatus.FAILED))
        raise
    else:
        _heartbeat.discard(run_id)
        mlflow.end_run()


def _drop_local_artifacts(artifact_uri: str) -> None:
    """A step that did not finish keeps no artifacts: whatever it had written when it failed
    (a disk filling up mid-copy, say) would be half of a whole. Local artifact folders only;
    a server's artifact store keeps what it received."""
    parsed = urlparse(artifact_uri)
    if parsed.scheme not in ("", "file"):
        return
    folder = Path(unquote(parsed.path))
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


def one_line(exc: BaseException) -> str:
    fault = describe_fault(exc)
    if fault:
        return fault
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, UserError) else f"{type(exc).__name__}: {text}"


_DISK_ERRNOS = {
    errno.ENOSPC: "the disk is full",
    errno.EFBIG: "the file size limit was hit",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EACCES: "permission denied",
    errno.EROFS: "the file system is read-only",
    errno.EPERM: "permission denied",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
}


def describe_fault(exc: BaseException) -> str | None:
    """One line for a fault of the machine rather than of the code: a full or unwritable
    disk, a locked or corrupt SQLite store. None for anything else."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:  # MLflow wraps the OSError or sqlite3 error
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS:
            where = f" {exc.filename}" if exc.filename else ""
            return f"cannot write{where}: {_DISK_ERRNOS[exc.errno]} ({exc.strerror})"
        text = str(exc)
        if "database is locked" in text:
            return (
                f"tracking store {_redacted(tracking_uri())} is locked by another process and "
                "stayed locked past the wait; run again when it is free"
            )
        if "file is not a database" in text or "database disk image is malformed" in text:
            store = _redacted(tracking_uri())
            return f"tracking store {store} is not a readable MLflow database; it was not modified"
        exc = exc.__cause__ or exc.__context__
    return None


def _redacted(uri: str) -> str:
    parsed = urlparse(uri)
    return uri.replace(f"{parsed.password}@", "***@") if parsed.password else uri


def record_failure(step: str, params: Mapping[str, Any], message: str) -> None:
    """For input rejected before any work: a FAILED run that says why."""
    mlflow.start_run()
    try:
        mlflow.set_tags({STEP_TAG: step, ERROR_TAG: message})
        log_params({k: v for k, v in params.items() if v is not None})
    finally:
        mlflow.end_run(RunStatus.to_string(RunStatus.FAILED))


def active_run_id() -> str:
    return mlflow.active_run().info.run_id


def active_experiment_id() -> str:
    return mlflow.active_run().info.experiment_id


def log_params(params: Mapping[str, Any]) -> None:
    """Log params not yet on the active run (`mlflow run` logs the entry point's own)."""
    existing = MlflowClient().get_run(active_run_id()).data.params
    missing = {k: v for k, v in params.items() if k not in existing}
    if missing:
        mlflow.log_params(missing)


def log_metrics(metrics: Mapping[str, float]) -> None:
    now = int(time.time() * 1000)
    batch = [Metric(k, float(v), now, 0) for k, v in metrics.items()]
    MlflowClient().log_batch(active_run_id(), metrics=batch, synchronous=True)


def log_series(name: str, values: Sequence[float], steps: Sequence[int] | None = None) -> None:
    """One metric at steps `steps` (default: the index, e.g. the loss per epoch), in batches of
    MLflow's maximum."""
    run_id = active_run_id()
    now = int(time.time() * 1000)
    steps = range(len(values)) if steps is None else steps
    points = [Metric(name, float(v), now, int(i)) for i, v in zip(steps, values, strict=True)]
    for start in range(0, len(points), 1000):
        MlflowClient().log_batch(run_id, metrics=points[start : start + 1000], synchronous=True)


class SeriesLogger:
    """Collects a per-epoch metric and flushes it every `every_s` seconds, so a long run's
    learning curve grows live in the UI without paying for one database write per epoch."""

    def __init__(self, name: str, every_s: float = 10.0):
        self.name, self.every_s = name, every_s
        self.run_id = active_run_id()
        self.pending: list[Metric] = []
        self.last_flush = time.monotonic()

    def __call__(self, epoch: int, value: float) -> None:
        self.pending.append(Metric(self.name, float(value), int(time.time() * 1000), epoch))
        if time.monotonic() - self.last_flush >= self.every_s:
            self.flush()

    def flush(self, quietly: bool = False) -> None:
        """Write the pending points; `quietly` (while another error is on its way) swallows a
        failed write, so that error is the one reported."""
        if self.pending:
            try:
                MlflowClient().log_batch(self.run_id, metrics=self.pending, synchronous=True)
            except Exception:
                if not quietly:
                    raise
        self.pending, self.last_flush = [], time.monotonic()


def set_tags(tags: Mapping[str, Any]) -> None:
    mlflow.set_tags({k: str(v) for k, v in tags.items()})


def use_experiment(name: str | None = None, experiment_id: str | None = None) -> str:
    """Make an experiment the active one (by name, created if missing, or by id)."""
    return mlflow.set_experiment(experiment_name=name, experiment_id=experiment_id).experiment_id


def experiment_ids(name: str | None) -> list[str]:
    """The id of experiment `name`, or of every experiment when no name is given."""
    if not name:
        return [e.experiment_id for e in mlflow.search_experiments()]
    found = mlflow.get_experiment_by_name(name)
    if found is None:
        names = ", ".join(sorted(e.name for e in mlflow.search_experiments())) or "none"
        raise UserError(
            f"experiment={name!r} is not allowed: no such experiment in {tracking_uri()} "
            f"(found: {names})"
        )
    return [found.experiment_id]


def _tag_query(tags: Mapping[str, str]) -> str:
    def quoted(value: str) -> str:
        return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"

    return " and ".join(f"tags.`{k}` = {quoted(v)}" for k, v in tags.items())


def find_runs(
    experiment_ids: Sequence[str],
    tags: Mapping[str, str],
    statuses: Iterable[str] | None = ("FINISHED",),
    newest_first: bool = True,
    max_results: int | None = None,
) -> list[Run]:
    """Runs carrying all `tags`, in one of `statuses` (None: any), newest first by default."""
    if statuses is None:
        runs = _search(experiment_ids, _tag_query(tags), newest_first, max_results)
    else:  # MLflow's filter language compares a status with one value only
        runs = []
        for status in statuses:
            query = " and ".join(
                filter(None, (_tag_query(tags), f"attributes.status = '{status}'"))
            )
            runs += _search(experiment_ids, query, newest_first, max_results)
        runs.sort(key=lambda r: r.info.start_time, reverse=newest_first)
    return runs[:max_results] if max_results else runs


def _search(
    experiment_ids: Sequence[str], query: str, newest_first: bool, max_results: int | None
) -> list[Run]:
    order = ["attributes.start_time " + ("DESC" if newest_first else "ASC")]
    client, runs, token = MlflowClient(), [], None
    while True:
        page = client.search_runs(
            list(experiment_ids),
            filter_string=query,
            order_by=order,
            max_results=min(max_results or 1000, 1000),
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token or (max_results and len(runs) >= max_results):
            return runs


def find_finished_run(experiment_id: str, tags: Mapping[str, str]) -> str | None:
    """The newest FINISHED run in the experiment carrying all `tags`, if any."""
    runs = find_runs([experiment_id], tags, max_results=1)
    return runs[0].info.run_id if runs else None


SEARCH_SHARDS = "0123456789abcdef"  # run ids are hex: one query per first digit
READ_THREADS = 8


def search_frame(experiment_ids: Sequence[str], tags: Mapping[str, str]):
    """Every run carrying `tags` as MLflow's pandas table (params., metrics., tags. columns).

    Against a tracking server, one search pages through the runs one request after another
    (about 2.6 s per 1,000 runs here); split by the run id's first hex digit, 16 searches run
    side by side and together return exactly the same runs."""
    import pandas as pd

    query = _tag_query(tags)
    if not is_shared_store(tracking_uri()):
        return mlflow.search_runs(list(experiment_ids), query, output_format="pandas")

    def shard(digit: str):
        where = (
            f"{query} and attributes.run_id LIKE '{digit}%'"
            if query
            else (f"attributes.run_id LIKE '{digit}%'")
        )
        return mlflow.search_runs(list(experiment_ids), where, output_format="pandas")

    frames = [f for f in parallel(shard, SEARCH_SHARDS) if not f.empty]
    if not frames:
        return mlflow.search_runs(list(experiment_ids), query, output_format="pandas")
    return pd.concat(frames, ignore_index=True).sort_values("start_time", ascending=False)


def parallel(call: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
    """`call` on every item, READ_THREADS at a time (for reads from a tracking server, which
    wait on the network, not on this process)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(READ_THREADS) as pool:
        return list(pool.map(call, items))


def get_run(run_id: str, expected_step: str, param: str) -> Run:
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


def metric_history(run_id: str, key: str) -> list[tuple[int, int, float]]:
    """(step, timestamp, value) of every logged point of metric `key`, in logging order."""
    return [(m.step, m.timestamp, m.value) for m in MlflowClient().get_metric_history(run_id, key)]


def artifact_uri(run_id: str) -> str:
    return MlflowClient().get_run(run_id).info.artifact_uri


def artifact_location(experiment_id: str) -> str:
    return MlflowClient().get_experiment(experiment_id).artifact_location


def end_run_as(run_id: str, status: str, error: str | None = None) -> None:
    """Close a run from outside its process (e.g. one whose process died)."""
    client = MlflowClient()
    if error:
        client.set_tag(run_id, ERROR_TAG, error)
    client.set_terminated(run_id, status)


# --- artifacts and models -------------------------------------------------------------------


@contextmanager
def staged_artifacts() -> Iterator[Path]:
    """Yield a scratch folder; its contents become the run's artifacts only if no error."""
    with tempfile.TemporaryDirectory(prefix="sinelstm-") as folder:
        yield Path(folder)
        mlflow.log_artifacts(folder)


def log_files(paths: Iterable[Path]) -> None:
    for path in paths:
        mlflow.log_artifact(str(path))


def download(artifact_uri: str) -> Path:
    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=artifact_uri))
    except Exception as exc:  # MLflow raises several types for a missing run or path
        raise UserError(f"cannot fetch artifacts {artifact_uri!r}: {one_line(exc)}") from None


def _keras_flavor():
    """mlflow.keras, but making the model folder before the input example is written into it
    (mlflow/mlflow#16183: log_model with input_example raises FileNotFoundError)."""

    def save_model(path: str, validate_serving_input: bool = True, **kwargs: Any) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)
        mlflow.keras.save_model(path=path, **kwargs)

    flavor = types.ModuleType("mlflow.keras")
    flavor.save_model = save_model
    return flavor


def log_keras_model(model: Any, example: Any, prediction: Any, requirements: list[str]) -> None:
    """The model as the run's `model`, Keras flavour, with signature and input example."""
    from mlflow.models import Model, infer_signature

    # validate_serving_input=False: MLflow would load the saved model back and predict the
    # example once more (about a second per run on jax); the tests load logged models instead.
    Model.log(
        artifact_path=None,
        name="model",
        flavor=_keras_flavor(),
        model=model,
        signature=infer_signature(example, prediction),
        input_example=example,
        pip_requirements=requirements,
        validate_serving_input=False,
    )


def load_keras_model(run_id: str) -> Any:
    return mlflow.keras.load_model(f"runs:/{run_id}/model")


# --- liveness -------------------------------------------------------------------------------


def _beat() -> dict[str, str]:
    return {HEARTBEAT_TAG: str(int(time.time()))}


class _Heartbeat:
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
                    client.set_tag(run_id, HEARTBEAT_TAG, _beat()[HEARTBEAT_TAG])
                except Exception:
                    pass  # the store may be briefly away; the next beat tries again


_heartbeat = _Heartbeat(HEARTBEAT_EVERY_S)


def last_sign_of_life(run: Run) -> float:
    """Unix seconds of the run's last heartbeat (its start for runs made before heartbeats)."""
    beat = run.data.tags.get(HEARTBEAT_TAG, "")
    return float(beat) if beat.isdigit() else run.info.start_time / 1000


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
    now = time.time() if now is None else now
    client, reaped = MlflowClient(), []
    for run in find_runs(experiment_ids, {"study": study}, statuses=("RUNNING",)):
        if run.data.tags.get(STEP_TAG) not in ("main", "sweep") or run.info.run_id in _heartbeat:
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
    tags = {"mlflow.parentRunId": parent_run_id, "run_key": run_key}
    for run in find_runs([experiment_id], tags, statuses=("RUNNING",)):
        why = "its worker process died before the run ended; the job was run again"
        ended += _end_with_children(run, why, client)
    return ended


def main() -> None:
    """`python -m pipeline.tracking`: say whether the configured tracking store answers."""
    import sys

    configure_client()
    try:
        check_store()
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    uri = tracking_uri()
    print(f"tracking store {uri}: " + ("answers" if is_shared_store(uri) else "local"))


if __name__ == "__main__":
    main()
