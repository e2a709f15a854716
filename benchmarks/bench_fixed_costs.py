"""Where a sweep worker's time goes besides `model.fit`, per run, as medians over a few runs.

Runs `--runs` sweep jobs (seeds 0 … runs−1 at one max_freq) in this one process, exactly as a
sweep worker does (`pipeline.jobs.run_job` under a `sweep` run, into a fresh SQLite store),
with timers wrapped around the pipeline's parts. Each part's time is exclusive (a part called
inside another is counted once, in the inner one); what no timer covers is "rest". The
reference estimators run on a side thread while the LSTM trains, so they are listed apart
(they cost the wall clock nothing with a spare core, and a core's worth of time without).
The worker's one-time start (imports of MLflow, Keras and the backend) is measured in a fresh
process and listed per worker, not per run.

    python benchmarks/bench_fixed_costs.py --backend jax --max_freq 10 --runs 5
"""

import argparse
import functools
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_stack = threading.local()
_times: dict[str, float] = defaultdict(float)


def _timed(owner, name: str, label: str) -> None:
    """Replace owner.name by a wrapper adding its exclusive time to _times[label]."""
    inner = getattr(owner, name)

    @functools.wraps(inner)
    def wrapper(*args, **kwargs):
        frames = _stack.__dict__.setdefault("frames", [])
        frames.append(0.0)  # time spent in timed callees
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent = time.perf_counter() - start
            nested = frames.pop()
            thread = "" if threading.current_thread() is threading.main_thread() else " [side]"
            _times[label + thread] += spent - nested
            if frames:
                frames[-1] += spent

    setattr(owner, name, wrapper)


def instrument() -> None:
    import mlflow
    from mlflow.models import Model

    from pipeline import evaluate, generate_data, main, plots, tracking, train

    parts = [
        (tracking, "end_previous_attempts", "resume check (search for earlier attempts)"),
        (tracking, "find_finished_run", "data reuse check (search)"),
        (generate_data, "generate", "data: generate arrays"),
        (generate_data, "run_step", "data: generate_data run and its npz files"),
        (main, "_references_and_imports", "reference estimators, sklearn/matplotlib import"),
        (plots, "learning_curve", "figure: learning curve"),
        (plots, "predicted_vs_true", "figure: predicted vs true"),
        (train, "predict", "train: training-set predictions (the example's, and evaluate's)"),
        (train, "log_model", "model: example prediction, signature"),
        (Model, "log", "model: save and log (MLmodel, .keras, requirements)"),
        (evaluate, "predict", "evaluate: predictions on both sets"),
        (evaluate, "evaluate", "evaluate: metrics"),
        (mlflow, "start_run", "mlflow: start run (4 per run)"),
        (mlflow, "end_run", "mlflow: end run"),
        (tracking, "log_params", "mlflow: params"),
        (tracking, "log_metrics", "mlflow: metrics"),
        (tracking, "log_series", "mlflow: loss series"),
        (tracking.SeriesLogger, "flush", "mlflow: loss series"),
        (tracking, "set_tags", "mlflow: tags"),
        (mlflow, "log_artifacts", "mlflow: copy artifacts"),
    ]
    for owner, name, label in parts:
        if hasattr(owner, name):  # older code (a "before" measurement) may lack some parts
            _timed(owner, name, label)
    # model.fit itself: taken from the run's fit_seconds, and excluded from "train: …".
    original = train.train

    def train_without_fit(*args, **kwargs):
        result = original(*args, **kwargs)
        frames = _stack.__dict__.setdefault("frames", [])
        if frames:
            frames[-1] += result.fit_seconds
        return result

    train.train = train_without_fit
    _timed(train, "train", "train: seed, build, compile (model.fit excluded)")


def worker_start_seconds(backend: str) -> float:
    """A fresh process: imports and backend activation, as a sweep worker's first job pays."""
    code = (
        "import time; t = time.perf_counter(); "
        "from pipeline import keras_backend, tracking; import mlflow; "
        f"keras_backend.activate({backend!r}); import keras; keras.backend.clear_session(); "
        "print(time.perf_counter() - t)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="jax")
    parser.add_argument("--max_freq", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    starts = [worker_start_seconds(args.backend) for _ in range(3)]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db?timeout=120"
        import mlflow
        from mlflow import MlflowClient

        from pipeline import jobs, sweep, tracking
        from pipeline.config import PipelineConfig

        experiment = mlflow.create_experiment("bench", Path(tmp, "artifacts").as_uri())
        sweep_run = MlflowClient().create_run(experiment, tags={"step": "sweep"}).info.run_id
        ctx = jobs.Context(tracking.tracking_uri(), experiment, sweep_run, "bench", args.backend)
        instrument()
        rows = []
        for seed in range(args.runs):
            raw = {
                "max_freq": args.max_freq,
                "seed": seed,
                "epochs": args.epochs,
                "backend": args.backend,
            }
            params = PipelineConfig.from_strings(raw).as_params()
            job = jobs.Job(params, sweep.run_key(params))
            _times.clear()
            result = jobs.run_job(ctx, job)
            if result.status != jobs.FINISHED:
                sys.exit(f"run {seed} ended {result.status}: {result.error}")
            row = dict(_times)
            row["model.fit"] = result.metrics["fit_seconds"]
            row["run total (wall)"] = result.seconds
            covered = sum(
                v for k, v in row.items() if "[side]" not in k and k != "run total (wall)"
            )
            row["rest (run_job, clear_session, context managers, …)"] = result.seconds - covered
            rows.append(row)
            print(
                f"  run {seed}: {result.seconds:.1f} s, fit {row['model.fit']:.1f} s", flush=True
            )

    labels = sorted(
        {k for row in rows for k in row},
        key=lambda k: -statistics.median([row.get(k, 0.0) for row in rows]),
    )
    wall = statistics.median(row["run total (wall)"] for row in rows)
    fit = statistics.median(row["model.fit"] for row in rows)
    print(
        f"\n{args.runs} runs at max_freq={args.max_freq}, {args.epochs} epochs, {args.backend}, "
        f"one worker, {platform.machine()} with {os.cpu_count()} CPUs"
    )
    print(f"{'part':<64}{'median s':>10}{'share':>8}")
    for label in labels:
        value = statistics.median(row.get(label, 0.0) for row in rows)
        share = "" if "[side]" in label else f"{value / wall:>7.1%}"
        print(f"{label:<64}{value:>10.3f}{share:>8}")
    print(f"{'fixed cost (wall − model.fit)':<64}{wall - fit:>10.3f}{(wall - fit) / wall:>7.1%}")
    print(
        f"{'worker start, once per worker (3 fresh processes)':<64}"
        f"{statistics.median(starts):>10.3f}"
    )


if __name__ == "__main__":
    main()
