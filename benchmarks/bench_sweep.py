"""Sweep throughput with 1 and with 2 worker processes, side by side.

Each configuration runs the same sweep (`--runs` seeds at one max_freq, full 200 epochs by
default) into its own fresh SQLite store, and reports wall time and runs per hour.

    python benchmarks/bench_sweep.py --max_freq 10 --runs 4 --workers 1,2
"""

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max_freq", type=int, default=10)
    parser.add_argument("--runs", type=int, default=4, help="seeds, i.e. runs per sweep")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--backend", default="tensorflow")
    args = parser.parse_args()

    results = {}
    for workers in [int(w) for w in args.workers.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            env = {
                **os.environ,
                "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db",
                "TF_CPP_MIN_LOG_LEVEL": "2",
            }
            env.pop("MLFLOW_RUN_ID", None)
            # Store creation and the experiment (artifacts in tmp) outside the timing.
            env["MLFLOW_EXPERIMENT_ID"] = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "import mlflow; print(mlflow.create_experiment("
                    f"'bench', artifact_location='{Path(tmp, 'artifacts').as_uri()}'))",
                ],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
            cmd = [
                sys.executable,
                "-m",
                "pipeline.sweep",
                "--max_freqs",
                str(args.max_freq),
                "--seeds",
                str(args.runs),
                "--epochs",
                str(args.epochs),
                "--workers",
                str(workers),
                "--backend",
                args.backend,
                "--study",
                "bench",
            ]
            start = time.perf_counter()
            subprocess.run(cmd, env=env, cwd=ROOT, check=True, capture_output=True)
            results[workers] = time.perf_counter() - start
            print(f"  workers={workers}: {results[workers]:.1f} s", flush=True)

    print(
        f"\nsweep of {args.runs} runs at max_freq={args.max_freq}, {args.epochs} epochs, "
        f"{args.backend}, on {platform.machine()} with {os.cpu_count()} CPUs"
    )
    base = results[min(results)]
    print(f"{'workers':<9}{'wall s':>9}{'runs/hour':>11}{'speed-up':>10}")
    for workers, wall in results.items():
        print(f"{workers:<9}{wall:>9.1f}{args.runs / wall * 3600:>11.0f}{base / wall:>10.2f}")


if __name__ == "__main__":
    main()
