"""The network, the training core and the scoring core, without a tracking store."""

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import DataConfig, EvalConfig, TrainConfig
from pipeline.evaluate import evaluate
from pipeline.generate_data import Dataset, generate
from pipeline.model import build_model, parameter_count
from pipeline.names import MAE_RATIO, NONE, NONFINITE
from pipeline.progress import divergence_reason
from pipeline.train import train

keras = pytest.importorskip("keras")
SMALL = TrainConfig(epochs=2, lstm_units=8, dense_units=6, seed=1)


def test_reference_architecture():
    cfg = TrainConfig()
    model = build_model(100, cfg)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["LSTM", "Dense", "Dropout", "Dense"]
    lstm, hidden, dropout, out = model.layers
    assert lstm.units == 100 and hidden.units == 100 and out.units == 1
    assert hidden.activation.__name__ == "relu" and out.activation.__name__ == "relu"
    assert dropout.rate == pytest.approx(0.1)
    assert model.input_shape == (None, 100, 1) and model.output_shape == (None, 1)
    assert model.count_params() == parameter_count(100, cfg) == 40800 + 10100 + 101
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.001)


def test_training_is_seeded_and_reproducible():
    data = generate(DataConfig(max_freq=4, samples_per_freq=3))["train"]
    a, b = train(SMALL, data), train(SMALL, data)
    assert len(a.loss) == 2 and a.loss_finite
    assert a.loss == b.loss
    c = train(TrainConfig(epochs=2, lstm_units=8, dense_units=6, seed=2), data)
    assert c.loss != a.loss


def test_epoch_callback_sees_every_epoch():
    data = generate(DataConfig(max_freq=3, samples_per_freq=2))["train"]
    seen = []
    result = train(SMALL, data, on_epoch=lambda epoch, loss: seen.append((epoch, loss)))
    assert [e for e, _ in seen] == [0, 1]
    assert [v for _, v in seen] == pytest.approx(result.loss)


def test_nan_loss_stops_training_without_crashing():
    data = generate(DataConfig(max_freq=3, samples_per_freq=2))["train"]
    poisoned = Dataset(data.x, np.full_like(data.freq, np.nan), data.phase)
    result = train(TrainConfig(epochs=5, lstm_units=4, dense_units=4), poisoned)
    assert len(result.loss) < 5 and not result.loss_finite


def _sets():
    return generate(DataConfig(max_freq=5, samples_per_freq=2, test_samples_per_freq=2))


def test_perfect_predictions_score_zero_and_do_not_diverge():
    sets = _sets()
    ev = evaluate(EvalConfig(), sets, {s: d.freq for s, d in sets.items()}, [1.0, 0.5])
    assert ev.metrics["mae_train"] == 0 and ev.metrics["rmse_test"] == 0
    assert ev.metrics["r2_train"] == 1 and ev.metrics["diverged"] == 0
    assert ev.diverged_reason == NONE
    # Frequencies 1..4: the median is 2.5, so the best constant is off by 1 on average.
    assert ev.metrics["baseline_mae_train"] == pytest.approx(1.0)
    table = ev.predictions["test"]
    assert list(table.columns) == ["true_freq", "phase", "prediction", "error"]
    assert len(table) == 8 and (table["error"] == 0).all()


def test_constant_prediction_diverges_by_mae_ratio():
    sets = _sets()
    ev = evaluate(EvalConfig(), sets, {s: np.zeros(len(d)) for s, d in sets.items()}, [4.0])
    # Predicting 0 for frequencies 1..4 is off by 2.5 on average: 2.5 × the baseline.
    assert ev.metrics["mae_train"] == pytest.approx(2.5)
    assert ev.metrics["mae_ratio_train"] == pytest.approx(2.5)
    assert ev.metrics["diverged"] == 1 and ev.diverged_reason == MAE_RATIO


def test_threshold_is_a_parameter():
    sets = _sets()
    preds = {s: d.freq + 0.6 for s, d in sets.items()}  # mae 0.6, ratio 0.6
    assert evaluate(EvalConfig(), sets, preds, [1.0]).metrics["diverged"] == 1
    assert evaluate(EvalConfig(divergence_ratio=0.7), sets, preds, [1.0]).metrics["diverged"] == 0


def test_divergence_rule():
    assert divergence_reason([1.0, math.nan], 0.1, 0.5) == NONFINITE
    assert divergence_reason([1.0, math.inf], 0.1, 0.5) == NONFINITE
    assert divergence_reason([1.0], math.nan, 0.5) == NONFINITE
    assert divergence_reason([1.0], 0.5, 0.5) == MAE_RATIO
    assert divergence_reason([1.0], 0.49, 0.5) == NONE


def test_nan_predictions_give_nan_metrics_and_divergence():
    sets = _sets()
    ev = evaluate(
        EvalConfig(), sets, {s: np.full(len(d), np.nan) for s, d in sets.items()}, [math.nan]
    )
    assert math.isnan(ev.metrics["mae_train"]) and ev.metrics["diverged"] == 1
    assert ev.diverged_reason == NONFINITE


@pytest.mark.slow
def test_reference_setting_learns_max_freq_10():
    """The full reference training (200 epochs) at max_freq=10 beats the constant baseline
    by far: the question the project asks has a non-trivial answer at small max_freq."""
    sets = generate(DataConfig(max_freq=10))
    result = train(TrainConfig(), sets["train"])
    preds = {s: result.model.predict(d.x, verbose=0) for s, d in sets.items()}
    ev = evaluate(EvalConfig(), sets, preds, result.loss)
    assert ev.metrics["diverged"] == 0
    assert ev.metrics["mae_ratio_train"] < 0.2 and ev.metrics["mae_test"] < 0.5


@pytest.mark.slow  # two fresh jax processes (~55 s)
def test_jax_backend_is_reproducible_across_processes():
    """Same seed, same backend, two fresh processes: identical loss curves (jax on CPU)."""
    import os
    import subprocess
    import sys

    script = (
        "from pipeline.config import DataConfig, TrainConfig\n"
        "from pipeline.generate_data import generate\n"
        "from pipeline.train import train\n"
        "import keras; assert keras.backend.backend() == 'jax'\n"
        "data = generate(DataConfig(max_freq=4, samples_per_freq=3))['train']\n"
        "print(train(TrainConfig(epochs=2, lstm_units=8, dense_units=6, seed=3), data).loss)\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    outs = [
        subprocess.run(
            [sys.executable, "-c", script],
            env=env,
            cwd=Path(__file__).resolve().parents[1],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        .stdout.strip()
        .splitlines()[-1]
        for _ in range(2)
    ]
    assert outs[0] == outs[1] and outs[0].startswith("[")


def test_a_model_predicting_the_exact_scaled_target_scores_zero_in_frequency_units():
    """target_scale=max_freq: the network's f / max_freq is multiplied back before any metric."""
    from pipeline.evaluate import predict
    from pipeline.model import with_output_scale

    max_freq, steps = 6, 10
    sets = {}
    for split in ("train", "test"):
        freq = np.repeat(np.arange(1, max_freq, dtype=np.float32), 2)
        x = np.zeros((freq.size, steps, 1), np.float32)
        x[:, 0, 0] = freq / max_freq  # an input the stand-in network can read the answer from
        sets[split] = Dataset(x, freq, np.zeros(freq.size))
    inputs = keras.Input((steps, 1))
    exact_scaled = keras.Model(inputs, keras.layers.Lambda(lambda x: x[:, 0, :])(inputs))
    scaled = with_output_scale(exact_scaled, float(max_freq))
    result = evaluate(EvalConfig(), sets, predict(scaled, sets), [0.1])
    assert result.metrics["mae_train"] == pytest.approx(0, abs=1e-5)
    assert result.metrics["mae_test"] == pytest.approx(0, abs=1e-5)
    unscaled = evaluate(EvalConfig(), sets, predict(exact_scaled, sets), [0.1])
    assert unscaled.metrics["mae_test"] > 1  # the scaled target itself is far off in Hz


def test_target_scale_max_freq_trains_on_the_scaled_target():
    data = generate(DataConfig(max_freq=5, samples_per_freq=3))["train"]
    cfg = TrainConfig(epochs=1, lstm_units=8, dense_units=6, seed=1, target_scale="max_freq")
    scaled = train(cfg, data)
    inner = scaled.model.layers[1]  # the trained network inside the scaling wrapper
    assert scaled.model.layers[-1].name == "target_scale" and inner.name == "sine_frequency_lstm"
    raw = np.asarray(inner.predict(data.x, verbose=0))
    assert np.allclose(np.asarray(scaled.model.predict(data.x, verbose=0)), 5 * raw, rtol=1e-5)
    plain = train(dataclasses.replace(cfg, target_scale="none"), data)
    assert scaled.loss[0] < plain.loss[0] / 4  # MSE on f / 5 (≤ 0.8) vs on f (≤ 4)


def test_evaluate_reuses_the_training_sets_prediction_it_is_given():
    from pipeline.evaluate import predict

    sets = generate(DataConfig(max_freq=4, samples_per_freq=2, test_samples_per_freq=3))

    class TestSetOnly:  # a model that may only be asked about the test set
        def predict(self, x, verbose=0, batch_size=None):
            assert len(x) == len(sets["test"]), "the training set was predicted again"
            return np.full((len(x), 1), 7.0, np.float32)

    known = np.arange(len(sets["train"]), dtype=np.float32)[:, None]
    out = predict(TestSetOnly(), sets, known={"train": known})
    assert out["train"] is known
    assert out["test"].shape == (len(sets["test"]), 1) and (out["test"] == 7.0).all()
