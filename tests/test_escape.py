"""The time-to-escape analysis (analysis/escape.py) on small constructed tables, checked
against statsmodels, brute force and hand counts; and on the budget study's committed runs."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT
from statsmodels.duration.hazard_regression import PHReg
from statsmodels.duration.survfunc import SurvfuncRight
from statsmodels.stats.proportion import proportion_confint

from analysis import escape, load, stats, wording
from analysis.family import family_of

# Ten runs at two max_freqs, 100 updates each (10 per epoch), checked every 20 updates
# (check_every); NaN: never left the plateau.
ESCAPES = {10: [20, 20, 40, 60, np.nan], 30: [40, 80, np.nan, np.nan, np.nan]}


def _runs(escapes=ESCAPES, budget=100, per_epoch=10, every=20, **extra) -> pd.DataFrame:
    rows = []
    for max_freq, steps in escapes.items():
        for seed, step in enumerate(steps):
            escaped = not np.isnan(step)
            rows.append(
                {
                    "run_id": f"r{max_freq}-{seed}",
                    "status": "FINISHED",
                    "max_freq": max_freq,
                    "seed": seed,
                    "epochs": 200,
                    "train_steps": budget,
                    "check_every": every,
                    "optimizer_steps": float(budget or 200 * per_epoch),
                    "steps_per_epoch": float(per_epoch),
                    "escape_step": step,
                    "diverged": not escaped,
                    "divergence_ratio": 0.5,
                    "failure_mode": None if escaped else "constant",
                    **extra,
                }
            )
    frame = pd.DataFrame(rows)
    frame["diverged"] = frame["diverged"].astype("boolean")
    return frame


def test_records_censor_the_runs_that_never_escaped_at_their_budget():
    rec = escape.records(_runs())
    at10 = rec[rec["max_freq"] == 10]
    assert at10["time"].tolist() == [20, 20, 40, 60, 100]
    assert at10["event"].tolist() == [1, 1, 1, 1, 0]
    assert at10["epochs"].tolist() == [2, 2, 4, 6, 10]


def test_a_run_stopped_by_a_nonfinite_loss_is_censored_at_its_planned_budget():
    runs = _runs({10: [20.0, np.nan]}, budget=0)  # epochs × steps_per_epoch = 2,000
    runs.loc[1, "optimizer_steps"] = 37.0  # it stopped there
    assert escape.budget_of(runs).tolist() == [2000, 2000]
    assert escape.records(runs)["time"].tolist() == [20, 2000]


def test_a_run_the_stopping_rule_ended_keeps_its_planned_budget_and_its_escape():
    runs = _runs({10: [40.0, np.nan]}).assign(stopped_on_escape=["true", "false"])
    runs.loc[0, "optimizer_steps"] = 60.0  # confirmed at the next check, then stopped
    rec = escape.records(runs)
    assert rec["budget"].tolist() == [100, 100] and rec["time"].tolist() == [40, 100]
    assert rec["stopped"].tolist() == [True, False]


# --- the curves and the median ----------------------------------------------------------------


def test_the_curve_is_the_fraction_still_on_the_plateau_at_every_check():
    (e,) = escape.fit(_runs())
    curve, by_epoch = e.curves[10]
    assert curve["time"].tolist() == [0, 20, 40, 60, 80, 100]  # update 0, checks, budget
    assert curve["still"].tolist() == [5, 3, 2, 1, 1, 1]
    # with no run censored before the budget it is the product-limit (Kaplan–Meier) estimate
    km = SurvfuncRight([20, 20, 40, 60, 100], [1, 1, 1, 1, 0])
    at = dict(zip(km.surv_times, km.surv_prob, strict=True))
    for t in (20, 40, 60):
        assert curve.set_index("time").loc[t, "surv"] == pytest.approx(at[t])
    low, high = proportion_confint(curve["still"], 5, alpha=0.05, method="beta")
    np.testing.assert_allclose(curve["low"], np.nan_to_num(low, nan=0.0))
    np.testing.assert_allclose(curve["high"], np.nan_to_num(high, nan=1.0))
    assert curve["high"].iloc[0] == 1 and curve["low"].iloc[0] == pytest.approx(0.025 ** (1 / 5))
    assert by_epoch["time"].tolist() == [t / 10 for t in curve["time"]]


def test_the_median_is_known_to_the_checks_and_its_interval_inverts_theirs():
    (e,) = escape.fit(_runs({**ESCAPES, 50: [20, 20, 20, 60, np.nan]}))
    t = e.table.set_index("max_freq")
    # max_freq 10: 3 of 5 still on at 20, 2 of 5 at 40: the median lies in (20, 40]
    assert t.loc[10, "median_steps"] == 40 and t.loc[10, "median_after"] == 20
    assert wording.median_text({**t.loc[10].to_dict(), "budget": 100.0}).startswith("40 [")
    # max_freq 50: 2 of 5 left by the first check: the median is before it
    assert t.loc[50, "median_steps"] == 20 and t.loc[50, "median_after"] == 0
    assert wording.median_text({**t.loc[50].to_dict(), "budget": 100.0}).startswith("≤ 20 [")
    assert math.isinf(t.loc[30, "median_steps"])  # 3 of 5 never escaped
    assert wording.median_text({**t.loc[30].to_dict(), "budget": 100.0}).startswith("> 100 [")
    # by hand: 16 runs, 12 still on at check 10, 6 at 20, 2 at 30 (CP bounds on the fraction)
    curve = pd.DataFrame({"time": [0.0, 10, 20, 30], "still": [16, 12, 6, 2]})
    low, high = proportion_confint(curve["still"], 16, alpha=0.05, method="beta")
    curve = curve.assign(surv=curve["still"] / 16, low=np.nan_to_num(low), high=high)
    m = escape.median_escape(curve)
    assert (m.value, m.after) == (20, 10)  # 6/16 ≤ ½ first at 20
    assert m.low == 0  # 12/16: lower bound 0.476 < ½, so no check is surely before the median
    assert m.high == 30  # 2/16: upper bound 0.383 < ½


def test_the_table_counts_the_plateau_at_a_quarter_half_and_the_budget():
    (e,) = escape.fit(_runs())
    assert e.budget == 100
    t = e.table.set_index("max_freq")
    assert t.loc[10, "escaped"] == 4 and t.loc[30, "escaped"] == 2
    assert t.loc[10, "plateau_quarter"] == 3  # at 25: the check at 20 (escapes at 20, 20)
    assert t.loc[10, "plateau_half"] == 2 and t.loc[10, "plateau_budget"] == 1
    assert t.loc[30, "plateau_half"] == 4 and t.loc[30, "plateau_budget"] == 3
    low, high = proportion_confint(3, 5, alpha=0.05, method="beta")
    assert t.loc[30, "plateau_budget_low"] == pytest.approx(low)
    assert t.loc[30, "plateau_budget_high"] == pytest.approx(high)
    assert t.loc[30, "mode_constant"] == 3 and t.loc[10, "mode_constant"] == 1


# --- escape vs max_freq --------------------------------------------------------------------


def _brute_force_loglike(rec: pd.DataFrame, eta: dict[int, float]) -> float:
    """Cox's exact discrete likelihood by enumerating every subset of the risk set."""
    total = 0.0
    for when in np.unique(rec.loc[rec["event"] == 1, "time"]):
        at_risk = rec[rec["time"] >= when]
        events = at_risk[(at_risk["time"] == when) & (at_risk["event"] == 1)]
        weights = [eta[m] for m in at_risk["max_freq"]]
        subsets = itertools.combinations(range(len(at_risk)), len(events))
        denominator = sum(math.exp(sum(weights[i] for i in s)) for s in subsets)
        total += sum(eta[m] for m in events["max_freq"]) - math.log(denominator)
    return total


def test_the_conditional_likelihood_is_coxs_exact_one_by_brute_force():
    rec = escape.records(_runs({10: [20, 20, 40, np.nan], 30: [20, 60, np.nan, np.nan],
                                50: [40, 40, 60, 80]}))  # fmt: skip
    sets = escape.risk_sets(rec)
    for eta in ({10: 0.0, 30: 0.0, 50: 0.0}, {10: 0.7, 30: -0.4, 50: 1.3}):
        mine = escape.conditional_loglike(sets, np.array([eta[m] for m in (10, 30, 50)]))
        assert mine == pytest.approx(_brute_force_loglike(rec, eta), rel=1e-10)


def test_without_ties_it_is_the_cox_partial_likelihood_of_statsmodels():
    rec = escape.records(_runs({10: [20, 40, 80, np.nan], 30: [60, 100, np.nan, np.nan]},
                               every=20))  # fmt: skip
    x = (rec["max_freq"].to_numpy(float) - 20) / 10
    ph = PHReg(rec["time"], x[:, None], status=rec["event"])
    sets = escape.risk_sets(rec)
    for beta in (-0.8, 0.0, 0.5):
        assert escape.conditional_loglike(sets, beta * np.array([-1.0, 1.0])) == pytest.approx(
            ph.loglike(np.array([beta]))
        )


def _shaped(pattern: dict[int, list[float]]) -> escape.HazardModel:
    return escape.hazard_model(escape.records(_runs(pattern, budget=600, every=20)))


def test_a_pattern_that_rises_and_falls_gets_no_single_rate_and_says_so():
    slow = [400, 420, 440, 460, 480, 500, 520, 540, np.nan, np.nan]
    fast = [20, 20, 40, 40, 60, 60, 80, 80, 100, 100]
    m = _shaped({10: fast, 30: slow, 50: fast})
    assert m.shape_p < 0.05 and not m.one_rate
    assert m.steps["max_freq"].tolist() == [30, 50]
    assert m.steps["theta"].tolist() == [1.0, 0.0]  # every run later, then every run sooner
    assert m.pattern == "not monotone"
    runs = _runs({10: fast, 30: slow, 50: fast}, budget=600, every=20)
    (e,) = escape.fit(runs)
    family = family_of([], None, None, [e])
    text = wording.escape_model_sentence(e, family, "all runs")
    assert "no single rate fits" in text and "per +10" not in text
    assert "**the pattern is not monotone**" in text


def test_a_steady_pattern_gets_one_rate_with_its_profile_interval():
    pattern = {
        10: [20, 20, 20, 40, 40, 40, 60, 60, 80, 100],
        30: [40, 40, 60, 80, 100, 120, 140, 160, 200, 240],
        50: [60, 100, 140, 180, 220, 260, 300, 340, np.nan, np.nan],
    }
    m = _shaped(pattern)
    assert m.one_rate and m.or10 < 1 and m.or10_low < m.or10 < m.or10_high
    sets = escape.risk_sets(escape.records(_runs(pattern, budget=600, every=20)))

    def loglike(b):
        return escape.conditional_loglike(sets, b * (sets.max_freqs - 30) / 10)

    top = loglike(math.log(m.or10))
    for end in (m.or10_low, m.or10_high):  # the profile drops by χ²₁(0.95)/2 at the ends
        assert top - loglike(math.log(end)) == pytest.approx(3.841458820694124 / 2, abs=1e-3)


def test_the_win_probability_counts_pairs_and_does_not_collapse_when_they_never_overlap():
    a, b = np.array([1.0, 2, 3, 4]), np.array([2.0, 5, 6, np.inf])
    theta, low, high, _ = escape.win_probability(a, b)
    pairs = [(y > x) + 0.5 * (y == x) for x in a for y in b]
    assert theta == pytest.approx(np.mean(pairs))
    assert low < theta < high
    apart = escape.win_probability(np.full(16, 147.0), np.full(16, 735.0))
    assert apart[0] == 1 and apart[2] == 1 and apart[1] == pytest.approx(0.8732, abs=1e-4)
    assert apart[3] < 1e-5
    swapped = escape.win_probability(np.full(16, 735.0), np.full(16, 147.0))
    assert swapped[1:3] == pytest.approx((0.0, 1 - apart[1]))
    # the p-value and the interval agree about ½
    for x, y in ((a, b), (np.arange(10.0), np.arange(10.0) + 4), (a, a)):
        _, lo, hi, pv = escape.win_probability(x, y)
        assert (pv < 0.05) == (not lo <= 0.5 <= hi)


# --- failure or delay, and the stopping rule -------------------------------------------------


def test_late_escapes_are_counted_from_a_quarter_and_half_of_the_budget_over_well_posed_runs():
    runs = _runs({10: [20, 60, 90, np.nan], 60: [90, np.nan]}, time_steps=100)
    (e,) = escape.fit(runs)
    quarter, half = e.late
    assert (quarter.start, quarter.runs, quarter.escaped) == (25, 3, 2)  # 60, 90 | never
    assert (half.start, half.runs, half.escaped) == (50, 3, 2)
    assert e.aliased == (60,)  # max_freq 60 aliases at 100 steps: not counted
    low, high = proportion_confint(2, 3, alpha=0.05, method="beta")
    assert (half.low, half.high) == pytest.approx((low, high))


def test_the_stopping_rule_is_checked_on_full_budget_histories():
    runs = _runs({10: [40.0, np.nan, 80.0], 20: [40.0, np.nan]})
    steps = np.array([0, 20, 40, 60, 100])
    histories = {
        "r10-0": (steps, np.array([2.0, 0.9, 0.3, 0.2, 0.1])),
        # off at two checks in a row, back on the plateau at the end: the rule's wrong call
        "r10-1": (steps, np.array([2.0, 0.3, 0.2, 0.8, 0.9])),
        "r10-2": (steps, np.array([2.0, 0.9, 0.9, 0.9, 0.3])),  # off only at the end
        "r20-0": (steps, np.array([2.0, 0.9, 0.3, 0.2, 0.1])),
        "r20-1": (steps, np.array([2.0, 0.9, 0.8, 0.9, 0.9])),  # never off: not stopped
    }
    (e,) = escape.fit(runs, histories)
    assert (e.rule.runs, e.rule.stopped, e.rule.diverged) == (5, 3, 1)
    table = e.rule.table.set_index("max_freq")
    assert table.loc[10, ["runs", "stopped", "relapsed", "never", "diverged"]].tolist() == [
        3, 2, 1, 1, 1,
    ]  # fmt: skip
    assert table.loc[20, ["runs", "stopped", "relapsed", "never", "diverged"]].tolist() == [
        2, 1, 0, 1, 1,
    ]  # fmt: skip
    low, high = proportion_confint(1, 2, alpha=0.05, method="beta")
    assert (table.loc[10, "low"], table.loc[10, "high"]) == pytest.approx((low, high))
    low, high = proportion_confint(1, 3, alpha=0.05, method="beta")
    assert (e.rule.low, e.rule.high) == pytest.approx((low, high))
    text = wording.rule_sentence(e.rule)
    assert "1 of those ended diverged (1/3" in text
    assert "Relapsed by max_freq (of the runs the rule would have stopped): 10: 1/2 [" in text
    assert "diverged at the budget: 10: 1 vs 1 of 3; 20: 1 vs 1 of 2." in text
    m = escape.metrics([e])
    assert m["stop_rule_relapsed/max_freq_10"] == 0.5
    assert m["stop_rule_relapsed/max_freq_20_runs"] == 1.0
    assert m["never_confirmed/max_freq_20"] == 0.5
    stopped = runs.assign(stopped_on_escape="true", stop_on_escape=True)
    (e,) = escape.fit(stopped, histories)
    assert e.rule is None  # runs under the rule have no full history to check


def test_a_report_with_stopped_runs_names_its_outcome_never_learned_not_divergence():
    runs = _runs({10: [40.0, np.nan, 80.0]}).assign(stopped_on_escape=["true", "false", "true"])
    note = wording.stopped_note(runs)
    assert note.startswith("**Outcome: never learned within the budget**: 2 of the 3 finished")
    assert "not divergence" in note
    assert note.endswith("divergence at the budget is at least this count.")
    assert wording.stopped_note(_runs({10: [40.0, np.nan]})) is None  # no tag: none stopped
    unstopped = _runs({10: [40.0]}).assign(stopped_on_escape="false")
    assert wording.stopped_note(unstopped) is None
    # a stopping study whose runs all ran to the end still counts "never learned"
    assert wording.stopped_note(unstopped.assign(stop_on_escape=True)) is not None


@pytest.mark.parametrize(
    ("n", "k", "verdict"),
    [
        (20, 2, "most of them stay on it: at most 32% leave"),
        (20, 18, "most of them were delayed, not failed: at least 68% leave"),
        (12, 5, "whether most of them are delayed or failed is not resolved"),
    ],
)
def test_failure_or_delay_claims_only_what_its_interval_carries(n, k, verdict):
    low, high = proportion_confint(k, n, alpha=0.05, method="beta")
    text = wording.late_sentence(escape.Late(6000, 24000, n, k, low, high))
    assert f"of the {n} runs still on the plateau at 6,000 updates, {k} left it by 24,000" in text
    assert verdict in text


def test_escapes_are_rejudged_from_the_histories_at_another_threshold():
    runs = _runs({10: [20.0, np.nan]})
    histories = {
        "r10-0": (np.array([0, 20, 40, 100]), np.array([2.0, 0.4, 0.2, 0.1])),
        "r10-1": (np.array([0, 20, 40, 100]), np.array([2.0, 0.9, 0.8, 0.7])),
    }
    assert escape.rejudge(runs, histories, 0.5).tolist()[0] == 20
    assert escape.rejudge(runs, histories, 0.3).tolist()[0] == 40
    assert math.isnan(escape.rejudge(runs, histories, 0.5).tolist()[1])  # diverged
    assert math.isnan(escape.rejudge(runs.assign(run_id="x"), histories, 0.5).iloc[0])


def test_stopped_runs_count_for_divergence_and_escape_never_for_error():
    runs = _runs({10: [20.0, 40.0, np.nan]}).assign(stopped_on_escape=["true", "false", "false"])
    runs = runs.assign(mae_test=[0.1, 0.2, 3.0], mae_ratio_test=0.1, mae_train=0.1,
                       mae_ratio_train=[0.1, 0.1, 0.9], diverged_reason="none")  # fmt: skip
    judged = stats.judged(runs, None)
    assert judged["mae_test"].isna().tolist() == [True, False, False]
    assert judged["diverged"].tolist() == [False, False, True]
    summary = stats.summarize(runs)
    assert summary.loc[0, "stopped"] == 1 and summary.loc[0, "learned"] == 1
    with pytest.raises(stats.UserError, match=r"divergence_ratio=0\.3 is not allowed"):
        stats.judged(runs, 0.3)
    assert stats.judged(runs, 0.6)["diverged"].tolist() == [False, False, True]


def test_no_progress_data_means_no_section():
    old = _runs().drop(columns=["optimizer_steps", "steps_per_epoch", "escape_step"])
    assert escape.fit(old) == [] and not escape.has_progress(old)


def test_the_figure_draws_a_study_of_one_max_freq_and_one_run(tmp_path):
    from analysis import figures

    path = tmp_path / "escape.png"
    figures.escape_survival(escape.fit(_runs({3: [np.nan]})), "one run", path)
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_each_setting_is_analysed_apart_and_named_in_the_metrics():
    runs = pd.concat(
        [_runs(budget=100), _runs({10: [20, np.nan], 30: [np.nan, 80]}, budget=200)],
        ignore_index=True,
    )
    runs["grid_axes"] = "train_steps"
    fits = escape.fit(runs)
    assert [f.setting for f in fits] == [{"train_steps": 100}, {"train_steps": 200}]
    metrics = escape.metrics(fits)
    assert metrics["escape_budget/train_steps_100"] == 100
    assert metrics["plateau_at_budget/train_steps_200/max_freq_30"] == 0.5
    assert metrics["escape_events/train_steps_100"] == 6
    assert metrics["median_escape/train_steps_100/max_freq_10"] == 40
    assert metrics["late_escapes/train_steps_100/from_50_runs"] == 6
    assert "escape_step_theta/train_steps_100/max_freq_30" in metrics


def test_a_median_beyond_the_common_budget_is_bounded_by_its_own_budget():
    """With epochs, max_freq 30 (10 updates an epoch) is followed to 2,000 updates while the
    common budget is max_freq 10's 600: its median's open end is '> 2,000', never '> 600'
    below the median itself."""
    runs = pd.concat(
        [
            _runs({10: [30, 60, 90, np.nan, np.nan]}, budget=0, per_epoch=3, every=30),
            _runs({30: [300, 600, 900, np.nan, np.nan]}, budget=0, per_epoch=10, every=30),
        ],
        ignore_index=True,
    )
    (e,) = escape.fit(runs)
    assert e.budget == 600
    section = wording.escape_section([e], False, family_of([], None, None, [e]))
    column = section.table["median escape, updates [95% CI]"]
    medians = dict(zip(section.table["max_freq"], column, strict=True))
    assert medians[30] == "900 [0, > 2,000]", medians
    assert medians[10] == "90 [0, > 600]", medians


def test_the_section_says_failure_delay_and_the_budget_trend():
    fits = escape.fit(_runs())
    family = family_of([], None, None, fits)
    section = wording.escape_section(fits, False, family)
    text = " ".join(section.bullets)
    assert "of the 6 runs still on the plateau at 50 updates, 2 left it by 100" in text
    assert "At a common budget of 100 updates** still on the plateau: 1/5 at 10, 3/5 at 30" in text
    assert "cannot tell the two apart" in text
    assert list(section.table["max_freq"]) == [10, 30]
    assert section.table.iloc[1]["median escape, updates [95% CI]"].startswith("> 100")


def test_the_budget_record_gets_no_single_rate_and_a_median_at_or_before_the_first_check():
    """The budget study's committed runs, re-read: a log-linear rate is rejected against
    categories, so no per-+10 escape rate is printed, and max_freq 10's median is '≤ 147'."""
    runs = load.read_csv(ROOT / "docs" / "results" / "budget" / "runs.csv")
    (e,) = escape.fit(stats.judged(runs, None))
    assert e.model.shape_p < 0.001 and not e.model.one_rate
    family = family_of([], None, None, [e])
    section = wording.escape_section([e], False, family)
    text = " ".join(section.bullets)
    assert (
        "no single rate fits" in text
        and "per +10 max_freq (95% CI" not in text.split("At a common budget")[0]
    )
    row = section.table.set_index("max_freq").loc[10]
    assert row["median escape, updates [95% CI]"].startswith("≤ 147 [")
    late = {round(x.start): (x.runs, x.escaped) for x in e.late}
    assert late[3000] == (13, 1)  # over 10–50: the aliased max_freq 60 is not counted


def test_counts_at_the_budget_that_are_not_one_trend_get_no_odds_per_10():
    """The budget record's runs still on the plateau at 6,000 updates (0, 2, 6, 3, 1 of 16
    over 10–50) are not one log-linear trend (the deviance test rejects it), so the sentence
    reads them per max_freq and prints no odds ratio per +10; a steady pattern still gets one."""
    runs = load.read_csv(ROOT / "docs" / "results" / "budget" / "runs.csv")
    (e,) = escape.fit(stats.judged(runs, None))
    assert e.at_budget_shape.p < 0.05
    family = family_of([], None, None, [e])
    text = wording.budget_sentence(e, family, ("budget", ""))
    assert "one log-linear trend does not fit these counts (deviance 11" in text
    assert "odds change by a factor" not in text and "per max_freq" in text
    steady = escape.fit(_runs({10: [20] * 4 + [np.nan], 20: [20] * 3 + [np.nan] * 2,
                               30: [20] * 2 + [np.nan] * 3}))  # fmt: skip
    (s,) = steady
    assert s.at_budget_shape.p >= 0.05
    text = wording.budget_sentence(s, family_of([], None, None, steady), ("budget", ""))
    assert "odds change by a factor" in text or "odds ×" in text


def _divergence_legend(runs: pd.DataFrame, tmp_path, monkeypatch) -> list[str]:
    from analysis import figures, trends

    seen = {}
    monkeypatch.setattr(figures, "_finish", lambda fig, ax, path, title: seen.setdefault("ax", ax))
    judged = stats.judged(runs, None)
    figures.divergence_rate(
        stats.summarize(judged), judged, "s", tmp_path / "d.png", trends.fit(judged)
    )
    return seen["ax"].get_legend_handles_labels()[1]


def test_the_divergence_figure_draws_one_trend_only_where_one_fits(tmp_path, monkeypatch):
    """The budget record's rates (0, 2, 6, 3, 1 of 16) reject one logistic trend (bootstrap p
    0.02, χ² 0.012): the figure draws no fitted curve and says why; the extend record's (2, 5,
    1, 0 of 24) get their curve."""
    budget = load.read_csv(ROOT / "docs" / "results" / "budget" / "runs.csv")
    labels = _divergence_legend(budget, tmp_path, monkeypatch)
    assert any("one logistic trend rejected (deviance, bootstrap p = 0.02" in t for t in labels), (
        labels
    )
    assert not any("fit: odds" in t for t in labels)
    extend = load.read_csv(ROOT / "docs" / "results" / "extend" / "runs.csv")
    assert any("fit: odds" in t for t in _divergence_legend(extend, tmp_path, monkeypatch))


@pytest.mark.slow  # ~50 s: a real sweep with a train_steps axis
def test_a_tiny_sweep_with_a_budget_axis_is_reported_per_budget(store, tmp_path):
    """Real runs: max_freq 3 and 4 × train_steps 2 and 5, one seed, a tiny network."""
    from analysis.__main__ import main as analysis_main
    from pipeline import sweep

    sweep.main(
        ["--max_freqs", "3,4", "--seeds", "1", "--train_steps", "2,5", "--workers", "1",
         "--samples_per_freq", "2", "--test_samples_per_freq", "2", "--lstm_units", "4",
         "--dense_units", "3", "--batch_size", "2", "--study", "budget-axis"]
    )  # fmt: skip
    runs = store.runs(step="main", study="budget-axis")
    assert sorted(
        (r.data.params["train_steps"], r.data.metrics["optimizer_steps"]) for r in runs
    ) == [
        ("2", 2.0),
        ("2", 2.0),
        ("5", 5.0),
        ("5", 5.0),
    ]
    out = tmp_path / "reports"
    analysis_main(["--study", "budget-axis", "--out", str(out)])
    md = (out / "budget-axis" / "report.md").read_text()
    assert "## Leaving the plateau: failure or delay?" in md
    for steps in (2, 5):
        assert f"train_steps={steps}: **At a common budget of {steps} updates**" in md
    (analysis,) = store.runs(step="analysis")
    assert analysis.data.metrics["escape_budget/train_steps_2"] == 2
    assert analysis.data.metrics["escape_budget/train_steps_5"] == 5
    assert (out / "budget-axis" / "escape_survival.png").read_bytes()[:4] == b"\x89PNG"


def test_a_rule_check_without_relapses_says_none_relapsed():
    from analysis import escape as esc
    from analysis import wording

    table = pd.DataFrame(
        {"max_freq": [301], "runs": [4], "stopped": [4], "relapsed": [0], "low": [0.0],
         "high": [0.602], "never": [0], "diverged": [0]}
    )  # fmt: skip
    text = wording.rule_sentence(esc.RuleCheck(table))
    assert (
        "0 of those ended diverged (0/4; 95% Clopper–Pearson 0 to 0.602): none relapsed." in text
    )
    assert "they relapsed" not in text
