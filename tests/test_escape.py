"""The time-to-escape analysis (analysis/escape.py) on small constructed tables: its numbers
are statsmodels' and the product-limit estimator's by hand."""

import math

import numpy as np
import pandas as pd
import pytest
from statsmodels.duration.hazard_regression import PHReg
from statsmodels.duration.survfunc import SurvfuncRight

from analysis import escape, stats, wording

# Ten runs at two max_freqs, 100 updates each (10 per epoch); NaN: never left the plateau.
ESCAPES = {10: [20, 20, 40, 60, np.nan], 30: [40, 80, np.nan, np.nan, np.nan]}


def _runs(escapes=ESCAPES, budget=100, per_epoch=10, **extra) -> pd.DataFrame:
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
                    "optimizer_steps": float(budget or 200 * per_epoch),
                    "steps_per_epoch": float(per_epoch),
                    "escape_step": step,
                    "diverged": not escaped,
                    "failure_mode": None if escaped else "constant",
                    **extra,
                }
            )
    frame = pd.DataFrame(rows)
    frame["diverged"] = frame["diverged"].astype("boolean")
    return frame


def _product_limit(times, events):
    """Kaplan–Meier by hand: at each distinct event time, S *= 1 − d / n at risk."""
    times, events = np.asarray(times, float), np.asarray(events, int)
    surv, out = 1.0, {}
    for t in np.unique(times[events == 1]):
        at_risk = np.sum(times >= t)
        died = np.sum((times == t) & (events == 1))
        surv *= 1 - died / at_risk
        out[float(t)] = surv
    return out


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


def test_kaplan_meier_curves_and_bands_are_statsmodels_and_the_product_limit():
    (e,) = escape.fit(_runs())
    for max_freq, escapes in ESCAPES.items():
        times = np.where(np.isnan(escapes), 100, escapes)
        events = (~np.isnan(escapes)).astype(int)
        curve, by_epoch = e.curves[max_freq]
        reference = SurvfuncRight(times, events)
        curve = curve.iloc[:-1] if curve["time"].iloc[-1] == 100 else curve  # followed to 100
        assert curve["time"].tolist() == [0, *reference.surv_times]
        np.testing.assert_allclose(curve["surv"], [1, *reference.surv_prob])
        hand = _product_limit(times, events)
        np.testing.assert_allclose(curve["surv"].iloc[1:], list(hand.values()))
        assert by_epoch["time"].tolist()[: len(curve)] == [t / 10 for t in curve["time"]]
        assert e.curves[max_freq][0]["time"].iloc[-1] == 100  # drawn to the end of the budget
        # log(−log) band from Greenwood's standard error
        inner = curve.iloc[1:][(curve["surv"].iloc[1:] > 0) & (curve["surv"].iloc[1:] < 1)]
        se = dict(zip(reference.surv_times, reference.surv_prob_se, strict=True))
        for row in inner.itertuples():
            half = 1.959963984540054 * se[row.time] / abs(row.surv * math.log(row.surv))
            assert row.low == pytest.approx(row.surv ** math.exp(half))
            assert row.high == pytest.approx(row.surv ** math.exp(-half))
            assert row.low < row.surv < row.high


def test_the_table_counts_the_plateau_at_half_and_full_budget_with_wilson_intervals():
    (e,) = escape.fit(_runs())
    assert e.budget == 100
    t = e.table.set_index("max_freq")
    assert t.loc[10, "escaped"] == 4 and t.loc[30, "escaped"] == 2
    assert t.loc[10, "plateau_half"] == 2 and t.loc[10, "plateau_budget"] == 1  # 60 and never
    assert t.loc[30, "plateau_half"] == 4 and t.loc[30, "plateau_budget"] == 3
    assert t.loc[10, "late_escapes"] == 1 and t.loc[30, "late_escapes"] == 1
    low, high = stats.wilson_interval(3, 5)
    assert (t.loc[30, "plateau_budget_low"], t.loc[30, "plateau_budget_high"]) == (low, high)
    assert t.loc[10, "median_steps"] == SurvfuncRight(
        [20, 20, 40, 60, 100], [1, 1, 1, 1, 0]
    ).quantile(0.5)
    assert math.isinf(t.loc[30, "median_steps"])  # 3 of 5 never escaped: S stays above ½
    assert t.loc[10, "median_epochs"] == t.loc[10, "median_steps"] / 10
    assert t.loc[30, "mode_constant"] == 3 and t.loc[10, "mode_constant"] == 1


def test_the_cox_model_is_statsmodels_phreg_per_ten_max_freq():
    runs = _runs()
    (e,) = escape.fit(runs)
    rec = escape.records(runs)
    x = (rec["max_freq"] - rec["max_freq"].mean()) / 10
    ref = PHReg(rec["time"], x.to_numpy()[:, None], status=rec["event"], ties="efron").fit()
    beta, se = ref.params[0], ref.bse[0]
    assert e.trend.hr10 == pytest.approx(math.exp(beta))
    assert e.trend.hr10_low == pytest.approx(math.exp(beta - 1.959963984540054 * se))
    assert e.trend.hr10_high == pytest.approx(math.exp(beta + 1.959963984540054 * se))
    assert e.trend.runs == 10 and e.trend.events == 6
    assert e.trend.hr10 < 1  # escapes come later at max_freq 30


def test_escape_times_separated_by_max_freq_give_no_rate_ratio_and_say_why():
    # Every run at max_freq 10 escapes before any at 50 does: the Cox likelihood keeps rising.
    runs = _runs({10: [5, 10, 15, 20, 25], 50: [60, 70, 80, np.nan, np.nan]})
    (e,) = escape.fit(runs)
    assert (e.trend.verdict, e.trend.reason) == ("no fit", "separated")
    assert math.isnan(e.trend.hr10_high) and e.trend.events == 8
    text = wording.escape_trend_sentence(e, wording.Family(), ())
    assert "separated by max_freq" in text and "8 of 10 runs escaped" in text
    overlapping = _runs({10: [5, 10, 65, 20, 25], 50: [60, 15, 80, np.nan, np.nan]})
    (e,) = escape.fit(overlapping)
    assert e.trend.verdict != "no fit" and e.trend.hr10 < 1


def test_divergence_at_the_common_budget_reads_the_curves_at_that_budget():
    # max_freq 10 runs 200 updates, 30 runs 600 (same epochs, more updates per epoch): at the
    # common budget of 200 updates, a run of max_freq 30 that escaped at 300 is on the plateau.
    a = _runs({10: [50, 150, np.nan]}, budget=0, per_epoch=1)  # 200 epochs × 1
    b = _runs({30: [100, 300, 500]}, budget=0, per_epoch=3)  # 200 epochs × 3
    (e,) = escape.fit(pd.concat([a, b], ignore_index=True))
    assert e.budget == 200
    t = e.table.set_index("max_freq")
    assert t.loc[10, "plateau_budget"] == 1 and t.loc[30, "plateau_budget"] == 2
    assert t.loc[10, "diverged_end"] == 1 and t.loc[30, "diverged_end"] == 0
    assert e.at_budget.events == 3 and e.at_budget.runs == 6


def test_each_setting_is_analysed_apart_and_named_in_the_metrics():
    runs = pd.concat(
        [_runs(budget=100), _runs({10: [20, np.nan], 30: [np.nan, 90]}, budget=200)],
        ignore_index=True,
    )
    runs["grid_axes"] = "train_steps"
    fits = escape.fit(runs)
    assert [f.setting for f in fits] == [{"train_steps": 100}, {"train_steps": 200}]
    metrics = escape.metrics(fits)
    assert metrics["escape_budget/train_steps_100"] == 100
    assert metrics["escape_budget/train_steps_200"] == 200
    assert metrics["plateau_at_budget/train_steps_200/max_freq_30"] == 0.5
    assert metrics["escape_events/train_steps_100"] == 6


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


def test_no_progress_data_means_no_section():
    old = _runs().drop(columns=["optimizer_steps", "steps_per_epoch", "escape_step"])
    assert escape.fit(old) == [] and not escape.has_progress(old)


def test_the_section_says_failure_delay_and_the_budget_trend():
    fits = escape.fit(_runs())
    family = wording.family_of([], None, None, fits)
    section = wording.escape_section(fits, False, family)
    text = " ".join(section.bullets)
    assert (
        "of the 6 runs still on the plateau at 50 updates (half the budget), 2 left it by 100"
        in text
    )
    assert "At a common budget of 100 updates** still on the plateau: 1/5 at 10, 3/5 at 30" in text
    assert "Cox model" in text
    assert list(section.table["max_freq"]) == [10, 30]
    assert section.table.iloc[1]["median escape, updates [95% CI]"] == "not reached"


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


@pytest.mark.parametrize(
    ("half", "full", "verdict"),
    [
        (40, 40, "the curves have flattened"),
        (18, 16, "mostly failure: the chance of a late escape is below 33%"),
        (20, 2, "mostly delay"),
        (6, 3, "not resolved: the chance lies between"),
    ],
)
def test_failure_or_delay_follows_the_interval_on_late_escapes(half, full, verdict):
    from types import SimpleNamespace

    table = pd.DataFrame({"plateau_half": [half], "plateau_budget": [full]})
    text = wording.delay_sentence(SimpleNamespace(table=table, budget=6000.0))
    assert f"of the {half} runs still on the plateau at 3000 updates" in text
    assert verdict in text
