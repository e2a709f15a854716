"""One sweep job and how a worker runs it, whichever engine started the worker.

A `Job` is one full pipeline run (its validated parameters and `run_key`); a `Context` is what
every job of a sweep shares (store, experiment, sweep run, study, backend); `run_job` runs one
job in the worker's process and returns a `Result`, never raising for a failed run (that run
is already marked FAILED with its reason). Executors (pipeline/executors/) only move jobs and
results between processes or machines.
"""

import dataclasses
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from pipeline import names, tracking
from pipeline.config import PipelineConfig
from pipeline.names import GRID_AXES_TAG, RUN_KEY_TAG, STUDY_TAG

FINISHED, FAILED, KILLED = "FINISHED", "FAILED", "KILLED"
SKIPPED = "SKIPPED"  # another sweep holds the pair (tracking/liveness.py): nothing trained


@dataclass(frozen=True)
class Job:
    params: dict[str, Any]  # every pipeline parameter, validated
    run_key: str  # hash of the parameters and the code: what resume matches on
    axes: tuple[str, ...] = ()  # the grid's axes besides max_freq and seed

    @property
    def name(self) -> str:
        return names.run_name(self.params, self.axes)


@dataclass(frozen=True)
class Context:
    tracking_uri: str
    experiment_id: str
    sweep_run_id: str
    study: str
    backend: str
    stale_after_s: float = 600.0  # a RUNNING claim beating within this is alive

    def for_job(self, job: Job) -> "Context":
        """The context of a worker that can run `job`: one Keras backend per process."""
        return dataclasses.replace(self, backend=job.params.get("backend", self.backend))


@dataclass
class Result:
    status: str  # FINISHED, FAILED, KILLED or SKIPPED
    seconds: float
    run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""


_prepared: Context | None = None


def prepare_worker(ctx: Context) -> None:
    """Once per worker process: the store, the experiment, signals, the Keras backend."""
    global _prepared
    if _prepared == ctx:
        return
    from pipeline import keras_backend

    os.environ.pop("MLFLOW_RUN_ID", None)  # that is the sweep run: never resume it here
    tracking.configure_client()
    tracking.install_signal_handlers()
    tracking.set_tracking_uri(ctx.tracking_uri)
    tracking.use_experiment(experiment_id=ctx.experiment_id)
    keras_backend.activate(ctx.backend)
    _prepared = ctx


def run_job(ctx: Context, job: Job) -> Result:
    """In a worker: one full pipeline run under the sweep run, which first claims its pair (a
    pair another sweep holds is SKIPPED). Runs that an earlier attempt of this job left
    RUNNING (its worker died) are closed as KILLED first."""
    from pipeline.main import run_pipeline

    prepare_worker(ctx)
    import keras

    keras.backend.clear_session()  # a worker runs many jobs: drop the last one's graph state
    start = time.perf_counter()
    tracking.end_previous_attempts(ctx.experiment_id, ctx.sweep_run_id, job.run_key)
    cfg = PipelineConfig.from_strings(job.params)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # aliasing is tagged on the run; keep the log clean
            tags = {STUDY_TAG: ctx.study, RUN_KEY_TAG: job.run_key}
            if job.axes:
                tags[GRID_AXES_TAG] = ",".join(job.axes)
            claim = (ctx.study, job.run_key, ctx.stale_after_s)
            run_id, metrics = run_pipeline(cfg, ctx.sweep_run_id, tags, job.name, claim)
    except tracking.PairTaken as exc:
        return Result(SKIPPED, time.perf_counter() - start, error=str(exc))
    except Exception as exc:
        return Result(FAILED, time.perf_counter() - start, error=tracking.one_line(exc))
    return Result(FINISHED, time.perf_counter() - start, run_id, metrics)
