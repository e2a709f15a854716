"""Trend models on synthetic runs tables with known answers (no tracking store)."""

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats as sps
from scipy.special import expit

from analysis import logistic, report, settings, stats, store, trends, wording
from analysis.family import Family

MAX_FREQS = (5, 10, 20, 30, 40)


def _runs(
    seeds: int,
    intercept: float = -3.0,
    slope: float = 0.06,
    exponent: float = 1.3,
    rng_seed: int = 0,
    max_freqs: tuple[int, ...] = MAX_FREQS,
    **params,
) -> pd.DataFrame:
    """diverged ~ Bernoulli(expit(intercept + slope·max_freq)); non-diverged runs have
    mae_test = 0.05·max_freq^exponent·lognormal(0, 0.5), diverged ones a huge MAE."""
    rng = np.random.default_rng(rng_seed)
    max_freq = np.repeat(max_freqs, seeds)
    diverged = rng.random(len(max_freq)) < expit(intercept + slope * max_freq)
    mae = 0.05 * max_freq**exponent * np.exp(rng.normal(0, 0.5, len(max_freq)))
    return pd.DataFrame(
        {
            "run_id": [f"run{i}" for i in range(len(max_freq))],  # bookkeeping, not a param
            "status": "FINISHED",
            "max_freq": pd.array(max_freq, dtype="Int64"),
            "seed": np.tile(np.arange(seeds), len(max_freqs)),
            "time_steps": 100,
            "epochs": 200,
            "diverged": pd.array(diverged, dtype="boolean"),
            "mae_test": np.where(diverged, 1e3, mae),
            "mae_train": np.where(diverged, 1e3, mae),
            **params,
        }
    )


# --- divergence ----------------------------------------------------------------------------


def test_logistic_fit_recovers_a_known_slope():
    d = trends.divergence_trend(_runs(seeds=300))
    assert d.method == "logit" and d.reason == "" and d.runs == 1500
    assert d.or10_low < math.exp(0.6) < d.or10_high
    assert d.or10_high / d.or10_low < 1.6  # 1,500 runs: a narrow interval
    assert d.verdict == "grows" and d.p_increasing < 1e-6 and d.p < 1e-6


def test_the_logistic_fit_is_statsmodels_logit():
    runs = _runs(seeds=40, rng_seed=11)
    d = trends.divergence_trend(runs)
    x = runs["max_freq"].to_numpy(float)
    ref = sm.Logit(runs["diverged"].to_numpy(float), sm.add_constant(x)).fit(disp=0)
    assert d.method == "logit"
    assert d.coef == pytest.approx(tuple(ref.params), rel=1e-6)
    low, high = ref.conf_int()[1]
    assert (d.or10_low, d.or10_high) == pytest.approx((math.exp(10 * low), math.exp(10 * high)))
    assert d.p == pytest.approx(ref.pvalues[1], rel=1e-6)  # two-sided Wald


def test_logistic_interval_covers_the_true_odds_ratio_about_95_percent_of_the_time():
    covered = [trends.divergence_trend(_runs(seeds=60, slope=0.04, rng_seed=s)) for s in range(80)]
    rate = np.mean([d.or10_low < math.exp(0.4) < d.or10_high for d in covered])
    assert 0.85 <= rate <= 1.0


def test_flat_divergence_is_cannot_tell():
    d = trends.divergence_trend(_runs(seeds=60, intercept=-1.0, slope=0.0, rng_seed=3))
    assert d.or10_low < 1 < d.or10_high and d.verdict == "cannot tell"
    assert 0.05 < d.p_increasing < 0.95 and d.p > 0.05
    text = wording.divergence_finding(d, Family({("d",): d.p}).adjust(), ("d",))
    assert (
        "**Divergence vs max_freq: not resolved**: the odds of diverging change by a factor "
        f"between {wording.fmt(d.or10_low)} and {wording.fmt(d.or10_high)}" in text
    )
    assert "no effect" not in text and "[test 1](#tests)" in text  # its p: the tests table


def test_separation_is_detected_flagged_and_gives_a_finite_odds_ratio():
    runs = _runs(seeds=5)
    runs["diverged"] = pd.array(runs["max_freq"] >= 30, dtype="boolean")
    d = trends.divergence_trend(runs)
    assert d.method == "firth" and d.reason == logistic.SEPARATION
    assert math.isfinite(d.or10) and math.isfinite(d.or10_high) and 1 < d.or10_low < d.or10
    # Maximum likelihood runs off towards infinity on the same data.
    x = runs["max_freq"].to_numpy(float)
    with pytest.warns(Warning):
        ml = sm.Logit(runs["diverged"].to_numpy(float), sm.add_constant(x)).fit(disp=0)
    assert math.exp(10 * ml.params[1]) > 1e6 > d.or10
    text = wording.divergence_finding(d, Family(), ("d",))
    assert (
        d.verdict == "grows"
        and "[Firth](METHODS#firth) logistic regression" in text
        and "separation" in text
    )


def test_firth_on_two_points_is_the_odds_ratio_with_half_added_to_each_cell():
    # A known closed form: with one binary covariate, Firth's estimate is Haldane's.
    runs = _runs(seeds=10, max_freqs=(10, 20))
    runs["diverged"] = pd.array([False] * 10 + [True] * 7 + [False] * 3, dtype="boolean")
    d = trends.divergence_trend(runs)
    assert d.method == "firth"
    assert d.or10 == pytest.approx((7.5 / 3.5) / (0.5 / 10.5), rel=1e-6)


def test_firth_estimate_maximises_the_penalised_likelihood():
    runs = _runs(seeds=8, rng_seed=1)  # few events: the Firth path
    d = trends.divergence_trend(runs)
    assert d.method == "firth" and d.reason == logistic.FEW_EVENTS
    x = np.column_stack([np.ones(len(runs)), runs["max_freq"].to_numpy(float)])
    y = runs["diverged"].to_numpy(float)

    def penalised(beta):  # written out here, independently of trends.py
        p = expit(x @ beta)
        info = (x.T * (p * (1 - p))) @ x
        return np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)) + 0.5 * np.log(np.linalg.det(info))

    beta = np.array(d.coef)
    for step in (np.array([1e-4, 0]), np.array([0, 1e-6])):
        assert penalised(beta) >= max(penalised(beta + step), penalised(beta - step))


def test_firth_converges_where_plain_scoring_steps_oscillate():
    runs = _runs(seeds=1, max_freqs=(18, 19, 41))
    runs["diverged"] = pd.array([False, True, False], dtype="boolean")
    d = trends.divergence_trend(runs)
    assert d.method == "firth" and d.or10_low < d.or10 < d.or10_high and d.verdict == "cannot tell"


def test_small_studies_always_give_a_finite_ordered_interval_or_an_explained_no_fit():
    rng = np.random.default_rng(9)
    for _ in range(40):
        freqs = tuple(sorted(rng.choice(np.arange(2, 60), rng.integers(2, 6), replace=False)))
        runs = _runs(int(rng.integers(1, 6)), max_freqs=freqs, rng_seed=int(rng.integers(1e6)))
        if rng.random() < 0.5:  # a threshold: separation
            runs["diverged"] = pd.array(runs["max_freq"] >= rng.choice(freqs), dtype="boolean")
        d = trends.divergence_trend(runs)
        if d.method:
            assert 0 < d.or10_low <= d.or10 <= d.or10_high < math.inf and 0 <= d.p_increasing <= 1
        else:
            assert d.reason and math.isnan(d.or10)


def test_firth_profile_interval_agrees_with_wald_in_large_samples(monkeypatch):
    runs = _runs(seeds=300, rng_seed=2)
    ml = trends.divergence_trend(runs)
    monkeypatch.setattr(logistic, "MIN_EVENTS", 10**9)
    firth = trends.divergence_trend(runs)
    assert (ml.method, firth.method) == ("logit", "firth")
    assert firth.or10 == pytest.approx(ml.or10, rel=0.01)
    assert firth.or10_low == pytest.approx(ml.or10_low, rel=0.01)
    assert firth.or10_high == pytest.approx(ml.or10_high, rel=0.01)
    assert firth.p_increasing < 1e-6 and firth.p == pytest.approx(ml.p, abs=1e-6)


@pytest.mark.parametrize("everything", [False, True])
def test_no_events_or_only_events_give_no_odds_ratio(everything):
    runs = _runs(seeds=10)
    runs["diverged"] = pd.array([everything] * len(runs), dtype="boolean")
    (fit,) = trends.fit(runs)
    d = fit.divergence
    assert d.method == "" and math.isnan(d.or10) and d.verdict == "no fit"
    assert d.reason == ("only events" if everything else "no events")
    assert math.isnan(fit.seeds.seeds) and trends.divergence_curve(d, [5, 10]).empty
    metrics = trends.metrics([fit])
    assert math.isnan(metrics["trend_divergence_or10"]) and metrics["trend_divergence_runs"] == 50
    text = wording.divergence_finding(d, Family(), ("d",))
    assert ("Every run diverged" if everything else "No divergence observed") in text
    assert "odds of diverging multiply" not in text


def test_divergence_curve_band_contains_the_fit_and_the_truth():
    d = trends.divergence_trend(_runs(seeds=300))
    curve = trends.divergence_curve(d, np.array(MAX_FREQS))
    assert (curve["low"] < curve["rate"]).all() and (curve["rate"] < curve["high"]).all()
    truth = expit(-3.0 + 0.06 * np.array(MAX_FREQS))
    assert ((curve["low"] < truth) & (truth < curve["high"])).all()


# --- error ---------------------------------------------------------------------------------


def test_power_law_exponent_is_recovered_without_diverged_runs():
    runs = _runs(seeds=200)
    e = trends.error_trend(runs)
    assert e.runs == int((~runs["diverged"]).sum())  # diverged runs' huge MAE left out
    assert e.low < 1.3 < e.high and e.high - e.low < 0.2
    assert e.verdict == "grows"
    curve = trends.error_curve(e, np.array([5.0, 40.0]))
    truth = 0.05 * np.array([5.0, 40.0]) ** 1.3  # the median of the lognormal noise
    assert ((curve["low"] < truth) & (truth < curve["high"])).all()


def test_flat_error_is_not_resolved_and_unusable_mae_is_ignored():
    runs = _runs(seeds=30, exponent=0.0, slope=0.0, intercept=-5.0, rng_seed=4)
    runs.loc[:3, "mae_test"] = [0.0, np.nan, np.inf, -1.0]
    e = trends.error_trend(runs)
    assert e.runs == int((~runs["diverged"]).sum()) - 4
    assert e.low < 0 < e.high and e.verdict == "cannot tell" and e.p > 0.05
    text = wording.error_finding(e, Family({("e",): e.p}).adjust(), ("e",))
    assert "not resolved**: the exponent b in test MAE ∝ max_freq^b lies between" in text
    assert "no effect" not in text


def test_the_exponent_interval_is_welch_satterthwaite_by_hand():
    """Per max_freq j: n_j runs, mean m_j and variance s_j² of log MAE; slope = Σ w_j m_j
    with w_j = n_j (x_j − x̄) / Σ n_j (x_j − x̄)²; Var = Σ w_j² s_j² / n_j; df by
    Welch–Satterthwaite."""
    runs = _runs(seeds=12, slope=0.0, intercept=-9, rng_seed=5)
    runs = runs[runs["seed"] < 4 + runs["max_freq"] // 10]  # unequal runs per max_freq
    e = trends.error_trend(runs)
    lx = np.log(runs["max_freq"].to_numpy(float))
    ly = np.log(runs["mae_test"].to_numpy(float))
    xs = np.unique(lx)
    n = np.array([np.sum(lx == v) for v in xs])
    m = np.array([ly[lx == v].mean() for v in xs])
    v = np.array([ly[lx == v].var(ddof=1) for v in xs])
    xbar = n @ xs / n.sum()
    w = n * (xs - xbar) / (n @ (xs - xbar) ** 2)
    a = w**2 * v / n
    df = a.sum() ** 2 / np.sum(a**2 / (n - 1))
    half = sps.t.ppf(0.975, df) * math.sqrt(a.sum())
    assert e.exponent == pytest.approx(w @ m)
    assert e.exponent == pytest.approx(sm.OLS(ly, sm.add_constant(lx)).fit().params[1])
    assert (e.low, e.high) == pytest.approx((w @ m - half, w @ m + half))
    assert e.p == pytest.approx(2 * sps.t.sf(abs(w @ m) / math.sqrt(a.sum()), df))
    curve = trends.error_curve(e, np.array([5.0, 40.0]))
    assert (curve["low"] < curve["mae"]).all() and (curve["mae"] < curve["high"]).all()


def test_one_max_freq_or_one_run_per_max_freq_gives_no_interval():
    assert math.isnan(trends.error_trend(_runs(seeds=5, max_freqs=(10,))).exponent)
    e = trends.error_trend(_runs(seeds=1, slope=0.0, intercept=-9))
    assert math.isfinite(e.exponent) and math.isnan(e.low) and e.reason == "one run each"


def test_a_max_freq_with_one_run_borrows_the_pooled_variance():
    runs = _runs(seeds=6, slope=0.0, intercept=-9, rng_seed=8)
    runs = runs[(runs["max_freq"] != 40) | (runs["seed"] == 0)]
    e = trends.error_trend(runs)
    assert e.singles == (40,) and math.isfinite(e.low)
    others = e.cells.var[e.cells.n > 1]
    assert e.cells.var[e.cells.n == 1][0] == pytest.approx(others.mean())  # equal df: the mean
    assert "max_freq 40 has one run" in wording.error_finding(e, Family(), ("e",))


# --- seeds ---------------------------------------------------------------------------------


def _trend(slope: float, intercept: float = -2.0, width: float = 0.5) -> trends.DivergenceTrend:
    """A fitted trend whose interval on the slope is slope·(1 ± width)."""
    return trends.DivergenceTrend(
        runs=25, events=5, max_freqs=MAX_FREQS, method="logit", coef=(intercept, slope),
        or10=math.exp(10 * slope), or10_low=math.exp(10 * slope * (1 - width)),
        or10_high=math.exp(10 * slope * (1 + width)),
    )  # fmt: skip


def test_the_simulation_fits_exactly_as_the_report_does():
    rng = np.random.default_rng(3)
    x = np.array(MAX_FREQS, float) - np.mean(MAX_FREQS)
    for n in (2, 5, 12, 40):
        k = rng.binomial(n, rng.uniform(0, 1, (60, 1)) * rng.uniform(0.2, 1, (60, len(x))))
        p, sign = trends.batch_p_values(x, k, n)
        for r in range(len(k)):
            runs = _runs(n, max_freqs=MAX_FREQS)
            runs["diverged"] = pd.array(
                np.concatenate([np.arange(n) < kk for kk in k[r]]), dtype="boolean"
            )
            d = trends.divergence_trend(runs)
            if not d.method:
                assert math.isnan(p[r])
                continue
            assert p[r] == pytest.approx(d.p, abs=1e-6)
            if abs(d.coef[1]) > 1e-9:  # an exactly flat fit has no side
                assert sign[r] == np.sign(d.coef[1])


def test_advice_is_monotone_in_the_effect_and_infinite_for_a_flat_trend():
    # Rates stay in (0.05, 0.75): with saturated rates even a steep slope is hard to measure.
    slopes = (0.1, 0.05, 0.03, 0.02)
    advice = [trends.seeds_needed(_trend(b, intercept=-3.0)) for b in slopes]
    needed = [a.seeds for a in advice]
    assert all(math.isfinite(n) for n in needed)
    assert needed == sorted(needed) and len(set(needed)) == len(needed)
    assert all(a.strong <= a.seeds <= a.weak for a in advice)
    assert math.isinf(trends.seeds_needed(_trend(0.0)).seeds)
    reaches_zero = trends.seeds_needed(_trend(0.03, intercept=-3.0, width=1.5))
    assert math.isinf(reaches_zero.weak) and math.isfinite(reaches_zero.seeds)
    fit = trends.Trends({}, _trend(0.0), trends.ErrorTrend(0, ()), trends.seeds_needed(_trend(0)))
    text = wording.seeds_finding(fit)
    assert f"more than {trends.SEED_CAP} seeds per max_freq" in text


def test_the_advised_seeds_reach_the_stated_power_in_fresh_simulations():
    """The report's own fit on studies drawn afresh (other random numbers than the advice's)
    at the advised count reaches 80% power within Monte-Carlo error, and clearly less at
    half the count."""
    truth = _trend(0.05)
    n = int(trends.seeds_needed(truth).seeds)
    assert 8 < n < 200

    def power(seeds: int, reps: int = 300) -> float:
        hits = [
            trends.divergence_trend(_runs(seeds, intercept=-2.0, slope=0.05, rng_seed=1000 + s))
            .or10_low > 1
            for s in range(reps)
        ]  # fmt: skip
        return float(np.mean(hits))

    mc = math.sqrt(0.8 * 0.2 / 300)
    assert abs(power(n) - 0.8) < 3 * mc
    assert power(n // 2) < 0.8 - 3 * mc


def test_the_advice_is_within_one_seed_of_a_fresh_4000_study_simulation():
    """Monte-Carlo error small enough to advise: at a realistic truth (the budget study's
    divergence trend at the strong end of its interval, odds ×1.8 per +10 at max_freq 10…50),
    the count the report advises and the count that 4,000 studies drawn with other random
    numbers need differ by at most one seed."""
    truth = _trend(math.log(1.8) / 10, intercept=-1.6 - 3 * math.log(1.8), width=0.1)
    truth = dataclasses.replace(truth, max_freqs=(10, 20, 30, 40, 50))
    advised = trends.seeds_needed(truth).seeds
    sim = trends._Simulation(truth.max_freqs, 4000, trends.SEED_CAP, seed=2026)
    centred = truth.coef[0] + truth.coef[1] * 30
    fresh = sim.seeds(centred, truth.coef[1], trends.SEED_POWER)
    assert 10 < advised < 60 and abs(advised - fresh) <= 1, (advised, fresh)


def test_the_rate_difference_is_newcombes_and_its_p_value_agrees_with_it():
    from statsmodels.stats.proportion import confint_proportions_2indep

    for k1, n1, k2, n2 in ((4, 32, 12, 32), (0, 16, 6, 16), (6, 16, 1, 16), (3, 16, 3, 16),
                           (0, 32, 0, 32), (16, 16, 0, 16), (2, 16, 6, 16)):  # fmt: skip
        diff, low, high, p = trends.rate_difference(k1, n1, k2, n2)
        assert diff == k2 / n2 - k1 / n1
        if 0 < k1 + k2 < n1 + n2:
            ref = confint_proportions_2indep(k2, n2, k1, n1, method="newcomb", compare="diff")
            assert (low, high) == pytest.approx(ref, abs=1e-9)
        assert (p < 0.05) == (not low <= 0 <= high), (k1, k2, p, low, high)
        _, low99, high99, _ = trends.rate_difference(k1, n1, k2, n2, 0.99)
        assert (p < 0.01) == (not low99 <= 0 <= high99)
    assert trends.rate_difference(0, 16, 6, 16)[3] == pytest.approx(0.0094, abs=5e-4)


# --- settings ------------------------------------------------------------------------------


def _two_settings() -> pd.DataFrame:
    return pd.concat(
        [
            _runs(seeds=40, slope=0.0, intercept=-1.5, dropout=0.1, rng_seed=6),
            _runs(seeds=40, slope=0.1, dropout=0.3, rng_seed=7),
        ],
        ignore_index=True,
    )


def test_a_varying_parameter_gives_one_fit_and_summary_row_per_value():
    runs = _two_settings().assign(duration_s=np.arange(400.0), study="s")
    assert settings.varying_params(runs) == ["dropout"]  # not run_id, seed, duration_s, …
    fits = trends.fit(runs)
    assert [f.setting for f in fits] == [{"dropout": 0.1}, {"dropout": 0.3}]
    assert fits[0].divergence.verdict == "cannot tell" and fits[1].divergence.verdict == "grows"
    assert all(f.divergence.runs == 200 for f in fits)
    summary = stats.summarize(runs)
    assert len(summary) == 2 * len(MAX_FREQS)
    assert summary.groupby("dropout")["finished"].sum().to_dict() == {0.1: 200, 0.3: 200}
    metrics = trends.metrics(fits)
    assert metrics["trend_divergence_runs/dropout_0.1"] == 200
    # per setting: 16 trend numbers, the shape tests (the deviance's bootstrap and χ² p, the
    # curvature with its interval, the rise-then-fall p and the peak), and 4 per step
    per_setting = 16 + 7 + 4 * (len(MAX_FREQS) - 1)
    assert "trend_divergence_or10" not in metrics and len(metrics) == 2 * per_setting
    assert "trend_divergence_shape_p/dropout_0.3" in metrics
    sections = wording.findings(fits, runs, Family())
    assert "Runs differ in dropout (0.1, 0.3)" in sections[0][1][0]
    assert [title for title, _ in sections[1:]] == ["dropout=0.1", "dropout=0.3"]


def test_declared_grid_axes_and_undeclared_differences_are_both_said():
    runs = _two_settings().assign(backend="jax", grid_axes="backend")
    runs.loc[runs.index[::2], "backend"] = "tensorflow"
    assert settings.declared_axes(runs) == ["backend"]
    assert settings.varying_params(runs) == ["dropout", "backend"]
    fits = trends.fit(runs)
    assert len(fits) == 4 and {"dropout", "backend"} == set(fits[0].setting)
    assert len(stats.summarize(runs)) == 4 * len(MAX_FREQS)
    general = wording.findings(fits, runs, Family())[0][1]
    assert general[0].startswith("**Grid axes backend (jax, tensorflow)**")
    assert general[1].startswith("**Runs differ in dropout (0.1, 0.3)**, which is not a declared")
    assert "varied max_freq, seed, backend" in general[1]


def test_a_parameter_missing_on_some_runs_is_its_own_setting():
    runs = _two_settings()
    runs.loc[runs["dropout"] == 0.3, "dropout"] = np.nan
    assert [f.setting for f in trends.fit(runs)] == [{"dropout": 0.1}, {"dropout": None}]
    assert settings.label({"dropout": None, "backend": "jax"}) == "dropout=unset, backend=jax"


def test_report_opens_with_findings(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "metric_histories", lambda ids, key: {})
    monkeypatch.setattr(store, "artifact_uris", lambda ids: {})
    runs = _two_settings().assign(
        eval_run_id=None, mae_train=1.0, samples_per_freq=10, backend="jax"
    )
    files = report.write(runs, stats.summarize(runs), "T", None, tmp_path, 2)
    assert all(f.exists() for f in files)
    md = (tmp_path / "report.md").read_text()
    assert md.index("## Findings") < md.index("| dropout | max_freq |")
    assert "- **dropout=0.3**\n  - **Divergence grows with max_freq**" in md
    html = (tmp_path / "report.html").read_text()
    assert html.index("<h2>Findings</h2>") < html.index("<table")
    assert "<b>Divergence vs max_freq: not resolved</b>" in html
    # p-values once, in the table of tests, which the sentences name by number
    findings = md.split("## Tests\n", 1)[0]
    assert "two-sided p" not in findings and "Holm-adjusted" not in findings
    tests = md.split("## Tests\n", 1)[1]
    assert "| test | what it tests | setting | p | Holm p |" in tests
    assert "| 1 | divergence: one trend per +10 max_freq (odds ratio) | dropout=0.1 |" in tests
    assert md.index("## At a glance") < md.index("## Findings") < md.index("## Tests")
    assert "- **Divergence (dropout=0.3): grows with max_freq" in md
    assert '<h2 id="tests">Tests</h2>' in html and '<a href="#tests">test 1</a>' in html
    assert "<figcaption>" in html and "*Left: each learned run's test MAE (dots)" in md


def test_aliased_max_freqs_are_shown_but_left_out_of_the_fits():
    runs = _runs(seeds=20, max_freqs=(10, 20, 30, 60))  # time_steps 100: 60 is aliased
    (fit,) = trends.fit(runs)
    assert fit.aliased == (60,)
    assert fit.divergence.max_freqs == (10, 20, 30) and fit.error.max_freqs == (10, 20, 30)
    assert len(stats.summarize(runs)) == 4  # the table keeps it
    lines = wording.findings([fit], runs, Family())[-1][1]
    assert lines[-1] == (
        "**Left out of these fits**: max_freq 60, aliased (the table and figures show them)."
    )
