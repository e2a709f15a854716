"""What stopping once the outcome is decided saves: the same slice of the budget study's
design (max_freq × seeds, 6,000 updates, jax) swept twice into one throwaway store, to the
full budget and with `stop_on_escape=true`, the same seeds and checks. Prints, per max_freq and
in total, the optimizer updates and wall time of each and their ratio, and whether every
pair of runs got the same divergence verdict (the goal: the same verdicts at ≤ 40% of the
updates).

    python benchmarks/bench_stop.py --max_freqs 20,30 --seeds 8
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
sys.path.insert(0, str(ROOT))


def sweep(store: str, study: str, args: argparse.Namespace, stop: bool) -> float:
    """Run one sweep as a user would (python -m pipeline.sweep); its wall time in seconds."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "MLFLOW_EXPERIMENT_NAME": "bench-stop"}
    cmd = [
        sys.executable, "-m", "pipeline.sweep", "--max_freqs", args.max_freqs,
        "--seeds", str(args.seeds), "--train_steps", str(args.train_steps),
        "--backend", args.backend, "--study", study, "--workers", str(args.workers),
        "--stop_on_escape", str(stop).lower(),
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max_freqs", default="20,30")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--train_steps", type=int, default=6000)
    parser.add_argument("--backend", default="jax")
    parser.add_argument("--workers", type=int, default=0, help="0: one per core")
    parser.add_argument("--store", default="", help="default: a throwaway SQLite store")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="bench-stop-")
    store = args.store or f"sqlite:///{folder}/mlflow.db"
    os.environ["MLFLOW_TRACKING_URI"] = store
    walls = {name: sweep(store, f"bench-{name}", args, name == "stopped")
             for name in ("full", "stopped")}  # fmt: skip

    from analysis import load

    runs = load.load_runs("bench-stop", ["bench-full", "bench-stopped"])
    runs = runs[runs["status"] == "FINISHED"]
    pairs = runs.pivot_table(
        index=["max_freq", "seed"], columns="study",
        values=["optimizer_steps", "duration_s", "diverged"], aggfunc="first",
    )  # fmt: skip
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}; "
          f"{args.seeds} seeds × max_freq {args.max_freqs}, {args.train_steps} updates, "
          f"{args.backend}; sweeps: full {walls['full']:.0f} s, stopped "
          f"{walls['stopped']:.0f} s (ratio {walls['stopped'] / walls['full']:.2f})")  # fmt: skip
    print(
        "max_freq | runs | updates full / stopped (ratio) | median run s full / stopped "
        "(ratio) | same verdict | diverged full / stopped"
    )
    for max_freq, group in [*pairs.groupby(level="max_freq"), ("all", pairs)]:
        full, stopped = (group["optimizer_steps"][f"bench-{n}"] for n in ("full", "stopped"))
        secs = [statistics.median(group["duration_s"][f"bench-{n}"]) for n in ("full", "stopped")]
        verdicts = [group["diverged"][f"bench-{n}"].astype(bool) for n in ("full", "stopped")]
        same = int((verdicts[0] == verdicts[1]).sum())
        print(
            f"{max_freq} | {len(group)} | {full.sum():.0f} / {stopped.sum():.0f} "
            f"({stopped.sum() / full.sum():.2f}) | {secs[0]:.0f} / {secs[1]:.0f} "
            f"({secs[1] / secs[0]:.2f}) | {same}/{len(group)} | "
            f"{int(verdicts[0].sum())} / {int(verdicts[1].sum())}"
        )


if __name__ == "__main__":
    main()
