"""Reference estimators logged by evaluate: a floor and a ceiling for the LSTM's error.

- `fft`: no learning at all. The frequency is the peak of the zero-padded, Hann-windowed
  spectrum, converted to cycles per 2π (the series spans one 2π period over time_steps − 1
  sample intervals).
- `forest`: scikit-learn's RandomForestRegressor on the spectrum's magnitudes, fitted on the
  same training set as the LSTM.

Metric names: `ref_fft_mae_{train,test}` and `ref_forest_mae_{train,test}`.
"""

import numpy as np

PAD = 16  # zero-padding factor of the FFT: frequency resolution (T−1)/(16·T) ≈ 0.06


def fft_peak_frequency(x: np.ndarray) -> np.ndarray:
    """x: (n, time_steps) or (n, time_steps, 1) → estimated frequency per series."""
    x = x.reshape(len(x), -1)
    steps = x.shape[1]
    n_fft = PAD * steps
    spectrum = np.abs(np.fft.rfft(x * np.hanning(steps), n=n_fft, axis=1))
    spectrum[:, 0] = 0  # ignore DC
    return np.argmax(spectrum, axis=1) * (steps - 1) / n_fft


def spectrum_features(x: np.ndarray) -> np.ndarray:
    return np.abs(np.fft.rfft(x.reshape(len(x), -1), axis=1))


def reference_predictions(datasets: dict) -> dict[str, dict[str, np.ndarray]]:
    """estimator name → split → predicted frequency."""
    from sklearn.ensemble import RandomForestRegressor

    forest = RandomForestRegressor(n_estimators=100, random_state=0, n_jobs=1)
    forest.fit(spectrum_features(datasets["train"].x), datasets["train"].freq)
    return {
        "fft": {s: fft_peak_frequency(d.x) for s, d in datasets.items()},
        "forest": {s: forest.predict(spectrum_features(d.x)) for s, d in datasets.items()},
    }


def reference_metrics(datasets: dict) -> dict[str, float]:
    out = {}
    for name, by_split in reference_predictions(datasets).items():
        for split, pred in by_split.items():
            true = datasets[split].freq.astype(np.float64)
            out[f"ref_{name}_mae_{split}"] = float(np.mean(np.abs(pred - true)))
    return out
