"""Summary statistics per setting and max_freq, with honest uncertainty.

One row per max_freq and combination of the parameters that vary among the runs besides
max_freq and seed (settings.varying_params), never pooled across them. Two outcomes, apart:
the divergence rate over every FINISHED run, and the error of the runs that learned (FINISHED,
not diverged, finite MAE). The error over all finished runs is kept too, labelled as such:
it mixes both outcomes (a difference in divergence shows up in it again). FAILED, KILLED and
RUNNING runs are counted in their own columns, never silently dropped. Medians get a
distribution-free interval.

summary.csv columns: the varying parameters (if any), `max_freq`, `runs`, `finished`, `failed`,
`killed`, `running`; `learned` (runs in the learned-run statistics: not diverged, not stopped
by stop_on_escape, finite error), `stopped` (runs the stopping rule ended: their errors are
at the stopping update, so they are in no error statistic), and
`mae_test_learned_median`, `_median_ci_low`, `_median_ci_high`, `_q1`, `_q3` (of the learned
runs); for `mae_train` and `mae_test` over all finished runs each: `_median`,
`_median_ci_low`, `_median_ci_high`, `_q1`, `_q3`, `_mean` (no interval for the mean: on
these skewed errors a Student-t interval covered about 84% at 10 runs, docs/coverage.md, so
the `_ci_low`/`_ci_high` columns were dropped); `mae_test_median_converged` (the learned
runs' median, the column's earlier name); `diverged`, `divergence_rate`,
`divergence_ci_low`, `divergence_ci_high` (Wilson), `ref_fft_mae_test_median`,
`ref_forest_mae_test_median`.
"""

import math

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from analysis.settings import diverged_of, settings, stopped_of
from pipeline.names import NONE, NONFINITE, UserError
from pipeline.progress import divergence_reason

Z95 = 1.959963984540054


def verdict(low: float, high: float, null: float) -> str:
    """The one rule for reading an interval: 'grows' (it lies above `null`), 'falls' (below),
    'cannot tell' (it contains `null`: not resolved, never "no effect") or 'no fit'."""
    if math.isnan(low) or math.isnan(high):
        return "no fit"
    return "grows" if low > null else "falls" if high < null else "cannot tell"


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion k/n at the level of z (statsmodels'
    proportion_confint; NaNs when n = 0)."""
    if n == 0:
        return math.nan, math.nan
    low, high = proportion_confint(k, n, alpha=2 * stats.norm.sf(z), method="wilson")
    return float(low), float(high)


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


def median_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Median and its distribution-free interval [x₍ᵣ₎, x₍ₙ₊₁₋ᵣ₎] (order statistics): it covers
    the true median with probability 1 − 2·P(B ≤ r − 1), B ~ Binomial(n, ½), at least `level`
    for the largest such r. Fewer than 6 values cannot reach 95%: the bounds are then NaN."""
    values = np.sort(np.asarray(values, dtype=float))
    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan
    tail = (1 - level) / 2
    r = int(stats.binom.ppf(tail, n, 0.5))  # smallest r with P(B ≤ r) ≥ tail
    if stats.binom.cdf(r, n, 0.5) <= tail:
        r += 1
    median = float(np.median(values))
    if r == 0:
        return median, math.nan, math.nan
    return median, float(values[r - 1]), float(values[n - r])


def rejudge(runs: pd.DataFrame, ratio: float | None) -> pd.Series:
    """The divergence verdict at another threshold, from the logged mae_ratio_train, by the
    pipeline's own rule (pipeline.progress.divergence_reason); a run whose loss went non-finite
    stays diverged. None keeps the logged verdict."""
    if ratio is None:
        return runs["diverged"]
    nonfinite = runs["diverged_reason"].eq(NONFINITE).fillna(False).to_numpy(bool)
    by_rule = [divergence_reason((), float(r), ratio) != NONE for r in runs["mae_ratio_train"]]
    verdict = pd.Series(nonfinite | np.array(by_rule, dtype=bool), index=runs.index)
    return verdict.where(runs["status"].eq("FINISHED")).astype("boolean")


# A stopped run's errors are at its stopping update: never pooled with full-budget runs' errors.
ERROR_METRICS = (
    "mae_train", "mae_test", "rmse_train", "rmse_test", "r2_train", "r2_test", "mae_ratio_test",
)  # fmt: skip


def judged(runs: pd.DataFrame, ratio: float | None) -> pd.DataFrame:
    """The runs with their verdict at `ratio` (None: as logged), and the errors of runs the
    stopping rule ended blanked (NaN): they count for divergence and the time to escape, not
    for any error statistic. Re-judged runs all share the threshold, so `divergence_ratio` no
    longer tells them apart. A stopped run was stopped by its own threshold: re-judging it
    at a lower one is refused (what it did after its stop is unknown)."""
    stopped = stopped_of(runs)
    if ratio is not None and stopped.any():
        own = runs.loc[stopped, "divergence_ratio"].astype(float)
        if (ratio < own).any():
            raise UserError(
                f"divergence_ratio={ratio:g} is not allowed: {int((ratio < own).sum())} runs "
                f"were stopped once off the plateau at {own.min():g} (stop_on_escape), so they "
                f"can be re-judged only at {own.max():g} or above"
            )
    blank = {c: runs[c].where(~stopped) for c in ERROR_METRICS if c in runs}
    runs = runs.assign(diverged=rejudge(runs, ratio), **blank)
    return runs if ratio is None else runs.assign(divergence_ratio=float(ratio))


def _mae_columns(values: pd.Series, name: str) -> dict[str, float]:
    finite = values[np.isfinite(values)].to_numpy()
    q1, q3 = np.percentile(finite, [25, 75]) if len(finite) else (math.nan, math.nan)
    median, median_low, median_high = median_ci(finite)
    return {
        f"{name}_median": median,
        f"{name}_median_ci_low": median_low,
        f"{name}_median_ci_high": median_high,
        f"{name}_q1": q1,
        f"{name}_q3": q3,
        f"{name}_mean": float(finite.mean()) if len(finite) else math.nan,
    }


def summarize(runs: pd.DataFrame, ratio: float | None = None) -> pd.DataFrame:
    """One row per setting of the varying parameters and max_freq: run counts by status, MAE
    statistics, divergence rate (verdicts at `ratio`; None: as logged)."""
    runs = judged(runs, ratio)
    rows = []
    for setting, part in settings(runs):
        for max_freq, group in part.groupby("max_freq", sort=True):
            status = group["status"].value_counts()
            done = group[group["status"] == "FINISHED"]
            diverged = diverged_of(done)
            learned = done.loc[~diverged, "mae_test"]
            learned = learned[np.isfinite(learned)].to_numpy()
            median, median_low, median_high = median_ci(learned)
            q1, q3 = np.percentile(learned, [25, 75]) if len(learned) else (math.nan, math.nan)
            k, n = int(diverged.sum()), len(done)
            stopped = bool(stopped_of(done).any())
            low, high = wilson_interval(k, n)
            row = {
                **setting,
                "max_freq": int(max_freq),
                "runs": len(group),
                **{
                    s.lower(): int(status.get(s, 0))
                    for s in ("FINISHED", "FAILED", "KILLED", "RUNNING")
                },
                "learned": len(learned),
                "stopped": int(stopped_of(done).sum()),
                "mae_test_learned_median": median,
                "mae_test_learned_median_ci_low": median_low,
                "mae_test_learned_median_ci_high": median_high,
                "mae_test_learned_q1": q1,
                "mae_test_learned_q3": q3,
                # over all finished runs: none to give where some stopped at their escape
                **_mae_columns(done["mae_train"] * (math.nan if stopped else 1), "mae_train"),
                **_mae_columns(done["mae_test"] * (math.nan if stopped else 1), "mae_test"),
                "mae_test_median_converged": median,
                "diverged": k,
                "divergence_rate": k / n if n else math.nan,
                "divergence_ci_low": low,
                "divergence_ci_high": high,
            }
            for ref in ("ref_fft_mae_test", "ref_forest_mae_test"):
                row[f"{ref}_median"] = float(done[ref].median()) if ref in done else math.nan
            rows.append(row)
    return pd.DataFrame(rows)
