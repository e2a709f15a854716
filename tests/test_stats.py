"""analysis statistics on small hand-made tables with known answers."""

import math

import numpy as np
import pandas as pd
import pytest

from analysis.load import tidy
from analysis.stats import Z95, mean_ci, rejudge, summarize, wilson_interval


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
    assert five["mae_test_median_converged"] == 1.5  # runs 1 and 2 only
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
