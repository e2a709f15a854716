"""Summary statistics per max_freq, with honest uncertainty.

MAE statistics use FINISHED runs with a finite MAE; the divergence rate uses every FINISHED
run. FAILED, KILLED and RUNNING runs are counted in their own columns, never silently dropped.
"""

import math

import numpy as np
import pandas as pd
from scipy import stats

Z95 = 1.959963984540054


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion k/n (NaNs when n = 0)."""
    if n == 0:
        return math.nan, math.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and its Student-t confidence interval."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = float(values.mean())
    if n == 1:
        return mean, math.nan, math.nan
    half = stats.t.ppf(0.5 + level / 2, n - 1) * values.std(ddof=1) / math.sqrt(n)
    return mean, mean - half, mean + half


def rejudge(runs: pd.DataFrame, ratio: float | None) -> pd.Series:
    """The divergence verdict at another threshold, from the logged mae_ratio_train: a run
    diverged if its loss went non-finite or mae_ratio_train ≥ ratio. None keeps the logged one."""
    if ratio is None:
        return runs["diverged"]
    nonfinite = runs["diverged_reason"].eq("nonfinite_loss").fillna(False)
    verdict = nonfinite | runs["mae_ratio_train"].isna() | (runs["mae_ratio_train"] >= ratio)
    return verdict.where(runs["status"].eq("FINISHED")).astype("boolean")


def _mae_columns(values: pd.Series, name: str) -> dict[str, float]:
    finite = values[np.isfinite(values)].to_numpy()
    if len(finite) == 0:
        q1 = median = q3 = math.nan
    else:
        q1, median, q3 = np.percentile(finite, [25, 50, 75])
    mean, low, high = mean_ci(finite)
    return {
        f"{name}_median": median,
        f"{name}_q1": q1,
        f"{name}_q3": q3,
        f"{name}_mean": mean,
        f"{name}_ci_low": low,
        f"{name}_ci_high": high,
    }


def summarize(runs: pd.DataFrame, ratio: float | None = None) -> pd.DataFrame:
    """One row per max_freq: run counts by status, MAE statistics, divergence rate."""
    runs = runs.assign(diverged=rejudge(runs, ratio))
    rows = []
    for max_freq, group in runs.groupby("max_freq", sort=True):
        status = group["status"].value_counts()
        done = group[group["status"] == "FINISHED"]
        diverged = done["diverged"].fillna(True).astype(bool)
        k, n = int(diverged.sum()), len(done)
        low, high = wilson_interval(k, n)
        row = {
            "max_freq": int(max_freq),
            "runs": len(group),
            **{
                s.lower(): int(status.get(s, 0))
                for s in ("FINISHED", "FAILED", "KILLED", "RUNNING")
            },
            **_mae_columns(done["mae_train"], "mae_train"),
            **_mae_columns(done["mae_test"], "mae_test"),
            "mae_test_median_converged": float(done.loc[~diverged, "mae_test"].median()),
            "diverged": k,
            "divergence_rate": k / n if n else math.nan,
            "divergence_ci_low": low,
            "divergence_ci_high": high,
        }
        for ref in ("ref_fft_mae_test", "ref_forest_mae_test"):
            row[f"{ref}_median"] = float(done[ref].median()) if ref in done else math.nan
        rows.append(row)
    return pd.DataFrame(rows)
