"""Where `model.fit` spends its time: the first epoch (which compiles the training step) and
each later epoch, by Keras backend; for jax also with its persistent compilation cache warm
(what every run after the first of a shape gets, pipeline/keras_backend.py). `--unroll` adds
the LSTM's time loop unrolled (`unroll=True`), which the pipeline does not use (see
benchmarks/README.md).

Each configuration runs in a fresh process (one Keras backend per process): the reference
network on the reference data at one max_freq, one warm-up epoch, then `--epochs` timed
epochs. Configurations are interleaved across repeats.

    python benchmarks/bench_fit.py --max_freq 10 --epochs 20 --repeats 3
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
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
    parser.add_argument("--unroll", action="store_true", help="also unrolled (jax: minutes)")
    args = parser.parse_args()

    # (backend, unroll, cache): cache None = no persistent cache, else warm or cold
    configs = [(b, False, None) for b in args.backends.split(",")]
    if "jax" in args.backends:
        configs.append(("jax", False, "warm"))
    if args.unroll:
        configs += [(b, True, None) for b in args.backends.split(",")]
    results: dict[tuple, list[dict]] = {c: [] for c in configs}
    with tempfile.TemporaryDirectory() as cache:
        for repeat in range(args.repeats + 1):  # the first round only fills the cache
            for backend, unroll, cached in configs:
                if repeat == 0 and not cached:
                    continue
                code = ONE.format(max_freq=args.max_freq, epochs=args.epochs, unroll=unroll)
                env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
                for name in [n for n in env if n.startswith("JAX_COMPILATION_CACHE")]:
                    del env[name]  # no cache unless this configuration has one
                if cached:
                    env["JAX_COMPILATION_CACHE_DIR"] = cache
                    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0.1"
                out = subprocess.run(
                    [sys.executable, "-c", code],
                    cwd=ROOT,
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                    timeout=900,
                )
                if repeat == 0:
                    continue
                row = json.loads(out.stdout.strip().splitlines()[-1])
                results[(backend, unroll, cached)].append(row)
                print(f"  {backend} unroll={unroll} cache={cached}: {row}", flush=True)

    samples = (args.max_freq - 1) * 10
    print(
        f"\nmodel.fit, max_freq={args.max_freq} ({samples} series, batch 32), {args.epochs} "
        f"epochs after a warm-up epoch, {args.repeats} repeats; {platform.machine()} with "
        f"{os.cpu_count()} CPUs"
    )
    base = statistics.median(r["per_epoch"] for r in results[configs[0]])
    head = f"{'backend':<12}{'unroll':<8}{'jax cache':<11}{'first epoch s':>14}"
    print(f"{head}{'later epochs, ms each':>23}{'ratio':>7}{'200 epochs s':>14}")
    for config in configs:
        backend, unroll, cached = config
        rows = results[config]
        per_epoch = statistics.median(r["per_epoch"] for r in rows)
        warm = statistics.median(r["warm"] for r in rows)
        print(
            f"{backend:<12}{unroll!s:<8}{cached or '-':<11}{warm:>14.2f}{per_epoch * 1000:>23.1f}"
            f"{per_epoch / base:>7.2f}{warm + 199 * per_epoch:>14.1f}"
        )


if __name__ == "__main__":
    main()
