"""Logistic regression of divergence, with Firth's penalised likelihood where maximum
likelihood fails: the one implementation behind the divergence trend (trends.py), the factor
model (factors.py), the backend comparison (backends.py) and the seed advice's simulations.

Rows may be grouped: each row of the design `x` carries `trials` runs of which `events`
diverged (the likelihood, its penalty and every interval are those of the ungrouped runs).

- **Maximum likelihood** (Newton–Raphson), 95% Wald intervals and two-sided Wald p-values, as
  statsmodels' Logit gives them (a test checks they agree).
- **Firth** (Heinze & Schemper 2002) when the runs are separated (some combination of the
  terms splits diverged from other runs, so the maximum-likelihood estimate is infinite; a
  threshold check for one numeric term, else a linear programme, Konis 2007) or events are few
  (fewer than MIN_EVENTS diverged or non-diverged runs per term: the estimate is badly
  biased). Estimates maximise l(β) + ½ log det I(β); intervals are **profile penalised
  likelihood** intervals, {b: 2·(l*(β̂) − max l*(β | β_j = b)) ≤ χ²₁(0.95)}, and p-values come
  from the penalised likelihood ratio at β_j = 0 (two-sided), as R's logistf computes them by
  default. `profile()` is the routine both trends and factors use.

Both estimators are `fit_many`, which fits many replicates of one design at once (the seed
advice simulates thousands of studies); `maximum_likelihood` and `firth` are it for one study,
so a simulated study is fitted exactly as the report fits a real one.
"""

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize
from scipy.special import expit, log1p
from scipy.stats import chi2, norm

LEVEL = 0.95
Z = float(norm.ppf(0.5 + LEVEL / 2))
MIN_EVENTS = 10  # per term: fewer diverged (or non-diverged) runs mean Firth
SEPARATION, FEW_EVENTS, NO_CONVERGENCE = "separation", "few events", "no convergence"


@dataclass(frozen=True)
class Data:
    """A design and its grouped outcomes."""

    x: np.ndarray  # (rows, terms), intercept first
    events: np.ndarray  # (rows,)
    trials: np.ndarray  # (rows,)

    @classmethod
    def of(cls, x: np.ndarray, events: np.ndarray, trials: np.ndarray | None = None) -> "Data":
        x = np.asarray(x, dtype=float)
        events = np.asarray(events, dtype=float)
        trials = np.ones_like(events) if trials is None else np.asarray(trials, dtype=float)
        return cls(x, events, trials)

    def loglike(self, beta: np.ndarray) -> float:
        eta = self.x @ beta
        return float(self.events @ eta - self.trials @ _softplus(eta))

    def information(self, beta: np.ndarray) -> np.ndarray:
        p = expit(self.x @ beta)
        return information(self.x, (self.trials * p * (1 - p))[None])[0]

    def penalised(self, beta: np.ndarray) -> float:
        """Firth's penalised log likelihood; −1e300 where the information is singular."""
        return float(objective(self.x, self.events[None], self.trials[None], beta[None], True)[0])


# --- separation and few events ---------------------------------------------------------------


def separated(data: Data) -> bool:
    """Whether some β ≠ 0 has xβ ≥ 0 for every diverged run and ≤ 0 for every other, > 0 for
    one (complete or quasi-complete separation: the maximum-likelihood estimate is infinite)."""
    x, k, n = data.x, data.events, data.trials
    on, off = k > 0, n - k > 0
    if x.shape[1] == 2 and np.all(x[:, 0] == x[0, 0]):  # one numeric term: a threshold
        t = x[:, 1]
        return bool(t[off].max() <= t[on].min() or t[on].max() <= t[off].min())
    rows = np.vstack([x[on], -x[off]])  # a run with both outcomes gives one row of each
    res = optimize.linprog(
        -rows.sum(axis=0), A_ub=-rows, b_ub=np.zeros(len(rows)), bounds=(-1, 1), method="highs"
    )
    return res.status == 0 and -res.fun > 1e-7 * max(1.0, np.abs(x).max())


def firth_reason(data: Data) -> str:
    """SEPARATION, FEW_EVENTS or '' (maximum likelihood is fine)."""
    if separated(data):
        return SEPARATION
    k, n = data.events.sum(), data.trials.sum()
    if min(k, n - k) < MIN_EVENTS * (data.x.shape[1] - 1):
        return FEW_EVENTS
    return ""


# --- the estimates ---------------------------------------------------------------------------


def _softplus(eta: np.ndarray) -> np.ndarray:
    """log(1 + e^η) without overflow."""
    return np.maximum(eta, 0) + log1p(np.exp(-np.abs(eta)))


def information(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Xᵀ·diag(w)·X for each replicate: w (R, rows) → (R, p, p)."""
    return np.einsum("rk,ki,kj->rij", w, x, x)


def objective(
    x: np.ndarray, k: np.ndarray, n: np.ndarray, beta: np.ndarray, firth: bool
) -> np.ndarray:
    """Each replicate's log likelihood (k, n (R, rows); beta (R, p)), or with firth its
    penalised one, −1e300 where the information is singular."""
    eta = beta @ x.T
    value = np.sum(k * eta, axis=1) - np.sum(n * _softplus(eta), axis=1)
    if not firth:
        return value
    p = expit(eta)
    with np.errstate(all="ignore"):
        sign, logdet = np.linalg.slogdet(information(x, n * p * (1 - p)))
        value = value + 0.5 * logdet
    return np.where((sign > 0) & np.isfinite(value), value, -1e300)


def _stacked(f, *args: np.ndarray) -> np.ndarray:
    """np.linalg's f over stacked matrices, NaN for a singular one instead of an error for all
    (a replicate with a NaN step stops, not converged)."""
    try:
        return f(*args)
    except np.linalg.LinAlgError:
        out = []
        for parts in zip(*args, strict=True):
            try:
                out.append(f(*parts))
            except np.linalg.LinAlgError:
                out.append(np.full_like(parts[-1], math.nan))
        return np.array(out)


def fit_many(
    x: np.ndarray,
    events: np.ndarray,
    trials: np.ndarray,
    firth: bool = False,
    free: np.ndarray | None = None,
    start: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximum likelihood or Firth's estimate for R replicates of one design at once (the seed
    advice simulates thousands; a single fit is R = 1): events (R, rows) of trials (rows,) or
    (R, rows) at design x (rows, p). `free` marks the coefficients fitted, the others stay at
    `start` (zeros by default; (p,) or (R, p)). Returns beta (R, p), the objective there (the
    log likelihood, or the penalised one) (R,) and whether each converged (R,).

    Maximum likelihood: Newton–Raphson steps, halved while they lower the likelihood, at most
    200. Firth: Fisher-scoring steps on Firth's modified score Xᵀ(k − n·p + h·(½ − p)), halved
    when they turn back on the last one (the scoring step can overshoot and oscillate) and
    while they lower the penalised likelihood, at most 500. Converged: a step below 1e-10."""
    x = np.asarray(x, dtype=float)
    k = np.asarray(events, dtype=float)
    n = np.broadcast_to(np.asarray(trials, dtype=float), k.shape)
    terms = x.shape[1]
    free = np.ones(terms, bool) if free is None else np.asarray(free, bool)
    cols = np.flatnonzero(free)
    beta = np.zeros((len(k), terms))
    if start is not None:
        beta[:] = start
    value = objective(x, k, n, beta, firth)
    last = np.zeros_like(beta)
    done = np.zeros(len(k), bool)
    active = np.arange(len(k))
    for _ in range(500 if firth else 200):
        b, kk, nn = beta[active], k[active], n[active]
        p = expit(b @ x.T)
        w = nn * p * (1 - p)
        info = information(x, w)
        resid = kk - nn * p
        if firth:
            hat = w * np.einsum("ki,rij,kj->rk", x, _stacked(np.linalg.inv, info), x)
            resid = resid + hat * (0.5 - p)
        score = resid @ x
        step = np.zeros_like(b)
        if len(cols) == terms:
            step = _stacked(np.linalg.solve, info, score[..., None])[..., 0]
        elif len(cols):
            sub = info[:, cols][:, :, cols]
            step[:, cols] = _stacked(np.linalg.solve, sub, score[:, cols, None])[..., 0]
        if firth:
            step[np.sum(step * last[active], axis=1) < 0] /= 2
        size = np.abs(step).max(axis=1)
        stuck = ~np.isfinite(size)  # a singular information: it stops here, not converged
        step[stuck], size[stuck] = 0, 0
        new = objective(x, kk, nn, b + step, firth)
        while True:  # halve while the objective falls
            worse = ~(new >= value[active] - 1e-12) & (size > 1e-12)
            if not worse.any():
                break
            step[worse] /= 2
            size[worse] /= 2
            new[worse] = objective(x, kk[worse], nn[worse], b[worse] + step[worse], firth)
        beta[active], last[active], value[active] = b + step, step, new
        moving = size >= 1e-10
        done[active] = ~moving & ~stuck
        active = active[moving]
        if not len(active):
            break
    return beta, value, done


def maximum_likelihood(data: Data, free: np.ndarray | None = None, start=None) -> np.ndarray:
    """fit_many's maximum likelihood for one study; `free` marks the coefficients fitted
    (others stay at `start`). Raises RuntimeError when it does not converge."""
    beta, _, converged = fit_many(data.x, data.events[None], data.trials, False, free, start)
    if not converged[0]:
        raise RuntimeError("maximum likelihood did not converge")
    return beta[0]


def firth(data: Data, free: np.ndarray | None = None, start=None) -> np.ndarray:
    """fit_many's Firth estimate for one study; `free` as in maximum_likelihood. Raises
    RuntimeError if it does not converge."""
    beta, _, converged = fit_many(data.x, data.events[None], data.trials, True, free, start)
    if not converged[0]:
        raise RuntimeError("Firth iteration did not converge")
    return beta[0]


def profile(
    data: Data, beta: np.ndarray, j: int, se: float, level: float = LEVEL
) -> tuple[float, float, float]:
    """Profile penalised-likelihood interval of coefficient j at `level` (the others re-fitted
    at each trial value) and the two-sided p-value of β_j = 0 by the penalised likelihood
    ratio."""
    top, crit = data.penalised(beta), chi2.ppf(level, 1) / 2
    free = np.ones(len(beta), bool)
    free[j] = False

    def drop(b: float) -> float:  # half the penalised deviance at β_j = b
        start = beta.copy()
        start[j] = b
        try:
            fitted = firth(data, free, start)
        except (RuntimeError, np.linalg.LinAlgError):
            return 1e6
        return min(top - data.penalised(fitted), 1e6)

    ends = []
    for sign in (-1.0, 1.0):
        width = max(se, 1e-3)
        for _ in range(60):
            if drop(beta[j] + sign * width) >= crit:
                break
            width *= 2
        a, b = sorted((beta[j], beta[j] + sign * width))
        ends.append(optimize.brentq(lambda s: drop(s) - crit, a, b, xtol=1e-10))
    p = float(chi2.sf(2 * max(0.0, drop(0.0)), 1))
    return ends[0], ends[1], p


# --- one fit ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fit:
    method: str  # 'logit', 'firth' or '' (no fit)
    reason: str = ""  # why Firth (SEPARATION, FEW_EVENTS, NO_CONVERGENCE), or why no fit
    beta: np.ndarray = field(default_factory=lambda: np.empty(0))
    cov: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    low: np.ndarray = field(default_factory=lambda: np.empty(0))  # 95% interval per term
    high: np.ndarray = field(default_factory=lambda: np.empty(0))
    p: np.ndarray = field(default_factory=lambda: np.empty(0))  # two-sided, β_j = 0

    def interval(self, data: Data, j: int, level: float = LEVEL) -> tuple[float, float]:
        """Term j's interval at another level: Wald for 'logit', profile for 'firth'."""
        if level == LEVEL:
            return float(self.low[j]), float(self.high[j])
        se = math.sqrt(self.cov[j, j])
        if self.method == "firth":
            low, high, _ = profile(data, self.beta, j, se, level)
            return low, high
        half = norm.ppf(0.5 + level / 2) * se
        return float(self.beta[j] - half), float(self.beta[j] + half)


def fit(data: Data, terms: list[int] | None = None, force_firth: bool = False) -> Fit:
    """Maximum likelihood, or Firth where needed (module docstring), with intervals and
    p-values for the coefficients in `terms` (default: all but the intercept; others NaN)."""
    k, n = data.events.sum(), data.trials.sum()
    if k in (0, n):
        return Fit("", "no events" if k == 0 else "only events")
    terms = list(range(1, data.x.shape[1])) if terms is None else terms
    nan = np.full(data.x.shape[1], math.nan)
    reason = "few events" if force_firth else firth_reason(data)
    if not reason:
        try:
            beta = maximum_likelihood(data)
            cov = np.linalg.inv(data.information(beta))
            se = np.sqrt(np.diag(cov))
            low, high, p = nan.copy(), nan.copy(), nan.copy()
            low[terms] = beta[terms] - Z * se[terms]
            high[terms] = beta[terms] + Z * se[terms]
            p[terms] = 2 * norm.sf(np.abs(beta[terms] / se[terms]))
            return Fit("logit", "", beta, cov, low, high, p)
        except (RuntimeError, np.linalg.LinAlgError):
            reason = NO_CONVERGENCE
    try:
        beta = firth(data)
        cov = np.linalg.inv(data.information(beta))
        low, high, p = nan.copy(), nan.copy(), nan.copy()
        for j in terms:
            low[j], high[j], p[j] = profile(data, beta, j, math.sqrt(cov[j, j]))
    except (RuntimeError, np.linalg.LinAlgError, ValueError):
        return Fit("", f"{reason}; the Firth fit did not converge")
    return Fit("firth", reason, beta, cov, low, high, p)
