"""Trend models: does divergence grow with max_freq, does the error, and how many seeds would
tell? Pure functions of the runs table (analysis/load.py) returning dataclasses, fitted with
statsmodels separately for each setting of the parameters that vary in the table besides
max_freq and seed (`varying_params`, declared grid axes or not): runs that differ in, say,
learning_rate are never pooled.

- Divergence: logistic regression of `diverged` on max_freq over FINISHED runs, reported as the
  odds ratio per +10 max_freq with a 95% Wald interval and the one-sided p-value for "the rate
  grows with max_freq". When a max_freq threshold separates diverged from non-diverged runs the
  maximum-likelihood odds ratio is infinite, and with few events (fewer than MIN_EVENTS of
  either outcome) it is badly biased: then Firth's penalised likelihood is used instead, with
  profile penalised-likelihood intervals and p-value (Heinze & Schemper 2002), and `note` says
  why. With no divergence at all (or nothing but) there is no odds ratio.
- Error: least squares of log(mae_test) on log(max_freq) over FINISHED, non-diverged runs with
  a positive finite MAE: the typical (geometric-mean) error grows like max_freq^b. b's 95%
  interval is a percentile bootstrap resampling runs within each max_freq, as the sweep fixes
  the seeds per max_freq.
- Seeds: how many seeds per max_freq, at the study's max_freq values, would make the 95%
  interval on the log odds ratio exclude 0 in `power` of repeat studies if the fitted trend were
  the truth: the Fisher information of one seed per max_freq, times n seeds (SE ∝ 1/√n).

`metrics()` flattens the fits for the `analysis` run. With several settings each name gets the
suffix `/<param>_<value>` for each varying parameter (e.g. `trend_mae_exponent/dropout_0.2`).

- `trend_divergence_or10`, `trend_divergence_or10_low`, `trend_divergence_or10_high`: odds
  ratio of diverging per +10 max_freq and its 95% interval (NaN: no fit, e.g. no events);
- `trend_divergence_p`: one-sided p-value for "the divergence rate grows with max_freq";
- `trend_divergence_runs`, `trend_divergence_events`: FINISHED runs in that fit, how many
  diverged; `trend_divergence_firth`: 1 if the Firth-penalised fit was used, else 0;
- `trend_mae_exponent`, `trend_mae_exponent_low`, `trend_mae_exponent_high`: b in
  mae_test ∝ max_freq^b and its 95% bootstrap interval; `trend_mae_runs`: runs in that fit;
- `seeds_recommended`: seeds per max_freq to tell the divergence trend (inf: more than
  SEED_CAP, a slope of about 0; NaN: no fit).
"""

import math
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import optimize
from scipy.special import expit
from scipy.stats import norm
from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

from analysis.load import PARAM_TYPES
from pipeline.jobs import GRID_AXES_TAG

GRID_AXES = ("max_freq", "seed")  # every sweep's axes; others are named by the grid_axes tag
LEVEL = 0.95
Z = float(norm.ppf(0.5 + LEVEL / 2))
PER = 10  # odds ratios are per +PER max_freq
MIN_EVENTS = 10  # fewer diverged (or non-diverged) runs: Firth (events-per-variable rule of thumb)
RESAMPLES = 1000
SEED_POWER = 0.8  # the recommended seeds make the interval exclude 0 in 80% of repeat studies
SEED_CAP = 1000  # beyond this many seeds per max_freq we say "no feasible number"


# --- settings: which parameters vary, and the runs of each combination ----------------------


def varying_params(runs: pd.DataFrame) -> list[str]:
    """Pipeline parameters other than the grid axes that take more than one value in `runs`
    (a missing value counts as a value). Run bookkeeping columns are not parameters."""
    return [
        name
        for name in PARAM_TYPES
        if name not in GRID_AXES and name in runs and runs[name].nunique(dropna=False) > 1
    ]


def declared_axes(runs: pd.DataFrame) -> list[str]:
    """The parameters that the runs' sweeps declared as grid axes besides max_freq and seed
    (the `grid_axes` tag of each main run), sorted."""
    if GRID_AXES_TAG not in runs:
        return []
    tags = runs[GRID_AXES_TAG].dropna().unique()
    return sorted({axis for text in tags for axis in str(text).split(",") if axis})


def _plain(value: Any) -> Any:
    if pd.isna(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def settings(
    runs: pd.DataFrame, params: list[str] | None = None
) -> list[tuple[dict[str, Any], pd.DataFrame]]:
    """(setting, its runs) per combination of `params` (default: `varying_params`), sorted;
    a setting maps each parameter to its value (None: not logged). [({}, runs)] if none vary."""
    params = varying_params(runs) if params is None else list(params)
    if not params:
        return [({}, runs)]
    out = []
    for key, group in runs.groupby(params, dropna=False, sort=True):
        values = key if isinstance(key, tuple) else (key,)
        out.append(({p: _plain(v) for p, v in zip(params, values, strict=True)}, group))
    return out


def value_text(value: Any) -> str:
    """A parameter value as text: 0.1, 'jax', 'unset' (missing)."""
    value = _plain(value)
    if value is None:
        return "unset"
    return f"{value:g}" if isinstance(value, float) else str(value)


def label(setting: dict[str, Any]) -> str:
    """'dropout=0.2, backend=jax'; 'all runs' for the empty setting."""
    return ", ".join(f"{k}={value_text(v)}" for k, v in setting.items()) or "all runs"


def diverged_of(finished: pd.DataFrame) -> pd.Series:
    """The verdict of FINISHED runs as bools; a run without one counts as diverged."""
    return finished["diverged"].fillna(True).astype(bool)


# --- divergence: logistic regression, Firth when the MLE is infinite or biased --------------


@dataclass(frozen=True)
class DivergenceTrend:
    runs: int  # FINISHED runs in the fit
    events: int  # of which diverged
    max_freqs: tuple[int, ...]
    method: str = ""  # "logit" (maximum likelihood), "firth", or "" (no fit)
    coef: tuple[float, float] = (math.nan, math.nan)  # intercept; slope per unit max_freq
    cov: tuple[tuple[float, float], tuple[float, float]] = ((math.nan,) * 2,) * 2
    or10: float = math.nan  # odds ratio per +PER max_freq, and its 95% interval
    or10_low: float = math.nan
    or10_high: float = math.nan
    p_increasing: float = math.nan  # one-sided, H1: slope > 0
    note: str = ""

    @property
    def verdict(self) -> str:
        """'grows', 'falls', 'cannot tell' (the interval contains 1) or 'no fit'."""
        return _verdict(self.or10_low, self.or10_high, 1.0)


def _verdict(low: float, high: float, null: float) -> str:
    if math.isnan(low) or math.isnan(high):
        return "no fit"
    return "grows" if low > null else "falls" if high < null else "cannot tell"


def _firth_reason(x: np.ndarray, y: np.ndarray) -> str:
    events, others = x[y == 1], x[y == 0]
    # With one predictor, the MLE is infinite exactly when a threshold splits the outcomes.
    if others.max() <= events.min() or events.max() <= others.min():
        return "separation: a max_freq threshold splits diverged from non-diverged runs"
    few = min(len(events), len(others))
    if few < MIN_EVENTS:
        which = "diverged" if len(events) == few else "non-diverged"
        return f"few events: {few} {which} run{'s' * (few != 1)}, fewer than {MIN_EVENTS}"
    return ""


def _penalised(model: sm.Logit, beta: np.ndarray) -> float:
    """Firth's penalised log likelihood: l(β) + ½ log det I(β); −1e300 where that underflows."""
    with np.errstate(all="ignore"):
        value = model.loglike(beta) + 0.5 * np.linalg.slogdet(-model.hessian(beta))[1]
    return float(value) if np.isfinite(value) else -1e300


def _firth(model: sm.Logit) -> np.ndarray:
    """Fisher-scoring steps on Firth's modified score U(β) + Xᵀ(h(½ − p)), h the hat values;
    halved while they lower the penalised likelihood, and when they turn back on the last one
    (the scoring step can overshoot and oscillate)."""
    x, beta, last = model.exog, np.zeros(model.exog.shape[1]), np.zeros(model.exog.shape[1])
    for _ in range(500):
        p = model.predict(beta)
        cov = np.linalg.inv(-model.hessian(beta))
        hat = p * (1 - p) * np.einsum("ij,jk,ik->i", x, cov, x)
        step = cov @ (model.score(beta) + x.T @ (hat * (0.5 - p)))
        if step @ last < 0:
            step = step / 2
        start = _penalised(model, beta)
        while _penalised(model, beta + step) < start - 1e-12 and np.abs(step).max() > 1e-12:
            step = step / 2
        beta, last = beta + step, step
        if np.abs(step).max() < 1e-10:
            return beta
    raise RuntimeError(f"Firth iteration did not converge (last step {step})")


def _profile_slope(model: sm.Logit, beta: np.ndarray, se: float) -> tuple[float, float, float]:
    """Profile penalised-likelihood 95% interval of the slope and the one-sided p-value of
    slope > 0 (the signed root of the penalised likelihood ratio at slope 0)."""
    top, crit = _penalised(model, beta), Z**2 / 2

    def drop(slope: float) -> float:  # half the penalised deviance, intercept re-fitted
        # The intercept is the log odds at the mean max_freq: beyond ±40 of the fit, absurd.
        best = optimize.minimize_scalar(
            lambda a: -_penalised(model, np.array([a, slope])),
            bounds=(beta[0] - 40, beta[0] + 40),
            method="bounded",
            options={"xatol": 1e-9},
        )
        return min(top + best.fun, 1e6)

    ends = []
    for sign in (-1.0, 1.0):
        width = se
        while drop(beta[1] + sign * width) < crit:
            width *= 2
        a, b = sorted((beta[1], beta[1] + sign * width))
        ends.append(optimize.brentq(lambda s: drop(s) - crit, a, b, xtol=1e-10))
    root = math.copysign(math.sqrt(max(0.0, 2 * drop(0.0))), beta[1])
    return ends[0], ends[1], float(norm.sf(root))


def divergence_trend(runs: pd.DataFrame) -> DivergenceTrend:
    """Logistic regression of `diverged` on max_freq over the FINISHED runs of one setting."""
    done = runs[runs["status"] == "FINISHED"]
    y = diverged_of(done).to_numpy(float)
    x = done["max_freq"].to_numpy(float)
    n, k = len(y), int(y.sum())
    base = {"runs": n, "events": k, "max_freqs": tuple(sorted({int(v) for v in x}))}
    if n == 0:
        return DivergenceTrend(**base, note="no finished runs")
    if k in (0, n):
        what = "no divergence observed" if k == 0 else "every finished run diverged"
        return DivergenceTrend(**base, note=f"{what} ({k} of {n}): no odds ratio")
    if len(base["max_freqs"]) < 2:
        return DivergenceTrend(**base, note="a single max_freq: no trend to fit")
    # Centred: the intercept is the log odds at the mean max_freq, nearly uncorrelated with
    # the slope, which keeps the profile likelihood's inner fits easy.
    centre = float(x.mean())
    model = sm.Logit(y, np.column_stack([np.ones(n), x - centre]))
    reason, result = _firth_reason(x, y), None
    if not reason:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            warnings.simplefilter("error", PerfectSeparationWarning)
            try:
                result = model.fit(disp=0)
            except (ConvergenceWarning, PerfectSeparationWarning, np.linalg.LinAlgError):
                reason = "the maximum-likelihood fit did not converge"
    if result is not None:
        beta, cov = np.asarray(result.params), np.asarray(result.cov_params())
        se = math.sqrt(cov[1, 1])
        low, high = beta[1] - Z * se, beta[1] + Z * se
        p, method, note = float(norm.sf(beta[1] / se)), "logit", ""
    else:
        beta = _firth(model)
        cov = np.linalg.inv(-model.hessian(beta))
        low, high, p = _profile_slope(model, beta, math.sqrt(cov[1, 1]))
        method, note = (
            "firth",
            (f"Firth-penalised logistic regression, not maximum likelihood ({reason})"),
        )
    # Back to max_freq itself: intercept a − b·centre.
    shift = np.array([[1.0, -centre], [0.0, 1.0]])
    raw, raw_cov = shift @ beta, shift @ cov @ shift.T
    return DivergenceTrend(
        **base,
        method=method,
        coef=(float(raw[0]), float(raw[1])),
        cov=tuple(tuple(float(v) for v in row) for row in raw_cov),
        or10=math.exp(PER * beta[1]),
        or10_low=math.exp(PER * low),
        or10_high=math.exp(PER * high),
        p_increasing=p,
        note=note,
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


# --- error: power law by log-log least squares, bootstrap interval --------------------------


@dataclass(frozen=True)
class ErrorTrend:
    runs: int  # non-diverged FINISHED runs with a positive finite mae_test
    max_freqs: tuple[int, ...]
    exponent: float = math.nan  # b in mae_test ∝ max_freq^b, and its 95% interval
    low: float = math.nan
    high: float = math.nan
    intercept: float = math.nan  # log mae_test at max_freq 1
    note: str = ""
    draws: np.ndarray = field(default_factory=lambda: np.empty((0, 2)), repr=False, compare=False)

    @property
    def verdict(self) -> str:
        """'grows', 'falls', 'cannot tell' (the interval contains 0) or 'no fit'."""
        return _verdict(self.low, self.high, 0.0)


def _bootstrap(lx: np.ndarray, ly: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """(resamples, 2): intercept and slope of least squares on runs resampled within each x.
    With x fixed within a stratum the fit depends only on the strata's mean y, so each
    resample costs one weighted sum."""
    rng = np.random.default_rng(seed)
    xs = np.unique(lx)
    counts = np.array([np.sum(lx == v) for v in xs])
    means = np.column_stack(
        [
            ly[lx == v][rng.integers(0, c, (resamples, c))].mean(axis=1)
            for v, c in zip(xs, counts, strict=True)
        ]
    )
    xbar = counts @ xs / counts.sum()
    weights = counts * (xs - xbar) / (counts @ (xs - xbar) ** 2)
    slopes = means @ weights
    return np.column_stack([means @ counts / counts.sum() - slopes * xbar, slopes])


def error_trend(runs: pd.DataFrame, resamples: int = RESAMPLES, seed: int = 0) -> ErrorTrend:
    """Power law of test MAE in max_freq over the non-diverged FINISHED runs of one setting."""
    done = runs[runs["status"] == "FINISHED"]
    mae = done["mae_test"].to_numpy(float)
    keep = ~diverged_of(done).to_numpy() & np.isfinite(mae) & (mae > 0)
    freq = done["max_freq"].to_numpy(float)[keep]
    lx, ly = np.log(freq), np.log(mae[keep])
    max_freqs = tuple(sorted({int(v) for v in freq}))
    if len(max_freqs) < 2:
        return ErrorTrend(len(ly), max_freqs, note="fewer than two max_freq values to fit")
    fit = sm.OLS(ly, sm.add_constant(lx, has_constant="add")).fit()
    draws = _bootstrap(lx, ly, resamples, seed)
    low, high = np.percentile(draws[:, 1], [50 - 50 * LEVEL, 50 + 50 * LEVEL])
    singles = [m for m in max_freqs if np.sum(freq == m) == 1]
    note = ""
    if len(singles) == len(max_freqs):
        low = high = math.nan
        note = "one run per max_freq: no bootstrap interval"
    elif singles:
        note = f"one run at max_freq {', '.join(map(str, singles))}: the interval omits its spread"
    return ErrorTrend(
        len(ly),
        max_freqs,
        float(fit.params[1]),
        float(low),
        float(high),
        float(fit.params[0]),
        note,
        draws,
    )


def error_curve(trend: ErrorTrend, max_freq: np.ndarray) -> pd.DataFrame:
    """The fitted power law and its pointwise 95% bootstrap band at `max_freq`; no rows when
    there is no fit."""
    if math.isnan(trend.exponent):
        return pd.DataFrame(columns=["max_freq", "mae", "low", "high"])
    g = np.asarray(max_freq, dtype=float)
    fitted = np.exp(trend.intercept + trend.exponent * np.log(g))
    if len(trend.draws) and not math.isnan(trend.low):
        band = np.exp(trend.draws[:, :1] + trend.draws[:, 1:] * np.log(g))
        low, high = np.percentile(band, [50 - 50 * LEVEL, 50 + 50 * LEVEL], axis=0)
    else:
        low = high = np.full_like(g, math.nan)
    return pd.DataFrame({"max_freq": g, "mae": fitted, "low": low, "high": high})


# --- how many seeds -------------------------------------------------------------------------


@dataclass(frozen=True)
class SeedAdvice:
    seeds: float  # per max_freq; inf: more than `cap` (or a slope of 0); NaN: no fit
    current: float  # FINISHED runs per max_freq in the study
    max_freqs: tuple[int, ...]
    power: float


def seeds_needed(
    trend: DivergenceTrend, power: float = SEED_POWER, cap: int = SEED_CAP
) -> SeedAdvice:
    """Seeds per max_freq (at trend.max_freqs) for the 95% interval on the log odds ratio to
    exclude 0 with probability `power`, if the fitted trend is the true one: n such that
    (z₀.₉₇₅ + z_power)·SE₁/√n = |slope|, SE₁ from the Fisher information of one seed each."""
    current = trend.runs / max(len(trend.max_freqs), 1)
    if not trend.method:
        return SeedAdvice(math.nan, current, trend.max_freqs, power)
    slope = trend.coef[1]
    x = np.column_stack([np.ones(len(trend.max_freqs)), trend.max_freqs])
    p = expit(x @ np.array(trend.coef))
    try:
        var = np.linalg.inv((x.T * (p * (1 - p))) @ x)[1, 1]
    except np.linalg.LinAlgError:
        var = math.inf
    need = (Z + norm.ppf(power)) ** 2 * var / slope**2 if slope != 0 else math.inf
    return SeedAdvice(
        float(math.ceil(need)) if need <= cap else math.inf, current, trend.max_freqs, power
    )


# --- everything, per setting ----------------------------------------------------------------


@dataclass(frozen=True)
class Trends:
    setting: dict[str, Any]  # the varying parameters' values ({} when none vary)
    divergence: DivergenceTrend
    error: ErrorTrend
    seeds: SeedAdvice


def fit(runs: pd.DataFrame, resamples: int = RESAMPLES, seed: int = 0) -> list[Trends]:
    """Every trend, per setting of the varying parameters. `diverged` is taken as it is:
    stats.judged(runs, ratio) re-judges at another threshold first."""
    out = []
    for setting, part in settings(runs):
        divergence = divergence_trend(part)
        error = error_trend(part, resamples, seed)
        out.append(Trends(setting, divergence, error, seeds_needed(divergence)))
    return out


def _metric_part(text: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_.\- ]", "_", value_text(text))


def setting_suffix(setting: dict[str, Any]) -> str:
    """The metric-name suffix of a setting: '/<param>_<value>' per varying parameter."""
    return "".join(f"/{_metric_part(k)}_{_metric_part(v)}" for k, v in setting.items())


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
            "trend_divergence_runs": d.runs,
            "trend_divergence_events": d.events,
            "trend_divergence_firth": float(d.method == "firth"),
            "trend_mae_exponent": e.exponent,
            "trend_mae_exponent_low": e.low,
            "trend_mae_exponent_high": e.high,
            "trend_mae_runs": e.runs,
            "seeds_recommended": t.seeds.seeds,
        }
        out |= {name + suffix: float(v) for name, v in values.items()}
    return out
