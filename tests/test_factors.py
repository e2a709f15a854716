"""Factor effects on synthetic runs tables with known answers (no tracking store)."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats as sps
from scipy.special import expit

from analysis import factors, logistic, report, stats, store, wording
from analysis.family import family_of

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
    assert x[:, 3].mean() == pytest.approx(0, abs=1e-12) and np.ptp(x[:, 3]) == 3  # per +10
    two, _ = factors.factors_of(_grid(2, target_scale=("max_freq", "none")))
    assert [(f.name, f.reference, f.levels) for f in two] == [
        ("target_scale", "none", ("max_freq",)),
        ("max_freq", 10, (20,)),
    ]


def _sentences(e: factors.FactorEffects) -> dict[str, str]:
    family = family_of([], e, None, [])
    return {r["factor"]: wording.effect_sentence(r, e, family) for _, r in e.table.iterrows()}


def test_nothing_besides_max_freq_varying_gives_no_factor_model():
    runs = _grid(5, max_freqs=(10, 20, 30), backend=("jax",))
    assert factors.effects(runs, RESAMPLES) is None and factors.metrics(None) == {}


# --- the error of the runs that learned -----------------------------------------------------


def test_a_known_median_effect_is_recovered_and_a_null_factor_is_not_resolved():
    runs = _grid(25, samples_per_freq=(1, 10), target_scale=("none", "max_freq"))
    runs["mae_ratio_test"] += 0.2 * (runs["samples_per_freq"] == 1)
    runs = _diverge(runs, np.full(len(runs), -1.0))
    e = factors.effects(runs, RESAMPLES)
    assert e.runs == 200 and e.title == "Which cause matters"
    assert e.learned == int((~runs["diverged"]).sum())  # the error model: learned runs only
    spf, scale = _row(e, "samples_per_freq"), _row(e, "target_scale")
    assert (spf["level"], spf["reference"], spf["key"]) == ("1", "10", "samples_per_freq_1")
    assert 0 < spf["median_low"] < 0.2 < spf["median_high"] < 0.3
    assert spf["median_effect"] == pytest.approx(0.2, abs=0.03)
    assert scale["median_low"] < 0 < scale["median_high"]
    assert scale["median_high"] - scale["median_low"] < 0.05
    assert spf["median_p"] < 0.01 and scale["median_p"] > 0.05
    sentences = _sentences(e)
    assert "the learned runs' median mae_ratio_test is 0.2" in sentences["samples_per_freq"]
    assert "higher (95% CI" in sentences["samples_per_freq"]
    assert (
        "median mae_ratio_test: not resolved, the difference lies between"
        in sentences["target_scale"]
    )
    assert "no effect" not in " ".join(sentences.values())


def test_diverged_runs_do_not_count_again_in_the_error():
    """A factor that only drives divergence (diverged runs have a huge mae_ratio_test) shows no
    effect on the learned runs' median."""
    runs = _grid(40, samples_per_freq=(1, 10), rng_seed=21)
    on = (runs["samples_per_freq"] == 1).to_numpy()
    runs = _diverge(runs, np.where(on, 0.5, -2.5), rng_seed=22)
    runs.loc[runs["diverged"].to_numpy(bool), "mae_ratio_test"] = 1.5
    e = factors.effects(runs, RESAMPLES)
    spf = _row(e, "samples_per_freq")
    assert spf["or_low"] > 3  # divergence: a strong effect
    assert spf["median_low"] < 0 < spf["median_high"]  # the learned runs' error: none


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
    assert factors.lad(x, y, np.ones((1, len(y))))[0] == pytest.approx(quantreg, abs=1e-6)


def test_learned_runs_with_a_non_finite_error_are_counted_and_left_out():
    runs = _grid(15, samples_per_freq=(1, 10), rng_seed=6)
    runs.loc[runs.index[:4], "mae_ratio_test"] = np.nan
    e = factors.effects(runs, RESAMPLES)
    assert e.nonfinite == 4 and e.learned == len(runs) - 4
    section = wording.effects_section(e, family_of([], e, None, []))
    assert "4 learned runs with a non-finite mae_ratio_test left out" in section.paragraphs[0]


# --- divergence -----------------------------------------------------------------------------


def test_odds_ratios_are_recovered_for_a_factor_that_drives_divergence():
    runs = _grid(100, samples_per_freq=(1, 10), target_scale=("none", "max_freq"), rng_seed=7)
    on = (runs["target_scale"] == "max_freq").to_numpy()
    runs = _diverge(runs, -1.5 + math.log(4) * on, rng_seed=8)
    e = factors.effects(runs, RESAMPLES)
    assert e.divergence.method == "logit" and e.divergence.reason == ""
    scale, spf = _row(e, "target_scale"), _row(e, "samples_per_freq")
    assert 1 < scale["or_low"] < 4 < scale["or_high"]
    assert spf["or_low"] < 1 < spf["or_high"]
    sentences = _sentences(e)
    assert "the odds of diverging multiply by" in sentences["target_scale"]
    assert "divergence: not resolved, the odds ratio lies between" in sentences["samples_per_freq"]
    metrics = factors.metrics(e)
    assert metrics["effect_divergence_or/target_scale_max_freq"] == scale["odds_ratio"]
    assert metrics["effect_divergence_or/target_scale_max_freq_low"] == scale["or_low"]
    assert metrics["effect_divergence_firth"] == 0
    # The same as statsmodels' Logit on the ungrouped runs.
    found, _ = factors.factors_of(runs[runs["status"] == "FINISHED"])
    x = factors.design(runs, found)
    ref = sm.Logit(runs["diverged"].to_numpy(float), x).fit(disp=0)
    assert math.log(scale["odds_ratio"]) == pytest.approx(ref.params[2], rel=1e-6)
    assert math.log(scale["or_low"]) == pytest.approx(ref.conf_int()[2][0], rel=1e-6)
    assert scale["or_p"] == pytest.approx(ref.pvalues[2], rel=1e-5)


def test_separation_is_detected_and_gives_profile_intervals():
    runs = _grid(10, samples_per_freq=(1, 10), target_scale=("none", "max_freq"))
    rng = np.random.default_rng(5)
    y = (runs["samples_per_freq"] == 1).to_numpy() & (rng.random(len(runs)) < 0.6)
    runs = runs.assign(diverged=pd.array(y, dtype="boolean"))
    found, _ = factors.factors_of(runs)
    x = factors.design(runs, found)
    assert logistic.separated(logistic.Data.of(x, y.astype(float)))
    assert not logistic.separated(logistic.Data.of(x, np.resize([1.0, 0.0, 0.0], len(y))))
    e = factors.effects(runs, RESAMPLES)
    assert e.divergence.method == "firth" and e.divergence.reason == logistic.SEPARATION
    spf = _row(e, "samples_per_freq")
    assert 1 < spf["or_low"] < spf["odds_ratio"] < spf["or_high"] < math.inf
    # Profile penalised likelihood, not Wald: the interval is not symmetric on the log scale.
    beta, low, high = (math.log(spf[c]) for c in ("odds_ratio", "or_low", "or_high"))
    assert abs((high - beta) - (beta - low)) > 0.05
    data = factors.grouped(factors.design(runs, found), y.astype(float))
    j = 1
    crit = sps.chi2.ppf(0.95, 1) / 2
    top = data.penalised(e.divergence.beta)
    for end in (low, high):  # the penalised likelihood drops by χ²/2 at each end
        free = np.ones(data.x.shape[1], bool)
        free[j] = False
        start = e.divergence.beta.copy()
        start[j] = end
        assert top - data.penalised(logistic.firth(data, free, start)) == pytest.approx(
            crit, abs=1e-6
        )
    assert factors.metrics(e)["effect_divergence_firth"] == 1
    section = wording.effects_section(e, family_of([], e, None, []))
    assert "profile penalised-likelihood intervals" in section.paragraphs[0]


def test_few_events_use_firth_and_no_events_give_nothing_to_fit():
    runs = _grid(10, samples_per_freq=(1, 10), rng_seed=9)
    runs = _diverge(runs, np.full(len(runs), -2.0), rng_seed=12)
    e = factors.effects(runs, RESAMPLES)
    assert 0 < e.events < 10 and e.divergence.method == "firth"
    assert e.divergence.reason == logistic.FEW_EVENTS
    assert np.isfinite(e.table[["odds_ratio", "or_low", "or_high"]].to_numpy(float)).all()
    none = factors.effects(_grid(10, samples_per_freq=(1, 10)), RESAMPLES)
    assert none.divergence.method == "" and none.divergence.reason == "no events"
    assert none.table["odds_ratio"].isna().all()
    assert "no divergence observed: nothing to fit" in _sentences(none)["samples_per_freq"]


def test_confounded_factors_are_reported_not_estimable():
    runs = _grid(10, backend=("jax", "tensorflow"), rng_seed=11)
    runs["target_scale"] = runs["backend"].map({"jax": "max_freq", "tensorflow": "none"})
    e = factors.effects(runs, RESAMPLES)
    assert list(e.table["factor"]) == ["backend", "target_scale", "max_freq"]
    confounded = e.table.set_index("factor").loc["target_scale"]
    assert not confounded["estimable"]
    assert math.isnan(confounded["median_effect"]) and math.isnan(confounded["odds_ratio"])
    assert math.isfinite(_row(e, "backend")["median_effect"])
    assert e.confounded == ("target_scale=max_freq",)
    assert "confounded with other factors: not estimable" in _sentences(e)["target_scale"]


def test_a_numeric_max_freq_is_an_effect_per_ten_and_the_title_is_factor_effects():
    runs = _grid(20, max_freqs=(10, 20, 30, 40), dropout=(0.1, 0.3), rng_seed=12)
    runs["mae_ratio_test"] += 0.004 * runs["max_freq"].astype(float)  # +0.04 per +10
    e = factors.effects(runs, RESAMPLES)
    assert e.title == "Factor effects" and e.cells is None  # numeric max_freq: no factorial
    freq = _row(e, "max_freq")
    assert freq["level"] == "per +10" and freq["key"] == "max_freq_per_10"
    assert freq["median_low"] < 0.04 < freq["median_high"] and freq["median_low"] > 0
    assert "per +10 max_freq" in _sentences(e)["max_freq"]
    assert "effect_mae_ratio/max_freq_per_10_high" in factors.metrics(e)


# --- interactions ---------------------------------------------------------------------------


def _causes(rng_seed: int = 31) -> pd.DataFrame:
    """The causes design: samples_per_freq 1/10 × target_scale none/max_freq × max_freq 10/50
    × 10 seeds; every divergence in the one cell (1, none, 50), as in the causes study."""
    runs = _grid(10, max_freqs=(10, 50), samples_per_freq=(1, 10),
                 target_scale=("none", "max_freq"), rng_seed=rng_seed)  # fmt: skip
    corner = (
        (runs["samples_per_freq"] == 1)
        & (runs["target_scale"] == "none")
        & (runs["max_freq"] == 50)
    ).to_numpy()
    runs["diverged"] = pd.array(corner, dtype="boolean")
    runs.loc[corner, "mae_ratio_test"] = 1.4
    return runs


def test_divergence_confined_to_one_corner_is_shown_as_cells_not_odds_ratios():
    e = factors.effects(_causes(), RESAMPLES)
    assert e.cells is not None and len(e.cells) == 8
    # A corner is the limit of an additive logit with infinite effects: the test cannot
    # reject it, and the odds ratios are the penalty's, so the cells are shown instead.
    test = e.additivity["divergence"]
    assert test.df == 4 and test.test == "likelihood ratio" and not test.rejected
    assert e.divergence.reason == logistic.SEPARATION
    assert e.cells_instead("divergence") == "separation"
    corner = e.cells[(e.cells["samples_per_freq"] == "1") & (e.cells["target_scale"] == "none")
                     & (e.cells["max_freq"] == "50")].iloc[0]  # fmt: skip
    assert (corner["diverged"], corner["runs"], corner["learned"]) == (10, 10, 0)
    ci = sps.binomtest(10, 10).proportion_ci(0.95, method="exact")
    assert (corner["rate_low"], corner["rate_high"]) == pytest.approx((ci.low, ci.high))
    assert "mae_ratio" not in e.additivity  # a cell with no learned run: not testable
    section = wording.effects_section(e, family_of([], e, None, []))
    text = " ".join(section.bullets)
    assert "**Divergence is confined to 1 of the 8 cells**" in text
    assert "not testable, a cell has no run that learned" in text
    assert "divergence: see the cells (separated: no finite odds ratio)" in text
    assert (section.table["odds ratio of diverging [95% CI]"] == "see cells").all()
    caption, cells = section.tables[0]
    assert caption == "Every cell of the factorial" and len(cells) == 8
    assert factors.metrics(e)["effect_additivity_divergence_p"] == test.p


def test_an_interaction_on_the_logit_scale_rejects_additivity():
    runs = _grid(50, max_freqs=(10,), samples_per_freq=(1, 10),
                 target_scale=("none", "max_freq"), rng_seed=44)  # fmt: skip
    a = (runs["samples_per_freq"] == 1).to_numpy()
    b = (runs["target_scale"] == "max_freq").to_numpy()
    runs = _diverge(runs, np.where(a == b, 0.0, -2.2), rng_seed=45)  # rates 0.5, 0.1, 0.1, 0.5
    e = factors.effects(runs, RESAMPLES)
    assert e.additivity["divergence"].rejected and e.cells_instead("divergence") == "interaction"
    text = " ".join(wording.effects_section(e, family_of([], e, None, [])).bullets)
    assert "**The factors interact for divergence**" in text


def test_additive_effects_are_not_rejected():
    runs = _grid(30, samples_per_freq=(1, 10), target_scale=("none", "max_freq"), rng_seed=41)
    x = (runs["samples_per_freq"] == 1).to_numpy() * 1.0 + (
        runs["target_scale"] == "none"
    ).to_numpy() * 0.8
    runs = _diverge(runs, -1.5 + x, rng_seed=42)
    runs["mae_ratio_test"] += 0.05 * (runs["samples_per_freq"] == 1)
    e = factors.effects(runs, RESAMPLES)
    assert not e.additivity["divergence"].rejected and not e.additivity["mae_ratio"].rejected
    text = " ".join(wording.effects_section(e, family_of([], e, None, [])).bullets)
    assert "**Additivity of divergence is not rejected**" in text
    assert "(not rejecting it does not show it)" in text


def test_an_interaction_in_the_error_is_found():
    runs = _grid(20, samples_per_freq=(1, 10), target_scale=("none", "max_freq"), rng_seed=43)
    both = ((runs["samples_per_freq"] == 1) & (runs["target_scale"] == "none")).to_numpy()
    runs["mae_ratio_test"] += 0.3 * both  # only in one cell
    e = factors.effects(runs, RESAMPLES)
    assert e.additivity["mae_ratio"].rejected


def test_report_places_the_sections_right_after_findings(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "metric_histories", lambda ids, key: {})
    monkeypatch.setattr(store, "artifact_uris", lambda ids: {})
    runs = _causes().assign(eval_run_id=None, mae_train=1.0, run_id="r", backend="jax")
    report.write(runs, stats.summarize(runs), "T", None, tmp_path, 2)
    md = (tmp_path / "report.md").read_text()
    order = ["## Findings", "## Which cause matters", "**Every cell of the factorial**",
             "80 runs over"]  # fmt: skip
    assert [md.index(s) for s in order] == sorted(md.index(s) for s in order)
    assert "- **samples_per_freq=1 vs 10** (40 runs, 10 diverged, 30 learned): " in md
    html = (tmp_path / "report.html").read_text()
    heads = ["<h2>Findings</h2>", "<h2>Which cause matters</h2>"]
    assert [html.index(h) for h in heads] == sorted(html.index(h) for h in heads)
    assert "<b>samples_per_freq=1 vs 10</b>" in html and 'src="http' not in html


def test_with_max_freq_numeric_each_level_is_given_at_each_max_freq_and_pooled():
    """The scale study's design (target_scale × max_freq 10…50): a level without divergence
    gets its pooled and per-cell exact upper bounds; the other, where its runs diverged."""
    from scipy import stats as sps

    from analysis import wording
    from analysis.family import family_of

    rows = []
    for scale in ("none", "max_freq"):
        for m in (10, 20, 30, 40, 50):
            for seed in range(8):
                rows.append({"run_id": f"{scale}{m}{seed}", "status": "FINISHED", "max_freq": m,
                             "seed": seed, "target_scale": scale,
                             "diverged": scale == "none" and m == 30 and seed < 3,
                             "mae_ratio_test": 0.1 + 0.01 * seed, "grid_axes": "target_scale",
                             "study": "s"})  # fmt: skip
    runs = pd.DataFrame(rows).astype({"diverged": "boolean"})
    e = factors.effects(runs, resamples=50)
    assert len(e.by_max_freq) == 10 and set(e.pooled["target_scale"]) == {"none", "max_freq"}
    cell = e.by_max_freq.set_index(["target_scale", "max_freq"]).loc[("none", "30")]
    assert (cell["diverged"], cell["runs"]) == (3, 8)
    bullets = wording.effects_section(e, family_of([], e, None, [])).bullets
    upper = sps.binomtest(0, 40).proportion_ci(0.95, method="exact").high
    scaled = next(b for b in bullets if b.startswith("**target_scale=max_freq: no run"))
    assert f"the rate is at most {upper:.3g} pooled" in scaled
    assert "0/8 at 10" in next(b for b in bullets if b.startswith("**target_scale=none**"))
    assert "3/8 at 30" in next(b for b in bullets if b.startswith("**target_scale=none**"))
    m = factors.metrics(e)
    assert m["level_diverged/target_scale_max_freq"] == 0
    assert m["level_diverged/target_scale_max_freq_high"] == pytest.approx(upper)
    assert m["level_diverged/target_scale_none"] == pytest.approx(3 / 40)


def test_a_level_where_every_run_diverged_gets_no_median_effect_and_the_others_theirs():
    """The asker's setting: every raw-target run diverged, so no run that learned has that
    level; the median model cannot estimate its effect (it was a singular matrix), the
    divergence model still can."""
    runs = _grid(4, max_freqs=(301,), target_scale=["none", "max_freq"])
    raw = (runs["target_scale"] == "none").to_numpy()
    runs["diverged"] = pd.array(raw, dtype="boolean")
    e = factors.effects(runs, RESAMPLES)
    (row,) = e.table.itertuples(index=False)
    assert math.isnan(row.median_effect) and math.isnan(row.median_low)
    assert row.odds_ratio < 1 and row.or_high < 1  # Firth: separated, still a finite ratio
    from analysis import wording
    from analysis.family import family_of

    text = wording.effect_sentence(e.table.iloc[0], e, family_of([], e, None, []))
    assert "median mae_ratio_test: no estimate (a level without runs that learned)" in text
