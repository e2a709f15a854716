"""Does each interval the report prints cover at its stated level? Seeded simulations at
realistic designs, running the report's own code on runs tables drawn from a known truth. The
harness lives beside its driver (benchmarks/coverage.py); the report never imports it.

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


# --- the shape of divergence ----------------------------------------------------------------


def _divergence_shape(freqs, seeds, rates, what: str):
    """Divergence per max_freq at the given true rates. 'steps': each max_freq against the one
    before (Newcombe's interval of the rate difference) at 95% and 90%; 'size': rates on one
    logistic trend, the fraction of studies whose deviance test does not reject it."""

    def run(replicates: int, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        x = np.repeat(freqs, seeds).astype(float)
        p = np.repeat(rates, seeds)
        truth = np.diff(rates)
        out = {"95": [], "90": []} if what == "steps" else {"95": []}
        for _ in range(replicates):
            y = rng.random(len(x)) < p
            if what == "size":
                shape = trends.divergence_shape(_frame(x, y, np.ones(len(x))))
                if not math.isnan(shape.p):
                    out["95"].append(not shape.p < trends.ALPHA)
                continue
            k = [int(y[x == m].sum()) for m in freqs]  # the steps, as divergence_shape makes them
            for i in range(1, len(freqs)):
                for level, key in ((0.95, "95"), (0.90, "90")):
                    _, low, high, _ = trends.rate_difference(k[i - 1], seeds, k[i], seeds, level)
                    out[key].append(low <= truth[i - 1] <= high)
        return {key: np.array(v) for key, v in out.items()}

    return run


# --- time to escape --------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    """Escape times as a study sees them: per max_freq, a fraction `never` that never leaves
    the plateau, the others leaving it at a lognormal time (median `median` updates, log-spread
    `sigma`); seen only at the checks, censored at the budget. Medians and spreads differ
    between max_freqs, so hazards are not proportional (the curves cross)."""

    max_freqs: tuple[int, ...]
    never: tuple[float, ...]
    median: tuple[float, ...]
    sigma: tuple[float, ...]

    def surv(self, i: int, t: np.ndarray | float) -> np.ndarray:
        """P(still on the plateau at t) at max_freq index i."""
        t = np.asarray(t, dtype=float)
        with np.errstate(divide="ignore"):
            z = (np.log(np.maximum(t, 1e-300)) - math.log(self.median[i])) / self.sigma[i]
        return self.never[i] + (1 - self.never[i]) * sps.norm.sf(np.where(t > 0, z, -np.inf))

    def true_median(self, i: int) -> float:
        if self.never[i] >= 0.5:
            return math.inf
        tail = (0.5 - self.never[i]) / (1 - self.never[i])  # P(T > m | it escapes)
        return self.median[i] * math.exp(self.sigma[i] * sps.norm.isf(tail))

    def draw(self, rng, seeds: int) -> tuple[np.ndarray, np.ndarray]:
        """(max_freq, time) for `seeds` runs per max_freq; time inf: never."""
        x = np.repeat(self.max_freqs, seeds)
        i = np.repeat(np.arange(len(self.max_freqs)), seeds)
        t = np.asarray(self.median)[i] * np.exp(
            np.asarray(self.sigma)[i] * rng.normal(size=len(x))
        )
        never = rng.random(len(x)) < np.asarray(self.never)[i]
        return x, np.where(never, np.inf, t)


# Chosen to match the budget study's record per max_freq 10…50 (median escape about 147, 735,
# 2,060, 1,320, 1,180 updates; still on the plateau at 6,000: 0, 2, 6, 3, 1 of 16; a test checks
# the match): escape slows from 10 to 30 and quickens after, spreads differ (the curves cross:
# hazards are not proportional), and some runs never escape.
BUDGET_WORLD = World(
    (10, 20, 30, 40, 50), (0.005, 0.1, 0.3, 0.15, 0.05), (120, 700, 1300, 1150, 1150),
    (0.5, 0.6, 0.9, 0.7, 0.6),
)  # fmt: skip


@dataclass(frozen=True)
class Design:
    seeds: int = 16
    budget: int = 6000
    check_every: int = 0  # 0: 40 evenly spaced checks

    @property
    def grid(self) -> np.ndarray:
        return escape.check_grid(self.budget, self.check_every)


def escape_runs(rng, world: World, design: Design) -> pd.DataFrame:
    """A runs table as a study would log it: escape_step is the first check at or after the
    escape, NaN (diverged) for runs still on the plateau at the budget."""
    x, t = world.draw(rng, design.seeds)
    grid = design.grid
    step = grid[np.minimum(np.searchsorted(grid, t), len(grid) - 1)]
    escaped = t <= design.budget
    return _frame(
        x.astype(float), ~escaped, np.ones(len(x)),
        train_steps=design.budget, epochs=200, optimizer_steps=float(design.budget),
        steps_per_epoch=10.0, escape_step=np.where(escaped, step, np.nan),
        check_every=float(design.check_every), time_steps=100, run_id=np.arange(len(x)),
        divergence_ratio=0.5,
    )  # fmt: skip


def step_truth(world: World, design: Design) -> np.ndarray:
    """θ of each step (a later escape at the larger max_freq, ties half) at this design:
    escapes seen at the first check at or after them, none after the budget."""
    grid = design.grid
    out = []
    for i in range(1, len(world.max_freqs)):
        dists = []
        for j in (i - 1, i):
            s = world.surv(j, grid)
            dists.append((np.r_[grid[1:], np.inf], np.r_[s[:-1] - s[1:], s[-1]]))
        (va, pa), (vb, pb) = dists
        weight = pa[:, None] * pb[None, :]
        out.append(float(np.sum(weight * (vb[None, :] > va[:, None]))
                         + 0.5 * np.sum(weight * (vb[None, :] == va[:, None]))))  # fmt: skip
    return np.array(out)


def _plateau_band(world: World, design: Design):
    """The curve's 95% band at three levels of each max_freq's curve: the first check (near
    1 for most), the check nearest to S = ½, and the budget (near the floor)."""

    def run(replicates: int, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        grid = design.grid
        picks = []
        for i in range(len(world.max_freqs)):
            s = world.surv(i, grid)
            picks.append({"near 1": 1, "mid": int(np.argmin(np.abs(s - 0.5))),
                          "near 0": len(grid) - 1})  # fmt: skip
        out = {"near 1": [], "mid": [], "near 0": [], "median": []}  # band at three levels
        for _ in range(replicates):
            rec = escape.records(escape_runs(rng, world, design))
            for i, (_, g) in enumerate(rec.groupby("max_freq", sort=True)):
                curve = escape.plateau_curve(g)
                truth = world.surv(i, grid)
                for level, k in picks[i].items():
                    out[level].append(curve["low"][k] <= truth[k] <= curve["high"][k])
                med = escape.median_escape(curve)
                true = world.true_median(i)
                out["median"].append(med.low < true <= med.high)
        band = {f"95, curve {k}": np.array(v) for k, v in out.items() if k != "median"}
        return {"95": np.concatenate(list(band.values())), **band,
                "95, median escape": np.array(out["median"])}  # fmt: skip

    return run


def _steps(world: World, design: Design):
    """Each max_freq against the one before (θ, the report's score interval), against the
    world's θ at this design; at 95% and 90%."""

    def run(replicates: int, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        truth = step_truth(world, design)
        names = [f"{b} vs {a}" for a, b in itertools.pairwise(world.max_freqs)]
        out = {f"{level}, {name}": [] for level in ("95", "90") for name in names}
        for _ in range(replicates):
            rec = escape.records(escape_runs(rng, world, design))
            t = escape.step_comparisons(rec)
            for k, row in enumerate(t.itertuples(index=False)):
                out[f"95, {names[k]}"].append(row.low <= truth[k] <= row.high)
                a = rec.loc[rec["max_freq"] == row.previous, "escaped_by"]
                b = rec.loc[rec["max_freq"] == row.max_freq, "escaped_by"]
                _, low, high, _ = escape.win_probability(a, b, 0.90)
                out[f"90, {names[k]}"].append(low <= truth[k] <= high)
        every = np.concatenate([v for k, v in out.items() if k.startswith("95")])
        return {"95": every, **{k: np.array(v) for k, v in out.items()}}

    return run


def _discrete_runs(rng, design: Design, base: float, or10: float) -> pd.DataFrame:
    """Runs of a world where one log-linear rate is the truth: each check interval a run is
    still on the plateau, it leaves with probability expit(logit(base) + log(or10)·(max_freq −
    30)/10), at max_freq 10…50."""
    freqs = np.array([10, 20, 30, 40, 50])
    x = np.repeat(freqs, design.seeds)
    hazard = expit(math.log(base / (1 - base)) + math.log(or10) * (x - 30) / 10)
    grid = design.grid
    left = rng.random((len(x), len(grid) - 1)) < hazard[:, None]
    first = np.where(left.any(axis=1), left.argmax(axis=1) + 1, -1)
    step = np.where(first > 0, grid[np.maximum(first, 0)], np.nan)
    return _frame(
        x.astype(float), np.isnan(step), np.ones(len(x)),
        train_steps=design.budget, epochs=200, optimizer_steps=float(design.budget),
        steps_per_epoch=10.0, escape_step=step, check_every=float(design.check_every),
        time_steps=100,
    )  # fmt: skip


def _one_rate(design: Design, base: float, or10: float):
    """Where one rate is the truth: the per-+10 odds ratio's interval ('95') and the
    likelihood-ratio test against categories ('not rejected': its size is one minus this)."""

    def run(replicates: int, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        out = {"95": [], "95, test not rejected": []}
        for _ in range(replicates):
            m = escape.hazard_model(escape.records(_discrete_runs(rng, design, base, or10)))
            if m.method:
                out["95"].append(m.or10_low < or10 < m.or10_high)
                out["95, test not rejected"].append(not m.shape_p < escape.ALPHA)
        return {k: np.array(v) for k, v in out.items()}

    return run


def _late(world: World, design: Design, start: float):
    """Late escapes from `start` to the budget, pooled over max_freq: the Clopper–Pearson
    interval against the design-weighted truth (the chance that a run still on the plateau
    at `start`, drawn from this design, leaves it by the budget)."""

    def run(replicates: int, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        on = np.array([world.surv(i, start) for i in range(len(world.max_freqs))])
        left = on - np.array([world.surv(i, design.budget) for i in range(len(on))])
        truth = left.sum() / on.sum()
        covered = []
        for _ in range(replicates):
            rec = escape.records(escape_runs(rng, world, design))
            late = escape.late_escapes(rec, design.budget, start / design.budget)
            if late.runs:
                covered.append(late.low <= truth <= late.high)
        return {"95": np.array(covered)}

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
    Check("divergence rate difference, each max_freq against the one before",
          "Newcombe hybrid score", "max_freq 10…50 step 5 × 16 seeds",
          "rates 0, 0.1, 0.2, 0.3, 0.4, 0.3, 0.2, 0.15, 0.1 (rises and falls)",
          _divergence_shape((10, 15, 20, 25, 30, 35, 40, 45, 50), 16,
                            np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.3, 0.2, 0.15, 0.1]), "steps")),
    Check("divergence rate difference, each max_freq against the one before",
          "Newcombe hybrid score", "max_freq 10…50 × 16 seeds",
          "rates 0.02, 0.12, 0.35, 0.2, 0.06 (the budget study's shape)",
          _divergence_shape((10, 20, 30, 40, 50), 16,
                            np.array([0.02, 0.12, 0.35, 0.2, 0.06]), "steps")),
    Check("test of one divergence trend against categories (its size)",
          "deviance, parametric bootstrap (2,000)", "max_freq 10…50 step 5 × 16 seeds",
          "one logistic trend: rates 0.05 to 0.35 (coverage: not rejected)",
          _divergence_shape((10, 15, 20, 25, 30, 35, 40, 45, 50), 16,
                            expit(-3 + 0.06 * (np.arange(10, 51, 5) - 10)), "size"), "slow"),
    Check("test of one divergence trend against categories (its size)",
          "deviance, parametric bootstrap (2,000)", "max_freq 10…50 × 16 seeds",
          "one logistic trend: rates 0.05 to 0.35 (coverage: not rejected)",
          _divergence_shape((10, 20, 30, 40, 50), 16,
                            expit(-3 + 0.06 * (np.arange(10, 51, 10) - 10)), "size"), "slow"),
    Check("still on the plateau at a check (curve band, figure)", "Clopper–Pearson per check",
          "max_freq 10…50 × 16 seeds, 41 checks to 6,000", "the budget world: lognormal "
          "escapes, 0.5–30% never, curves cross", _plateau_band(BUDGET_WORLD, Design())),
    Check("escape, each max_freq against the one before (θ: a later escape)",
          "win probability, score interval (Brunner–Munzel / Hanley–McNeil variance)",
          "max_freq 10…50 × 16 seeds, 41 checks to 6,000", "the budget world (θ 0.98, 0.74, "
          "0.40, 0.45)", _steps(BUDGET_WORLD, Design()), "slow"),
    Check("escape odds ratio per +10 max_freq (one rate), and the test of one rate",
          "conditional (exact discrete) likelihood: profile interval; likelihood ratio as "
          "F(3, events − 5)",
          "max_freq 10…50 × 16 seeds, 41 checks to 6,000",
          "one rate is true: odds ×0.7 per +10, 4% per check at 30, about 20% never by 6,000",
          _one_rate(Design(), 0.04, 0.7), "slow"),
    Check("late escapes from 6,000 to 24,000 updates", "Clopper–Pearson",
          "max_freq 20…50 × 24 seeds, checks every 150 to 24,000",
          "the budget world (design-weighted truth)",
          _late(World(*(v[1:] for v in (BUDGET_WORLD.max_freqs, BUDGET_WORLD.never,
                                        BUDGET_WORLD.median, BUDGET_WORLD.sigma))),
                Design(24, 24000, 150), 6000.0)),
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
