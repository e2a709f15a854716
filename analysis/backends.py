"""The two Keras backends compared, when `backend` takes exactly two values: are they
interchangeable for the study's question? Pure functions of the runs table, as judged.

Two outcomes, apart: divergence over every FINISHED run, and the test error (mae_test) of the
runs that learned (did not diverge).

- **Per setting of the other varying parameters and max_freq**: each backend's learned runs'
  median mae_test (distribution-free interval, stats.median_ci); the ratio of medians (other /
  reference, e.g. jax / tensorflow) with a 95% percentile bootstrap interval (each backend
  resampled); the two-sided Mann–Whitney U test; divergence rates with Wilson intervals and
  Fisher's exact test; median fit_seconds and their ratio.
- **Equivalence, pooled over max_freq** (and the other settings), by two one-sided tests at
  5% each (TOST), i.e. a 90% interval inside the margin:
  - the error: median regression of log(mae_test) of the learned runs on the backend and a
    term per cell of the other factors (max_freq and settings), so exp(coefficient) is the
    common ratio of medians; 90% and 95% cell-bootstrap intervals; margin MEDIAN_MARGIN;
  - divergence: logistic regression on the backend and the same cells (analysis/logistic.py,
    Firth where needed), the odds ratio's 90% and 95% intervals; margin ODDS_MARGIN.
  Each is "equivalent" when the 90% interval lies inside the margin, "different" when the 95%
  interval excludes no effect (both may hold: a difference smaller than the margin), else
  "not resolved at this sample size".

`metrics()`, `<where>` = `max_freq_<m>` after `<param>_<value>/` for each other varying
parameter: `backend_mwu_p/<where>`, `backend_median_ratio/<where>` (+ `_low`, `_high`),
`backend_divergence_p/<where>`, `backend_fit_seconds_ratio/<where>`; pooled:
`backend_tost_median_ratio` (+ `_low90`, `_high90`), `backend_tost_odds_ratio` (+ `_low90`,
`_high90`), and `backend_equivalent_mae`, `backend_equivalent_divergence` (1: equivalent).
"""

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from analysis import factors, logistic, stats
from analysis.settings import diverged_of, metric_part, settings, value_text, varying_params

RESAMPLES = 1000
LEVEL = logistic.LEVEL
TOST_LEVEL = 0.90  # two one-sided tests at 5% each
MEDIAN_MARGIN = (0.8, 1.25)  # ratio of medians counted as no practical difference
ODDS_MARGIN = (0.5, 2.0)  # odds ratio of diverging counted as no practical difference


def median_ratio_ci(a: np.ndarray, b: np.ndarray, resamples: int, seed: int) -> tuple:
    """median(b) / median(a) and its 95% percentile bootstrap interval (each resampled)."""
    if not len(a) or not len(b):
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    ma = np.median(a[rng.integers(0, len(a), (resamples, len(a)))], axis=1)
    mb = np.median(b[rng.integers(0, len(b), (resamples, len(b)))], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = float(np.median(b) / np.median(a))
        draws = mb / ma
    if len(a) < 2 or len(b) < 2:
        return ratio, math.nan, math.nan
    low, high = np.nanpercentile(draws, [50 - 50 * LEVEL, 50 + 50 * LEVEL])
    return ratio, float(low), float(high)


@dataclass(frozen=True)
class Equivalence:
    estimate: float  # ratio (of medians, or odds)
    low90: float
    high90: float
    low95: float
    high95: float
    margin: tuple[float, float]
    runs: int
    method: str = ""  # for divergence: 'logit' or 'firth'; '' no fit
    reason: str = ""

    @property
    def equivalent(self) -> bool:
        return self.margin[0] < self.low90 and self.high90 < self.margin[1]

    @property
    def different(self) -> bool:
        return stats.verdict(self.low95, self.high95, 1.0) in ("grows", "falls")

    @property
    def verdict(self) -> str:
        """'equivalent', 'different', 'different, within the margin', 'not resolved' or
        'no fit'."""
        if math.isnan(self.low90):
            return "no fit"
        if self.equivalent:
            return "different, within the margin" if self.different else "equivalent"
        return "different" if self.different else "not resolved"


@dataclass(frozen=True)
class BackendComparison:
    reference: str  # e.g. 'tensorflow'
    other: str  # e.g. 'jax'; ratios are other / reference
    table: pd.DataFrame = field(repr=False)  # one row per setting and max_freq
    resamples: int
    mae: Equivalence | None = None
    divergence: Equivalence | None = None


def _cells_of(done: pd.DataFrame, others: list[str]) -> np.ndarray:
    """One 0/1 column per cell of max_freq × the other settings (the first cell dropped)."""
    keys = done[["max_freq", *others]].astype(str).agg("|".join, axis=1).to_numpy()
    levels = sorted(set(keys))
    return np.column_stack(
        [(keys == v).astype(float) for v in levels[1:]] or [np.empty((len(done), 0))]
    )


def _mae_equivalence(done, is_other, learned, cells, resamples, seed) -> Equivalence | None:
    mae = done["mae_test"].to_numpy(float)
    ok = learned & np.isfinite(mae) & (mae > 0)
    if len(np.unique(is_other[ok])) < 2:
        return None
    x = np.column_stack([np.ones(ok.sum()), is_other[ok], cells[ok]])
    x = x[:, factors.estimable(x)]
    y = np.log(mae[ok])
    fit = factors.median_fit(x, y, resamples, seed)
    weights, _ = factors.cell_weights(x, resamples, seed)
    draws = factors.lad(x, y, weights)[:, 1]
    low90, high90 = np.quantile(draws, [0.05, 0.95], method="inverted_cdf")
    return Equivalence(
        math.exp(fit.beta[1]), math.exp(low90), math.exp(high90), math.exp(fit.low[1]),
        math.exp(fit.high[1]), MEDIAN_MARGIN, int(ok.sum()), "quantreg",
    )  # fmt: skip


def _divergence_equivalence(done, is_other, cells) -> Equivalence:
    y = diverged_of(done).to_numpy(float)
    x = np.column_stack([np.ones(len(done)), is_other, cells])
    x = x[:, factors.estimable(x)]
    data = factors.grouped(x, y)
    result = logistic.fit(data, terms=[1])
    if not result.method:
        nan = math.nan
        return Equivalence(nan, nan, nan, nan, nan, ODDS_MARGIN, len(done), "", result.reason)
    low90, high90 = result.interval(data, 1, TOST_LEVEL)
    return Equivalence(
        math.exp(result.beta[1]), math.exp(low90), math.exp(high90), math.exp(result.low[1]),
        math.exp(result.high[1]), ODDS_MARGIN, len(done), result.method, result.reason,
    )  # fmt: skip


def compare(
    runs: pd.DataFrame, resamples: int = RESAMPLES, seed: int = 0
) -> BackendComparison | None:
    """The two backends (module docstring); None unless `backend` takes exactly two values."""
    if "backend" not in runs:
        return None
    names = factors.sorted_levels(runs["backend"].dropna())
    if len(names) != 2:
        return None
    ref = factors.reference_level("backend", names)
    other = next(v for v in names if v != ref)
    done = runs[(runs["status"] == "FINISHED") & runs["backend"].notna()].reset_index(drop=True)
    others = [p for p in varying_params(runs) if p != "backend"]
    rows = []
    for setting, part in settings(done, others):
        for max_freq, group in part.groupby("max_freq", sort=True):
            row: dict[str, Any] = {**setting, "max_freq": int(max_freq)}
            mae, seconds = {}, {}
            for side, name in (("ref", ref), ("other", other)):
                runs_of = group[group["backend"] == name]
                diverged = diverged_of(runs_of).to_numpy()
                values = runs_of["mae_test"].to_numpy(float)
                mae[side] = values[~diverged & np.isfinite(values)]
                k, n = int(diverged.sum()), len(runs_of)
                median, low, high = stats.median_ci(mae[side])
                d_low, d_high = stats.wilson_interval(k, n)
                fit = runs_of.get("fit_seconds", pd.Series(dtype=float)).to_numpy(float)
                seconds[side] = float(np.median(fit[np.isfinite(fit)])) if fit.size else math.nan
                row |= {
                    f"{side}_runs": n,
                    f"{side}_learned": len(mae[side]),
                    f"{side}_median": median,
                    f"{side}_low": low,
                    f"{side}_high": high,
                    f"{side}_diverged": k,
                    f"{side}_div_low": d_low,
                    f"{side}_div_high": d_high,
                    f"{side}_fit_seconds": seconds[side],
                }
            ratio, low, high = median_ratio_ci(mae["ref"], mae["other"], resamples, seed)
            table = [
                [row[f"{side}_diverged"], row[f"{side}_runs"] - row[f"{side}_diverged"]]
                for side in ("ref", "other")
            ]
            tested = len(mae["ref"]) and len(mae["other"])
            row |= {
                "mwu_p": float(sps.mannwhitneyu(mae["other"], mae["ref"]).pvalue)
                if tested
                else math.nan,
                "median_ratio": ratio,
                "ratio_low": low,
                "ratio_high": high,
                "divergence_p": float(sps.fisher_exact(table).pvalue)
                if row["ref_runs"] and row["other_runs"]
                else math.nan,
                "fit_seconds_ratio": seconds["other"] / seconds["ref"]
                if seconds["ref"] > 0
                else math.nan,
            }
            rows.append(row)
    is_other = (done["backend"] == other).to_numpy(float)
    cells = _cells_of(done, others)
    learned = ~diverged_of(done).to_numpy()
    return BackendComparison(
        str(ref),
        str(other),
        pd.DataFrame(rows),
        resamples,
        _mae_equivalence(done, is_other, learned, cells, resamples, seed),
        _divergence_equivalence(done, is_other, cells),
    )


def where(row: pd.Series, params: list[str]) -> str:
    """The metric suffix of a table row: '<param>_<value>/' for each, then 'max_freq_<m>'."""
    parts = [f"{metric_part(p)}_{metric_part(row[p])}" for p in params]
    return "/".join([*parts, f"max_freq_{int(row['max_freq'])}"])


def setting_columns(table: pd.DataFrame) -> list[str]:
    """The other varying parameters at the front of the table (before max_freq)."""
    return list(table.columns[: list(table.columns).index("max_freq")]) if len(table) else []


def metrics(b: BackendComparison | None) -> dict[str, float]:
    """The key numbers as one flat dict of floats (names in the module docstring)."""
    if b is None:
        return {}
    out: dict[str, float] = {}
    params = setting_columns(b.table)
    for _, row in b.table.iterrows():
        suffix = where(row, params)
        for name in ("mwu_p", "divergence_p"):
            out[f"backend_{name}/{suffix}"] = float(row[name])
        out[f"backend_fit_seconds_ratio/{suffix}"] = float(row["fit_seconds_ratio"])
        for end, col in (("", "median_ratio"), ("_low", "ratio_low"), ("_high", "ratio_high")):
            out[f"backend_median_ratio/{suffix}{end}"] = float(row[col])
    for name, e in (("median_ratio", b.mae), ("odds_ratio", b.divergence)):
        if e is not None:
            out[f"backend_tost_{name}"] = e.estimate
            out[f"backend_tost_{name}_low90"] = e.low90
            out[f"backend_tost_{name}_high90"] = e.high90
    for name, e in (("mae", b.mae), ("divergence", b.divergence)):
        if e is not None and e.verdict != "no fit":
            out[f"backend_equivalent_{name}"] = float(e.equivalent)
    return out


def label_of(row: pd.Series, params: list[str]) -> str:
    setting = ", ".join(f"{p}={value_text(row[p])}" for p in params)
    return f"max_freq {int(row['max_freq'])}" + (f" ({setting})" if params else "")
