"""Does each interval the report prints cover at its stated level? Seeded simulations at
realistic designs, running the report's own code on runs tables drawn from a known truth.

Each check returns, per simulated study, whether the interval covered the truth, for the
interval at the report's level (95%) and, where the method has one, at 90%: a test shows the
95% interval passing and the 90% one failing the same bar, so a 90% interval labelled 95%
cannot pass. `benchmarks/coverage.py` runs every check with many replicates and writes the
table in docs/coverage.md; tests/test_coverage.py runs them with fewer.

Designs are those of the studies the README cites: max_freq 10/20/30 × 20 seeds (backends),
5/10/20/30/40 × 5 seeds (default), 2×2×2 × 10 seeds (causes), 6 max_freqs × 16 seeds
(budget), with error spreads and divergence rates of the fitted values.
"""

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps
from scipy.special import expit

from analysis import backends, escape, factors, stats, trends


@dataclass(frozen=True)
class Check:
    name: str  # the interval, as the report prints it
    method: str
    design: str
    truth: str
    run: Callable[[int, int], dict[str, np.ndarray]]  # (replicates, seed) → level → covered
    cost: str = "fast"  # 'fast' or 'slow' (a bootstrap or a profile in every replicate)


def _frame(max_freq: np.ndarray, diverged: np.ndarray, mae: np.ndarray, **params) -> pd.DataFrame:
    runs = pd.DataFrame(
        {
            "status": "FINISHED",
            "max_freq": pd.array(max_freq.astype(int), dtype="Int64"),
            "seed": np.arange(len(max_freq)),
            "diverged": pd.array(diverged.astype(bool), dtype="boolean"),
            "mae_test": mae,
            "mae_ratio_test": mae,
        }
    )
    for name, values in params.items():
        runs[name] = values
    return runs


# --- divergence trend ------------------------------------------------------------------------


def _divergence(freqs, seeds, intercept, slope, path, at=20):
    """The odds ratio's interval at 95% and 90%, and (logit path) the figure's band for the
    fitted rate at max_freq `at`."""

    def run(replicates: int, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        x = np.repeat(freqs, seeds).astype(float)
        truth = math.exp(trends.PER * slope)
        rate = float(expit(intercept + slope * at))
        out = {"95": [], "90": [], "band": []}
        for _ in range(replicates):
            y = rng.random(len(x)) < expit(intercept + slope * x)
            d = trends.divergence_trend(_frame(x, y, np.ones(len(x))))
            if d.method != path:
                continue  # coverage of this path, on the studies that take it
            out["95"].append(d.or10_low < truth < d.or10_high)
            if path == "logit":
                half = sps.norm.ppf(0.95) * math.sqrt(d.cov[1][1])
                ends = np.exp(trends.PER * (d.coef[1] + np.array([-half, half])))
                out["90"].append(ends[0] < truth < ends[1])
                band = trends.divergence_curve(d, np.array([at])).iloc[0]
                out["band"].append(band["low"] < rate < band["high"])
        return {k: np.array(v) for k, v in out.items() if v}

    return run


# --- error of the runs that learned ------------------------------------------------------------


def _exponent(freqs, seeds, exponent, sigmas, at=None):
    """Lognormal errors around a power law, a different spread at each max_freq."""

    def run(replicates: int, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        x = np.repeat(freqs, seeds).astype(float)
        sigma = np.repeat(sigmas, seeds)
        out = {"95": [], "90": []}
        for _ in range(replicates):
            mae = 0.02 * x**exponent * np.exp(rng.normal(0, sigma))
            e = trends.error_trend(_frame(x, np.zeros(len(x)), mae))
            if at is None:
                truth = exponent
                out["95"].append(e.low < truth < e.high)
                _, low, high, _ = e.cells.contrast(e.cells.slope_weights(), 0.90)
            else:
                truth = math.log(0.02 * at**exponent)  # the median's log at `at`
                band = trends.error_curve(e, np.array([at])).iloc[0]
                out["95"].append(math.log(band["low"]) < truth < math.log(band["high"]))
                _, low, high, _ = e.cells.contrast(e.cells.fit_weights(math.log(at)), 0.90)
            out["90"].append(low < truth < high)
        return {k: np.array(v) for k, v in out.items()}

    return run


def median_exact(n: int, level: float) -> float:
    """The exact coverage of stats.median_ci for n runs from any continuous distribution:
    1 − 2·P(B ≤ r − 1), B ~ Binomial(n, ½), for the order statistic r it picks."""
    values = np.arange(1.0, n + 1)
    _, low, _ = stats.median_ci(values, level)
    if math.isnan(low):
        return math.nan
    r = int(low)
    return float(1 - 2 * sps.binom.cdf(r - 1, n, 0.5))


def _median(n, sigma):
    """Simulated (lognormal) and exact coverage."""

    def run(replicates: int, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        covered = []
        for _ in range(replicates):
            _, low, high = stats.median_ci(np.exp(rng.normal(0, sigma, n)))
            covered.append(low <= 1.0 <= high)  # the lognormal's median is 1
        return {"95": np.array(covered), "exact": np.array([median_exact(n, 0.95)])}

    return run


def _mean(n, sigma):
    """The mean's Student-t interval on skewed (lognormal) errors, as summary.csv gives it."""

    def run(replicates: int, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        truth = math.exp(sigma**2 / 2)
        covered = []
        for _ in range(replicates):
            _, low, high = stats.mean_ci(np.exp(rng.normal(0, sigma, n)))
            covered.append(low < truth < high)
        return {"95": np.array(covered)}

    return run


def wilson_exact(n: int, p: float, z: float = stats.Z95) -> float:
    """The exact coverage of the Wilson interval at n and p (a sum over the binomial)."""
    total = 0.0
    for k in range(n + 1):
        low, high = stats.wilson_interval(k, n, z)
        if low <= p <= high:
            total += sps.binom.pmf(k, n, p)
    return total


def _wilson(n, rates):
    """Exact, not simulated: the mean coverage over a grid of rates (replicates unused)."""

    def run(replicates: int, seed: int) -> dict[str, np.ndarray]:
        z90 = float(sps.norm.ppf(0.95))
        return {
            "95": np.array([wilson_exact(n, p) for p in rates]),
            "90": np.array([wilson_exact(n, p, z90) for p in rates]),
        }

    return run


def _clopper(n, rates):
    """Exact: the coverage at each rate of a grid (its minimum is what the test bounds)."""

    def run(replicates: int, seed: int) -> dict[str, np.ndarray]:
        def exact(p: float, level: float) -> float:
            total = 0.0
            for k in range(n + 1):
                ci = sps.binomtest(k, n).proportion_ci(level, method="exact")
                total += sps.binom.pmf(k, n, p) * (ci.low <= p <= ci.high)
            return total

        return {
            "95": np.array([exact(p, 0.95) for p in rates]),
            "90": np.array([exact(p, 0.90) for p in rates]),
        }

    return run


# --- factor effects ------------------------------------------------------------------------------


def _causes_runs(rng, seeds, log_odds, shift):
    cells = list(itertools.product((10, 50), (1, 10), ("none", "max_freq"), range(seeds)))
    mf, spf, scale, _ = (np.array(v) for v in zip(*cells, strict=True))
    eta = log_odds[0] + log_odds[1] * (spf == 1) + log_odds[2] * (scale == "none")
    eta = eta + log_odds[3] * (mf == 50)
    y = rng.random(len(mf)) < expit(eta)
    ratio = 0.1 + shift * (spf == 1) + 0.05 * np.exp(rng.normal(0, 0.5, len(mf)))
    return _frame(
        mf.astype(float), y, ratio,
        samples_per_freq=pd.array(spf, dtype="Int64"),
        target_scale=pd.array(scale, dtype="string"),
    )  # fmt: skip


def _factor_or(seeds, log_odds, path):
    def run(replicates: int, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        truth = math.exp(log_odds[1])
        covered = []
        for _ in range(replicates):
            runs = _causes_runs(rng, seeds, log_odds, 0.0)
            e = factors.effects(runs, resamples=10)  # the median model is not checked here
            if e.divergence.method != path:
                continue
            row = e.table[e.table["factor"] == "samples_per_freq"].iloc[0]
            covered.append(row["or_low"] < truth < row["or_high"])
        return {"95": np.array(covered)}

    return run


def _factor_numeric(seeds):
    """The per-+10 term of a numeric max_freq (backend × max_freq 10/20/30)."""

    def run(replicates: int, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        slope = 0.1
        truth = math.exp(trends.PER * slope)
        covered = []
        for _ in range(replicates):
            mf = np.repeat([10, 20, 30], 2 * seeds).astype(float)
            backend = np.tile(np.repeat(["tensorflow", "jax"], seeds), 3)
            y = rng.random(len(mf)) < expit(-3 + slope * mf)
            runs = _frame(mf, y, np.ones(len(mf)), backend=pd.array(backend, dtype="string"))
            e = factors.effects(runs, resamples=10)
            row = e.table[e.table["factor"] == "max_freq"].iloc[0]
            covered.append(row["or_low"] < truth < row["or_high"])
        return {"95": np.array(covered)}

    return run


def _factor_median(seeds, shift):
    def run(replicates: int, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        covered = {"95": [], "90": []}
        for _ in range(replicates):
            runs = _causes_runs(rng, seeds, (-2.0, 0.5, 0.5, 0.5), shift)
            e = factors.effects(runs, resamples=factors.RESAMPLES)
            row = e.table[e.table["factor"] == "samples_per_freq"].iloc[0]
            covered["95"].append(row["median_low"] < shift < row["median_high"])
        return {k: np.array(v) for k, v in covered.items() if v}

    return run


# --- backends ------------------------------------------------------------------------------------


def _ratio(n, sigma, ratio):
    def run(replicates: int, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        covered = []
        for r in range(replicates):
            a = np.exp(rng.normal(0, sigma, n))
            b = ratio * np.exp(rng.normal(0, sigma, n))
            _, low, high = backends.median_ratio_ci(a, b, backends.RESAMPLES, r)
            covered.append(low < ratio < high)
        return {"95": np.array(covered)}

    return run


def _tost(seeds, ratio):
    """The pooled ratio of medians (median regression of log mae_test), at 90% and 95%."""

    def run(replicates: int, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        out = {"95": [], "90": []}
        for _ in range(replicates):
            mf = np.repeat([10, 20, 30], 2 * seeds).astype(float)
            backend = np.tile(np.repeat(["tensorflow", "jax"], seeds), 3)
            sigma = np.repeat([0.3, 0.6, 0.9], 2 * seeds)
            mae = 0.01 * mf * np.where(backend == "jax", ratio, 1) * np.exp(rng.normal(0, sigma))
            runs = _frame(mf, np.zeros(len(mf)), mae, backend=pd.array(backend, dtype="string"))
            b = backends.compare(runs, resamples=backends.RESAMPLES)
            out["95"].append(b.mae.low95 < ratio < b.mae.high95)
            out["90"].append(b.mae.low90 < ratio < b.mae.high90)
        return {k: np.array(v) for k, v in out.items()}

    return run


# --- time to escape --------------------------------------------------------------------------


def _escape_runs(rng, freqs, seeds, hr10, cure, budget):
    """Weibull escape times (shape 1.5) with a rate × hr10 per +10 max_freq; a fraction
    `cure` never escapes; censored at `budget` updates."""
    x = np.repeat(freqs, seeds).astype(float)
    scale = 2000 * hr10 ** (-(x - np.mean(freqs)) / 10 / 1.5)
    times = scale * rng.weibull(1.5, len(x))
    never = rng.random(len(x)) < cure
    escaped = (times <= budget) & ~never
    return _frame(
        x, ~escaped, np.ones(len(x)),
        train_steps=budget, epochs=200, optimizer_steps=float(budget),
        steps_per_epoch=10.0, escape_step=np.where(escaped, np.ceil(times), np.nan),
    )  # fmt: skip


def _hr(freqs, seeds, hr10, budget):
    def run(replicates: int, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        covered = []
        for _ in range(replicates):
            runs = _escape_runs(rng, freqs, seeds, hr10, 0.0, budget)
            trend = escape.escape_trend(escape.records(runs))  # what escape.fit reports
            covered.append(trend.hr10_low < hr10 < trend.hr10_high)
        return {"95": np.array(covered)}

    return run


def _km(seeds, at, budget):
    """The Kaplan–Meier pointwise band at `at` updates, and the median's interval."""

    def run(replicates: int, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        scale = 2000.0
        truth_s = math.exp(-((at / scale) ** 1.5))
        truth_median = scale * math.log(2) ** (1 / 1.5)
        band, median = [], []
        for _ in range(replicates):
            t = scale * rng.weibull(1.5, seeds)
            event = (t <= budget).astype(int)
            time = np.minimum(t, budget)
            curve = escape.km_curve(time, event)
            row = curve[curve["time"] <= at].iloc[-1]
            band.append(row["low"] <= truth_s <= row["high"])
            _, low, high = escape.median_escape(time, event)
            median.append(low <= truth_median <= high)
        return {"95": np.array(band), "median": np.array(median)}

    return run


CHECKS = [
    Check("odds ratio per +10 max_freq (divergence trend); band: the fitted rate at max_freq "
          "20 in the figure", "logistic regression, Wald; band: delta method",
          "max_freq 10, 20, 30 × 20 seeds", "odds ×3.7 per +10 (rates 0.05–0.45)",
          _divergence((10, 20, 30), 20, -4.2, 0.131, "logit")),
    Check("odds ratio per +10 max_freq (divergence trend), Firth path",
          "Firth, profile penalised likelihood",
          "max_freq 5, 10, 20, 30, 40 × 5 seeds", "odds ×2.2 per +10 (rates 0.05–0.4)",
          _divergence((5, 10, 20, 30, 40), 5, -3.2, 0.079, "firth"), "slow"),
    Check("error exponent b (MAE ∝ max_freq^b)", "t, Welch–Satterthwaite",
          "max_freq 10, 50 × 10 learned runs", "b = 0.6, log-spread 0.3 and 0.8",
          _exponent((10, 50), 10, 0.6, (0.3, 0.8))),
    Check("error exponent b", "t, Welch–Satterthwaite", "max_freq 10, 20, 30, 40 × 10",
          "b = 1.2, log-spread 0.3 to 1.2", _exponent((10, 20, 30, 40), 10, 1.2,
                                                      (0.3, 0.6, 0.9, 1.2))),
    Check("error exponent b", "t, Welch–Satterthwaite", "max_freq 5, 10, 20, 30, 40 × 5",
          "b = 0.8, log-spread 0.4 to 1.0",
          _exponent((5, 10, 20, 30, 40), 5, 0.8, (0.4, 0.5, 0.7, 0.9, 1.0))),
    Check("fitted error at max_freq 20 (figure band)", "t, Welch–Satterthwaite",
          "max_freq 10, 20, 30, 40 × 10", "median error 0.02·20^1.2",
          _exponent((10, 20, 30, 40), 10, 1.2, (0.3, 0.6, 0.9, 1.2), at=20.0)),
    Check("median test MAE", "order statistics (distribution-free)", "10 runs", "lognormal",
          _median(10, 0.8)),
    Check("median test MAE", "order statistics (distribution-free)", "20 runs", "lognormal",
          _median(20, 0.8)),
    Check("mean test MAE (summary.csv only)", "Student t", "10 runs",
          "lognormal, log-spread 1", _mean(10, 1.0)),
    Check("divergence rate", "Wilson (exact coverage, mean over rates 0.05–0.5)", "16 runs",
          "rates 0.05, 0.1, …, 0.5", _wilson(16, np.arange(0.05, 0.51, 0.05))),
    Check("divergence rate", "Wilson (exact coverage, mean over rates 0.05–0.5)", "40 runs",
          "rates 0.05, 0.1, …, 0.5", _wilson(40, np.arange(0.05, 0.51, 0.05))),
    Check("divergence rate of a factorial cell", "Clopper–Pearson (exact coverage, minimum "
          "over rates 0.05–0.95)", "10 runs", "rates 0.05, 0.1, …, 0.95",
          _clopper(10, np.arange(0.05, 0.951, 0.05))),
    Check("factor effect on divergence (odds ratio)", "logistic regression, Wald",
          "2 × 2 × 2 × 30 seeds", "additive, odds ×3.3 for samples_per_freq 1",
          _factor_or(30, (-2.0, 1.2, 1.0, 0.8), "logit"), "slow"),
    Check("factor effect on divergence (odds ratio), Firth path",
          "Firth, profile penalised likelihood", "2 × 2 × 2 × 10 seeds",
          "additive, odds ×3.3 for samples_per_freq 1, few events",
          _factor_or(10, (-3.0, 1.2, 1.0, 0.8), "firth"), "slow"),
    Check("factor effect per +10 max_freq (numeric)", "logistic regression, Wald",
          "backend × max_freq 10, 20, 30 × 20 seeds", "odds ×2.7 per +10",
          _factor_numeric(20), "slow"),
    Check("factor effect on the learned runs' median mae_ratio_test",
          "QuantReg, cell bootstrap (1,000 resamples)", "2 × 2 × 2 × 10 seeds",
          "+0.1 for samples_per_freq 1", _factor_median(10, 0.1), "slow"),
    Check("backend ratio of medians, per max_freq", "percentile bootstrap (1,000)",
          "20 vs 20 learned runs", "ratio 1.2, lognormal log-spread 0.8", _ratio(20, 0.8, 1.2)),
    Check("backend ratio of medians, pooled (TOST)", "QuantReg of log mae_test, cell bootstrap",
          "backend × max_freq 10, 20, 30 × 15 learned runs", "ratio 1.1",
          _tost(15, 1.1), "slow"),
    Check("escape rate ratio per +10 max_freq", "Cox (PHReg), Wald",
          "max_freq 10…60 × 16 seeds", "×0.7 per +10, Weibull times, censored at 6,000",
          _hr((10, 20, 30, 40, 50, 60), 16, 0.7, 6000), "slow"),
    Check("still on the plateau at 1,500 updates (figure band)",
          "Kaplan–Meier, Greenwood log(−log)", "16 runs", "Weibull, S = 0.52",
          _km(16, 1500, 6000)),
]  # fmt: skip


@dataclass(frozen=True)
class Result:
    check: Check
    level: str
    replicates: int
    coverage: float

    @property
    def exact(self) -> bool:
        """An exact sum over the binomial, not a simulation."""
        return self.level == "exact" or self.check.run.__qualname__.startswith(
            ("_wilson", "_clopper")
        )

    @property
    def mc_error(self) -> float:
        """The Monte-Carlo standard error of the coverage (binomial; 0 for exact sums)."""
        if self.exact:
            return 0.0
        return math.sqrt(self.coverage * (1 - self.coverage) / max(self.replicates, 1))


def evaluate(check: Check, replicates: int, seed: int = 0) -> list[Result]:
    """Run one check; one Result per level it reports ('95', '90', or 'median')."""
    covered = check.run(replicates, seed)
    return [Result(check, level, len(v), float(np.mean(v))) for level, v in covered.items()]
