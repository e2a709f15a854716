"""Factor effects and the backend comparison on synthetic runs tables with known answers (no
tracking store)."""

import itertools
import math
import re

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.special import expit

from analysis import factors, report, stats, store

RESAMPLES = 300  # fewer than the default: fast, and enough for 95% percentile intervals


def _grid(seeds: int, max_freqs=(10, 20), rng_seed: int = 0, **levels) -> pd.DataFrame:
    """Every combination of `levels` (name → values) × max_freq × seeds, FINISHED, with
    mae_ratio_test = 0.1 + 0.05·lognormal(0, 0.5) (the same skewed noise in every cell, so
    shifts move the median exactly), mae_test = mae_ratio_test·max_freq/4, no divergence."""
    rng = np.random.default_rng(rng_seed)
    names = ["max_freq", *levels, "seed"]
    cells = list(itertools.product(max_freqs, *levels.values(), range(seeds)))
    runs = pd.DataFrame(cells, columns=names)
    ratio = 0.1 + 0.05 * np.exp(rng.normal(0, 0.5, len(runs)))
    runs = runs.assign(
        status="FINISHED",
        time_steps=100,
        epochs=200,
        diverged=pd.array([False] * len(runs), dtype="boolean"),
        mae_ratio_test=ratio,
        mae_test=ratio * runs["max_freq"] / 4,
        fit_seconds=10 + rng.random(len(runs)),
    )
    runs["max_freq"] = runs["max_freq"].astype("Int64")
    for name, values in levels.items():  # typed as analysis/load.py types them
        if isinstance(values[0], str | int):
            runs[name] = runs[name].astype("string" if isinstance(values[0], str) else "Int64")
    return runs


def _diverge(runs: pd.DataFrame, log_odds: np.ndarray, rng_seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(rng_seed)
    diverged = rng.random(len(runs)) < expit(log_odds)
    return runs.assign(diverged=pd.array(diverged, dtype="boolean"))


def _row(effects: factors.FactorEffects, factor: str) -> pd.Series:
    (row,) = [r for _, r in effects.table.iterrows() if r["factor"] == factor]
    return row


# --- reference levels and coding ------------------------------------------------------------


def test_reference_is_the_pipeline_default_if_present_else_the_smallest_value():
    assert factors.reference_level("samples_per_freq", [1, 10, 20]) == 10
    assert factors.reference_level("samples_per_freq", [1, 5]) == 1
    assert factors.reference_level("target_scale", ["max_freq", "none"]) == "none"
    assert factors.reference_level("backend", ["jax", "tensorflow"]) == "tensorflow"
    assert factors.reference_level("learning_rate", [0.0001, 0.001, 0.01]) == 0.001
    assert factors.reference_level("dropout", [0.2, 0.3]) == 0.2  # default 0.1 absent
    assert factors.reference_level("max_freq", [10, 20]) == 10  # a sweep axis: smallest


def test_factors_are_coded_against_their_reference_and_max_freq_numeric_beyond_two_values():
    runs = _grid(2, max_freqs=(10, 20, 40), samples_per_freq=(1, 10, 20), backend=("jax",))
    found, _ = factors.factors_of(runs)
    assert [(f.name, f.reference, f.levels, f.numeric) for f in found] == [
        ("samples_per_freq", 10, (1, 20), False),
        ("max_freq", None, (), True),
    ]
    x = factors.design(runs, found)
    assert x.shape == (len(runs), 4)
    assert np.array_equal(x[:, 1], (runs["samples_per_freq"] == 1).to_numpy(float))
    assert np.array_equal(x[:, 2], (runs["samples_per_freq"] == 20).to_numpy(float))
    assert x[:, 3].mean() == pytest.approx(0) and np.ptp(x[:, 3]) == 30
    two, _ = factors.factors_of(_grid(2, target_scale=("max_freq", "none")))
    assert [(f.name, f.reference, f.levels) for f in two] == [
        ("target_scale", "none", ("max_freq",)),
        ("max_freq", 10, (20,)),
    ]


def test_nothing_besides_max_freq_varying_gives_no_section():
    runs = _grid(5, max_freqs=(10, 20, 30), backend=("jax",))
    comparisons = factors.fit(runs, RESAMPLES)
    assert comparisons.effects is None and comparisons.backends is None
    assert factors.sections(comparisons) == [] and factors.metrics(comparisons) == {}


# --- the median -----------------------------------------------------------------------------


def test_a_known_median_effect_is_recovered_and_a_null_factor_cannot_tell():
    runs = _grid(25, samples_per_freq=(1, 10), target_scale=("none", "max_freq"))
    runs["mae_ratio_test"] += 0.2 * (runs["samples_per_freq"] == 1)
    runs = _diverge(runs, np.full(len(runs), -1.0))
    e = factors.effects(runs, RESAMPLES)
    assert e.runs == 200 and e.title == "Which cause matters"
    spf, scale = _row(e, "samples_per_freq"), _row(e, "target_scale")
    assert (spf["level"], spf["reference"], spf["key"]) == ("1", "10", "samples_per_freq_1")
    assert 0 < spf["median_low"] < 0.2 < spf["median_high"] < 0.3
    assert spf["median_effect"] == pytest.approx(0.2, abs=0.03)
    assert scale["median_low"] < 0 < scale["median_high"]
    assert scale["median_high"] - scale["median_low"] < 0.05
    sentences = {r["factor"]: factors.effect_sentence(r, e) for _, r in e.table.iterrows()}
    assert "median mae_ratio_test is 0.2" in sentences["samples_per_freq"]
    assert "higher (95% CI" in sentences["samples_per_freq"]
    assert "median mae_ratio_test: cannot tell" in sentences["target_scale"]
    assert "contains 0, no effect" in sentences["target_scale"]
    assert "median mae_ratio_test: cannot tell" not in sentences["samples_per_freq"]


def test_median_bootstrap_is_seeded_and_refits_by_quantregs_own_algorithm():
    runs = _grid(10, samples_per_freq=(1, 10), rng_seed=3)
    a = factors.effects(runs, RESAMPLES, seed=4)
    b = factors.effects(runs, RESAMPLES, seed=4)
    c = factors.effects(runs, RESAMPLES, seed=5)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert a.table["median_low"].iloc[0] != c.table["median_low"].iloc[0]
    found, _ = factors.factors_of(runs)
    x, y = factors.design(runs, found), runs["mae_ratio_test"].to_numpy(float)
    quantreg = sm.QuantReg(y, x).fit(q=0.5).params
    assert factors._lad(x, y, np.ones((1, len(y))))[0] == pytest.approx(quantreg, abs=1e-6)


def test_a_non_finite_mae_ratio_counts_as_worse_than_every_finite_one():
    runs = _grid(15, samples_per_freq=(1, 10), rng_seed=6)
    gone = runs.index[(runs["samples_per_freq"] == 1).to_numpy()][::3]  # 10 of its 30 runs

    def effect(value: float) -> pd.Series:
        changed = runs.assign(mae_ratio_test=runs["mae_ratio_test"].mask(runs.index.isin(gone)))
        e = factors.effects(changed.fillna({"mae_ratio_test": value}), RESAMPLES)
        return e, e.table.iloc[0]

    e, nan = effect(np.nan)
    _, large = effect(50.0)
    assert e.nonfinite == 10 and e.runs == len(runs)
    assert nan["median_effect"] == pytest.approx(large["median_effect"], abs=0.002)
    assert nan["median_effect"] > 0.02 and 0 < nan["median_low"] < nan["median_effect"]
    # Resamples with over half of the level non-finite: its median, and the effect, unbounded.
    assert nan["median_high"] == math.inf and large["median_high"] < 50
    dropped = factors.effects(runs.drop(index=gone), RESAMPLES).table.iloc[0]
    assert abs(dropped["median_effect"]) < 0.01  # leaving them out would hide the effect
    assert "10 runs with a non-finite mae_ratio_test" in factors.effects_section(e).paragraphs[0]
    assert "to inf)" in factors.effect_sentence(nan, e)


# --- divergence -----------------------------------------------------------------------------


def test_odds_ratios_are_recovered_for_a_factor_that_drives_divergence():
    runs = _grid(100, samples_per_freq=(1, 10), target_scale=("none", "max_freq"), rng_seed=7)
    on = (runs["target_scale"] == "max_freq").to_numpy()
    runs = _diverge(runs, -1.5 + math.log(4) * on, rng_seed=8)
    e = factors.effects(runs, RESAMPLES)
    assert e.divergence_method == "logit" and e.divergence_note == ""
    scale, spf = _row(e, "target_scale"), _row(e, "samples_per_freq")
    assert 1 < scale["or_low"] < 4 < scale["or_high"]
    assert spf["or_low"] < 1 < spf["or_high"]
    assert "the odds of diverging multiply by" in factors.effect_sentence(scale, e)
    assert "divergence: cannot tell (odds ratio" in factors.effect_sentence(spf, e)
    metrics = factors.metrics(factors.Comparisons(e, None))
    assert metrics["effect_divergence_or/target_scale_max_freq"] == scale["odds_ratio"]
    assert metrics["effect_divergence_or/target_scale_max_freq_low"] == scale["or_low"]
    assert metrics["effect_divergence_firth"] == 0


def test_separation_is_detected_flagged_and_gives_finite_odds_ratios():
    runs = _grid(10, samples_per_freq=(1, 10), target_scale=("none", "max_freq"))
    y = (runs["samples_per_freq"] == 1).to_numpy()
    runs = runs.assign(diverged=pd.array(y, dtype="boolean"))
    found, _ = factors.factors_of(runs)
    x = factors.design(runs, found)
    assert factors.separated(x, y.astype(float))
    assert not factors.separated(x, np.resize([1.0, 0.0, 0.0], len(y)))
    e = factors.effects(runs, RESAMPLES)
    assert e.divergence_method == "firth"
    assert "Firth" in e.divergence_note and "separation" in e.divergence_note
    assert "every run diverged at samples_per_freq=1" in e.divergence_note
    spf = _row(e, "samples_per_freq")
    assert 1 < spf["or_low"] < spf["odds_ratio"] < spf["or_high"] < math.inf
    assert factors.metrics(factors.Comparisons(e, None))["effect_divergence_firth"] == 1
    assert "Firth" in factors.effects_section(e).paragraphs[0]


def test_few_events_use_firth_and_no_events_give_nothing_to_fit():
    runs = _grid(10, samples_per_freq=(1, 10), rng_seed=9)
    runs = _diverge(runs, np.full(len(runs), -2.0), rng_seed=12)
    e = factors.effects(runs, RESAMPLES)
    assert (
        0 < e.events < 10 and e.divergence_method == "firth" and "few events" in e.divergence_note
    )
    assert np.isfinite(e.table[["odds_ratio", "or_low", "or_high"]].to_numpy()).all()
    none = factors.effects(_grid(10, samples_per_freq=(1, 10)), RESAMPLES)
    assert none.divergence_method == "" and "nothing to fit" in none.divergence_note
    assert none.table["odds_ratio"].isna().all()
    sentence = factors.effect_sentence(none.table.iloc[0], none)
    assert "no divergence observed (0 of 40): nothing to fit" in sentence


def test_confounded_factors_are_reported_not_estimable():
    runs = _grid(10, backend=("jax", "tensorflow"), rng_seed=11)
    runs["target_scale"] = runs["backend"].map({"jax": "max_freq", "tensorflow": "none"})
    e = factors.effects(runs, RESAMPLES)
    assert list(e.table["factor"]) == ["backend", "target_scale", "max_freq"]
    confounded = e.table.set_index("factor").loc["target_scale"]
    assert confounded["note"] == "confounded: not estimable"
    assert math.isnan(confounded["median_effect"]) and math.isnan(confounded["odds_ratio"])
    assert math.isfinite(_row(e, "backend")["median_effect"])
    assert any("not estimable: target_scale=max_freq" in n for n in e.notes)


def test_a_numeric_max_freq_is_an_effect_per_ten_and_the_title_is_factor_effects():
    runs = _grid(20, max_freqs=(10, 20, 30, 40), dropout=(0.1, 0.3), rng_seed=12)
    runs["mae_ratio_test"] += 0.004 * runs["max_freq"].astype(float)  # +0.04 per +10
    e = factors.effects(runs, RESAMPLES)
    assert e.title == "Factor effects"
    freq = _row(e, "max_freq")
    assert freq["level"] == "per +10" and freq["key"] == "max_freq_per_10"
    assert freq["median_low"] < 0.04 < freq["median_high"] and freq["median_low"] > 0
    assert "per +10 max_freq" in factors.effect_sentence(freq, e)
    assert "effect_mae_ratio/max_freq_per_10_high" in factors.metrics(factors.Comparisons(e, None))


# --- backends -------------------------------------------------------------------------------


def _backends(shift: dict[int, float], seeds: int = 30, rng_seed: int = 13) -> pd.DataFrame:
    """Two backends, the same mae_test distribution but jax's multiplied by shift[max_freq];
    jax fits in half the time."""
    runs = _grid(seeds, max_freqs=(10, 20, 30), backend=("tensorflow", "jax"), rng_seed=rng_seed)
    jax = (runs["backend"] == "jax").to_numpy()
    factor = runs["max_freq"].map(lambda m: shift.get(int(m), 1.0)).to_numpy(float)
    runs["mae_test"] *= np.where(jax, factor, 1.0)
    runs["fit_seconds"] *= np.where(jax, 0.5, 1.0)
    return runs


def test_identical_backends_give_a_no_difference_verdict():
    b = factors.compare_backends(_backends({}), RESAMPLES)
    assert (b.reference, b.other) == ("tensorflow", "jax")
    assert list(b.table["max_freq"]) == [10, 20, 30] and (b.table["ref_runs"] == 30).all()
    assert (b.table["mwu_p_holm"] >= 0.05).all()
    # Holm across the three max_freq values: the smallest p-value is multiplied by 3.
    assert b.table["mwu_p_holm"].min() == pytest.approx(min(1, 3 * b.table["mwu_p"].min()))
    assert ((b.table["ratio_low"] < 1) & (1 < b.table["ratio_high"])).all()
    assert b.table["fit_seconds_ratio"].to_numpy() == pytest.approx(0.5, abs=0.05)
    mae, divergence, fit = factors.backend_sentences(b)
    assert mae.startswith("**No difference in test MAE detected at any max_freq**")
    assert "Holm-adjusted p ≥ 0.05" in mae and "agree within a factor of [" in mae
    assert divergence.startswith("**No difference in divergence rate detected")
    assert "jax faster" in fit


def test_a_shifted_backend_is_detected_in_the_right_direction_where_it_is_shifted():
    b = factors.compare_backends(_backends({20: 2.0, 30: 2.0}), RESAMPLES)
    t = b.table.set_index("max_freq")
    assert t.loc[10, "mwu_p_holm"] >= 0.05 and (t.loc[[20, 30], "mwu_p_holm"] < 0.001).all()
    assert (t.loc[[20, 30], "ratio_low"] < 2).all() and (t.loc[[20, 30], "ratio_high"] > 2).all()
    mae = factors.backend_sentences(b)[0]
    assert mae.startswith("**Test MAE differs between backends** at max_freq 20: jax higher")
    assert "max_freq 30: jax higher" in mae and "No difference detected at max_freq 10" in mae
    lower = factors.backend_sentences(factors.compare_backends(_backends({10: 0.5}), RESAMPLES))
    assert "at max_freq 10: jax lower" in lower[0]


def test_divergence_rates_are_compared_by_fishers_exact_test():
    runs = _backends({}, seeds=20)
    jax = (runs["backend"] == "jax") & (runs["max_freq"] == 30) & (runs["seed"] < 12)
    runs["diverged"] = pd.array(jax.to_numpy(), dtype="boolean")
    b = factors.compare_backends(runs, RESAMPLES)
    t = b.table.set_index("max_freq")
    assert (t.loc[30, "ref_diverged"], t.loc[30, "other_diverged"]) == (0, 12)
    assert t.loc[30, "divergence_p"] < 0.001 and t.loc[10, "divergence_p"] == 1
    assert t.loc[30, "other_div_low"] == pytest.approx(stats.wilson_interval(12, 20)[0])
    divergence = factors.backend_sentences(b)[1]
    assert divergence.startswith("**Divergence rates differ between backends** at max_freq 30")
    assert "tensorflow 0/20 vs jax 12/20" in divergence


def test_backend_metrics_are_named_per_max_freq_and_valid_mlflow_names():
    runs = _backends({20: 2.0})
    metrics = factors.metrics(factors.fit(runs, RESAMPLES))
    for name in ("mwu_p", "median_ratio", "fit_seconds_ratio", "divergence_p"):
        assert f"backend_{name}/max_freq_10" in metrics
    assert (
        metrics["backend_median_ratio/max_freq_20_low"]
        < 2
        < metrics["backend_median_ratio/max_freq_20_high"]
    )
    assert "effect_mae_ratio/backend_jax" in metrics and "effect_runs" in metrics
    assert all(re.fullmatch(r"[A-Za-z0-9_\-. /]+", name) for name in metrics)
    # Another varying parameter: compared within each of its values, never pooled.
    both = pd.concat([runs.assign(samples_per_freq=1), runs.assign(samples_per_freq=10)])
    keys = factors.metrics(factors.fit(both, RESAMPLES))
    assert "backend_mwu_p/samples_per_freq_1/max_freq_20" in keys
    assert "backend_mwu_p/max_freq_20" not in keys


# --- the report -----------------------------------------------------------------------------


def test_report_places_the_sections_right_after_findings(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "metric_histories", lambda ids, key: {})
    monkeypatch.setattr(store, "artifact_uris", lambda ids: {})
    runs = _backends({20: 2.0}, seeds=20).assign(
        eval_run_id=None, mae_train=1.0, samples_per_freq=10, run_id="r"
    )
    runs.loc[runs["seed"] < 10, "samples_per_freq"] = 1
    report.write(runs, stats.summarize(runs), "T", None, tmp_path, 2)
    md = (tmp_path / "report.md").read_text()
    order = ["## Findings", "## Which cause matters", "## Backends compared", "120 runs over"]
    assert [md.index(s) for s in order] == sorted(md.index(s) for s in order)
    assert "- **samples_per_freq=1 vs 10** (60 runs, 0 diverged): " in md
    assert "main effects only (no interactions) over 120 FINISHED runs" in md
    assert "- **Test MAE differs between backends** at max_freq 20 (samples_per_freq=1)" in md
    assert "| samples_per_freq | max_freq | tensorflow median mae_test [95% CI] |" in md
    html = (tmp_path / "report.html").read_text()
    heads = ["<h2>Findings</h2>", "<h2>Which cause matters</h2>", "<h2>Backends compared</h2>"]
    assert [html.index(h) for h in heads] == sorted(html.index(h) for h in heads)
    assert "<b>samples_per_freq=1 vs 10</b>" in html and 'src="http' not in html


def test_only_other_parameters_varying_give_a_factor_effects_section():
    runs = _grid(6, max_freqs=(10, 20, 30), dropout=(0.1, 0.2))
    (section,) = factors.sections(factors.fit(runs, RESAMPLES))
    lines = report.section_markdown(section)
    assert lines[0] == "## Factor effects"
    assert any(line.startswith("- **dropout=0.2 vs 0.1** (18 runs, 0 diverged)") for line in lines)
