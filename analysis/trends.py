"""Trend models: does divergence grow with max_freq, does the error of the runs that learned,
and how many seeds would tell? Pure functions of the runs table (analysis/load.py) returning
dataclasses, fitted separately for each setting (analysis/settings.py). Divergence and error
are two outcomes, reported apart: the error trend uses only runs that did not diverge.

- Divergence: logistic regression of `diverged` on max_freq over FINISHED runs
  (analysis/logistic.py: maximum likelihood with a Wald interval, or Firth's penalised
  likelihood with a profile interval when the runs are separated or events are few), as the
  odds ratio per +PER max_freq with its 95% interval and a two-sided p-value.
- Error: least squares of log(mae_test) on log(max_freq) over FINISHED, non-diverged runs with
  a positive finite MAE: the typical (geometric-mean) error grows like max_freq^b. The slope
  is a weighted sum of the per-max_freq mean log errors, so its 95% interval is a
  t-interval with each max_freq's own variance and Welch–Satterthwaite degrees of freedom
  (the spread differs between max_freqs; a percentile bootstrap covered only 86–92% at these
  designs). A max_freq with a single run borrows the pooled variance of the others.
- Aliased max_freqs (max_freq − 1 ≥ (time_steps − 1)/2, where f and time_steps − 1 − f give
  the same samples) are left out of every fit and said so: they answer another question.
- Seeds: how many seeds per max_freq, at the study's max_freq values, make the divergence
  trend's 95% interval exclude 1 (on the right side) in SEED_POWER of repeat studies, found by
  simulating the report's own fit (`simulated_power`) at the fitted trend, and at the ends of
  its interval (keeping the rate at the mean max_freq): a range, monotone in the effect.

`metrics()` flattens the fits for the `analysis` run, with the suffix `/<param>_<value>` per
varying parameter (e.g. `trend_mae_exponent/dropout_0.2`):

- `trend_divergence_or10`, `trend_divergence_or10_low`, `trend_divergence_or10_high`: odds
  ratio of diverging per +10 max_freq and its 95% interval (NaN: no fit, e.g. no events);
- `trend_divergence_p_two_sided`: two-sided p-value of no trend; `trend_divergence_p`: the
  one-sided p-value of a rising rate (kept for existing queries; the report prints the
  two-sided one); `trend_divergence_runs`, `trend_divergence_events`: FINISHED runs in that
  fit and how many diverged; `trend_divergence_firth`: 1 if the Firth fit was used, else 0;
- `trend_mae_exponent`, `trend_mae_exponent_low`, `trend_mae_exponent_high`: b in
  mae_test ∝ max_freq^b and its 95% interval; `trend_mae_p`: two-sided p of b = 0;
  `trend_mae_runs`: runs in that fit;
- `seeds_recommended`: seeds per max_freq at the fitted trend (inf: more than SEED_CAP, a
  slope of about 0; NaN: no fit); `seeds_recommended_low`, `seeds_recommended_high`: at the
  strong and the weak end of the odds ratio's interval.
"""

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize
from scipy import stats as sps
from scipy.special import expit
from statsmodels.stats.multitest import multipletests

from analysis import curvature, logistic
from analysis.settings import diverged_of, setting_suffix, settings, well_posed
from analysis.stats import verdict

LEVEL = logistic.LEVEL
Z = logistic.Z
PER = 10  # odds ratios are per +PER max_freq
SEED_POWER = 0.8  # the recommended seeds make the interval exclude 1 in 80% of repeat studies
SEED_CAP = 1000  # beyond this many seeds per max_freq we say "no feasible number"
# Simulated studies per candidate number of seeds: enough that the advice is within one seed
# of what a fresh simulation of as many studies needs (at 400 it fell about 2 short).
SEED_REPLICATES = 4000


# --- divergence ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DivergenceTrend:
    runs: int  # FINISHED runs in the fit
    events: int  # of which diverged
    max_freqs: tuple[int, ...]
    at: tuple[int, ...] = ()  # events at each of max_freqs
    method: str = ""  # "logit" (maximum likelihood), "firth", or "" (no fit)
    reason: str = ""  # why Firth, or why no fit ('no runs', 'no events', 'only events', …)
    coef: tuple[float, float] = (math.nan, math.nan)  # intercept; slope per unit max_freq
    cov: tuple[tuple[float, float], tuple[float, float]] = ((math.nan,) * 2,) * 2
    or10: float = math.nan  # odds ratio per +PER max_freq, and its 95% interval
    or10_low: float = math.nan
    or10_high: float = math.nan
    p: float = math.nan  # two-sided, no trend
    p_increasing: float = math.nan  # one-sided, H1: slope > 0 (for trend_divergence_p)

    @property
    def verdict(self) -> str:
        return verdict(self.or10_low, self.or10_high, 1.0)


def divergence_trend(runs: pd.DataFrame) -> DivergenceTrend:
    """Logistic regression of `diverged` on max_freq over the FINISHED runs of one setting."""
    done = runs[runs["status"] == "FINISHED"]
    y = diverged_of(done).to_numpy(float)
    x = done["max_freq"].to_numpy(float)
    n, k = len(y), int(y.sum())
    freqs = tuple(sorted({int(v) for v in x}))
    at = tuple(int(y[x == m].sum()) for m in freqs)
    base = {"runs": n, "events": k, "max_freqs": freqs, "at": at}
    if n == 0:
        return DivergenceTrend(**base, reason="no runs")
    if k in (0, n):
        return DivergenceTrend(**base, reason="no events" if k == 0 else "only events")
    if len(base["max_freqs"]) < 2:
        return DivergenceTrend(**base, reason="one max_freq")
    # Centred: the intercept is the log odds at the mean max_freq, nearly uncorrelated with the
    # slope, which keeps the profile likelihood's inner fits easy. Grouped by max_freq: the same
    # likelihood, a row per max_freq instead of per run.
    centre = float(x.mean())
    xs = np.array(base["max_freqs"], dtype=float)
    events = np.array([y[x == v].sum() for v in xs])
    trials = np.array([np.sum(x == v) for v in xs], dtype=float)
    design = np.column_stack([np.ones(len(xs)), xs - centre])
    result = logistic.fit(logistic.Data.of(design, events, trials))
    if not result.method:
        return DivergenceTrend(**base, reason=result.reason)
    beta, cov = result.beta, result.cov
    shift = np.array([[1.0, -centre], [0.0, 1.0]])  # back to max_freq itself
    raw, raw_cov = shift @ beta, shift @ cov @ shift.T
    p = float(result.p[1])
    return DivergenceTrend(
        **base,
        method=result.method,
        reason=result.reason,
        coef=(float(raw[0]), float(raw[1])),
        cov=tuple(tuple(float(v) for v in row) for row in raw_cov),
        or10=math.exp(PER * beta[1]),
        or10_low=math.exp(PER * result.low[1]),
        or10_high=math.exp(PER * result.high[1]),
        p=p,
        p_increasing=p / 2 if beta[1] > 0 else 1 - p / 2,
    )


def divergence_curve(trend: DivergenceTrend, max_freq: np.ndarray) -> pd.DataFrame:
    """The fitted rate and its pointwise 95% band (delta method on the log odds) at
    `max_freq`; no rows when there is no fit."""
    if not trend.method:
        return pd.DataFrame(columns=["max_freq", "rate", "low", "high"])
    g = np.asarray(max_freq, dtype=float)
    x = np.column_stack([np.ones_like(g), g])
    eta = x @ np.array(trend.coef)
    se = np.sqrt(np.einsum("ij,jk,ik->i", x, np.array(trend.cov), x))
    return pd.DataFrame(
        {
            "max_freq": g,
            "rate": expit(eta),
            "low": expit(eta - Z * se),
            "high": expit(eta + Z * se),
        }
    )


# --- error of the runs that learned: power law, Welch–Satterthwaite interval ----------------


@dataclass(frozen=True)
class Cells:
    """Per max_freq: log max_freq, runs, mean and variance of log mae_test, and the degrees of
    freedom of that variance (a borrowed, pooled variance carries the pooled ones)."""

    x: np.ndarray
    n: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    df: np.ndarray

    def contrast(self, c: np.ndarray, level: float = LEVEL) -> tuple[float, float, float, float]:
        """Σ c_j·mean_j, its `level` t-interval with Welch–Satterthwaite degrees of freedom, and
        the two-sided p-value of zero."""
        value = float(c @ self.mean)
        parts = c**2 * self.var / self.n
        var = float(parts.sum())
        if var <= 0:
            return value, value, value, math.nan
        dof = var**2 / float(np.sum(parts**2 / self.df))
        half = sps.t.ppf(0.5 + level / 2, dof) * math.sqrt(var)
        p = float(2 * sps.t.sf(abs(value) / math.sqrt(var), dof))
        return value, value - half, value + half, p

    def slope_weights(self) -> np.ndarray:
        """c with Σ c_j·mean_j = the least-squares slope of the runs' log errors."""
        centre = self.n @ self.x / self.n.sum()
        return self.n * (self.x - centre) / (self.n @ (self.x - centre) ** 2)

    def fit_weights(self, at: float) -> np.ndarray:
        """c with Σ c_j·mean_j = the least-squares fit at log max_freq `at`."""
        centre = self.n @ self.x / self.n.sum()
        return self.n / self.n.sum() + self.slope_weights() * (at - centre)


def cells_of(lx: np.ndarray, ly: np.ndarray) -> tuple[Cells, list[float]]:
    """The per-max_freq summaries of log–log data, and the max_freqs (as log values) with a
    single run, whose variance is the pooled variance of the others."""
    xs = np.unique(lx)
    n = np.array([np.sum(lx == v) for v in xs], dtype=float)
    mean = np.array([ly[lx == v].mean() for v in xs])
    var = np.array(
        [ly[lx == v].var(ddof=1) if c > 1 else math.nan for v, c in zip(xs, n, strict=True)]
    )
    df = n - 1
    singles = [float(v) for v, c in zip(xs, n, strict=True) if c == 1]
    if singles and np.any(n > 1):
        pooled_df = float(np.sum(df[n > 1]))
        pooled = float(np.sum(df[n > 1] * var[n > 1]) / pooled_df)
        var = np.where(n > 1, var, pooled)
        df = np.where(n > 1, df, pooled_df)
    return Cells(xs, n, mean, var, df), singles


@dataclass(frozen=True)
class ErrorTrend:
    runs: int  # non-diverged FINISHED runs with a positive finite mae_test
    max_freqs: tuple[int, ...]
    exponent: float = math.nan  # b in mae_test ∝ max_freq^b, and its 95% interval
    low: float = math.nan
    high: float = math.nan
    p: float = math.nan  # two-sided, b = 0
    intercept: float = math.nan  # log mae_test at max_freq 1
    singles: tuple[int, ...] = ()  # max_freqs with one run (their variance is borrowed)
    reason: str = ""  # why no fit or no interval: 'one max_freq', 'one run each'
    cells: Cells | None = field(default=None, repr=False, compare=False)

    @property
    def verdict(self) -> str:
        return verdict(self.low, self.high, 0.0)


def error_trend(runs: pd.DataFrame) -> ErrorTrend:
    """Power law of test MAE in max_freq over the non-diverged FINISHED runs of one setting."""
    done = runs[runs["status"] == "FINISHED"]
    mae = done["mae_test"].to_numpy(float)
    keep = ~diverged_of(done).to_numpy() & np.isfinite(mae) & (mae > 0)
    freq = done["max_freq"].to_numpy(float)[keep]
    lx, ly = np.log(freq), np.log(mae[keep])
    max_freqs = tuple(sorted({int(v) for v in freq}))
    if not max_freqs:
        return ErrorTrend(0, max_freqs, reason="no learned runs")
    if len(max_freqs) < 2:
        return ErrorTrend(len(ly), max_freqs, reason="one max_freq")
    cells, singles = cells_of(lx, ly)
    slope = float(cells.slope_weights() @ cells.mean)
    intercept = float(cells.fit_weights(0.0) @ cells.mean)
    single_freqs = tuple(sorted(round(math.exp(v)) for v in singles))
    if len(singles) == len(max_freqs):
        return ErrorTrend(
            len(ly), max_freqs, slope, intercept=intercept, singles=single_freqs,
            reason="one run each",
        )  # fmt: skip
    _, low, high, p = cells.contrast(cells.slope_weights())
    return ErrorTrend(len(ly), max_freqs, slope, low, high, p, intercept, single_freqs, "", cells)


def error_curve(trend: ErrorTrend, max_freq: np.ndarray) -> pd.DataFrame:
    """The fitted power law and its pointwise 95% band at `max_freq` (the same
    Welch–Satterthwaite interval, for the fitted log error there); no rows without a fit."""
    if math.isnan(trend.exponent):
        return pd.DataFrame(columns=["max_freq", "mae", "low", "high"])
    g = np.asarray(max_freq, dtype=float)
    fitted = np.exp(trend.intercept + trend.exponent * np.log(g))
    if trend.cells is None:
        low = high = np.full_like(g, math.nan)
    else:
        ends = np.array([trend.cells.contrast(trend.cells.fit_weights(v))[1:3] for v in np.log(g)])
        low, high = np.exp(ends[:, 0]), np.exp(ends[:, 1])
    return pd.DataFrame({"max_freq": g, "mae": fitted, "low": low, "high": high})


# --- how many seeds: simulation of the report's own fit --------------------------------------


def batch_p_values(x: np.ndarray, k: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """For R simulated studies (events k (R, K) of n runs at each centred max_freq x): the
    two-sided p-value of no trend and the sign of the fitted slope, by exactly the decisions
    of logistic.fit and its estimators (logistic.fit_many; tests check they agree); NaN where
    it makes no fit."""
    k = np.asarray(k, dtype=float)
    design = np.column_stack([np.ones_like(x), x])
    total, runs = k.sum(axis=1), n * k.shape[1]
    p_out, sign = np.full(len(k), math.nan), np.zeros(len(k))
    fits = (total > 0) & (total < runs)
    on, off = k > 0, k < n
    lo_on = np.where(on, x, np.inf).min(axis=1)
    hi_on = np.where(on, x, -np.inf).max(axis=1)
    lo_off = np.where(off, x, np.inf).min(axis=1)
    hi_off = np.where(off, x, -np.inf).max(axis=1)
    separated = (hi_off <= lo_on) | (hi_on <= lo_off)  # logistic.separated's threshold check
    few = np.minimum(total, runs - total) < logistic.MIN_EVENTS * (design.shape[1] - 1)
    use_firth = separated | few
    fallback = np.zeros(len(k), bool)
    for firth in (False, True):
        rows = np.flatnonzero(fits & (use_firth == firth))
        if not len(rows):
            continue
        beta, top, ok = logistic.fit_many(design, k[rows], n, firth)
        if firth:  # the penalised likelihood ratio at slope 0, as logistic.profile
            _, nul, ok0 = logistic.fit_many(design, k[rows], n, True, free=np.array([1, 0], bool))
            p = sps.chi2.sf(2 * np.maximum(0.0, top - nul), 1)
            ok &= ok0
        else:  # Wald, where it converged (the others fall back below)
            pr = expit(beta[ok] @ design.T)
            cov = np.linalg.inv(logistic.information(design, n * pr * (1 - pr)))
            p = np.full(len(rows), math.nan)
            p[ok] = 2 * sps.norm.sf(np.abs(beta[ok, 1]) / np.sqrt(cov[:, 1, 1]))
        p_out[rows], sign[rows] = p, np.sign(beta[:, 1])
        fallback[rows[~ok]] = True
    for r in np.flatnonzero(fallback):  # where the fit did not converge: logistic.fit decides
        result = logistic.fit(logistic.Data.of(design, k[r], np.full(len(x), n)))
        p_out[r] = result.p[1] if result.method else math.nan
        sign[r] = np.sign(result.beta[1]) if result.method else 0
    return p_out, sign


class _Simulation:
    """Simulated studies at max_freqs `freqs` with a true rate expit(a + b·(x − x̄)): common
    random numbers across numbers of seeds and effects, so that power rises smoothly."""

    def __init__(self, freqs: tuple[int, ...], replicates: int, cap: int, seed: int):
        self.x = np.asarray(freqs, dtype=float) - np.mean(freqs)
        self.uniform = np.random.default_rng(seed).random((replicates, len(freqs), cap))

    def power(self, centred: float, slope: float, n: int) -> float:
        rate = expit(centred + slope * self.x)
        k = (self.uniform[:, :, :n] < rate[:, None]).sum(axis=2)
        p, sign = batch_p_values(self.x, k, n)
        return float(np.mean((p < 1 - LEVEL) & (sign == np.sign(slope))))

    def seeds(self, centred: float, slope: float, target: float) -> float:
        """The smallest n ≤ cap with simulated power ≥ target (inf: none), by bisection."""
        cap = self.uniform.shape[2]
        if slope == 0 or self.power(centred, slope, cap) < target:
            return math.inf
        low, high = 1, cap  # power(low) < target ≤ power(high)
        while high - low > 1:
            mid = (low + high) // 2
            low, high = (low, mid) if self.power(centred, slope, mid) >= target else (mid, high)
        return float(high)


def simulated_power(
    trend: DivergenceTrend,
    seeds: int,
    slope: float | None = None,
    replicates: int = SEED_REPLICATES,
    seed: int = 0,
) -> float:
    """The fraction of simulated studies (`seeds` per max_freq at trend.max_freqs, the fitted
    rates, or the fitted rate at the mean max_freq with another `slope`) whose 95% interval
    excludes 1 on the true side."""
    sim = _Simulation(trend.max_freqs, replicates, seeds, seed)
    centre = float(np.mean(trend.max_freqs))
    centred = trend.coef[0] + trend.coef[1] * centre
    return sim.power(centred, trend.coef[1] if slope is None else slope, seeds)


@dataclass(frozen=True)
class SeedAdvice:
    seeds: float  # per max_freq at the fitted trend; inf: more than SEED_CAP; NaN: no fit
    strong: float  # … if the truth is the interval's end farthest from no effect
    weak: float  # … if it is the end nearest to no effect (inf when that end is no effect)
    current: float  # FINISHED runs per max_freq in the study
    current_power: float  # simulated power of this study's own design at the fitted trend
    max_freqs: tuple[int, ...]
    power: float


def seeds_needed(
    trend: DivergenceTrend,
    power: float = SEED_POWER,
    cap: int = SEED_CAP,
    replicates: int = SEED_REPLICATES,
    seed: int = 0,
) -> SeedAdvice:
    """Seeds per max_freq (module docstring) at the fitted slope and at its interval's ends."""
    current = trend.runs / max(len(trend.max_freqs), 1)
    nan = math.nan
    if not trend.method:
        return SeedAdvice(nan, nan, nan, current, nan, trend.max_freqs, power)
    sim = _Simulation(trend.max_freqs, replicates, cap, seed)
    centre = float(np.mean(trend.max_freqs))
    centred = trend.coef[0] + trend.coef[1] * centre
    slope = trend.coef[1]
    ends = sorted(
        (math.log(v) / PER for v in (trend.or10_low, trend.or10_high)), key=lambda b: abs(b)
    )
    weak_slope, strong_slope = ends
    if weak_slope * slope <= 0:  # the interval reaches no effect: no count is assured
        weak = math.inf
    else:
        weak = sim.seeds(centred, weak_slope, power)
    at = sim.seeds(centred, slope, power)
    strong = sim.seeds(centred, strong_slope, power) if strong_slope * slope > 0 else at
    # Monotone in the effect by construction: a stronger effect never needs more seeds.
    at = min(at, weak)
    strong = min(strong, at)
    here = round(current)
    current_power = sim.power(centred, slope, here) if 1 <= here <= cap else nan
    return SeedAdvice(at, strong, weak, current, current_power, trend.max_freqs, power)


# --- the shape of divergence against max_freq ---------------------------------------------------


def rate_difference(
    k1: int, n1: int, k2: int, n2: int, level: float = LEVEL
) -> tuple[float, float, float, float]:
    """k2/n2 − k1/n1 with Newcombe's hybrid score interval (from the two Wilson intervals;
    sound at 0/n and n/n, where the score and Wald intervals are not) and the two-sided p
    that inverts it: the α at which the interval's end reaches 0. Returns (diff, low, high,
    p)."""
    from analysis.stats import wilson_interval

    p1, p2 = k1 / n1, k2 / n2
    diff = p2 - p1

    def ends(z: float) -> tuple[float, float]:
        l1, u1 = wilson_interval(k1, n1, z)
        l2, u2 = wilson_interval(k2, n2, z)
        return (
            diff - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2),
            diff + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2),
        )

    z = float(sps.norm.ppf(0.5 + level / 2))
    low, high = ends(z)
    if diff == 0:
        return diff, low, high, 1.0
    side = 0 if diff > 0 else 1  # the end that moves towards 0 as z grows
    sign = 1.0 if diff > 0 else -1.0

    def towards_zero(t: float) -> float:  # > 0 while the interval still excludes 0
        return sign * ends(t)[side]

    far = 8.0  # z of a two-sided p of 1e-15: smaller p-values are printed as that
    zero = optimize.brentq(towards_zero, 1e-6, far) if towards_zero(far) < 0 else far
    return diff, low, high, float(2 * sps.norm.sf(zero))


@dataclass(frozen=True)
class DivergenceShape:
    """Is divergence one log-linear trend in max_freq, does it turn, and where is it
    highest? Over one setting's well-posed FINISHED runs, max_freq as categories."""

    max_freqs: tuple[int, ...]
    runs: tuple[int, ...]
    diverged: tuple[int, ...]
    lack_of_fit: float  # deviance of the logistic trend against the categories
    df: int
    # of that deviance, calibrated by a parametric bootstrap under the trend (analysis/
    # curvature.py; the χ² reference is liberal at these designs): small means one trend
    # does not fit
    p: float
    # each max_freq against the one before: previous, max_freq, diff (rate difference), low,
    # high, p, p_holm (Holm among the steps)
    steps: pd.DataFrame = field(repr=False)
    highest: tuple[int, ...] = ()  # the max_freq(s) with the highest rate
    # the others against the highest: max_freq, diff (its rate minus the highest's), low,
    # high, p, p_holm (Holm among them)
    against_highest: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    # the calibrated tests: the χ² p of the deviance beside the bootstrap's, and the
    # pre-specified rise-then-fall test (a quadratic term) with the fitted peak
    tests: "curvature.ShapeTests | None" = None

    @property
    def rise_fall_p(self) -> float:
        return self.tests.rise_fall_p if self.tests is not None else math.nan

    @property
    def pattern(self) -> str:
        """'not monotone' (two steps resolved in opposite directions, Holm within the steps),
        'rises', 'falls' (every resolved step one way), or 'not resolved'."""
        resolved = self.steps[self.steps["p_holm"] < ALPHA]
        up, down = (resolved["diff"] > 0).any(), (resolved["diff"] < 0).any()
        if up and down:
            return "not monotone"
        return "rises" if up else "falls" if down else "not resolved"

    @property
    def peaks(self) -> tuple[int, ...]:
        """Interior max_freqs whose rate is resolved above both neighbours (Holm)."""
        t = self.steps.reset_index(drop=True)
        out = []
        for i in range(len(t) - 1):
            into, out_of = t.iloc[i], t.iloc[i + 1]
            rises = into["p_holm"] < ALPHA and into["diff"] > 0
            falls = out_of["p_holm"] < ALPHA and out_of["diff"] < 0
            if rises and falls:
                out.append(int(into["max_freq"]))
        return tuple(out)

    @property
    def not_below_highest(self) -> tuple[int, ...]:
        """The max_freqs not resolved below the highest (the highest included)."""
        t = self.against_highest
        lower = set(t.loc[(t["p_holm"] < ALPHA) & (t["diff"] < 0), "max_freq"].astype(int))
        return tuple(m for m in self.max_freqs if m not in lower)


ALPHA = 1 - LEVEL


def divergence_shape(runs: pd.DataFrame) -> DivergenceShape | None:
    """The shape of divergence over the FINISHED runs of one setting (already well-posed);
    None with fewer than three max_freqs."""
    done = runs[runs["status"] == "FINISHED"]
    y = diverged_of(done).to_numpy(float)
    x = done["max_freq"].to_numpy(int)
    freqs = tuple(sorted({int(v) for v in x}))
    if len(freqs) < 3:
        return None
    k = np.array([int(y[x == m].sum()) for m in freqs])
    n = np.array([int(np.sum(x == m)) for m in freqs])
    tests = curvature.shape_tests(np.array(freqs), k, n)
    deviance = tests.deviance if tests is not None else math.nan
    df = len(freqs) - 2
    rows = []
    for i in range(1, len(freqs)):
        diff, low, high, p = rate_difference(k[i - 1], n[i - 1], k[i], n[i])
        rows.append({"previous": freqs[i - 1], "max_freq": freqs[i], "diff": diff, "low": low,
                     "high": high, "p": p})  # fmt: skip
    steps = pd.DataFrame(rows)
    steps["p_holm"] = multipletests(steps["p"], method="holm")[1]
    rates = k / n
    top = tuple(m for m, r in zip(freqs, rates, strict=True) if r == rates.max())
    best = freqs.index(top[0])
    rows = []
    for i, m in enumerate(freqs):
        if m in top:
            continue
        diff, low, high, p = rate_difference(k[best], n[best], k[i], n[i])
        rows.append({"max_freq": m, "diff": diff, "low": low, "high": high, "p": p})
    against = pd.DataFrame(rows, columns=["max_freq", "diff", "low", "high", "p"])
    against["p_holm"] = multipletests(against["p"], method="holm")[1] if rows else []
    return DivergenceShape(
        freqs, tuple(int(v) for v in n), tuple(int(v) for v in k), deviance, df,
        tests.p if tests is not None else math.nan, steps, top, against, tests,
    )  # fmt: skip


# --- everything, per setting -----------------------------------------------------------------


@dataclass(frozen=True)
class Trends:
    setting: dict[str, Any]  # the varying parameters' values ({} when none vary)
    divergence: DivergenceTrend
    error: ErrorTrend
    seeds: SeedAdvice
    aliased: tuple[int, ...] = ()  # max_freqs left out of the fits: the task is ill-posed there
    shape: DivergenceShape | None = None  # with three max_freqs or more


def fit(runs: pd.DataFrame) -> list[Trends]:
    """Every trend, per setting of the varying parameters, over its well-posed runs (aliased
    max_freqs are reported, not fitted). `diverged` is taken as it is: stats.judged(runs,
    ratio) re-judges at another threshold first."""
    out = []
    for setting, part in settings(runs):
        part, aliased = well_posed(part)
        divergence = divergence_trend(part)
        out.append(
            Trends(
                setting,
                divergence,
                error_trend(part),
                seeds_needed(divergence),
                aliased,
                divergence_shape(part),
            )
        )
    return out


def metrics(fits: list[Trends]) -> dict[str, float]:
    """The key numbers as one flat dict of floats (names in the module docstring)."""
    out = {}
    for t in fits:
        suffix = setting_suffix(t.setting)
        d, e = t.divergence, t.error
        values = {
            "trend_divergence_or10": d.or10,
            "trend_divergence_or10_low": d.or10_low,
            "trend_divergence_or10_high": d.or10_high,
            "trend_divergence_p": d.p_increasing,
            "trend_divergence_p_two_sided": d.p,
            "trend_divergence_runs": d.runs,
            "trend_divergence_events": d.events,
            "trend_divergence_firth": float(d.method == "firth"),
            "trend_mae_exponent": e.exponent,
            "trend_mae_exponent_low": e.low,
            "trend_mae_exponent_high": e.high,
            "trend_mae_p": e.p,
            "trend_mae_runs": e.runs,
            "seeds_recommended": t.seeds.seeds,
            "seeds_recommended_low": t.seeds.strong,
            "seeds_recommended_high": t.seeds.weak,
        }
        out |= {name + suffix: float(v) for name, v in values.items()}
        if t.shape is not None:
            out[f"trend_divergence_shape_p{suffix}"] = t.shape.p
            if (c := t.shape.tests) is not None:
                out |= {
                    f"trend_divergence_shape_p_chi2{suffix}": c.p_chi2,
                    f"trend_divergence_curvature{suffix}": c.curvature,
                    f"trend_divergence_curvature_low{suffix}": c.curvature_low,
                    f"trend_divergence_curvature_high{suffix}": c.curvature_high,
                    f"trend_divergence_rise_fall_p{suffix}": c.rise_fall_p,
                    f"trend_divergence_peak{suffix}": c.peak,
                }
            for row in t.shape.steps.itertuples(index=False):
                key = f"divergence_step{suffix}/max_freq_{row.max_freq}"
                out |= {key: row.diff, f"{key}_low": row.low, f"{key}_high": row.high,
                        f"{key}_p": row.p}  # fmt: skip
    return out
