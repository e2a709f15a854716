"""Stage 4, sweep: every (max_freq, seed) pair as a full `main` run, on local processes or Ray.

Reads: a SweepConfig (max_freqs, seeds, workers, study, executor, ray_address,
stale_after_min) and every other experiment parameter, passed through unchanged. Writes: one
`sweep` run (tag `study`) whose children are `main` runs named `max_freq=… seed=…`, each
tagged `study` and `run_key` (a hash of its parameters and the pipeline's code).

Three parts, each unaware of the others' insides: `plan` (typed jobs, validated once), an
executor (pipeline/executors/: runs jobs, yields results as they finish) and `Bookkeeper`
(progress, counts). Running the same sweep again first marks RUNNING runs of the study whose
heartbeat is older than stale_after_min as KILLED (their process died), then skips pairs that
already have a FINISHED run with the same `run_key` and runs the rest. Ctrl-C or SIGTERM ends
every open run as KILLED.

    mlflow run . -e sweep -P max_freqs=10,20,30 -P seeds=5 --env-manager local
"""

import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from pipeline import tracking
from pipeline.config import DataConfig, EvalConfig, PipelineConfig, SweepConfig, TrainConfig
from pipeline.executors import open_executor
from pipeline.jobs import FINISHED, Context, Job, Result

SQLITE_TIMEOUT_S = 120  # concurrent writers wait for the lock instead of failing


def run_key(params: dict[str, Any]) -> str:
    blob = json.dumps({"code": tracking.code_version(), **params}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def study_name(sweep: SweepConfig, base: PipelineConfig) -> str:
    if sweep.study:
        return sweep.study
    shared = {k: v for k, v in base.as_params().items() if k not in ("max_freq", "seed")}
    digest = hashlib.sha256(json.dumps(shared, sort_keys=True).encode()).hexdigest()[:6]
    return f"mf{sweep.max_freqs.replace(',', '-')}_s{sweep.seeds}_e{base.train.epochs}_{digest}"


def plan(sweep: SweepConfig, raw: dict[str, Any]) -> list[Job]:
    """Every job of the sweep, validated before anything runs; longest (largest max_freq)
    first, so that parallel workers finish together."""
    jobs = []
    for max_freq in sorted(sweep.max_freq_values, reverse=True):
        for seed in range(sweep.seeds):
            cfg = PipelineConfig.from_strings({**raw, "max_freq": max_freq, "seed": seed})
            params = cfg.as_params()
            jobs.append(Job(params, run_key(params)))
    return jobs


def patient_tracking_uri(uri: str) -> str:
    """The tracking URI, with SQLite told to wait for the write lock rather than fail."""
    if uri.startswith("sqlite:") and "timeout=" not in uri:
        uri += ("&" if "?" in uri else "?") + f"timeout={SQLITE_TIMEOUT_S}"
    return uri


@dataclass
class Bookkeeper:
    """Counts, the progress bar and one line per finished job."""

    total: int
    skipped: int
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.counts = {
            "runs_total": self.total,
            "runs_skipped": self.skipped,
            "runs_finished": 0,
            "runs_failed": 0,
            "runs_diverged": 0,
        }
        todo = self.total - self.skipped
        self.bar = tqdm(total=todo, unit="run", desc="sweep", file=sys.stderr, smoothing=0)

    def book(self, job: Job, result: Result) -> None:
        if result.status == FINISHED:
            self.counts["runs_finished"] += 1
            self.counts["runs_diverged"] += int(result.metrics["diverged"])
            line = (
                f"{job.name:<22} mae_test={result.metrics['mae_test']:8.3f}  "
                f"diverged={int(result.metrics['diverged'])}  {result.seconds:6.1f} s"
            )
        else:
            self.counts["runs_failed"] += 1
            line = f"{job.name:<22} {result.status}  {result.error}"
        self.bar.write(line)
        self.bar.update()

    def close(self) -> None:
        self.bar.close()


def run_sweep(sweep: SweepConfig, raw: dict[str, Any]) -> dict[str, int]:
    tracking.set_tracking_uri(patient_tracking_uri(tracking.tracking_uri()))
    base = PipelineConfig.from_strings(raw)
    jobs = plan(sweep, raw)
    study = study_name(sweep, base)
    workers = sweep.workers or os.cpu_count() or 1
    params = {
        **sweep.as_params(),
        "study": study,
        "workers": workers,
        **{k: v for k, v in base.as_params().items() if k not in ("max_freq", "seed")},
    }
    with tracking.step_run("sweep", params, tags={"study": study}) as run:
        ctx = Context(
            tracking.tracking_uri(),
            run.info.experiment_id,
            run.info.run_id,
            study,
            base.train.backend,
        )
        reaped = tracking.reap_stale([ctx.experiment_id], study, sweep.stale_after_min * 60)
        done = {
            r.data.tags.get("run_key")
            for r in tracking.find_runs([ctx.experiment_id], {"study": study, "step": "main"})
        }
        todo = [j for j in jobs if j.run_key not in done]
        books = Bookkeeper(len(jobs), len(jobs) - len(todo))

        def announce(where: str) -> None:
            print(
                f"study {study!r}: {len(jobs)} runs, {len(jobs) - len(todo)} already finished, "
                f"{len(todo)} to run{where}"
                + (f"; {len(reaped)} stale RUNNING runs marked KILLED" if reaped else ""),
                flush=True,
            )

        try:
            if not todo:  # a finished study starts no workers (nor a Ray instance)
                announce("")
            else:
                with open_executor(sweep.executor, ctx, workers, sweep.ray_address) as engine:
                    announce(f" on {engine.describe()}")
                    for job, result in engine.run(todo):
                        books.book(job, result)
        finally:
            books.close()
        tracking.log_metrics(books.counts)
        c = books.counts
        print(
            f"study {study!r}: {c['runs_finished']} finished, {c['runs_failed']} failed, "
            f"{c['runs_diverged']} diverged; report: python -m analysis --study {study}",
            flush=True,
        )
        return c


def main(argv: list[str] | None = None) -> None:
    from pipeline import cli

    def build(raw: dict[str, Any]) -> tuple[SweepConfig, dict[str, Any]]:
        sweep = SweepConfig.from_strings(raw)
        plan(sweep, raw)  # validates every experiment parameter before any run starts
        return sweep, raw

    def execute(cfg: tuple[SweepConfig, dict[str, Any]], raw: dict[str, Any]) -> None:
        run_sweep(*cfg)

    cli.run(
        "sweep",
        __doc__,
        build,
        execute,
        [SweepConfig, DataConfig, TrainConfig, EvalConfig],
        argv,
        exclude=("max_freq", "seed"),
    )


if __name__ == "__main__":
    main(sys.argv[1:])
