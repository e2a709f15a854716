"""Where `model.fit` spends its time: seconds per epoch by Keras backend, and with the LSTM's
time loop unrolled (`unroll=True`) instead of run as a loop (the reference: `unroll=False`).

Each configuration runs in a fresh process (one Keras backend per process): the reference
network on the reference data at one max_freq, one warm-up epoch (compilation), then
`--epochs` timed epochs. Unrolling is not what the pipeline does; it is measured here to see
how much of an epoch is the loop's own overhead rather than arithmetic.

    python benchmarks/bench_fit.py --max_freq 10 --epochs 20 --repeats 3
"""

import argparse
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ONE = """
import functools, json, time, sys
import keras
from pipeline.config import DataConfig, TrainConfig
from pipeline.generate_data import generate
from pipeline.model import build_model
max_freq, epochs, unroll = {max_freq}, {epochs}, {unroll}
if unroll:  # build_model looks the layer up when called
    keras.layers.LSTM = functools.partial(keras.layers.LSTM, unroll=True)
data = generate(DataConfig(max_freq=max_freq))["train"]
cfg = TrainConfig()
keras.utils.set_random_seed(0)
model = build_model(data.x.shape[1], cfg)
start = time.perf_counter()
model.fit(data.x, data.freq, batch_size=cfg.batch_size, epochs=1, verbose=0)
warm = time.perf_counter() - start
start = time.perf_counter()
model.fit(data.x, data.freq, batch_size=cfg.batch_size, epochs=epochs, verbose=0)
print(json.dumps({{"warm": warm, "per_epoch": (time.perf_counter() - start) / epochs}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max_freq", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", default="tensorflow,jax")
    args = parser.parse_args()

    configs = list(itertools.product(args.backends.split(","), (False, True)))
    results: dict[tuple[str, bool], list[dict]] = {c: [] for c in configs}
    for _ in range(args.repeats):  # interleaved, so drifts in the machine hit every config
        for backend, unroll in configs:
            code = ONE.format(max_freq=args.max_freq, epochs=args.epochs, unroll=unroll)
            env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
            out = subprocess.run(
                [sys.executable, "-c", code],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=True,
                timeout=900,
            )
            results[(backend, unroll)].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"  {backend} unroll={unroll}: {results[(backend, unroll)][-1]}", flush=True)

    samples = (args.max_freq - 1) * 10
    print(
        f"\nmodel.fit, max_freq={args.max_freq} ({samples} series, batch 32), {args.epochs} "
        f"epochs after a warm-up epoch, {args.repeats} repeats; {platform.machine()} with "
        f"{os.cpu_count()} CPUs"
    )
    base = statistics.median(r["per_epoch"] for r in results[(configs[0][0], False)])
    print(f"{'backend':<12}{'unroll':<8}{'ms/epoch':>10}{'ratio':>8}{'warm-up s':>11}")
    for backend, unroll in configs:
        rows = results[(backend, unroll)]
        per_epoch = statistics.median(r["per_epoch"] for r in rows)
        warm = statistics.median(r["warm"] for r in rows)
        print(
            f"{backend:<12}{unroll!s:<8}{per_epoch * 1000:>10.1f}{per_epoch / base:>8.2f}"
            f"{warm:>11.1f}"
        )


if __name__ == "__main__":
    main()
