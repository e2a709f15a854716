"""The backend comparison (analysis/backends.py): per max_freq, and equivalence by TOST."""

import re

import numpy as np
import pandas as pd
import pytest
from test_factors import RESAMPLES, _grid

from analysis import backends, stats, wording
from analysis.family import family_of


def _backends(shift: dict[int, float], seeds: int = 30, rng_seed: int = 13) -> pd.DataFrame:
    """Two backends, the same mae_test distribution but jax's multiplied by shift[max_freq];
    jax fits in half the time."""
    runs = _grid(seeds, max_freqs=(10, 20, 30), backend=("tensorflow", "jax"), rng_seed=rng_seed)
    jax = (runs["backend"] == "jax").to_numpy()
    factor = runs["max_freq"].map(lambda m: shift.get(int(m), 1.0)).to_numpy(float)
    runs["mae_test"] *= np.where(jax, factor, 1.0)
    runs["fit_seconds"] *= np.where(jax, 0.5, 1.0)
    return runs


def _text(b: backends.BackendComparison) -> list[str]:
    return wording.backend_sentences(b, family_of([], None, b, []))


def test_identical_backends_with_many_runs_are_equivalent():
    runs = _backends({}, seeds=60)
    rng = np.random.default_rng(3)
    runs["diverged"] = pd.array(rng.random(len(runs)) < 0.3, dtype="boolean")
    b = backends.compare(runs, RESAMPLES)
    assert (b.reference, b.other) == ("tensorflow", "jax")
    assert list(b.table["max_freq"]) == [10, 20, 30] and (b.table["ref_runs"] == 60).all()
    assert ((b.table["ratio_low"] < 1) & (1 < b.table["ratio_high"])).all()
    assert b.table["fit_seconds_ratio"].to_numpy() == pytest.approx(0.5, abs=0.05)
    assert b.mae.verdict == "equivalent" and 0.8 < b.mae.low90 < b.mae.high90 < 1.25
    assert b.mae.low95 < b.mae.low90 and b.mae.high90 < b.mae.high95
    text = _text(b)
    assert text[0].startswith("**Test error of the runs that learned: equivalent** within")
    assert "jax faster" in text[-1]


def test_few_runs_leave_equivalence_not_resolved_never_interchangeable():
    runs = _backends({}, seeds=6)
    rng = np.random.default_rng(4)
    runs["diverged"] = pd.array(rng.random(len(runs)) < 0.3, dtype="boolean")
    b = backends.compare(runs, RESAMPLES)
    assert b.divergence.verdict == "not resolved"
    assert b.divergence.low90 < backends.ODDS_MARGIN[0] or b.divergence.high90 > 2
    text = " ".join(_text(b))
    assert "**Divergence: not resolved at this sample size**" in text
    assert "interchangeable" not in text and "no effect" not in text


def test_a_shifted_backend_is_different_where_it_is_shifted():
    b = backends.compare(_backends({20: 2.0, 30: 2.0}), RESAMPLES)
    t = b.table.set_index("max_freq")
    assert t.loc[10, "mwu_p"] >= 0.05 and (t.loc[[20, 30], "mwu_p"] < 0.001).all()
    assert (t.loc[[20, 30], "ratio_low"] < 2).all() and (t.loc[[20, 30], "ratio_high"] > 2).all()
    assert b.mae.verdict == "different" and b.mae.low95 > 1
    assert "**Test error of the runs that learned: different**" in _text(b)[0]


def test_diverged_runs_are_left_out_of_the_error_comparison():
    runs = _backends({}, seeds=20)
    jax = ((runs["backend"] == "jax") & (runs["seed"] < 10)).to_numpy()
    runs["diverged"] = pd.array(jax, dtype="boolean")
    runs.loc[jax, "mae_test"] = 100.0  # diverged runs' error: huge
    b = backends.compare(runs, RESAMPLES)
    t = b.table.set_index("max_freq")
    assert (t["other_learned"] == 10).all() and (t["ref_learned"] == 20).all()
    assert (t["ratio_high"] < 3).all()  # the huge errors are not in it
    assert b.divergence.low95 > 1  # … they are in divergence, which differs


def test_divergence_rates_are_compared_by_fishers_exact_test():
    runs = _backends({}, seeds=20)
    jax = (runs["backend"] == "jax") & (runs["max_freq"] == 30) & (runs["seed"] < 12)
    runs["diverged"] = pd.array(jax.to_numpy(), dtype="boolean")
    b = backends.compare(runs, RESAMPLES)
    t = b.table.set_index("max_freq")
    assert (t.loc[30, "ref_diverged"], t.loc[30, "other_diverged"]) == (0, 12)
    assert t.loc[30, "divergence_p"] < 0.001 and t.loc[10, "divergence_p"] == 1
    assert t.loc[30, "other_div_low"] == pytest.approx(stats.wilson_interval(12, 20)[0])
    text = " ".join(_text(b))
    # the sentence says where it is resolved; the counts and the tests are the table's
    assert "divergence at max_freq 30." in text and "Holm-adjusted" not in text
    section = wording.backends_section(b, family_of([], None, b, []))
    row = section.table.set_index("max_freq").loc[30]
    assert row["diverged, tensorflow vs jax"] == "0/20 vs 12/20"
    assert row["Fisher"].startswith("[test ")


def test_backend_metrics_are_named_per_max_freq_and_valid_mlflow_names():
    runs = _backends({20: 2.0})
    metrics = backends.metrics(backends.compare(runs, RESAMPLES))
    for name in ("mwu_p", "median_ratio", "fit_seconds_ratio", "divergence_p"):
        assert f"backend_{name}/max_freq_10" in metrics
    assert (
        metrics["backend_median_ratio/max_freq_20_low"]
        < 2
        < metrics["backend_median_ratio/max_freq_20_high"]
    )
    assert "backend_tost_median_ratio_low90" in metrics
    assert all(re.fullmatch(r"[A-Za-z0-9_\-. /]+", name) for name in metrics)
    # Another varying parameter: compared within each of its values, never pooled.
    both = pd.concat([runs.assign(samples_per_freq=1), runs.assign(samples_per_freq=10)])
    keys = backends.metrics(backends.compare(both, RESAMPLES))
    assert "backend_mwu_p/samples_per_freq_1/max_freq_20" in keys
    assert "backend_mwu_p/max_freq_20" not in keys
