"""Calibrated tests of the shape of a rate against max_freq: is it one log-linear (logistic)
trend, and does it rise and then fall? Word-free: numbers in, a dataclass out.

- **Lack of fit** of the logistic trend against max_freq as categories: its deviance, with
  the p-value from a parametric bootstrap under the fitted trend (`replicates` studies of the
  same runs per max_freq, each refitted), not from the χ² reference. At these sparse designs
  (5–9 max_freqs × 16–32 runs, rates near 0.1) the χ² p-value is liberal: its simulated size
  is 7–9% at a nominal 5% (docs/coverage.md); the bootstrap's is near 5%.
- **Rise then fall**, pre-specified: a logistic model with a quadratic term in max_freq,
  logit p = a + b·z + c·z² with z = (max_freq − centre)/PER. The statistic is the signed root
  of the likelihood ratio against the trend, sign(ĉ)·√(2Δℓ); its one-sided p-value (small when
  the curve is concave, c < 0) comes from the same bootstrap under the trend. Where the fitted
  c < 0, the fitted curve peaks at centre − PER·b/(2c) (`peak`; a point estimate only, its
  interval is not given).

Maximum likelihood only (analysis/logistic.fit_many): a replicate whose fit does not converge
(a separated study) keeps its last, nearly supremal, likelihood, which is what its deviance
measures. With fewer than three max_freqs, or no events, there is nothing to test (None).
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps
from scipy.special import expit

from analysis import logistic

PER = 10  # z is in units of PER max_freq, so c is per (PER max_freq)²
REPLICATES = 2000  # bootstrap studies: p-values to about ±0.005 near 0.05


@dataclass(frozen=True)
class ShapeTests:
    max_freqs: tuple[int, ...]
    runs: tuple[int, ...]
    events: tuple[int, ...]
    deviance: float  # the logistic trend against the categories
    df: int
    p_chi2: float  # the χ² reference (liberal here; kept for comparison)
    p: float  # the parametric bootstrap's
    curvature: float  # c, per (PER max_freq)²
    curvature_low: float  # its 95% Wald interval
    curvature_high: float
    signed_root: float  # sign(c)·√(2Δℓ), quadratic against the trend
    rise_fall_p: float  # one-sided bootstrap p of a concave curve (small: rises then falls)
    peak: float  # max_freq where the fitted quadratic peaks (NaN unless c < 0)
    replicates: int

    @property
    def rises_then_falls(self) -> bool:
        return self.rise_fall_p < 1 - logistic.LEVEL


def _designs(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    centre = float(np.mean(x))
    z = (x - centre) / PER
    one = np.ones_like(z)
    return np.column_stack([one, z]), np.column_stack([one, z, z**2]), centre


def _saturated(k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """The log likelihood of the categories (one rate per max_freq), per replicate."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = k / n
        parts = np.where(k > 0, k * np.log(rate), 0.0) + np.where(
            n - k > 0, (n - k) * np.log1p(-rate), 0.0
        )
    return parts.sum(axis=-1)


def statistics(
    k: np.ndarray, n: np.ndarray, linear: np.ndarray, quadratic: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For R studies (events k (R, rows) of n (rows,)): the trend's deviance against the
    categories, the signed root of quadratic against trend, and the quadratic fits' beta."""
    _, top1, _ = logistic.fit_many(linear, k, n)
    beta2, top2, _ = logistic.fit_many(quadratic, k, n)
    deviance = np.maximum(0.0, 2 * (_saturated(k, n) - top1))
    root = np.sign(beta2[:, 2]) * np.sqrt(np.maximum(0.0, 2 * (top2 - top1)))
    return deviance, root, beta2


def shape_tests(
    max_freq: np.ndarray,
    events: np.ndarray,
    runs: np.ndarray,
    replicates: int = REPLICATES,
    seed: int = 0,
) -> ShapeTests | None:
    """Both tests for events of runs at each max_freq (one row per max_freq)."""
    x = np.asarray(max_freq, dtype=float)
    k = np.asarray(events, dtype=float)
    n = np.asarray(runs, dtype=float)
    if len(x) < 3 or k.sum() in (0, n.sum()):
        return None
    linear, quadratic, centre = _designs(x)
    beta1, _, ok = logistic.fit_many(linear, k[None], n)
    if not ok[0]:
        return None
    deviance, root, beta2 = statistics(k[None], n, linear, quadratic)
    b = beta2[0]
    try:
        rate = expit(quadratic @ b)
        info = logistic.information(quadratic, (n * rate * (1 - rate))[None])[0]
        se = math.sqrt(np.linalg.inv(info)[2, 2])
    except np.linalg.LinAlgError:
        se = math.nan
    rng = np.random.default_rng(seed)
    null = rng.binomial(n.astype(int), expit(linear @ beta1[0]), size=(replicates, len(x)))
    dev_star, root_star, _ = statistics(null.astype(float), n, linear, quadratic)
    p = (1 + np.sum(dev_star >= deviance[0] - 1e-9)) / (replicates + 1)
    rise_fall = (1 + np.sum(root_star <= root[0] + 1e-9)) / (replicates + 1)
    df = len(x) - 2
    return ShapeTests(
        max_freqs=tuple(int(v) for v in x),
        runs=tuple(int(v) for v in n),
        events=tuple(int(v) for v in k),
        deviance=float(deviance[0]),
        df=df,
        p_chi2=float(sps.chi2.sf(deviance[0], df)),
        p=float(p),
        curvature=float(b[2]),
        curvature_low=float(b[2] - logistic.Z * se),
        curvature_high=float(b[2] + logistic.Z * se),
        signed_root=float(root[0]),
        rise_fall_p=float(rise_fall),
        peak=float(centre - PER * b[1] / (2 * b[2])) if b[2] < 0 else math.nan,
        replicates=replicates,
    )
