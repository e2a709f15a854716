"""generate_data: values, shapes, determinism and the npz round trip."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import DataConfig
from pipeline.generate_data import data_key, generate, load, save, sine_series
from pipeline.names import UserError


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


def test_data_key_tracks_every_data_parameter_and_the_generators_code(monkeypatch):
    from pipeline import generate_data

    base = DataConfig()
    assert data_key(base) == data_key(DataConfig())
    changes = {"max_freq": 21, "seed": 1, "time_steps": 99, "samples_per_freq": 9,
               "test_samples_per_freq": 9}  # fmt: skip
    assert set(changes) == {f.name for f in dataclasses.fields(DataConfig)}  # every one
    for name, value in changes.items():
        assert data_key(DataConfig(**{name: value})) != data_key(base), name
    before = data_key(base)
    # The generator's own source is what the key covers: no hand-bumped format number.
    from pipeline import keys

    own = keys.source_digest([Path(generate_data.__file__)])
    assert generate_data.generator_version() == own
    monkeypatch.setattr(generate_data, "generator_version", lambda: "changed code")
    assert data_key(base) != before  # new arrays for the same config: old data not reused


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


def _alias_pairs(cfg: DataConfig) -> list[tuple[int, int]]:
    """Generated frequency pairs f < g whose sampled series are equal up to a phase shift:
    g's samples are fitted exactly by a·sin(f·t) + b·cos(f·t) on the generated time grid."""
    sets = generate(dataclasses.replace(cfg, samples_per_freq=1, test_samples_per_freq=1))
    t = np.linspace(0.0, 2 * np.pi, cfg.time_steps)
    freqs = sorted({int(f) for f in sets["train"].freq})
    pairs = []
    for f in freqs:
        basis = np.c_[np.sin(f * t), np.cos(f * t)]
        for g in (g for g in freqs if g > f):
            target = np.sin(g * t + 0.3)
            coef, *_ = np.linalg.lstsq(basis, target, rcond=None)
            if np.abs(basis @ coef - target).max() < 1e-6:
                pairs.append((f, g))
    return pairs


@pytest.mark.parametrize("time_steps", [100, 20])
def test_aliasing_is_flagged_exactly_where_generated_series_alias(time_steps):
    from pipeline.generate_data import aliasing_warning

    first = next(m for m in range(3, time_steps + 2) if DataConfig(m, time_steps).aliased)
    assert _alias_pairs(DataConfig(first - 1, time_steps)) == []
    pairs = _alias_pairs(DataConfig(first, time_steps))
    assert pairs and all(f + g == time_steps - 1 for f, g in pairs)
    assert aliasing_warning(DataConfig(first - 1, time_steps)) is None
    assert aliasing_warning(DataConfig(first, time_steps)).startswith(
        f"max_freq − 1 = {first - 1} ≥ (time_steps − 1)/2 = {(time_steps - 1) / 2:g}"
    )
    if time_steps == 100:
        assert first == 51  # f = 50 and its alias 49 are both generated; at 50, f ≤ 49 only
