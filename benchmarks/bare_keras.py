"""The reference experiment as a bare Keras script: no MLflow, no artifacts.

This is the yardstick `bench_main.py` times the pipeline against. It does only the work
the original does: make the sine data, fit the LSTM, report the training-set MAE.

    KERAS_BACKEND=tensorflow python benchmarks/bare_keras.py --max_freq 10 --epochs 200
"""

import argparse
import time

import numpy as np

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--max_freq", type=int, default=10)
parser.add_argument("--epochs", type=int, default=200)
parser.add_argument("--time_steps", type=int, default=100)
parser.add_argument("--samples_per_freq", type=int, default=10)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

import keras  # noqa: E402  (after argparse so --help is instant)

keras.utils.set_random_seed(args.seed)
rng = np.random.default_rng(args.seed)
freqs = np.repeat(np.arange(1, args.max_freq), args.samples_per_freq).astype("float32")
phases = rng.uniform(0.0, 1.0, size=freqs.size)
t = np.linspace(phases, phases + 2 * np.pi, args.time_steps, axis=1)
x = np.sin(freqs[:, None] * t).astype("float32")[..., None]

model = keras.Sequential(
    [
        keras.Input((args.time_steps, 1)),
        keras.layers.LSTM(100),
        keras.layers.Dense(100, activation="relu"),
        keras.layers.Dropout(0.1),
        keras.layers.Dense(1, activation="relu"),
    ]
)
model.compile(optimizer="adam", loss="mse")
start = time.perf_counter()
model.fit(x, freqs, batch_size=32, epochs=args.epochs, verbose=0)
fit_seconds = time.perf_counter() - start
mae = float(np.mean(np.abs(model.predict(x, verbose=0)[:, 0] - freqs)))
print(f"mae_train={mae:.4f} fit_seconds={fit_seconds:.2f}")
