"""Logging to the tracking store and reading from it: metrics, series, tags, artifacts and
models; experiments; the queries the pipeline and the analysis make."""

import os
import tempfile
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric, Run
from mlflow.tracking import MlflowClient

from pipeline.config import as_text
from pipeline.names import STEP_TAG, UserError
from pipeline.tracking import signals
from pipeline.tracking.faults import one_line
from pipeline.tracking.store import is_shared_store

DEFAULT_EXPERIMENT = "sine-lstm"  # where runs go when no experiment is named
# MLflow 3's UI opens an experiment in its model-training view (not the GenAI one) with this.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


# --- experiments ----------------------------------------------------------------------------


def default_experiment() -> None:
    """Runs of a process that names no experiment (MLFLOW_EXPERIMENT_NAME/ID unset, no run
    started for it by `mlflow run`) go to DEFAULT_EXPERIMENT rather than to MLflow's Default."""
    if not any(os.environ.get(k) for k in ("MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID",
                                            "MLFLOW_RUN_ID")):  # fmt: skip
        os.environ["MLFLOW_EXPERIMENT_NAME"] = DEFAULT_EXPERIMENT


_kind_set: set[tuple[str, str]] = set()


def mark_experiment(experiment_id: str) -> None:
    """Give the experiment the model-training kind, unless it has a kind, and the project's
    description (views.describe_experiment); once a process."""
    from pipeline.tracking import views

    seen = (mlflow.get_tracking_uri(), experiment_id)
    if seen in _kind_set:
        return
    client = MlflowClient()
    tags = client.get_experiment(experiment_id).tags
    for key, value in EXPERIMENT_KIND.items():
        if key not in tags:
            client.set_experiment_tag(experiment_id, key, value)
    views.describe_experiment(experiment_id, tags)
    _kind_set.add(seen)


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
            f"experiment={name!r} is not allowed: no such experiment in "
            f"{mlflow.get_tracking_uri()} (found: {names})"
        )
    return [found.experiment_id]


def artifact_location(experiment_id: str) -> str:
    return MlflowClient().get_experiment(experiment_id).artifact_location


# --- logging --------------------------------------------------------------------------------


def active_run_id() -> str:
    return mlflow.active_run().info.run_id


def active_experiment_id() -> str:
    return mlflow.active_run().info.experiment_id


def log_params(params: Mapping[str, Any], new_run: bool = False) -> None:
    """Log params not yet on the active run (`mlflow run` logs the entry point's own; a
    `new_run` has none), written as the CLI writes them (`false`, not `False`)."""
    existing = {} if new_run else MlflowClient().get_run(active_run_id()).data.params
    missing = {k: as_text(v) for k, v in params.items() if k not in existing}
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
                with signals.deferred():
                    MlflowClient().log_batch(self.run_id, metrics=self.pending, synchronous=True)
            except Exception:
                if not quietly:
                    raise
        self.pending, self.last_flush = [], time.monotonic()


def name_run(run_id: str, name: str) -> None:
    MlflowClient().update_run(run_id, name=name)


def set_tags(tags: Mapping[str, Any]) -> None:
    mlflow.set_tags({k: str(v) for k, v in tags.items()})


# --- queries --------------------------------------------------------------------------------


def _tag_query(tags: Mapping[str, str]) -> str:
    def quoted(value: str) -> str:
        return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"

    return " and ".join(f"tags.`{k}` = {quoted(v)}" for k, v in tags.items())


def runs_with_tags(
    experiment_ids: Sequence[str],
    tags: Mapping[str, str],
    statuses: Iterable[str] | None,
    newest_first: bool = True,
    max_results: int | None = None,
) -> list[Run]:
    """Runs carrying all `tags`, in one of `statuses` (None: any status), newest first by
    default."""
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
    runs = runs_with_tags([experiment_id], tags, ("FINISHED",), max_results=1)
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
    if not is_shared_store(mlflow.get_tracking_uri()):
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
