"""The analysis over a synthetic store of many runs (default 10,000); goal: under 10 s.

Builds (once, cached in --store) a SQLite store of `main` runs that look like a study's:
10 max_freqs × N/10 seeds, every parameter, metric and tag the report reads, about 2% FAILED
runs, and loss histories and prediction tables for the runs the figures sample. Then times,
`--repeats` times each, loading the runs alone and the whole `python -m analysis` command.

    python benchmarks/bench_analysis.py --runs 10000 --store /tmp/bench-analysis
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
STUDY = "synthetic"


def build_store(runs: int, folder: Path) -> None:
    import mlflow
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    from pipeline.config import PipelineConfig

    client = MlflowClient()
    exp = mlflow.create_experiment(STUDY, artifact_location=(folder / "artifacts").as_uri())
    rng = np.random.default_rng(0)
    base = PipelineConfig.from_strings({}).as_params()
    max_freqs = np.arange(5, 55, 5)
    seeds = runs // len(max_freqs)
    csv = folder / "test.csv"
    for i, (max_freq, seed) in enumerate((m, s) for m in max_freqs for s in range(seeds)):
        run = client.create_run(exp, run_name=f"max_freq={max_freq} seed={seed}")
        mae = float(rng.lognormal(np.log(0.02 * max_freq), 0.8))
        diverged = float(rng.random() < max_freq / 60)
        metrics = {
            "mae_train": mae,
            "mae_test": mae * 1.1,
            "mae_ratio_train": mae / max_freq,
            "baseline_mae_train": max_freq / 4,
            "diverged": diverged,
            "ref_fft_mae_test": 0.02,
            "ref_forest_mae_test": 0.05,
            "fit_seconds": 30.0,
        }
        params = {**base, "max_freq": int(max_freq), "seed": seed}
        tags = {
            "step": "main",
            "study": STUDY,
            "diverged_reason": "mae_ratio" if diverged else "none",
        }
        now = int(time.time() * 1000)
        sampled = seed < 20
        if sampled:
            truth = np.repeat(np.arange(1, max_freq), 10)
            np.savetxt(
                csv,
                np.c_[truth, truth * 0, truth, rng.normal(0, mae, truth.size)],
                delimiter=",",
                header="true_freq,phase,prediction,error",
                comments="",
            )
            client.log_artifact(run.info.run_id, str(csv), "predictions")
            tags["eval_run_id"] = run.info.run_id
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, now, 0) for k, v in metrics.items()]
            + ([Metric("loss", 10 * 0.97**e, now, e) for e in range(200)] if sampled else []),
            params=[Param(k, str(v)) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        status = "FAILED" if rng.random() < 0.02 else "FINISHED"
        client.set_terminated(run.info.run_id, status)
        if (i + 1) % 1000 == 0:
            print(f"  built {i + 1} runs", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--store", default="/tmp/bench-analysis")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    folder = Path(args.store).resolve() / str(args.runs)
    folder.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ.pop("MLFLOW_RUN_ID", None)
    if not (folder / "complete").exists():
        start = time.perf_counter()
        build_store(args.runs, folder)
        (folder / "complete").touch()
        print(f"built the store in {time.perf_counter() - start:.0f} s")

    from analysis.load import load_runs

    load_times, api_times, total_times = [], [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        frame = load_runs(STUDY, STUDY)
        load_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        load_runs(STUDY, STUDY, fast=False)
        api_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "analysis",
                "--experiment",
                STUDY,
                "--study",
                STUDY,
                "--out",
                str(folder / "reports"),
            ],
            cwd=ROOT,
            check=True,
            capture_output=True,
            env=dict(os.environ),
        )
        total_times.append(time.perf_counter() - start)
    print(f"\n{len(frame)} runs, on {platform.machine()} with {os.cpu_count()} CPUs")
    print(f"{'step':<40}{'median s':>10}{'min s':>8}{'max s':>8}")
    for name, ts in (
        ("load_runs, MLflow search_runs", api_times),
        ("load_runs, SQLite fast path", load_times),
        ("python -m analysis (end to end, fast)", total_times),
    ):
        print(f"{name:<40}{statistics.median(ts):>10.2f}{min(ts):>8.2f}{max(ts):>8.2f}")
    speedup = statistics.median(api_times) / statistics.median(load_times)
    print(f"fast path speed-up over search_runs: {speedup:.1f}x")


if __name__ == "__main__":
    main()
