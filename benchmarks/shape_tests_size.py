"""The size and power of the report's shape tests (analysis/curvature.py) at the published
designs, by simulation: studies drawn from a known truth with the study's own runs per
max_freq, each analysed by `curvature.shape_tests` exactly as the report calls it (its own
bootstrap inside every simulated study).

    python benchmarks/shape_tests_size.py --studies 1000 --replicates 500   # about 5 min

Rows:
- size under one logistic trend (the truth the deviance test and the rise-then-fall test take
  as their null): the deviance test with the χ² reference and with the bootstrap's, and the
  one-sided rise-then-fall test; the Wald interval of the quadratic term (true value 0);
- power of the rise-then-fall test under a curve that rises and falls (the shape study's
  200-epoch reading, fitted with the quadratic), and the coverage of the quadratic term's
  interval there;
- the trend test's power at the shape design for odds ×1.3 per +10 (the report's own
  simulation, analysis/trends.simulated_power), and the seeds per max_freq that 80% needs.

Prints a markdown table; docs/coverage.md keeps its last output.
"""

import argparse
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
from scipy.special import expit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from analysis import curvature, trends

ALPHA = 0.05
SHAPE = (10, 15, 20, 25, 30, 35, 40, 45, 50)


def _linear(freqs, or10: float, rate_at_mean: float) -> np.ndarray:
    x = np.asarray(freqs, float)
    slope = math.log(or10) / 10
    centre = math.log(rate_at_mean / (1 - rate_at_mean))
    return expit(centre + slope * (x - x.mean()))


def _quadratic(freqs, events, runs) -> np.ndarray:
    """The rates of the quadratic logistic fitted to (events, runs) at freqs."""
    x = np.asarray(freqs, float)
    z = (x - x.mean()) / curvature.PER
    design = np.column_stack([np.ones_like(z), z, z**2])
    beta, _, _ = curvature.logistic.fit_many(design, np.asarray(events, float)[None], runs)
    return expit(design @ beta[0]), float(beta[0, 2])


def simulate(freqs, n: int, rates: np.ndarray, studies: int, replicates: int, seed: int):
    rng = np.random.default_rng(seed)
    out = {"chi2": [], "boot": [], "rise_fall": [], "c_low": [], "c_high": []}
    runs = np.full(len(freqs), n)
    for i in range(studies):
        k = rng.binomial(n, rates)
        t = curvature.shape_tests(np.array(freqs), k, runs, replicates, seed=seed + 1 + i)
        if t is None:
            continue
        out["chi2"].append(t.p_chi2 < ALPHA)
        out["boot"].append(t.p < ALPHA)
        out["rise_fall"].append(t.rise_fall_p < ALPHA)
        out["c_low"].append(t.curvature_low)
        out["c_high"].append(t.curvature_high)
    return {k: np.asarray(v) for k, v in out.items()}


def row(what, method, design, truth, values) -> str:
    m = float(np.mean(values))
    se = math.sqrt(m * (1 - m) / len(values))
    return f"| {what} | {method} | {design} | {truth} | {len(values)} | {m:.3f} | {se:.3f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=1000)
    parser.add_argument("--replicates", type=int, default=500)
    parser.add_argument("--seed", type=int, default=20261207)
    args = parser.parse_args()
    start = time.perf_counter()
    lines = [
        "| what | method | design | truth | studies | rate | MC error |",
        "|---|---|---|---|---|---|---|",
    ]
    designs = [
        ("shape: max_freq 10…50 step 5 × 32", SHAPE, 32, 1.06, 0.125),
        ("budget: max_freq 10…50 step 10 × 16", (10, 20, 30, 40, 50), 16, 1.2, 0.15),
        ("relapse: max_freq 20…40 step 5 × 16", (20, 25, 30, 35, 40), 16, 1.2, 0.2),
    ]
    for name, freqs, n, or10, mid in designs:
        rates = _linear(freqs, or10, mid)
        truth = (
            f"one logistic trend, odds ×{or10} per +10 (rates {rates.min():.2f}–{rates.max():.2f})"
        )
        sim = simulate(freqs, n, rates, args.studies, args.replicates, args.seed)
        covered = (sim["c_low"] <= 0) & (sim["c_high"] >= 0)
        lines += [
            row("size: one trend against categories", "deviance, χ²", name, truth, sim["chi2"]),
            row(
                "size: one trend against categories",
                f"deviance, bootstrap ({args.replicates})",
                name,
                truth,
                sim["boot"],
            ),
            row(
                "size: rise then fall (one-sided)",
                f"signed root LR, bootstrap ({args.replicates})",
                name,
                truth,
                sim["rise_fall"],
            ),
            row("coverage: quadratic term (true 0)", "Wald 95%", name, truth, covered),
        ]
    # a curve that rises and falls: the shape study's 200-epoch reading, fitted
    events = (4, 3, 7, 9, 12, 9, 5, 6, 2)
    rates, c_true = _quadratic(SHAPE, events, np.full(9, 32))
    truth = f"the shape record's 200-epoch reading, fitted quadratic (c = {c_true:.3f})"
    sim = simulate(SHAPE, 32, rates, args.studies, args.replicates, args.seed + 7)
    covered = (sim["c_low"] <= c_true) & (sim["c_high"] >= c_true)
    name = "shape: max_freq 10…50 step 5 × 32"
    lines += [
        row(
            "power: rise then fall",
            f"signed root LR, bootstrap ({args.replicates})",
            name,
            truth,
            sim["rise_fall"],
        ),
        row("coverage: quadratic term", "Wald 95%", name, truth, covered),
    ]
    # the trend's odds per +10 at the shape design: the report's fit (logistic.fit, as
    # trends.divergence_trend calls it), its 95% interval's coverage
    x = np.asarray(SHAPE, float)
    design = np.column_stack([np.ones(9), x - x.mean()])
    rng = np.random.default_rng(args.seed + 11)
    for or10 in (1.06, 1.3):
        rates = _linear(SHAPE, or10, 0.125)
        covered = []
        for _ in range(args.studies):
            fit = curvature.logistic.fit(
                curvature.logistic.Data.of(design, rng.binomial(32, rates), np.full(9, 32))
            )
            if fit.method:
                covered.append(math.exp(10 * fit.low[1]) <= or10 <= math.exp(10 * fit.high[1]))
        lines.append(
            row(
                "coverage: odds per +10 (one trend)",
                "logistic, Wald (Firth where few)",
                name,
                f"odds ×{or10} per +10, rate 0.125 at max_freq 30",
                np.array(covered),
            )
        )
    # the trend test's power for odds ×1.3 per +10 at the shape design
    rate_mid = 0.125
    slope = math.log(1.3) / 10
    centre_freq = float(np.mean(SHAPE))
    coef0 = math.log(rate_mid / (1 - rate_mid)) - slope * centre_freq
    trend = trends.DivergenceTrend(
        runs=9 * 32,
        events=0,
        max_freqs=SHAPE,
        method="logit",
        coef=(coef0, slope),
        or10=1.3,
        or10_low=1.3,
        or10_high=1.3,
    )
    power = trends.simulated_power(trend, 32, replicates=2000)
    sim_ = trends._Simulation(SHAPE, 2000, 200, 0)
    centred = coef0 + slope * centre_freq
    needed = sim_.seeds(centred, slope, 0.8)
    lines.append(
        f"| power: trend test, odds ×1.3 per +10 | logistic, Wald (the report's fit) | {name} "
        f"| rate 0.125 at max_freq 30 | 2000 | {power:.3f} | "
        f"{math.sqrt(power * (1 - power) / 2000):.3f} |"
    )
    lines.append(
        f"| seeds per max_freq for 80% power at odds ×1.3 | the same simulation | max_freq 10…50 "
        f"step 5 | rate 0.125 at max_freq 30 | 2000 | {needed:.0f} seeds | – |"
    )
    print("\n".join(lines))
    print(
        f"\n{platform.machine()}, {time.perf_counter() - start:.0f} s, "
        f"--studies {args.studies} --replicates {args.replicates} --seed {args.seed}"
    )


if __name__ == "__main__":
    main()
