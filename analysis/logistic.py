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
        softplus = np.maximum(eta, 0) + log1p(np.exp(-np.abs(eta)))  # log(1 + e^η), no overflow
        return float(self.events @ eta - self.trials @ softplus)

    def information(self, beta: np.ndarray) -> np.ndarray:
        p = expit(self.x @ beta)
        return (self.x.T * (self.trials * p * (1 - p))) @ self.x

    def penalised(self, beta: np.ndarray) -> float:
        """Firth's penalised log likelihood; −1e300 where the information is singular."""
        with np.errstate(all="ignore"):
            sign, logdet = np.linalg.slogdet(self.information(beta))
            value = self.loglike(beta) + 0.5 * logdet
        return float(value) if sign > 0 and np.isfinite(value) else -1e300

    def firth_score(self, beta: np.ndarray, cov: np.ndarray) -> np.ndarray:
        """The gradient of the penalised log likelihood: Xᵀ(k − n·p + h·(½ − p))."""
        p = expit(self.x @ beta)
        w = self.trials * p * (1 - p)
        hat = w * np.einsum("ij,jk,ik->i", self.x, cov, self.x)
        return self.x.T @ (self.events - self.trials * p + hat * (0.5 - p))


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


def maximum_likelihood(data: Data, free: np.ndarray | None = None, start=None) -> np.ndarray:
    """Newton–Raphson with step halving; `free` marks the coefficients fitted (others stay
    at `start`). Raises RuntimeError when it does not converge."""
    beta = np.zeros(data.x.shape[1]) if start is None else np.array(start, dtype=float)
    free = np.ones(len(beta), bool) if free is None else free
    value = data.loglike(beta)
    for _ in range(200):
        p = expit(data.x @ beta)
        score = data.x.T @ (data.events - data.trials * p)
        info = data.information(beta)
        step = np.zeros_like(beta)
        step[free] = np.linalg.solve(info[np.ix_(free, free)], score[free])
        while True:
            new = data.loglike(beta + step)
            if new >= value - 1e-12 or np.abs(step).max() < 1e-12:
                break
            step /= 2
        beta, value = beta + step, new
        if np.abs(step).max() < 1e-10:
            return beta
    raise RuntimeError("maximum likelihood did not converge")


def firth(data: Data, free: np.ndarray | None = None, start=None) -> np.ndarray:
    """Fisher-scoring steps on Firth's modified score, halved while they lower the penalised
    likelihood and when they turn back on the last one (the scoring step can overshoot and
    oscillate); `free` as in maximum_likelihood. Raises RuntimeError if it does not converge."""
    p_ = data.x.shape[1]
    beta = np.zeros(p_) if start is None else np.array(start, dtype=float)
    free = np.ones(p_, bool) if free is None else free
    last = np.zeros(p_)
    for _ in range(500):
        info = data.information(beta)
        cov = np.linalg.inv(info)
        score = data.firth_score(beta, cov)
        step = np.zeros(p_)
        step[free] = np.linalg.solve(info[np.ix_(free, free)], score[free])
        if step @ last < 0:
            step = step / 2
        start_value = data.penalised(beta)
        while data.penalised(beta + step) < start_value - 1e-12 and np.abs(step).max() > 1e-12:
            step = step / 2
        beta, last = beta + step, step
        if np.abs(step).max() < 1e-10:
            return beta
    raise RuntimeError(f"Firth iteration did not converge (last step {step})")


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
