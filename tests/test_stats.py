"""analysis statistics on small hand-made tables with known answers."""

import math

import numpy as np
import pandas as pd
import pytest

from analysis.load import tidy
from analysis.stats import Z95, judged, mean_ci, median_ci, rejudge, summarize, wilson_interval
from pipeline.names import NONE
from pipeline.progress import divergence_reason


def test_wilson_interval_known_values_and_formula():
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0 and hi == pytest.approx(Z95**2 / (10 + Z95**2))
    for k, n in ((1, 7), (3, 4), (20, 20)):
        p, z = k / n, Z95
        centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
        half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
        assert wilson_interval(k, n) == pytest.approx(
            (max(0, centre - half), min(1, centre + half))
        )
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_mean_ci_is_student_t():
    mean, lo, hi = mean_ci(np.array([1.0, 2.0, 3.0]))
    # t(0.975, 2) = 4.3027; sd = 1; half-width = 4.3027 / sqrt(3)
    assert mean == 2 and hi - mean == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)
    assert lo == pytest.approx(2 * mean - hi)
    assert math.isnan(mean_ci(np.array([5.0]))[1])


def test_median_ci_is_the_order_statistic_interval():
    values = np.arange(10.0, 0.0, -1.0)  # 10 … 1, unsorted
    # n = 10: P(B ≤ 1) = 11/1024 ≤ 2.5% < P(B ≤ 2), so the 2nd and 9th order statistics.
    assert median_ci(values) == (5.5, 2.0, 9.0)
    assert median_ci(np.arange(6.0)) == (2.5, 0.0, 5.0)  # n = 6: the extremes, 96.9%
    median, low, high = median_ci(np.arange(5.0))  # n = 5: 1 − 2/32 < 95%, no interval
    assert median == 2 and math.isnan(low) and math.isnan(high)
    assert all(math.isnan(v) for v in median_ci(np.array([])))
    # Coverage exactly at the level counts: n = 3, 1 − 2·(1/8) = 75%.
    assert median_ci(np.array([3.0, 1.0, 2.0]), level=0.75) == (2.0, 1.0, 3.0)


def test_median_ci_covers_and_stays_positive_for_skewed_positive_data():
    rng = np.random.default_rng(0)
    covered = 0
    for _ in range(400):
        sample = rng.lognormal(0.0, 2.0, 25)  # true median 1; the t-interval dips below 0
        median, low, high = median_ci(sample)
        assert 0 < low <= median <= high
        covered += low <= 1.0 <= high
    assert 0.93 <= covered / 400 <= 0.995
    assert mean_ci(rng.lognormal(0.0, 2.0, 25))[1] < 0


def _runs() -> pd.DataFrame:
    rows = [
        # max_freq, status, mae_test, mae_train, mae_ratio_train, diverged, reason
        (5, "FINISHED", 1.0, 0.9, 0.1, False, "none"),
        (5, "FINISHED", 2.0, 1.9, 0.3, False, "none"),
        (5, "FINISHED", 3.0, 2.9, 0.6, True, "mae_ratio"),
        (5, "FAILED", np.nan, np.nan, np.nan, pd.NA, pd.NA),
        (5, "KILLED", np.nan, np.nan, np.nan, pd.NA, pd.NA),
        (10, "FINISHED", 4.0, 4.0, 0.45, False, "none"),
        (10, "FINISHED", np.nan, np.nan, np.nan, True, "nonfinite_loss"),
    ]
    frame = pd.DataFrame(
        rows,
        columns=[
            "max_freq",
            "status",
            "mae_test",
            "mae_train",
            "mae_ratio_train",
            "diverged",
            "diverged_reason",
        ],
    )
    frame["diverged"] = frame["diverged"].astype("boolean")
    frame["seed"] = range(len(frame))
    return frame


def test_summary_counts_statuses_and_computes_statistics():
    s = summarize(_runs()).set_index("max_freq")
    five = s.loc[5]
    assert (five["runs"], five["finished"], five["failed"], five["killed"]) == (5, 3, 1, 1)
    assert five["mae_test_median"] == 2.0
    assert (five["mae_test_q1"], five["mae_test_q3"]) == (1.5, 2.5)
    assert five["mae_test_mean"] == 2.0
    assert math.isnan(five["mae_test_median_ci_low"])  # 3 runs: too few for a 95% interval
    assert five["mae_test_median_converged"] == 1.5  # runs 1 and 2 only
    # The two outcomes apart: the runs that learned have their own median, IQR and count.
    assert five["learned"] == 2 and five["mae_test_learned_median"] == 1.5
    assert (five["mae_test_learned_q1"], five["mae_test_learned_q3"]) == (1.25, 1.75)
    assert five["diverged"] == 1 and five["divergence_rate"] == pytest.approx(1 / 3)
    assert (five["divergence_ci_low"], five["divergence_ci_high"]) == pytest.approx(
        wilson_interval(1, 3)
    )
    ten = s.loc[10]
    assert ten["finished"] == 2 and ten["diverged"] == 1  # the NaN-loss run
    assert ten["mae_test_median"] == 4.0  # the non-finite run is left out of MAE statistics


def test_rethresholding_from_the_logged_ratio():
    runs = _runs()
    assert rejudge(runs, None).equals(runs["diverged"])
    strict = rejudge(runs, 0.2)
    assert strict.tolist()[:3] == [False, True, True]
    assert strict[6]  # non-finite stays diverged at any threshold
    assert pd.isna(strict[3]) and pd.isna(strict[4])  # FAILED / KILLED: no verdict
    assert summarize(runs, ratio=0.2).set_index("max_freq").loc[5, "diverged"] == 2
    assert summarize(runs, ratio=10).set_index("max_freq").loc[5, "diverged"] == 0


def test_rejudge_applies_the_pipelines_rule():
    runs = _runs().assign(mae_ratio_train=[0.1, 0.3, 0.6, np.nan, np.nan, 0.45, np.nan])
    for ratio in (0.05, 0.3, 0.45, 1.0):
        verdict = rejudge(runs, ratio)
        for i in (0, 1, 2, 5):
            rule = divergence_reason((), runs.loc[i, "mae_ratio_train"], ratio) != NONE
            assert bool(verdict[i]) is rule


def test_summary_keeps_settings_apart_unless_rejudged():
    runs = pd.concat([_runs().assign(dropout=0.1), _runs().assign(dropout=0.3)])
    summary = summarize(runs)
    assert list(summary.columns[:2]) == ["dropout", "max_freq"]
    assert summary[["dropout", "max_freq"]].values.tolist() == [
        [0.1, 5],
        [0.1, 10],
        [0.3, 5],
        [0.3, 10],
    ]
    # Runs judged at different logged thresholds are different settings, until re-judged.
    mixed = pd.concat([_runs().assign(divergence_ratio=0.5), _runs().assign(divergence_ratio=0.3)])
    assert len(summarize(mixed)) == 4 and "divergence_ratio" in summarize(mixed)
    assert summarize(mixed, ratio=0.4)["runs"].tolist() == [10, 4]
    assert (judged(mixed, 0.4)["divergence_ratio"] == 0.4).all()


def test_tidy_types_params_from_strings():
    raw = pd.DataFrame(
        {
            "run_id": ["a"],
            "experiment_id": ["1"],
            "status": ["FINISHED"],
            "start_time": [pd.Timestamp("2026-01-01T00:00:00Z")],
            "end_time": [pd.Timestamp("2026-01-01T00:00:30Z")],
            "params.max_freq": ["20"],
            "params.seed": ["3"],
            "params.dropout": ["0.1"],
            "params.backend": ["jax"],
            "metrics.mae_test": [1.5],
            "metrics.diverged": [1.0],
            "tags.study": ["s"],
        }
    )
    runs = tidy(raw)
    assert runs["max_freq"].dtype == "Int64" and runs.loc[0, "max_freq"] == 20
    assert runs["dropout"].dtype == float and runs.loc[0, "backend"] == "jax"
    assert runs.loc[0, "duration_s"] == 30 and bool(runs.loc[0, "diverged"]) is True
    assert runs.loc[0, "study"] == "s"
