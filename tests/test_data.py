"""generate_data: values, shapes, determinism and the npz round trip."""

import numpy as np
import pytest

from pipeline.config import DataConfig, UserError
from pipeline.generate_data import data_key, generate, load, save, sine_series


def test_shapes_frequencies_and_phases():
    cfg = DataConfig(max_freq=6, time_steps=50, samples_per_freq=4, test_samples_per_freq=3)
    sets = generate(cfg)
    train, test = sets["train"], sets["test"]
    assert train.x.shape == (5 * 4, 50, 1) and train.x.dtype == np.float32
    assert test.x.shape == (5 * 3, 50, 1)
    assert sorted(set(train.freq.tolist())) == [1, 2, 3, 4, 5]
    assert np.bincount(train.freq.astype(int)).tolist() == [0, 4, 4, 4, 4, 4]
    assert np.all((train.phase >= 0) & (train.phase < 1))


def test_values_are_sin_of_f_t_over_one_period_from_the_phase():
    sets = generate(DataConfig(max_freq=5, time_steps=100))
    ds = sets["train"]
    t = np.linspace(ds.phase, ds.phase + 2 * np.pi, 100, axis=1)
    np.testing.assert_allclose(ds.x[..., 0], np.sin(ds.freq[:, None] * t), atol=1e-6)
    # Endpoint included: an integer frequency ends where it started.
    np.testing.assert_allclose(ds.x[:, 0, 0], ds.x[:, -1, 0], atol=1e-5)
    np.testing.assert_allclose(ds.x[:, 0, 0], np.sin(ds.freq * ds.phase), atol=1e-6)


def test_sine_series_single_value():
    x = sine_series(np.array([2.0]), np.array([0.25]), 3)
    np.testing.assert_allclose(
        x[0, :, 0], np.sin(2 * np.array([0.25, 0.25 + np.pi, 0.25 + 2 * np.pi])), atol=1e-6
    )


def test_deterministic_in_the_seed_and_test_stream_independent():
    a, b = generate(DataConfig(seed=3)), generate(DataConfig(seed=3))
    for split in ("train", "test"):
        assert np.array_equal(a[split].x, b[split].x)
        assert np.array_equal(a[split].phase, b[split].phase)
    other = generate(DataConfig(seed=4))
    assert not np.array_equal(a["train"].phase, other["train"].phase)
    assert not np.array_equal(a["train"].phase, a["test"].phase)
    # More test samples must not change the training set (independent streams).
    more = generate(DataConfig(seed=3, test_samples_per_freq=20))
    assert np.array_equal(more["train"].x, a["train"].x)


def test_data_key_tracks_every_data_parameter():
    base = DataConfig()
    assert data_key(base) == data_key(DataConfig())
    for change in ({"max_freq": 21}, {"seed": 1}, {"time_steps": 99}, {"samples_per_freq": 9}):
        assert data_key(DataConfig(**change)) != data_key(base)


def test_npz_round_trip_and_malformed_input(tmp_path):
    sets = generate(DataConfig(max_freq=3))
    save(sets, tmp_path / "data")
    back = load(tmp_path / "data")
    for split in ("train", "test"):
        assert np.array_equal(back[split].x, sets[split].x)
        assert np.array_equal(back[split].freq, sets[split].freq)
    np.savez(
        tmp_path / "data" / "test.npz", x=np.zeros((2, 3)), freq=np.zeros(2), phase=np.zeros(2)
    )
    with pytest.raises(UserError, match=r"test\.npz is malformed"):
        load(tmp_path / "data")
    with pytest.raises(UserError, match="cannot read"):
        load(tmp_path / "missing")


def test_aliasing_warning_from_the_nyquist_limit():
    from pipeline.generate_data import aliasing_warning

    assert aliasing_warning(DataConfig(max_freq=49)) is None
    message = aliasing_warning(DataConfig(max_freq=50))
    assert message.startswith("max_freq=50 ≥ (time_steps − 1)/2 = 49.5")
    assert aliasing_warning(DataConfig(max_freq=5, time_steps=10)).startswith("max_freq=5 ≥")
