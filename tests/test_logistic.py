"""The logistic fits: one estimator for a real study and for the seed advice's thousands of
simulated ones (logistic.fit_many), so that the advice simulates the report's own fit."""

import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy.special import expit

from analysis import logistic, trends

FREQS = np.array([5.0, 10, 20, 30, 40])


def _design(columns: int) -> np.ndarray:
    """Intercept and a centred max_freq (2 columns), or twelve cells of two binary factors and
    a numeric term (3 columns: a, t; 5: a, t, b, a·t), the kind of design factors.py fits."""
    if columns == 2:
        return np.column_stack([np.ones(5), FREQS - FREQS.mean()])
    a, b = np.repeat([0.0, 1.0], 6), np.tile([0.0, 0, 0, 1, 1, 1], 2)
    t = np.tile(np.linspace(-1, 1, 3), 4)
    return np.column_stack([np.ones(12), a, t, b, a * t][:columns])


def _replicates(x: np.ndarray, reps: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Events of `trials` runs per row: most drawn at a moderate truth, a few with few events,
    and the last two separated by the first term (k = n above its median, 0 below)."""
    rng = np.random.default_rng(seed)
    trials = rng.integers(2, 15, len(x)).astype(float)
    slopes = rng.normal(0, 0.8, (x.shape[1], reps)) / np.abs(x).max(axis=0)[:, None]
    rate = expit(x @ slopes + rng.normal(0, 1, reps)).T
    rate[: reps // 5] *= 0.1
    k = rng.binomial(trials.astype(int), rate).astype(float)
    k[k.sum(axis=1) == 0, 0] = 1  # both outcomes in every study: else there is no fit
    k[k.sum(axis=1) == trials.sum(), 0] -= 1
    high = x[:, 1] > np.median(x[:, 1])
    k[-2:] = np.where(high, trials, 0.0)
    k[-1, np.argmax(np.where(high, -np.inf, x[:, 1]))] = 1  # quasi-complete: a shared row
    return k, trials


@pytest.mark.parametrize("columns", [2, 3, 5])
@pytest.mark.parametrize("firth", [False, True])
def test_one_study_is_fitted_exactly_as_each_row_of_a_batch(columns, firth):
    x = _design(columns)
    k, trials = _replicates(x, seed=columns)
    beta, value, converged = logistic.fit_many(x, k, trials, firth)
    one_study = logistic.firth if firth else logistic.maximum_likelihood
    fitted = 0
    for r in range(len(k)):
        data = logistic.Data.of(x, k[r], trials)
        try:
            single = one_study(data)
        except RuntimeError:
            assert not converged[r]
            continue
        assert converged[r]
        fitted += 1
        np.testing.assert_allclose(single, beta[r], rtol=0, atol=1e-10)
        objective = data.penalised(single) if firth else data.loglike(single)
        assert value[r] == pytest.approx(objective, abs=1e-9)
    if firth:  # Firth's estimate is finite under separation too
        assert converged.all()
    else:  # no maximum-likelihood estimate under separation, and that stops no other study
        separated = [logistic.separated(logistic.Data.of(x, kk, trials)) for kk in k]
        assert not converged[-2:].any() and converged[~np.array(separated)].all()
    assert fitted >= len(k) // 2


@pytest.mark.parametrize("columns", [2, 3, 5])
def test_the_estimates_are_statsmodels_and_maximise_the_penalised_likelihood(columns):
    """Checked apart from the code: maximum likelihood is statsmodels' binomial GLM, and the
    penalised likelihood's numerical gradient vanishes at Firth's estimate."""
    x = _design(columns)
    k, trials = _replicates(x, reps=8, seed=10 + columns)
    ml, _, ml_ok = logistic.fit_many(x, k, trials)
    pl, _, pl_ok = logistic.fit_many(x, k, trials, firth=True)
    assert pl_ok.all()
    for r in np.flatnonzero(ml_ok):
        glm = sm.GLM(np.column_stack([k[r], trials - k[r]]), x, family=sm.families.Binomial())
        np.testing.assert_allclose(ml[r], glm.fit(tol=1e-12).params, atol=1e-6)
    for r in range(len(k)):
        data, h = logistic.Data.of(x, k[r], trials), 1e-5
        grad = [
            (data.penalised(pl[r] + e) - data.penalised(pl[r] - e)) / (2 * h)
            for e in np.eye(columns) * h
        ]
        assert np.abs(grad).max() < 1e-5


def test_free_terms_are_fitted_from_the_start_and_the_others_kept():
    x = _design(3)
    k, trials = _replicates(x, reps=10, seed=4)
    free, start = np.array([True, False, True]), np.array([0.0, 0.7, 0.0])
    for firth in (False, True):
        beta, _, converged = logistic.fit_many(x, k, trials, firth, free, start)
        assert np.all(beta[:, 1] == 0.7)
        one_study = logistic.firth if firth else logistic.maximum_likelihood
        for r in np.flatnonzero(converged):
            single = one_study(logistic.Data.of(x, k[r], trials), free, start)
            np.testing.assert_allclose(single, beta[r], rtol=0, atol=1e-10)
    per_replicate = np.broadcast_to(trials, k.shape)  # trials may differ by replicate
    np.testing.assert_allclose(
        logistic.fit_many(x, k, per_replicate, True)[0], logistic.fit_many(x, k, trials, True)[0]
    )


@pytest.mark.parametrize("columns", [2, 3])
def test_a_separated_design_goes_to_firth(columns):
    x = _design(columns)
    trials = np.full(len(x), 6.0)
    k = np.where(x[:, 1] > 0, trials, 0.0)  # complete: all diverged above 0, none below
    data = logistic.Data.of(x, k, trials)
    assert logistic.separated(data)
    with pytest.raises(RuntimeError):
        logistic.maximum_likelihood(data)
    result = logistic.fit(data)
    assert result.method == "firth" and result.reason == logistic.SEPARATION
    np.testing.assert_allclose(result.beta, logistic.firth(data), rtol=0, atol=1e-12)
    assert 0 < result.beta[1] < math.inf and result.low[1] < result.beta[1] < result.high[1]


def test_the_simulation_decides_as_logistic_fit_on_every_path():
    """batch_p_values takes logistic.fit's path for each study: maximum likelihood, Firth for
    few events, for complete and for quasi-complete separation, and no fit without events."""
    x = FREQS - FREQS.mean()
    design = np.column_stack([np.ones(5), x])
    k = np.array(
        [[2, 3, 5, 7, 9], [0, 1, 0, 2, 1], [0, 0, 0, 12, 12], [0, 0, 5, 12, 12], [0] * 5],
        dtype=float,
    )
    p, sign = trends.batch_p_values(x, k, 12)
    paths = []
    for r in range(len(k)):
        result = logistic.fit(logistic.Data.of(design, k[r], np.full(5, 12.0)))
        paths.append((result.method, result.reason))
        if not result.method:
            assert math.isnan(p[r])
            continue
        assert p[r] == pytest.approx(result.p[1], abs=1e-9)
        assert sign[r] == np.sign(result.beta[1])
    assert paths == [
        ("logit", ""),
        ("firth", logistic.FEW_EVENTS),
        ("firth", logistic.SEPARATION),
        ("firth", logistic.SEPARATION),
        ("", "no events"),
    ]
