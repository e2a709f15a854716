"""Which cause matters: the effect of each varying parameter on divergence and on the error of
the runs that learned, fitted jointly. Pure functions of the runs table (analysis/load.py),
as judged (stats.judged). The two outcomes are kept apart: divergence over every FINISHED
run, the error over FINISHED runs that did not diverge, so a difference in divergence does not
show up again as a difference in error.

Factors: every varying parameter (settings.varying_params), categorical, one 0/1 term per level
against a reference level (the pipeline default where present, e.g. samples_per_freq 10,
target_scale none, backend tensorflow; else the smallest value; a missing value is its own
level, 'unset'); and max_freq, categorical against its smallest value when it takes two values
(it is a sweep axis: its default is no baseline), else one numeric term per +PER max_freq.
Terms confounded with earlier ones (two parameters that always change together) are not
estimable and are reported as such.

- **Divergence**: logistic regression on the terms (analysis/logistic.py: maximum likelihood
  with Wald intervals, or Firth's penalised likelihood with profile intervals where the runs
  are separated or events are few), odds ratios with 95% intervals and two-sided p-values.
- **Error of the runs that learned**: median (quantile 0.5) regression of mae_ratio_test over
  the non-diverged runs with a finite value (statsmodels QuantReg); effects are differences in
  the median, level vs reference. Intervals: 95% percentile bootstrap of runs resampled within
  each design cell (the sweep fixes the seeds per cell), each resample refitted by QuantReg's
  own algorithm (iteratively reweighted least squares), batched over resamples; the two-sided
  p-value is twice the smaller bootstrap tail beyond 0.
- **Interactions.** When every factor is categorical and every combination of levels holds
  runs (a full factorial), main effects are only meaningful if the effects add up. Additivity
  is tested for each outcome against the saturated model (one parameter per cell): for
  divergence by the likelihood-ratio test (the supremum of the additive likelihood, which is
  finite even when its estimate is not); for the error by a Wald test of the saturated
  model's interaction terms with their bootstrap covariance (it needs learned runs in every
  cell). The report shows every cell (divergence with an exact Clopper–Pearson interval, the
  median with its distribution-free interval), and gives the cells instead of main effects
  for an outcome where additivity is rejected, or, for divergence, where the runs are
  separated: then the additive model fits in the limit of infinite odds ratios (a divergence
  confined to one corner of the design is such a limit, so no test on the logit scale can
  reject it), and the finite odds ratios of Firth's fit are set by its penalty, not by the
  data.

`metrics()`: `effect_mae_ratio/<term>` (+ `_low`, `_high`), `effect_divergence_or/<term>`
(+ `_low`, `_high`), `effect_runs`, `effect_learned_runs`, `effect_divergence_events`,
`effect_divergence_firth` (1: Firth), and for a full factorial
`effect_additivity_divergence_p`, `effect_additivity_mae_ratio_p`; `<term>` is
`<factor>_<level>` (e.g. `samples_per_freq_1`) or `max_freq_per_10`. With max_freq numeric,
each level's divergence pooled over max_freq: `level_diverged/<factor>_<level>` (the rate,
`_low`, `_high`: Clopper–Pearson 95%).

- **Each level at each max_freq** (max_freq numeric): every level of the categorical factors
  at every max_freq, with the cell's exact (Clopper–Pearson) interval, and each level pooled
  over max_freq with its exact interval: where a level shows no divergence at all, the
  pooled upper bound is how rare it can still be.
"""

import dataclasses
import itertools
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import optimize
from scipy import stats as sps
from statsmodels.tools.sm_exceptions import IterationLimitWarning

from analysis import logistic, stats
from analysis.settings import diverged_of, metric_part, plain, value_text, varying_params
from pipeline.config import DataConfig, EvalConfig, TrainConfig

DEFAULTS = {
    f.name: f.default for c in (DataConfig, TrainConfig, EvalConfig) for f in dataclasses.fields(c)
}
CAUSES = ("samples_per_freq", "target_scale")  # with a two-level max_freq: "Which cause matters"
PER = 10
RESAMPLES = 1000
LEVEL = logistic.LEVEL
IRLS_TOL = 1e-6  # QuantReg's own: convergence on the coefficients, floor on |residuals|


# --- factors and their coding ---------------------------------------------------------------


@dataclass(frozen=True)
class Factor:
    name: str
    reference: Any  # the reference level (None: unset); None for a numeric max_freq
    levels: tuple[Any, ...]  # the other levels, one term each; () for a numeric max_freq
    numeric: bool = False  # max_freq with more than two values: one term per +PER

    def terms(self) -> list[tuple[str, str]]:
        """(level text, metric key) of each term."""
        if self.numeric:
            return [(f"per +{PER}", f"{self.name}_per_{PER}")]
        texts = [value_text(v) for v in self.levels]
        return [(t, f"{metric_part(self.name)}_{metric_part(t)}") for t in texts]

    @property
    def all_levels(self) -> tuple[Any, ...]:
        return (self.reference, *self.levels)


def sorted_levels(column: pd.Series) -> list[Any]:
    values = sorted({plain(v) for v in column.dropna().unique()})
    return values + [None] * bool(column.isna().any())


def reference_level(name: str, levels: list[Any]) -> Any:
    """The pipeline default if among `levels` (not for max_freq), else the smallest value."""
    texts = [value_text(v) for v in levels]
    if name != "max_freq" and name in DEFAULTS and value_text(DEFAULTS[name]) in texts:
        return levels[texts.index(value_text(DEFAULTS[name]))]
    return levels[0]


def factors_of(done: pd.DataFrame) -> tuple[list[Factor], list[str]]:
    """The factors of FINISHED runs `done`, and the parameters left out (one value only)."""
    out, left_out = [], []
    for name in [*varying_params(done), "max_freq"]:
        levels = sorted_levels(done[name])
        if len(levels) < 2:
            if name != "max_freq":
                left_out.append(name)
            continue
        if name == "max_freq" and len(levels) > 2:
            out.append(Factor(name, None, (), numeric=True))
            continue
        ref = reference_level(name, levels)
        out.append(Factor(name, ref, tuple(v for v in levels if v != ref)))
    return out, left_out


def level_text(done: pd.DataFrame, f: Factor) -> np.ndarray:
    return done[f.name].map(value_text).to_numpy(str)


def design(done: pd.DataFrame, factors: list[Factor]) -> np.ndarray:
    """Intercept, then each factor's terms: 0/1 per level, or (max_freq − its mean) / PER."""
    columns = [np.ones(len(done))]
    for f in factors:
        if f.numeric:
            x = done[f.name].to_numpy(float)
            columns.append((x - x.mean()) / PER)
            continue
        text = level_text(done, f)
        columns += [(text == value_text(v)).astype(float) for v in f.levels]
    return np.column_stack(columns)


def estimable(x: np.ndarray) -> list[int]:
    """Columns of x kept greedily while they add rank; the others are confounded."""
    keep = [0]
    for j in range(1, x.shape[1]):
        if np.linalg.matrix_rank(x[:, [*keep, j]]) == len(keep) + 1:
            keep.append(j)
    return keep


def grouped(x: np.ndarray, y: np.ndarray) -> logistic.Data:
    """Runs with identical design rows as one row with its trials and events."""
    rows, which = np.unique(x, axis=0, return_inverse=True)
    which = which.ravel()
    return logistic.Data.of(rows, np.bincount(which, weights=y), np.bincount(which).astype(float))


# --- the median of the runs that learned: QuantReg, bootstrap within cells ------------------


def lad(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(B, p): weighted median regressions, one per row of `weights`, by QuantReg's iteratively
    reweighted least squares (weights w/|residual|, residuals floored at IRLS_TOL)."""

    def wls(a: np.ndarray) -> np.ndarray:
        ax = (a[..., None] * x).transpose(0, 2, 1)
        return np.linalg.solve(ax @ x, (ax @ y)[..., None])[..., 0]

    beta, active = wls(weights), np.arange(len(weights))
    for _ in range(1000):
        new = wls(weights[active] / np.maximum(np.abs(y - beta[active] @ x.T), IRLS_TOL))
        moving = np.abs(new - beta[active]).max(axis=1) >= IRLS_TOL
        beta[active], active = new, active[moving]
        if not len(active):
            break
    return beta


def cell_weights(cells: np.ndarray, resamples: int, seed: int) -> tuple[np.ndarray, int]:
    """Bootstrap counts (resamples, n), resampling runs within each cell (rows of `cells`
    that are equal); and how many cells hold a single run."""
    rng = np.random.default_rng(seed)
    _, cell = np.unique(cells, axis=0, return_inverse=True)
    cell = cell.ravel()
    weights, singles = np.zeros((resamples, len(cells))), 0
    for c in np.unique(cell):
        ids = np.flatnonzero(cell == c)
        weights[:, ids] = rng.multinomial(len(ids), np.full(len(ids), 1 / len(ids)), resamples)
        singles += len(ids) == 1
    return weights, singles


@dataclass(frozen=True)
class MedianFit:
    beta: np.ndarray
    low: np.ndarray
    high: np.ndarray
    p: np.ndarray  # two-sided bootstrap p-values
    singles: int  # design cells with one run
    cells: int
    reason: str = ""  # why no fit or no intervals


def bootstrap_p(draws: np.ndarray) -> np.ndarray:
    """Two-sided bootstrap p-value of 0 per column: twice the smaller tail, at most 1."""
    below = np.mean(draws <= 0, axis=0)
    above = np.mean(draws >= 0, axis=0)
    return np.minimum(1.0, 2 * np.minimum(below, above))


def median_fit(x: np.ndarray, y: np.ndarray, resamples: int, seed: int) -> MedianFit:
    """QuantReg at the median, with cell-bootstrap intervals (module docstring)."""
    nan = np.full(x.shape[1], math.nan)
    if len(y) == 0:
        return MedianFit(nan, nan, nan, nan, 0, 0, "no learned runs")
    with warnings.catch_warnings():
        # QuantReg also estimates its own standard errors from a kernel density at the
        # median, which divides by zero where residuals vanish; only the estimate is used.
        warnings.simplefilter("ignore", IterationLimitWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        beta = np.asarray(sm.QuantReg(y, x).fit(q=0.5, max_iter=5000).params)
    weights, singles = cell_weights(x, resamples, seed)
    cells = len(np.unique(x, axis=0))
    if singles == cells:
        return MedianFit(beta, nan, nan, nan, singles, cells, "one run per design cell")
    draws = lad(x, y, weights)
    low, high = np.quantile(draws, [0.5 - LEVEL / 2, 0.5 + LEVEL / 2], axis=0,
                            method="inverted_cdf")  # fmt: skip
    return MedianFit(beta, low, high, bootstrap_p(draws), singles, cells)


def median_fit_estimable(x: np.ndarray, y: np.ndarray, resamples: int, seed: int) -> MedianFit:
    """median_fit on the columns the learned runs can estimate: a level with no run that learned
    (every raw-target run diverged, say) gets no estimate (NaN), the others theirs."""
    if len(y) == 0:
        return median_fit(x, y, resamples, seed)
    keep = estimable(x)
    if len(keep) == x.shape[1]:
        return median_fit(x, y, resamples, seed)
    fit = median_fit(x[:, keep], y, resamples, seed)

    def spread(values: np.ndarray) -> np.ndarray:
        out = np.full(x.shape[1], math.nan)
        out[keep] = values
        return out

    why = fit.reason or "a level without learned runs"
    return MedianFit(spread(fit.beta), spread(fit.low), spread(fit.high), spread(fit.p),
                     fit.singles, fit.cells, why)  # fmt: skip


# --- full factorials: cells and additivity ----------------------------------------------------


def full_factorial(done: pd.DataFrame, factors: list[Factor]) -> bool:
    """Every factor categorical, at least two of them, and every combination of levels
    present."""
    if len(factors) < 2 or any(f.numeric for f in factors):
        return False
    present = {tuple(row) for row in zip(*(level_text(done, f) for f in factors), strict=True)}
    combos = itertools.product(*([value_text(v) for v in f.all_levels] for f in factors))
    return all(c in present for c in combos)


def saturated_design(done: pd.DataFrame, factors: list[Factor]) -> tuple[np.ndarray, list]:
    """Reference-coded columns of every product of level indicators (intercept, main terms,
    then interactions), and for each column the factors it involves."""
    indicators = [
        [(f.name, (level_text(done, f) == value_text(v)).astype(float)) for v in f.levels]
        for f in factors
    ]
    columns, involves = [np.ones(len(done))], [()]
    for size in range(1, len(factors) + 1):
        for group in itertools.combinations(range(len(factors)), size):
            for combo in itertools.product(*(indicators[i] for i in group)):
                columns.append(np.prod([c for _, c in combo], axis=0))
                involves.append(tuple(name for name, _ in combo))
    return np.column_stack(columns), involves


def sup_loglike(data: logistic.Data) -> float:
    """The supremum of the log likelihood: finite even under separation, where the estimate
    runs off to infinity (approached here with |β| ≤ 40)."""

    def negative(beta):
        p = 1 / (1 + np.exp(-(data.x @ beta)))
        return -data.loglike(beta), -(data.x.T @ (data.events - data.trials * p))

    res = optimize.minimize(negative, np.zeros(data.x.shape[1]), jac=True, method="L-BFGS-B",
                            bounds=[(-40, 40)] * data.x.shape[1])  # fmt: skip
    return -float(res.fun)


def divergence_additivity(x_add: np.ndarray, cells: np.ndarray, y: np.ndarray) -> tuple:
    """Likelihood-ratio test of the additive logit against the saturated one: (statistic,
    degrees of freedom, p)."""
    saturated = grouped(cells, y)
    k, n = saturated.events, saturated.trials
    with np.errstate(divide="ignore", invalid="ignore"):
        cell_ll = np.nansum(k * np.log(k / n)) + np.nansum((n - k) * np.log(1 - k / n))
    statistic = max(0.0, 2 * (cell_ll - sup_loglike(grouped(x_add, y))))
    df = len(k) - x_add.shape[1]
    return statistic, df, float(sps.chi2.sf(statistic, df)) if df > 0 else math.nan


def median_additivity(
    sat: np.ndarray, involves: list, y: np.ndarray, resamples: int, seed: int
) -> tuple:
    """Wald test of the saturated median model's interaction terms (cell medians, as
    reference-coded coefficients) with their within-cell bootstrap covariance: (statistic,
    degrees of freedom, p); NaNs when a cell has no learned run."""
    rows, which = np.unique(sat, axis=0, return_inverse=True)
    which = which.ravel()
    if len(rows) < sat.shape[1]:
        return math.nan, 0, math.nan  # a cell without learned runs
    medians = np.array([np.median(y[which == c]) for c in range(len(rows))])
    inverse = np.linalg.inv(rows)
    inter = [i for i, names in enumerate(involves) if len(names) >= 2]
    theta = (inverse @ medians)[inter]
    weights, _ = cell_weights(sat, resamples, seed)
    draws = np.empty((resamples, len(rows)))
    for c in range(len(rows)):
        ids = np.flatnonzero(which == c)
        values = np.sort(y[ids])
        counts = weights[:, ids][:, np.argsort(y[ids])]
        cumulative = np.cumsum(counts, axis=1)
        half = counts.sum(axis=1, keepdims=True) / 2
        # the weighted median (the mean of the two middle values for an even count)
        lower = values[np.argmax(cumulative >= half, axis=1)]
        upper = values[np.argmax(cumulative > half, axis=1)]
        draws[:, c] = (lower + upper) / 2
    boot = (draws @ inverse.T)[:, inter]
    cov = np.cov(boot, rowvar=False).reshape(len(inter), len(inter))
    statistic = float(theta @ np.linalg.pinv(cov) @ theta)
    df = int(np.linalg.matrix_rank(cov))
    return statistic, df, float(sps.chi2.sf(statistic, df)) if df else math.nan


def cell_table(done: pd.DataFrame, factors: list[Factor], diverged: np.ndarray) -> pd.DataFrame:
    """Per cell of a full factorial: runs, diverged with a Clopper–Pearson 95% interval, and
    the learned runs' median mae_ratio_test with its distribution-free interval."""
    rows = []
    texts = [level_text(done, f) for f in factors]
    ratio = (
        done["mae_ratio_test"].to_numpy(float)
        if "mae_ratio_test" in done
        else np.full(len(done), math.nan)
    )
    for combo in itertools.product(*([value_text(v) for v in f.all_levels] for f in factors)):
        on = np.all([t == c for t, c in zip(texts, combo, strict=True)], axis=0)
        k, n = int(diverged[on].sum()), int(on.sum())
        ci = sps.binomtest(k, n).proportion_ci(LEVEL, method="exact")
        learned = ratio[on & ~diverged & np.isfinite(ratio)]
        median, low, high = stats.median_ci(learned)
        rows.append(
            {
                **{f.name: c for f, c in zip(factors, combo, strict=True)},
                "runs": n,
                "diverged": k,
                "rate_low": ci.low,
                "rate_high": ci.high,
                "learned": len(learned),
                "median": median,
                "median_low": low,
                "median_high": high,
            }
        )
    return pd.DataFrame(rows)


# --- everything together ----------------------------------------------------------------------


@dataclass(frozen=True)
class Additivity:
    statistic: float
    df: int
    p: float
    test: str  # 'likelihood ratio' or 'bootstrap Wald'

    @property
    def rejected(self) -> bool:
        return self.p < 1 - LEVEL


@dataclass(frozen=True)
class FactorEffects:
    factors: tuple[Factor, ...]
    table: pd.DataFrame = field(repr=False)  # one row per term (columns: COLUMNS)
    runs: int  # FINISHED runs: the divergence model
    learned: int  # of which did not diverge, with a finite mae_ratio_test: the error model
    events: int
    resamples: int
    median: MedianFit | None
    divergence: logistic.Fit
    left_out: tuple[str, ...]  # parameters with one value among FINISHED runs
    confounded: tuple[str, ...]  # terms not estimable
    nonfinite: int = 0  # learned runs left out of the error model: non-finite mae_ratio_test
    cells: pd.DataFrame | None = field(default=None, repr=False)  # full factorial only
    # with max_freq numeric (more than two values): every level of the other factors at each
    # max_freq (cell_table's columns), and each level pooled over max_freq (`pooled`)
    by_max_freq: pd.DataFrame | None = field(default=None, repr=False)
    pooled: pd.DataFrame | None = field(default=None, repr=False)
    additivity: dict[str, Additivity] = field(default_factory=dict)  # 'divergence', 'mae_ratio'

    def cells_instead(self, outcome: str) -> str:
        """Why the cells, not main effects, describe `outcome` ('divergence' or 'mae_ratio')
        in a full factorial: 'interaction' (additivity rejected), 'separation' (divergence
        confined to cells the factors split off: the additive model's odds ratios are
        infinite, and Firth's finite ones are set by its penalty, not by the data); ''
        when main effects stand."""
        if self.cells is None:
            return ""
        test = self.additivity.get(outcome)
        if test is not None and test.rejected:
            return "interaction"
        if outcome == "divergence" and self.divergence.reason == logistic.SEPARATION:
            return "separation"
        return ""

    @property
    def title(self) -> str:
        causes = any(
            f.name in CAUSES or (f.name == "max_freq" and not f.numeric) for f in self.factors
        )
        return "Which cause matters" if causes else "Factor effects"


COLUMNS = [
    "factor", "level", "reference", "runs", "events", "learned", "key", "estimable",
    "median_effect", "median_low", "median_high", "median_p",
    "odds_ratio", "or_low", "or_high", "or_p",
]  # fmt: skip


def effects(runs: pd.DataFrame, resamples: int = RESAMPLES, seed: int = 0) -> FactorEffects | None:
    """The factor models of divergence and of the learned runs' median mae_ratio_test (module
    docstring), over FINISHED runs; None when no parameter besides max_freq and seed varies."""
    if not varying_params(runs):
        return None
    done = runs[runs["status"] == "FINISHED"].reset_index(drop=True)
    factors, left_out = factors_of(done)
    y = diverged_of(done).to_numpy(float)
    ratio = (
        done["mae_ratio_test"].to_numpy(float)
        if "mae_ratio_test" in done
        else np.full(len(done), math.nan)
    )
    learned = (y == 0) & np.isfinite(ratio)
    base = {"factors": tuple(factors), "runs": len(done), "learned": int(learned.sum()),
            "events": int(y.sum()), "resamples": resamples, "left_out": tuple(left_out),
            "nonfinite": int(((y == 0) & ~np.isfinite(ratio)).sum())}  # fmt: skip
    rows = []
    for f in factors:
        text = level_text(done, f)
        for (level, key), value in zip(f.terms(), f.levels or [None], strict=True):
            on = np.ones(len(done), bool) if f.numeric else text == value_text(value)
            reference = "" if f.numeric else value_text(f.reference)
            rows.append((f.name, level, reference, int(on.sum()), int(y[on].sum()),
                         int((on & learned).sum()), key))  # fmt: skip
    if not rows:
        return FactorEffects(**base, table=pd.DataFrame(columns=COLUMNS), median=None,
                             divergence=logistic.Fit("", "no factor"), confounded=())  # fmt: skip
    x_all = design(done, factors)
    keep = estimable(x_all)
    x = x_all[:, keep]
    confounded = tuple(f"{r[0]}={r[1]}" for i, r in enumerate(rows, start=1) if i not in keep)
    median = median_fit_estimable(x[learned], ratio[learned], resamples, seed)
    divergence = logistic.fit(grouped(x, y))
    table = []
    for i, (name, level, reference, n, k, m, key) in enumerate(rows, start=1):
        row = dict.fromkeys(COLUMNS[8:], math.nan)
        if i in keep:
            j = keep.index(i)
            row |= {
                "median_effect": median.beta[j],
                "median_low": median.low[j],
                "median_high": median.high[j],
                "median_p": median.p[j],
            }
            if divergence.method:
                row |= {
                    "odds_ratio": math.exp(divergence.beta[j]),
                    "or_low": math.exp(divergence.low[j]),
                    "or_high": math.exp(divergence.high[j]),
                    "or_p": divergence.p[j],
                }
        table.append({"factor": name, "level": level, "reference": reference, "runs": n,
                      "events": k, "learned": m, "key": key, "estimable": i in keep,
                      **row})  # fmt: skip
    cells, additivity = None, {}
    if full_factorial(done, factors) and not confounded:
        sat, involves = saturated_design(done, factors)
        cells = cell_table(done, factors, y.astype(bool))
        statistic, df, p = divergence_additivity(x, sat, y)
        additivity["divergence"] = Additivity(statistic, df, p, "likelihood ratio")
        statistic, df, p = median_additivity(
            sat[learned], involves, ratio[learned], resamples, seed
        )
        if not math.isnan(p):
            additivity["mae_ratio"] = Additivity(statistic, df, p, "bootstrap Wald")
    by_max_freq = pooled = None
    categorical = [f for f in factors if not f.numeric]
    if categorical and any(f.numeric for f in factors):
        freqs = sorted_levels(done["max_freq"])
        as_levels = Factor("max_freq", freqs[0], tuple(freqs[1:]))
        by_max_freq = cell_table(done, [*categorical, as_levels], y.astype(bool))
        pooled = cell_table(done, categorical, y.astype(bool))
    return FactorEffects(
        **base,
        table=pd.DataFrame(table, columns=COLUMNS),
        median=median,
        divergence=divergence,
        confounded=confounded,
        cells=cells,
        additivity=additivity,
        by_max_freq=by_max_freq,
        pooled=pooled,
    )


def metrics(e: FactorEffects | None) -> dict[str, float]:
    """The key numbers as one flat dict of floats (names in the module docstring)."""
    if e is None:
        return {}
    out = {
        "effect_runs": float(e.runs),
        "effect_learned_runs": float(e.learned),
        "effect_divergence_events": float(e.events),
        "effect_divergence_firth": float(e.divergence.method == "firth"),
    }
    for name, test in e.additivity.items():
        out[f"effect_additivity_{name}_p"] = test.p
    for row in e.table.itertuples(index=False):
        for name, cols in (
            ("effect_mae_ratio", ("median_effect", "median_low", "median_high")),
            ("effect_divergence_or", ("odds_ratio", "or_low", "or_high")),
        ):
            for end, col in zip(("", "_low", "_high"), cols, strict=True):
                out[f"{name}/{row.key}{end}"] = float(getattr(row, col))
    if e.pooled is not None:
        names = [f.name for f in e.factors if not f.numeric]
        for _, row in e.pooled.iterrows():
            key = "/".join(f"{metric_part(n)}_{metric_part(row[n])}" for n in names)
            out[f"level_diverged/{key}"] = row["diverged"] / row["runs"]
            out[f"level_diverged/{key}_low"] = float(row["rate_low"])
            out[f"level_diverged/{key}_high"] = float(row["rate_high"])
    return out
