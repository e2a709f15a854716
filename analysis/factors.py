"""Which cause matters: the effect of each varying parameter on the median error and on
divergence, fitted jointly, and the two Keras backends compared max_freq by max_freq. Pure
functions of the runs table (analysis/load.py), as judged (stats.judged).

Factor effects (when a parameter besides max_freq and seed varies, trends.varying_params), one
main-effects model (no interactions) over the FINISHED runs. Factors: every varying parameter,
categorical, one 0/1 term per level against a reference level (the pipeline default where
present, e.g. samples_per_freq 10, target_scale none, backend tensorflow; else the smallest
value; a missing value is its own level, 'unset'); and max_freq, categorical against its
smallest value when it takes two values (it is a sweep axis: its default is no baseline), else
one numeric term per +PER max_freq.

- Median: median (quantile 0.5) regression of mae_ratio_test (statsmodels QuantReg); effects are
  differences in the median, level vs reference. A non-finite mae_ratio_test (non-finite
  predictions) counts as worse than every finite one: the fit depends only on which side of it
  a run lies (where resamples put more than half of a cell's runs there, an interval end is
  ±inf; no estimate if the runs themselves do). Intervals: 95% percentile bootstrap of runs
  resampled within each design cell (the sweep fixes the seeds per cell), not QuantReg's own,
  which rest on a kernel estimate of the density at the median: when diverged runs leave a gap
  near the median (about half the runs diverged) those covered the truth 88% of the time in
  our simulations, the bootstrap 95% or more. Each resample is refitted by QuantReg's own
  algorithm (iteratively reweighted least squares), batched over resamples.
- Divergence: logistic regression of `diverged` on the same terms, odds ratios with 95% Wald
  intervals. When the runs are separated (a linear-programming check: some combination of the
  terms splits diverged from non-diverged runs, so maximum likelihood is infinite) or events
  are few (fewer than trends.MIN_EVENTS diverged or non-diverged runs per term), Firth's
  penalised likelihood (trends._firth) is used instead, with Wald intervals from the Fisher
  information at the penalised estimate (as R's logistf); the note says why. No events, or
  nothing but: nothing to fit.
- Terms confounded with earlier ones (e.g. two parameters that always change together) are
  not estimable and are reported as such.

Backends (when `backend` takes exactly two values): per setting of the other varying
parameters and max_freq, over FINISHED runs, each backend's median mae_test (distribution-free
interval, stats.median_ci), the two-sided Mann–Whitney U test on finite mae_test, the ratio of
medians (other / reference, e.g. jax / tensorflow) with a percentile bootstrap interval
(resampling within each backend), divergence rates with Wilson intervals and Fisher's exact
test, median fit_seconds and their ratio. p-values are Holm-adjusted across max_freq values.

`metrics()` flattens both; `<term>` is `<factor>_<level>` (e.g. `samples_per_freq_1`,
`target_scale_max_freq`) or `max_freq_per_10`; `<where>` is `max_freq_<m>`, after
`<param>_<value>/` for each other varying parameter:

- `effect_mae_ratio/<term>` (+ `_low`, `_high`): difference in median mae_ratio_test vs the
  reference level (per +10 max_freq for a numeric max_freq) and its 95% bootstrap interval;
- `effect_divergence_or/<term>` (+ `_low`, `_high`): odds ratio of diverging, 95% interval;
- `effect_runs`, `effect_divergence_events`, `effect_divergence_firth` (1: Firth);
- `backend_mwu_p/<where>`, `backend_mwu_p_holm/<where>`: Mann–Whitney p on mae_test, raw
  and Holm-adjusted; `backend_median_ratio/<where>` (+ `_low`, `_high`): median mae_test
  ratio other / reference backend, 95% bootstrap interval; `backend_divergence_p/<where>`,
  `backend_divergence_p_holm/<where>`: Fisher's exact test; `backend_fit_seconds_ratio/<where>`:
  median fit_seconds, other / reference.
"""

import dataclasses
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import optimize
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.tools.sm_exceptions import (
    ConvergenceWarning,
    IterationLimitWarning,
    PerfectSeparationWarning,
)

from analysis import stats, trends
from pipeline.config import DataConfig, EvalConfig, TrainConfig

DEFAULTS = {
    f.name: f.default for c in (DataConfig, TrainConfig, EvalConfig) for f in dataclasses.fields(c)
}
CAUSES = ("samples_per_freq", "target_scale")  # with a two-level max_freq: "Which cause matters"
RESAMPLES = 1000
ALPHA = 1 - trends.LEVEL
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
            return [(f"per +{trends.PER}", f"{self.name}_per_{trends.PER}")]
        texts = [trends.value_text(v) for v in self.levels]
        return [(t, f"{trends._metric_part(self.name)}_{trends._metric_part(t)}") for t in texts]


def _sorted_levels(column: pd.Series) -> list[Any]:
    values = sorted({trends._plain(v) for v in column.dropna().unique()})
    return values + [None] * bool(column.isna().any())


def reference_level(name: str, levels: list[Any]) -> Any:
    """The pipeline default if among `levels` (not for max_freq), else the smallest value."""
    texts = [trends.value_text(v) for v in levels]
    if name != "max_freq" and name in DEFAULTS and trends.value_text(DEFAULTS[name]) in texts:
        return levels[texts.index(trends.value_text(DEFAULTS[name]))]
    return levels[0]


def factors_of(done: pd.DataFrame) -> tuple[list[Factor], list[str]]:
    """The factors of FINISHED runs `done`, and notes on parameters left out."""
    out, notes = [], []
    for name in [*trends.varying_params(done), "max_freq"]:
        levels = _sorted_levels(done[name])
        if len(levels) < 2:
            if name != "max_freq":
                notes.append(f"one value of {name} among FINISHED runs: left out")
            continue
        if name == "max_freq" and len(levels) > 2:
            out.append(Factor(name, None, (), numeric=True))
            continue
        ref = reference_level(name, levels)
        out.append(Factor(name, ref, tuple(v for v in levels if v != ref)))
    return out, notes


def design(done: pd.DataFrame, factors: list[Factor]) -> np.ndarray:
    """Intercept, then each factor's terms: 0/1 per level, or max_freq − its mean."""
    columns = [np.ones(len(done))]
    for f in factors:
        if f.numeric:
            x = done[f.name].to_numpy(float)
            columns.append(x - x.mean())
            continue
        text = done[f.name].map(trends.value_text).to_numpy(str)
        columns += [(text == trends.value_text(v)).astype(float) for v in f.levels]
    return np.column_stack(columns)


def _estimable(x: np.ndarray) -> list[int]:
    """Columns of x kept greedily while they add rank; the others are confounded."""
    keep = [0]
    for j in range(1, x.shape[1]):
        if np.linalg.matrix_rank(x[:, [*keep, j]]) == len(keep) + 1:
            keep.append(j)
    return keep


# --- the median: QuantReg, bootstrap within design cells -------------------------------------


def _lad(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
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


def _cell_weights(x: np.ndarray, resamples: int, seed: int) -> tuple[np.ndarray, int]:
    """Bootstrap counts (resamples, n), resampling runs within each distinct design row; and
    how many cells hold a single run."""
    rng = np.random.default_rng(seed)
    _, cell = np.unique(x, axis=0, return_inverse=True)
    weights, singles = np.zeros((resamples, len(x))), 0
    for c in np.unique(cell):
        ids = np.flatnonzero(cell.ravel() == c)
        weights[:, ids] = rng.multinomial(len(ids), np.full(len(ids), 1 / len(ids)), resamples)
        singles += len(ids) == 1
    return weights, singles


def _median_fit(
    x: np.ndarray, ratio: np.ndarray, resamples: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Coefficients, their 95% interval ends, and a note (all NaN with the reason if no fit)."""
    nan = np.full(x.shape[1], math.nan)
    finite = np.isfinite(ratio)
    if not finite.any():
        return nan, nan, nan, "no finite mae_ratio_test: no median fit"
    # Far above every finite value: only the side of the fit matters to a median regression,
    # so an estimate beyond `bound` is made by non-finite runs (more than half of a cell's).
    bound = 10 * (float(np.max(np.abs(ratio[finite]))) + 1)
    y = np.where(finite, ratio, 10 * bound)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IterationLimitWarning)
        beta = np.asarray(sm.QuantReg(y, x).fit(q=0.5, max_iter=5000).params)
    if np.abs(beta).max() > bound:
        return nan, nan, nan, "non-finite mae_ratio_test in half the runs of a cell: no median fit"
    weights, singles = _cell_weights(x, resamples, seed)
    draws = _lad(x, y, weights)
    draws[np.abs(draws) > bound] *= math.inf
    tails = [0.5 - trends.LEVEL / 2, 0.5 + trends.LEVEL / 2]
    low, high = np.quantile(draws, tails, axis=0, method="inverted_cdf")
    cells = len(np.unique(x, axis=0))
    if singles == cells:
        return beta, nan, nan, "one run per design cell: no bootstrap interval"
    note = f"{singles} of {cells} design cells hold one run: the intervals omit their spread"
    return beta, low, high, note if singles else ""


# --- divergence: logistic regression, Firth when separated or few events --------------------


def separated(x: np.ndarray, y: np.ndarray) -> bool:
    """Whether some β ≠ 0 has (2y − 1)·xβ ≥ 0 for every run, > 0 for one (complete or
    quasi-complete separation: the maximum-likelihood estimate is infinite), by a linear
    programme with β in a box (Konis 2007)."""
    s = np.where(y == 1, 1.0, -1.0)[:, None] * x
    res = optimize.linprog(
        -s.sum(axis=0), A_ub=-s, b_ub=np.zeros(len(y)), bounds=(-1, 1), method="highs"
    )
    return res.status == 0 and -res.fun > 1e-7 * max(1.0, np.abs(x).max())


def _divergence_fit(
    x: np.ndarray, y: np.ndarray, terms: list[str]
) -> tuple[np.ndarray, np.ndarray, str, str]:
    """Coefficients, standard errors, method ('logit', 'firth' or '') and a note."""
    nan = np.full(x.shape[1], math.nan)
    n, k = len(y), int(y.sum())
    if k in (0, n):
        what = "no divergence observed" if k == 0 else "every finished run diverged"
        return nan, nan, "", f"{what} ({k} of {n}): nothing to fit"
    model, reason = sm.Logit(y, x), ""
    few, need = min(k, n - k), trends.MIN_EVENTS * (x.shape[1] - 1)
    if separated(x, y):
        reason = "separation: a combination of the factors splits diverged from other runs"
        for j, term in enumerate(terms, start=1):
            on = x[:, j] == 1
            if set(np.unique(x[:, j])) <= {0.0, 1.0} and len(np.unique(y[on])) == 1:
                what = "every run diverged" if y[on][0] else "no run diverged"
                reason = f"separation: {what} at {term}"
                break
    elif few < need:
        which = "diverged" if k == few else "non-diverged"
        reason = f"few events: {few} {which} runs, fewer than {trends.MIN_EVENTS} per term"
    if not reason:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            warnings.simplefilter("error", PerfectSeparationWarning)
            try:
                result = model.fit(disp=0, maxiter=200)
                return np.asarray(result.params), np.asarray(result.bse), "logit", ""
            except (ConvergenceWarning, PerfectSeparationWarning, np.linalg.LinAlgError):
                reason = "the maximum-likelihood fit did not converge"
    try:
        beta = trends._firth(model)
    except (RuntimeError, np.linalg.LinAlgError):
        return nan, nan, "", f"{reason}; the Firth fit did not converge: no odds ratios"
    se = np.sqrt(np.diag(np.linalg.inv(-model.hessian(beta))))
    how = "Firth-penalised logistic regression, Wald intervals at the penalised estimate"
    return beta, se, "firth", f"{how} ({reason})"


# --- everything together ----------------------------------------------------------------------


@dataclass(frozen=True)
class FactorEffects:
    factors: tuple[Factor, ...]
    table: pd.DataFrame = field(repr=False)  # one row per term (columns: see `effects`)
    runs: int  # FINISHED runs in both models
    events: int  # of which diverged
    nonfinite: int  # FINISHED runs with a non-finite mae_ratio_test
    resamples: int
    median_note: str
    divergence_method: str  # 'logit', 'firth' or '' (no fit)
    divergence_note: str
    notes: tuple[str, ...]  # parameters left out, confounded terms

    @property
    def title(self) -> str:
        causes = any(
            f.name in CAUSES or (f.name == "max_freq" and not f.numeric) for f in self.factors
        )
        return "Which cause matters" if causes else "Factor effects"


COLUMNS = [
    "factor",
    "level",
    "reference",
    "median_effect",
    "median_low",
    "median_high",
    "odds_ratio",
    "or_low",
    "or_high",
    "runs",
    "events",
    "key",
    "median_method",
    "divergence_method",
    "note",
]


def effects(runs: pd.DataFrame, resamples: int = RESAMPLES, seed: int = 0) -> FactorEffects | None:
    """Main-effects models of median mae_ratio_test and of divergence on the factors (module
    docstring), over FINISHED runs; None when no parameter besides max_freq and seed varies."""
    if not trends.varying_params(runs):
        return None
    done = runs[runs["status"] == "FINISHED"].reset_index(drop=True)
    factors, notes = factors_of(done)
    y = trends.diverged_of(done).to_numpy(float)
    ratio = done["mae_ratio_test"].to_numpy(float) if "mae_ratio_test" in done else None
    nonfinite = 0 if ratio is None else int((~np.isfinite(ratio)).sum())
    base = {
        "factors": tuple(factors),
        "runs": len(done),
        "events": int(y.sum()),
        "nonfinite": nonfinite,
        "resamples": resamples,
    }
    rows = []
    for f in factors:
        text = done[f.name].map(trends.value_text).to_numpy(str)
        for (level, key), value in zip(f.terms(), f.levels or [None], strict=True):
            on = np.ones(len(done), bool) if f.numeric else text == trends.value_text(value)
            reference = "" if f.numeric else trends.value_text(f.reference)
            rows.append((f.name, level, reference, int(on.sum()), int(y[on].sum()), key))
    if not rows:
        return FactorEffects(
            **base,
            table=pd.DataFrame(columns=COLUMNS),
            median_note="",
            divergence_method="",
            divergence_note="",
            notes=(*notes, "no factor takes two values among FINISHED runs: nothing to fit"),
        )
    x_all = design(done, factors)
    keep = _estimable(x_all)
    x = x_all[:, keep]
    labels = [f"{r[0]}={r[1]}" for i, r in enumerate(rows, start=1) if i in keep]
    confounded = [f"{r[0]}={r[1]}" for i, r in enumerate(rows, start=1) if i not in keep]
    if confounded:
        notes.append(f"confounded with other factors, not estimable: {', '.join(confounded)}")
    if ratio is None:
        m, m_low, m_high = (np.full(len(keep), math.nan),) * 3
        median_note = "no mae_ratio_test logged: no median fit"
    else:
        m, m_low, m_high, median_note = _median_fit(x, ratio, resamples, seed)
    beta, se, method, divergence_note = _divergence_fit(x, y, labels)
    scale = np.array([trends.PER if f.numeric else 1 for f in factors for _ in f.terms()])
    table = []
    for i, (name, level, reference, n, k, key) in enumerate(rows, start=1):
        row = dict.fromkeys(COLUMNS[3:9], math.nan)
        if i in keep:
            j, s = keep.index(i), scale[i - 1]
            row = {
                "median_effect": s * m[j],
                "median_low": s * m_low[j],
                "median_high": s * m_high[j],
                "odds_ratio": math.exp(s * beta[j]),
                "or_low": math.exp(s * (beta[j] - trends.Z * se[j])),
                "or_high": math.exp(s * (beta[j] + trends.Z * se[j])),
            }
        table.append(
            {
                "factor": name,
                "level": level,
                "reference": reference,
                **row,
                "runs": n,
                "events": k,
                "key": key,
                "median_method": "quantreg" if math.isfinite(row["median_effect"]) else "",
                "divergence_method": method if i in keep else "",
                "note": "" if i in keep else "confounded: not estimable",
            }
        )
    return FactorEffects(
        **base,
        table=pd.DataFrame(table, columns=COLUMNS),
        median_note=median_note,
        divergence_method=method,
        divergence_note=divergence_note,
        notes=tuple(notes),
    )


# --- backends compared ------------------------------------------------------------------------


@dataclass(frozen=True)
class BackendComparison:
    reference: str  # e.g. 'tensorflow'
    other: str  # e.g. 'jax'; ratios are other / reference
    table: pd.DataFrame = field(repr=False)  # one row per setting and max_freq
    resamples: int


def _median_ratio_ci(a: np.ndarray, b: np.ndarray, resamples: int, seed: int) -> tuple:
    """median(b) / median(a) and its percentile bootstrap interval (each sample resampled)."""
    if not len(a) or not len(b):
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    ma = np.median(a[rng.integers(0, len(a), (resamples, len(a)))], axis=1)
    mb = np.median(b[rng.integers(0, len(b), (resamples, len(b)))], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = float(np.median(b) / np.median(a))
        draws = mb / ma
    if len(a) < 2 or len(b) < 2:
        return ratio, math.nan, math.nan
    low, high = np.nanpercentile(draws, [50 - 50 * trends.LEVEL, 50 + 50 * trends.LEVEL])
    return ratio, float(low), float(high)


def _holm(p: pd.Series) -> pd.Series:
    out = pd.Series(math.nan, index=p.index)
    ok = p.notna()
    if ok.any():
        out[ok] = multipletests(p[ok].to_numpy(), method="holm")[1]
    return out


def compare_backends(
    runs: pd.DataFrame, resamples: int = RESAMPLES, seed: int = 0
) -> BackendComparison | None:
    """The two backends per setting of the other varying parameters and max_freq (module
    docstring); None unless `backend` takes exactly two values."""
    if "backend" not in runs:
        return None
    names = _sorted_levels(runs["backend"].dropna())
    if len(names) != 2:
        return None
    ref = reference_level("backend", names)
    other = next(v for v in names if v != ref)
    done = runs[(runs["status"] == "FINISHED") & runs["backend"].notna()]
    others = [p for p in trends.varying_params(runs) if p != "backend"]
    rows = []
    for setting, part in trends.settings(done, others):
        for max_freq, group in part.groupby("max_freq", sort=True):
            row: dict[str, Any] = {**setting, "max_freq": int(max_freq)}
            mae, seconds = {}, {}
            for side, name in (("ref", ref), ("other", other)):
                runs_of = group[group["backend"] == name]
                values = runs_of["mae_test"].to_numpy(float)
                mae[side] = values[np.isfinite(values)]
                diverged = trends.diverged_of(runs_of)
                k, n = int(diverged.sum()), len(runs_of)
                median, low, high = stats.median_ci(mae[side])
                d_low, d_high = stats.wilson_interval(k, n)
                fit = runs_of.get("fit_seconds", pd.Series(dtype=float)).to_numpy(float)
                seconds[side] = float(np.median(fit[np.isfinite(fit)])) if fit.size else math.nan
                row |= {
                    f"{side}_runs": n,
                    f"{side}_median": median,
                    f"{side}_low": low,
                    f"{side}_high": high,
                    f"{side}_diverged": k,
                    f"{side}_div_low": d_low,
                    f"{side}_div_high": d_high,
                    f"{side}_fit_seconds": seconds[side],
                }
            ratio, low, high = _median_ratio_ci(mae["ref"], mae["other"], resamples, seed)
            table = [
                [row[f"{side}_diverged"], row[f"{side}_runs"] - row[f"{side}_diverged"]]
                for side in ("ref", "other")
            ]
            tested = len(mae["ref"]) and len(mae["other"])
            row |= {
                "mwu_p": float(sps.mannwhitneyu(mae["other"], mae["ref"]).pvalue)
                if tested
                else math.nan,
                "median_ratio": ratio,
                "ratio_low": low,
                "ratio_high": high,
                "divergence_p": float(sps.fisher_exact(table).pvalue)
                if row["ref_runs"] and row["other_runs"]
                else math.nan,
                "fit_seconds_ratio": seconds["other"] / seconds["ref"]
                if seconds["ref"] > 0
                else math.nan,
            }
            rows.append(row)
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["mwu_p_holm"] = _holm(frame["mwu_p"])
        frame["divergence_p_holm"] = _holm(frame["divergence_p"])
    return BackendComparison(str(ref), str(other), frame, resamples)


# --- both, and their metrics ------------------------------------------------------------------


@dataclass(frozen=True)
class Comparisons:
    effects: FactorEffects | None  # None: only max_freq and seed vary
    backends: BackendComparison | None  # None: backend does not take exactly two values


def fit(runs: pd.DataFrame, resamples: int = RESAMPLES, seed: int = 0) -> Comparisons:
    """Factor effects and the backend comparison of `runs` (as judged: stats.judged)."""
    return Comparisons(effects(runs, resamples, seed), compare_backends(runs, resamples, seed))


def where(row: pd.Series, params: list[str]) -> str:
    """The metric suffix of a backend row: '<param>_<value>/' for each, then 'max_freq_<m>'."""
    parts = [f"{trends._metric_part(p)}_{trends._metric_part(row[p])}" for p in params]
    return "/".join([*parts, f"max_freq_{int(row['max_freq'])}"])


def metrics(comparisons: Comparisons) -> dict[str, float]:
    """The key numbers as one flat dict of floats (names in the module docstring)."""
    out: dict[str, float] = {}
    if (e := comparisons.effects) is not None:
        out |= {
            "effect_runs": float(e.runs),
            "effect_divergence_events": float(e.events),
            "effect_divergence_firth": float(e.divergence_method == "firth"),
        }
        for row in e.table.itertuples(index=False):
            for name, cols in (
                ("effect_mae_ratio", ("median_effect", "median_low", "median_high")),
                ("effect_divergence_or", ("odds_ratio", "or_low", "or_high")),
            ):
                for end, col in zip(("", "_low", "_high"), cols, strict=True):
                    out[f"{name}/{row.key}{end}"] = float(getattr(row, col))
    if (b := comparisons.backends) is not None:
        params = setting_columns(b.table)
        for _, row in b.table.iterrows():
            suffix = where(row, params)
            for name in ("mwu_p", "mwu_p_holm", "divergence_p", "divergence_p_holm"):
                out[f"backend_{name}/{suffix}"] = float(row[name])
            out[f"backend_fit_seconds_ratio/{suffix}"] = float(row["fit_seconds_ratio"])
            for end, col in (("", "median_ratio"), ("_low", "ratio_low"), ("_high", "ratio_high")):
                out[f"backend_median_ratio/{suffix}{end}"] = float(row[col])
    return out


def setting_columns(table: pd.DataFrame) -> list[str]:
    """The other varying parameters at the front of a backend table (before max_freq)."""
    return list(table.columns[: list(table.columns).index("max_freq")]) if len(table) else []


# --- report sections ------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """A report section: paragraphs and bullets (**bold** marks emphasis), then a table."""

    title: str
    paragraphs: list[str]
    bullets: list[str]
    table: pd.DataFrame


def _fmt(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.3g}"


def _ci(value: float, low: float, high: float) -> str:
    return f"{_fmt(value)} [{_fmt(low)}, {_fmt(high)}]"


def _p(p: float) -> str:
    return "–" if math.isnan(p) else "< 0.001" if p < 0.001 else f"{p:.2g}"


def effect_sentence(row: pd.Series, e: FactorEffects) -> str:
    """One factor level's effects in words, 'cannot tell' where an interval spans no effect."""
    numeric = row["level"].startswith("per +")
    head = f"**{row['factor']}, {row['level']}**"
    if not numeric:
        head = (
            f"**{row['factor']}={row['level']} vs {row['reference']}** ({row['runs']} runs, "
            f"{row['events']} diverged)"
        )
    if row["note"]:
        return f"{head}: {row['note']}."
    eff, low, high = row["median_effect"], row["median_low"], row["median_high"]
    per = f" per +{trends.PER} max_freq" if numeric else ""
    if math.isnan(eff):
        median = f"median mae_ratio_test: no estimate ({e.median_note})"
    elif math.isnan(low):
        median = f"the median mae_ratio_test differs by {_fmt(eff)}{per} ({e.median_note})"
    elif low > 0 or high < 0:
        how = "higher" if low > 0 else "lower"
        median = (
            f"the median mae_ratio_test is {_fmt(abs(eff))} {how}{per} (95% CI {_fmt(low)} to "
            f"{_fmt(high)})"
        )
    else:
        median = (
            f"median mae_ratio_test: cannot tell (difference {_fmt(eff)}{per}, 95% CI "
            f"{_fmt(low)} to {_fmt(high)} contains 0, no effect)"
        )
    odds, low, high = row["odds_ratio"], row["or_low"], row["or_high"]
    if math.isnan(odds):
        divergence = f"divergence: {e.divergence_note or 'no odds ratio'}"
    elif low > 1 or high < 1:
        divergence = (
            f"the odds of diverging multiply by {_fmt(odds)}{per} (95% CI {_fmt(low)} to "
            f"{_fmt(high)})"
        )
    else:
        divergence = (
            f"divergence: cannot tell (odds ratio {_fmt(odds)}{per}, 95% CI {_fmt(low)} to "
            f"{_fmt(high)} contains 1, no effect)"
        )
    return f"{head}: {median}; {divergence}."


def effects_section(e: FactorEffects) -> Section:
    def described(f: Factor) -> str:
        if f.numeric:
            return f"{f.name} (numeric, per +{trends.PER})"
        levels = ", ".join(trends.value_text(v) for v in f.levels)
        return f"{f.name} ({levels} vs reference {trends.value_text(f.reference)})"

    if e.table.empty:
        notes = " ".join(f"{n[0].upper()}{n[1:]}." for n in e.notes)
        return Section(e.title, [f"{e.runs} FINISHED runs. {notes}"], [], pd.DataFrame())
    how = e.divergence_note
    if e.divergence_method == "logit":
        how = "logistic regression (maximum likelihood), odds ratios with 95% Wald intervals"
    intro = (
        f"One model with main effects only (no interactions) over {e.runs} FINISHED runs "
        f"({e.events} diverged); factors: {'; '.join(map(described, e.factors)) or 'none'}. "
        "Median: median (quantile 0.5) regression of mae_ratio_test (QuantReg), the difference "
        "in the median vs the reference level with a 95% percentile bootstrap interval "
        f"({e.resamples} resamples of runs within each design cell). Divergence: {how}."
    )
    extra = [
        f"{e.nonfinite} runs with a non-finite mae_ratio_test count as worse than any finite "
        "value."
    ] * bool(e.nonfinite)
    extra += [f"{n[0].upper()}{n[1:]}." for n in (e.median_note, *e.notes) if n]
    t = e.table
    view = pd.DataFrame(
        {
            "factor": t["factor"],
            "level": t["level"],
            "reference": t["reference"],
            "runs": t["runs"],
            "diverged": t["events"],
            "Δ median mae_ratio_test [95% CI]": [
                _ci(*v) for v in t[["median_effect", "median_low", "median_high"]].to_numpy()
            ],
            "odds ratio of diverging [95% CI]": [
                _ci(*v) for v in t[["odds_ratio", "or_low", "or_high"]].to_numpy()
            ],
        }
    )
    bullets = [effect_sentence(row, e) for _, row in t.iterrows()]
    return Section(e.title, [" ".join([intro, *extra])], bullets, view)


def _where_text(row: pd.Series, params: list[str]) -> str:
    setting = {p: row[p] for p in params}
    return f"max_freq {int(row['max_freq'])}" + (f" ({trends.label(setting)})" if params else "")


def backend_sentences(b: BackendComparison) -> list[str]:
    """Plain-words verdicts: test MAE, divergence, fit time."""
    t, ref, other = b.table, b.reference, b.other
    params = setting_columns(t)
    level = f"Holm-adjusted p ≥ {ALPHA:.2g}"
    differ = t[t["mwu_p_holm"] < ALPHA]
    if t["mwu_p"].isna().all():
        mae = "**Test MAE**: no max_freq has finite mae_test from both backends to compare."
    elif differ.empty:
        mae = f"**No difference in test MAE detected at any max_freq** (Mann–Whitney U, {level})"
        low, high = t["ratio_low"].min(), t["ratio_high"].max()
        if math.isfinite(low) and math.isfinite(high):
            mae += (
                f"; the medians agree within a factor of [{_fmt(low)}, {_fmt(high)}] "
                f"({other}/{ref}) at the 95% level"
            )
        mae += "."
    else:
        parts = [
            f"{_where_text(r, params)}: {other} {'higher' if r['median_ratio'] > 1 else 'lower'}"
            f", median ratio {other}/{ref} {_fmt(r['median_ratio'])} (95% CI "
            f"{_fmt(r['ratio_low'])} to {_fmt(r['ratio_high'])}; Holm-adjusted p "
            f"{_p(r['mwu_p_holm'])})"
            for _, r in differ.iterrows()
        ]
        same = [_where_text(r, params) for _, r in t.drop(differ.index).iterrows()]
        mae = f"**Test MAE differs between backends** at {'; '.join(parts)}."
        if same:
            mae += f" No difference detected at {', '.join(same)} ({level})."
    differ = t[t["divergence_p_holm"] < ALPHA]
    if differ.empty:
        divergence = (
            f"**No difference in divergence rate detected at any max_freq** (Fisher's exact "
            f"test, {level})."
        )
    else:
        parts = [
            f"{_where_text(r, params)}: {ref} {r['ref_diverged']:.0f}/{r['ref_runs']:.0f} vs "
            f"{other} {r['other_diverged']:.0f}/{r['other_runs']:.0f} (Holm-adjusted p "
            f"{_p(r['divergence_p_holm'])})"
            for _, r in differ.iterrows()
        ]
        divergence = f"**Divergence rates differ between backends** at {'; '.join(parts)}."
    speed = t["fit_seconds_ratio"].dropna()
    if speed.empty:
        fit = "**Fit time**: fit_seconds not logged for both backends."
    else:
        lo, hi = speed.min(), speed.max()
        span = _fmt(lo) if len(speed) == 1 else f"{_fmt(lo)}–{_fmt(hi)}"
        verdict = f"{other} faster" if hi < 1 else f"{other} slower" if lo > 1 else "mixed"
        fit = (
            f"**Fit time**: {other}'s median fit_seconds is {span}× {ref}'s "
            f"({verdict}; {len(speed)} comparison{'s' * (len(speed) != 1)})."
        )
    return [mae, divergence, fit]


def backends_section(b: BackendComparison) -> Section:
    t, ref, other = b.table, b.reference, b.other
    params = setting_columns(t)
    intro = (
        f"FINISHED runs by backend, per max_freq{' and setting' if params else ''}: median "
        "mae_test with its distribution-free 95% interval ('–': fewer than 6 runs); the ratio "
        f"of medians {other}/{ref} with a 95% percentile bootstrap interval ({b.resamples} "
        "resamples within each backend); the two-sided Mann–Whitney U test on finite mae_test; "
        "divergence rates with Wilson intervals and Fisher's exact test; p-values "
        f"Holm-adjusted across the {len(t)} comparisons."
    )
    view = t[params].map(trends.value_text) if params else pd.DataFrame(index=t.index)
    view["max_freq"] = t["max_freq"]
    for side, name in (("ref", ref), ("other", other)):
        view[f"{name} median mae_test [95% CI]"] = [
            f"{_ci(m, lo, hi)} (n={int(n)})"
            for m, lo, hi, n in t[
                [f"{side}_{c}" for c in ("median", "low", "high", "runs")]
            ].to_numpy(float)
        ]
    view[f"{other}/{ref} [95% CI]"] = [
        _ci(*v) for v in t[["median_ratio", "ratio_low", "ratio_high"]].to_numpy()
    ]
    view["Mann–Whitney p (Holm)"] = [
        f"{_p(a)} ({_p(b_)})" for a, b_ in zip(t["mwu_p"], t["mwu_p_holm"], strict=True)
    ]
    for side, name in (("ref", ref), ("other", other)):
        view[f"{name} diverged [95% Wilson]"] = [
            f"{int(k)}/{int(n)} [{_fmt(lo)}, {_fmt(hi)}]"
            for k, n, lo, hi in t[
                [f"{side}_diverged", f"{side}_runs", f"{side}_div_low", f"{side}_div_high"]
            ].to_numpy()
        ]
    view["Fisher p (Holm)"] = [
        f"{_p(a)} ({_p(b_)})"
        for a, b_ in zip(t["divergence_p"], t["divergence_p_holm"], strict=True)
    ]
    view[f"median fit s, {ref} / {other}"] = [
        f"{_fmt(a)} / {_fmt(c)}"
        for a, c in zip(t["ref_fit_seconds"], t["other_fit_seconds"], strict=True)
    ]
    view[f"fit time {other}/{ref}"] = t["fit_seconds_ratio"].map(_fmt)
    return Section("Backends compared", [intro], backend_sentences(b), view)


def sections(comparisons: Comparisons) -> list[Section]:
    """The report sections that apply: factor effects, then the backends compared."""
    out = []
    if comparisons.effects is not None:
        out.append(effects_section(comparisons.effects))
    if comparisons.backends is not None and len(comparisons.backends.table):
        out.append(backends_section(comparisons.backends))
    return out
