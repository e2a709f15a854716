"""Stage 4, sweep: every (max_freq, seed) pair as a full `main` run, in parallel processes.

Reads: a SweepConfig (max_freqs, seeds, workers, study) and every other experiment parameter,
passed through unchanged. Writes: one `sweep` run (tag `study`) whose children are `main`
runs named `max_freq=… seed=…`, each tagged `study` and `run_key` (a hash of its parameters
and the pipeline's code). Running the same sweep again skips pairs that already have a
FINISHED run with the same `run_key` in the study, and reruns FAILED or KILLED ones.
Ctrl-C or SIGTERM ends every open run as KILLED.

    mlflow run . -e sweep -P max_freqs=10,20,30 -P seeds=5 --env-manager local
"""

import hashlib
import json
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

import mlflow
from tqdm import tqdm

from pipeline import tracking
from pipeline.config import DataConfig, EvalConfig, PipelineConfig, SweepConfig, TrainConfig

SQLITE_TIMEOUT_S = 120  # concurrent writers wait for the lock instead of failing


@dataclass(frozen=True)
class Job:
    max_freq: int
    seed: int
    params: dict[str, Any]  # the full, validated pipeline parameters
    run_key: str

    @property
    def name(self) -> str:
        return f"max_freq={self.max_freq} seed={self.seed}"


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
            jobs.append(Job(max_freq, seed, params, run_key(params)))
    return jobs


def finished_keys(experiment_id: str, study: str) -> set[str]:
    runs = mlflow.search_runs(
        [experiment_id],
        filter_string=f"tags.study = '{study}' and tags.step = 'main' "
        "and attributes.status = 'FINISHED'",
        output_format="list",
    )
    return {r.data.tags.get("run_key") for r in runs}


def patient_tracking_uri() -> str:
    """The tracking URI, with SQLite told to wait for the write lock rather than fail."""
    uri = mlflow.get_tracking_uri()
    if uri.startswith("sqlite:") and "timeout=" not in uri:
        uri += ("&" if "?" in uri else "?") + f"timeout={SQLITE_TIMEOUT_S}"
    return uri


def _init_worker(uri: str, experiment_id: str, backend: str) -> None:
    from pipeline import cli

    os.environ.pop("MLFLOW_RUN_ID", None)  # that is the sweep run: never resume it here
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    tracking.install_signal_handlers()
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment_id=experiment_id)
    cli.activate_backend(backend)


def _run_job(job: Job, parent_run_id: str, study: str) -> dict[str, Any]:
    """In a worker: one full pipeline run. Errors are reported, not raised, so that one bad
    run does not stop the sweep (its run is already marked FAILED)."""
    import warnings

    from pipeline.main import run_pipeline

    start = time.perf_counter()
    cfg = PipelineConfig.from_strings(job.params)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # aliasing is tagged on the run; keep the bar clean
            run_id, metrics = run_pipeline(
                cfg, parent_run_id, {"study": study, "run_key": job.run_key}, job.name
            )
    except Exception as exc:
        return {
            "status": "FAILED",
            "error": tracking.one_line(exc),
            "seconds": time.perf_counter() - start,
        }
    return {
        "status": "FINISHED",
        "run_id": run_id,
        "metrics": metrics,
        "seconds": time.perf_counter() - start,
    }


def _line(job: Job, result: dict[str, Any]) -> str:
    if result["status"] != "FINISHED":
        return f"{job.name:<22} FAILED  {result['error']}"
    m = result["metrics"]
    return (
        f"{job.name:<22} mae_test={m['mae_test']:8.3f}  diverged={int(m['diverged'])}  "
        f"{result['seconds']:6.1f} s"
    )


def run_sweep(sweep: SweepConfig, raw: dict[str, Any]) -> dict[str, int]:
    mlflow.set_tracking_uri(patient_tracking_uri())
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
        experiment_id = run.info.experiment_id
        done = finished_keys(experiment_id, study)
        todo = [j for j in jobs if j.run_key not in done]
        counts = {
            "runs_total": len(jobs),
            "runs_skipped": len(jobs) - len(todo),
            "runs_finished": 0,
            "runs_failed": 0,
            "runs_diverged": 0,
        }
        print(
            f"study {study!r}: {len(jobs)} runs, {counts['runs_skipped']} already finished, "
            f"{len(todo)} to run on {min(workers, max(len(todo), 1))} workers",
            flush=True,
        )
        if todo:
            _execute(todo, workers, run.info.run_id, study, experiment_id, base, counts)
        tracking.log_metrics(counts)
        print(
            f"study {study!r}: {counts['runs_finished']} finished, {counts['runs_failed']} "
            f"failed, {counts['runs_diverged']} diverged; report: python -m analysis "
            f"--study {study}",
            flush=True,
        )
        return counts


def _execute(todo, workers, sweep_run_id, study, experiment_id, base, counts) -> None:
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(todo)),
        mp_context=get_context("spawn"),
        initializer=_init_worker,
        initargs=(mlflow.get_tracking_uri(), experiment_id, base.train.backend),
    )
    bar = tqdm(total=len(todo), unit="run", desc="sweep", file=sys.stderr, smoothing=0)
    try:
        pending = {pool.submit(_run_job, job, sweep_run_id, study): job for job in todo}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                job = pending.pop(future)
                result = future.result()
                key = "runs_finished" if result["status"] == "FINISHED" else "runs_failed"
                counts[key] += 1
                if result["status"] == "FINISHED":
                    counts["runs_diverged"] += int(result["metrics"]["diverged"])
                bar.write(_line(job, result))
                bar.update()
    except BaseException:
        # Ctrl-C reaches the workers too; SIGTERM to this process alone is passed on, so that
        # each worker ends its open runs as KILLED before the sweep run is closed.
        for process in list(getattr(pool, "_processes", {}).values()):
            if process.is_alive():
                process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        bar.close()
    pool.shutdown(wait=True)


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
