"""The calibrated shape tests (analysis/curvature.py), the reference reading of equal-update
studies (analysis/escape.py) and the names of the two outcomes (analysis/settings.py)."""

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT
from scipy.special import expit

from analysis import curvature, escape, load, logistic, stats, trends, wording
from analysis.family import family_of
from analysis.settings import DIVERGED, NEVER_LEARNED, outcome_of

SHAPE = np.array([10, 15, 20, 25, 30, 35, 40, 45, 50])


def test_a_curve_that_rises_and_falls_is_resolved_with_its_peak():
    events = np.array([1, 3, 8, 14, 18, 14, 8, 3, 1])
    t = curvature.shape_tests(SHAPE, events, np.full(9, 32), replicates=500)
    assert t.rises_then_falls and t.rise_fall_p < 0.01
    assert t.curvature < 0 and t.curvature_high < 0
    assert t.peak == pytest.approx(30, abs=1)
    assert t.p < 0.05  # and one trend does not fit it


def test_one_trend_is_neither_rejected_nor_called_a_rise_then_fall():
    # the expected counts of a rising logistic trend: no curvature at all
    runs = np.full(9, 320)
    events = np.round(320 * expit(-2 + 0.05 * (SHAPE - 30))).astype(int)
    t = curvature.shape_tests(SHAPE, events, runs, replicates=500)
    assert t.p > 0.5 and t.rise_fall_p > 0.2
    assert t.curvature_low < 0 < t.curvature_high
    # a convex curve (falls then rises) is the other side of the one-sided test
    convex = np.array([14, 8, 3, 1, 1, 1, 3, 8, 14])
    assert curvature.shape_tests(SHAPE, convex, np.full(9, 32), replicates=500).rise_fall_p > 0.9


def test_the_deviance_is_the_chi2_statistic_and_its_bootstrap_p_is_calibrated():
    """The deviance equals the logistic fit's against the categories; under one trend at the
    shape design, the bootstrap test rejects about 5% of studies (200 studies: within ±4.5%)."""
    events = np.array([3, 2, 4, 4, 5, 8, 4, 4, 2])  # the shape record's never-learned counts
    t = curvature.shape_tests(SHAPE, events, np.full(9, 32))
    assert t.deviance == pytest.approx(6.83, abs=0.01) and t.df == 7
    assert t.p_chi2 == pytest.approx(0.447, abs=0.001)
    assert t.replicates == curvature.REPLICATES
    rng = np.random.default_rng(3)
    rates = expit(-1.9 + 0.006 * (SHAPE - 30))
    rejected = []
    for i in range(200):
        k = rng.binomial(32, rates)
        rejected.append(curvature.shape_tests(SHAPE, k, np.full(9, 32), 200, seed=i).p < 0.05)
    assert 0.005 <= np.mean(rejected) <= 0.095


def test_nothing_to_test_below_three_max_freqs_or_without_events():
    assert curvature.shape_tests(np.array([10, 20]), np.array([1, 2]), np.array([9, 9])) is None
    assert curvature.shape_tests(SHAPE[:4], np.zeros(4), np.full(4, 8)) is None


def test_the_report_prints_the_bootstrap_p_and_the_rise_then_fall_test():
    runs = load.read_csv(ROOT / "docs" / "results" / "shape" / "runs.csv")
    judged = stats.judged(runs, None)
    fits = trends.fit(judged)
    family = family_of(fits, None, None, [])
    text = wording.shape_finding(fits[0], family, "all runs", outcome_of(judged))
    shape, bend = (family.number(("divergence_shape", "all runs")),
                   family.number(("rise_fall", "all runs")))  # fmt: skip
    assert f"[bootstrap](METHODS#shape-tests), 2000 studies: [test {shape}](#tests)" in text
    assert "**it rises and then falls** (only before Holm's adjustment" in text
    assert f"one-sided, against one trend: [test {bend}](#tests)" in text
    # their p-values: once, in the report's table of tests
    table = wording.tests_table(family, outcome_of(judged)).set_index("test")
    assert table.loc[shape, "p"] == "0.51"
    assert "one trend, against a level per max_freq" in table.loc[shape, "what it tests"]
    assert table.loc[bend, "p"] == "0.024"
    assert "rise then a fall" in table.loc[bend, "what it tests"]
    assert "Never learned within the budget: 3/32 at 10" in text


# --- the reference reading --------------------------------------------------------------------


def _equal_updates(escapes: dict[int, list[float]], per_epoch: dict[int, int], budget: int):
    rows = []
    for m, steps in escapes.items():
        for seed, step in enumerate(steps):
            rows.append({"run_id": f"{m}-{seed}", "status": "FINISHED", "max_freq": m,
                         "seed": seed, "epochs": 200, "train_steps": budget, "check_every": 0,
                         "optimizer_steps": float(budget),
                         "steps_per_epoch": float(per_epoch[m]), "escape_step": step,
                         "diverged": bool(np.isnan(step)), "divergence_ratio": 0.5})  # fmt: skip
    frame = pd.DataFrame(rows)
    frame["diverged"] = frame["diverged"].astype("boolean")
    return frame


def test_each_max_freq_is_read_at_its_own_200_epoch_point():
    """3 and 10 updates an epoch: the points are 600 and 2,000. A run escaping at 600 has
    learned there; one at 735, or later than 2,000, or never, has not."""
    runs = _equal_updates(
        {10: [147, 600, 735, np.nan], 30: [1900, 2000, 2100, 5000]}, {10: 3, 30: 10}, 6000
    )
    (e,) = escape.fit(stats.judged(runs, None))
    t = e.reference.table.set_index("max_freq")
    assert t.loc[10, "update"] == 600 and t.loc[30, "update"] == 2000
    assert t.loc[10, "not_learned"] == 2 and t.loc[30, "not_learned"] == 2
    assert t.loc[10, "at_budget"] == 1 and t.loc[30, "at_budget"] == 0
    low, high = escape.clopper_pearson(2, 4)
    assert t.loc[10, "low"] == pytest.approx(low) and t.loc[10, "high"] == pytest.approx(high)
    assert e.reference.trend.runs == 8  # 10 and 30 are both in the range 10–30


def test_a_study_at_the_reference_epochs_has_no_separate_reading():
    runs = _equal_updates({10: [147, np.nan], 30: [300, 900]}, {10: 3, 30: 10}, 0)
    runs["optimizer_steps"] = runs["max_freq"].map({10: 600.0, 30: 2000.0})
    (e,) = escape.fit(stats.judged(runs, None))
    assert e.reference is None


def test_the_shape_records_reading_rises_to_30_and_then_falls():
    """The issue's numbers, from the committed shape record: 4, 3, 7, 9, 12 of 32 over
    10–30, odds ×2.34 per +10 [1.32, 4.18], p = 0.004; and a rise then a fall over 10–50."""
    runs = load.read_csv(ROOT / "docs" / "results" / "shape" / "runs.csv")
    (e,) = escape.fit(stats.judged(runs, None))
    r = e.reference
    assert r.table["not_learned"].tolist() == [4, 3, 7, 9, 12, 9, 5, 6, 2]
    assert r.table["update"].tolist() == [600, 1000, 1200, 1600, 2000, 2200, 2600, 2800, 3200]
    assert (r.trend.or10, r.trend.or10_low, r.trend.or10_high) == pytest.approx(
        (2.34, 1.32, 4.18), abs=0.005
    )
    assert r.trend.p == pytest.approx(0.0038, abs=0.0001)
    assert r.shape.tests.rises_then_falls and r.shape.tests.peak == pytest.approx(29.6, abs=0.1)
    family = family_of([], None, None, [e])
    text = wording.reference_sentence(e, family, "all runs")
    assert text.startswith("**At the reference 200 epochs**")
    assert "not yet learned 4/32 at 10, 3/32 at 15" in text and "odds ×2.34" in text
    section = wording.escape_section([e], False, family)
    caption, table = section.tables[-1]
    assert caption == "At the reference 200 epochs, beside the budget"
    assert "never learned within the budget at the budget (6,000)" in table.columns


# --- the outcome names -----------------------------------------------------------------------


def test_a_stopping_study_counts_never_learned_and_a_full_one_diverged():
    shape = load.read_csv(ROOT / "docs" / "results" / "shape" / "runs.csv")
    relapse = load.read_csv(ROOT / "docs" / "results" / "relapse" / "runs.csv")
    assert outcome_of(shape) is NEVER_LEARNED and outcome_of(relapse) is DIVERGED
    d = trends.divergence_trend(stats.judged(shape, None))
    family = family_of([], None, None, [])
    text = wording.divergence_finding(d, family, ("divergence", "x"), NEVER_LEARNED)
    assert "diverg" not in text
    assert "36 of 288 finished runs never learned within the budget: 3 at 10, 2 at 15" in text
    view = wording.readable_summary(stats.summarize(stats.judged(shape, None)), NEVER_LEARNED)
    assert "never learned within the budget [95% Wilson]" in view.columns


def _axis_label(runs, tmp_path, monkeypatch) -> tuple[str, str]:
    from analysis import figures

    seen = {}
    monkeypatch.setattr(
        figures, "_finish", lambda fig, ax, path, title: seen.update(ax=ax, title=title)
    )
    judged = stats.judged(runs, None)
    figures.divergence_rate(
        stats.summarize(judged), judged, "s", tmp_path / "d.png", trends.fit(judged),
        outcome_of(judged),
    )  # fmt: skip
    return seen["ax"].get_ylabel(), seen["title"]


def test_the_rate_figure_names_the_studys_outcome(tmp_path, monkeypatch):
    shape = load.read_csv(ROOT / "docs" / "results" / "shape" / "runs.csv")
    label, title = _axis_label(shape, tmp_path, monkeypatch)
    assert label == "fraction of finished runs never learned within the budget"
    assert title.startswith("Never learned within the budget vs max_freq")
    relapse = load.read_csv(ROOT / "docs" / "results" / "relapse" / "runs.csv")
    assert _axis_label(relapse, tmp_path, monkeypatch)[0] == "fraction of finished runs diverged"


@pytest.mark.parametrize("study", ["shape", "extend"])
def test_no_stopped_records_report_calls_its_count_diverged(study):
    """Words about divergence in a stopping study's report are only the ones naming the other
    outcome or the threshold: never a count of its runs."""
    text = (ROOT / "docs" / "results" / study / "report.md").read_text()
    allowed = ("divergence at the budget", "divergence threshold", "divergence_ratio",
               "error and never learning", "not divergence", "divergence_rate.png",
               "error_and_divergence.png")  # fmt: skip
    for phrase in allowed:
        text = text.replace(phrase, "")
    assert "diverg" not in text.lower(), text[text.lower().index("diverg") - 200 :][:400]


def test_logistic_fit_many_is_what_the_shape_tests_fit():
    """The statistic's trend fit is the report's maximum likelihood (logistic.fit)."""
    events = np.array([3, 2, 4, 4, 5, 8, 4, 4, 2])
    z = (SHAPE - SHAPE.mean()) / curvature.PER
    design = np.column_stack([np.ones_like(z), z])
    beta, _, ok = logistic.fit_many(design, events[None].astype(float), np.full(9, 32.0))
    one = logistic.fit(logistic.Data.of(design, events, np.full(9, 32)))
    assert ok[0] and beta[0] == pytest.approx(one.beta, abs=1e-8)


def test_the_overview_figure_draws_a_study_where_no_run_learned(tmp_path):
    """Every run diverged (a tiny study of 2 epochs): the error panel is empty and says so,
    and the figure is still written."""
    from analysis import figures

    runs = load.read_csv(ROOT / "docs" / "results" / "budget" / "runs.csv")
    runs = runs[runs["max_freq"] == 30].assign(diverged=True)
    runs["diverged"] = runs["diverged"].astype("boolean")
    judged = stats.judged(runs, None)
    path = tmp_path / "overview.png"
    figures.error_and_divergence(judged, stats.summarize(judged), "tiny", path)
    assert path.stat().st_size > 5_000
