"""What the plateau checks cost: `pipeline.train.train` (the reference network, the reference
data) with its progress checks (update 0, progress.CHECKPOINTS during training, the end) and
with only the two it always makes (update 0 and the end, whose prediction evaluate needs
anyway), interleaved, in one process per backend after a warm-up fit that fills the compile
caches. Prints the median fit time of each and their ratio, by max_freq.

    python benchmarks/bench_progress.py --max_freqs 10,30,60 --repeats 3 --backend jax
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ONE = """
import json, time
from pipeline import keras_backend, progress
keras_backend.activate({backend!r})
from pipeline.config import DataConfig, TrainConfig
from pipeline.generate_data import generate
from pipeline.train import train
max_freqs, repeats, epochs, steps = {max_freqs}, {repeats}, {epochs}, {steps}
out = {{}}
for max_freq in max_freqs:
    data = generate(DataConfig(max_freq=max_freq))["train"]
    cfg = TrainConfig(epochs=epochs, train_steps=steps, backend={backend!r})
    warm = TrainConfig(epochs=1, backend={backend!r})
    train(warm, data)  # compiles the training step and predict for this shape
    rows = {{"checked": [], "unchecked": []}}
    for _ in range(repeats):
        for name, points in (("checked", 40), ("unchecked", 0)):
            progress.CHECKPOINTS = points
            start = time.perf_counter()
            result = train(cfg, data)
            rows[name].append({{"seconds": time.perf_counter() - start, "points":
                               len(result.progress), "steps": result.steps}})
    out[max_freq] = rows
print(json.dumps(out))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max_freqs", default="10,30,60")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--train_steps", type=int, default=0, help="0: --epochs epochs")
    parser.add_argument("--backend", default="jax")
    args = parser.parse_args()
    max_freqs = [int(m) for m in args.max_freqs.split(",")]
    code = ONE.format(
        backend=args.backend,
        max_freqs=max_freqs,
        repeats=args.repeats,
        epochs=args.epochs,
        steps=args.train_steps,
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=7200, check=False,
    )  # fmt: skip
    if done.returncode:
        sys.exit(done.stderr[-3000:])
    results = json.loads(done.stdout.strip().splitlines()[-1])
    budget = f"{args.train_steps} updates" if args.train_steps else f"{args.epochs} epochs"
    print(
        f"train(), reference network and data, {budget}, {args.backend}, {args.repeats} "
        f"interleaved repeats; {platform.machine()} with {os.cpu_count()} CPUs"
    )
    print(f"{'max_freq':>8}{'updates':>9}{'checks':>8}{'median s, checked':>19}"
          f"{'median s, 2 checks':>20}{'ratio':>8}")  # fmt: skip
    for max_freq, rows in results.items():
        checked = statistics.median(r["seconds"] for r in rows["checked"])
        unchecked = statistics.median(r["seconds"] for r in rows["unchecked"])
        print(
            f"{max_freq:>8}{rows['checked'][0]['steps']:>9}{rows['checked'][0]['points']:>8}"
            f"{checked:>19.2f}{unchecked:>20.2f}{checked / unchecked:>8.3f}"
        )


if __name__ == "__main__":
    main()
