"""How long a bad input takes to be refused: every entry point, started as a user starts it
(`python -m …`, a new process each time), with an input it refuses; the time until it exits
with its one-line error. The goal is under 8 s on 2 cores: refusals come before TensorFlow or
jax is imported.

    python benchmarks/bench_refusals.py --repeats 3
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
CASES = [
    ("pipeline.train", ["--data", "/nonexistent/path"]),
    ("pipeline.main", ["--max_freq", "1"]),
    ("pipeline.generate_data", ["--max_freq", "1"]),
    ("pipeline.evaluate", ["--train_run_id", "0" * 32]),
    ("pipeline.sweep", ["--stale_after_min", "0.001"]),
    ("pipeline.reap", ["--study", "x", "--stale_after_min", "0"]),
    ("analysis", ["--study", "nothing-here"]),
]
GOAL_S = 8.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {module: [] for module, _ in CASES}
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{folder}/mlflow.db"}
        subprocess.run(
            [sys.executable, "-m", "pipeline.tracking"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            check=True,
        )  # fmt: skip  (the store exists)
        for _ in range(args.repeats):
            for module, argv in CASES:
                start = time.perf_counter()
                done = subprocess.run([sys.executable, "-m", module, *argv], env=env, cwd=ROOT,
                                      capture_output=True, text=True, timeout=120)  # fmt: skip
                times[module].append(time.perf_counter() - start)
                if done.returncode != 2:
                    sys.exit(f"{module} {argv}: exit {done.returncode}\n{done.stderr[-2000:]}")
    print(
        f"refusals, {args.repeats} repeats, new process each; {platform.machine()} with "
        f"{os.cpu_count()} CPUs; goal < {GOAL_S:g} s"
    )
    print(f"{'entry point':<24}{'input':<34}{'median s':>10}{'max s':>8}")
    for module, argv in CASES:
        values = times[module]
        print(
            f"{module:<24}{' '.join(argv)[:33]:<34}{statistics.median(values):>10.2f}"
            f"{max(values):>8.2f}"
        )
    worst = max(max(v) for v in times.values())
    print(f"slowest refusal {worst:.2f} s: goal {'met' if worst < GOAL_S else 'NOT met'}")


if __name__ == "__main__":
    main()
