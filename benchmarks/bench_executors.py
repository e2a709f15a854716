"""Sweep throughput: the local process pool against Ray, on the same sweep and machine.

Runs the same sweep (default: max_freq 10 and 20 × 4 seeds × 200 epochs, 8 full runs) with each
executor, `--repeats` times, interleaved, each into a fresh SQLite store (Ray starts its own
local instance with `workers` CPUs, as `-P executor=ray` does). Prints wall time, runs per
hour and the ratio to the pool. Goal: Ray ≥ 0.95 × the pool's throughput.

    python benchmarks/bench_executors.py --max_freqs 10,20 --seeds 4 --epochs 200 --workers 2
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_sweep(executor: str, args: argparse.Namespace) -> float:
    folder = Path(tempfile.mkdtemp(prefix=f"bench-{executor}-"))
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("MLFLOW_RUN_ID", None)
    cmd = [
        sys.executable, "-m", "pipeline.sweep", "--executor", executor,
        "--max_freqs", args.max_freqs, "--seeds", str(args.seeds),
        "--epochs", str(args.epochs), "--workers", str(args.workers), "--study", "bench",
    ]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0 or " 0 failed" not in done.stdout:
        sys.exit(f"{executor} sweep failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--max_freqs", default="10,20")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--executors", default="local,ray")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    runs = len(args.max_freqs.split(",")) * args.seeds
    executors = args.executors.split(",")
    times: dict[str, list[float]] = {e: [] for e in executors}
    for repeat in range(args.repeats):
        for executor in executors if repeat % 2 == 0 else executors[::-1]:
            times[executor].append(one_sweep(executor, args))
            print(f"  {executor}: {times[executor][-1]:.1f} s", flush=True)
    print(
        f"\n{runs} runs (max_freqs {args.max_freqs} × {args.seeds} seeds × {args.epochs} "
        f"epochs), {args.workers} workers, {platform.machine()} with {os.cpu_count()} CPUs"
    )
    print(f"{'executor':<10}{'median s':>10}{'min s':>8}{'max s':>8}{'runs/h':>8}{'ratio':>8}")
    base = statistics.median(times[executors[0]])
    for executor, ts in times.items():
        med = statistics.median(ts)
        print(
            f"{executor:<10}{med:>10.1f}{min(ts):>8.1f}{max(ts):>8.1f}"
            f"{runs * 3600 / med:>8.0f}{base / med:>8.2f}"
        )


if __name__ == "__main__":
    main()
