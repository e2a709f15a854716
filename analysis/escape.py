"""Time to leave the plateau: is divergence a failure or a delay? Pure functions of the runs
table (analysis/load.py), as judged (stats.judged), for runs that carry progress data (the
metric `optimizer_steps`, logged since the training budget and the plateau checks of
pipeline/progress.py).

Each FINISHED run is a time-to-event record: the event is leaving the plateau for good, at
`escape_step` optimizer updates; a run that never left it is censored at the end of its
budget (`train_steps`, or epochs × steps_per_epoch; a run whose loss went non-finite failed
for good, so it is censored at its budget too, not where it stopped). Per setting of the
varying parameters (analysis/settings.py) and max_freq:

- Kaplan–Meier curves of "still on the plateau" against updates (and against epochs:
  updates / steps_per_epoch), statsmodels' SurvfuncRight, with pointwise 95% bands by the
  log(−log) transform of Greenwood's variance; the median time to escape with
  SurvfuncRight.quantile_ci (Brookmeyer–Crowley, complementary log-log transform).
- The common budget: the smallest budget among the setting's runs, which every run reached
  (so no run is censored before it, and the Kaplan–Meier estimate there is the plain fraction
  still on the plateau, given with its Wilson interval), and half of it. Runs still on the
  plateau at half the budget that leave it by the full budget are late learners; if almost
  none do, the curves have flattened and what is left is failure, not delay.
- Escape rate vs max_freq: a Cox proportional-hazards model of the time to escape on max_freq
  (statsmodels PHReg, Efron's method for the tied checkpoint times), as the factor by which the
  rate of leaving the plateau multiplies per +10 max_freq, with its 95% Wald interval; the
  proportional-hazards assumption is checked by the correlation of the Schoenfeld residuals
  with the rank of the event time (Grambsch & Therneau's test with the rank transform).
- Divergence at the common budget vs max_freq: the logistic trend of trends.divergence_trend
  with "diverged" read as "still on the plateau at the common budget". Both models leave
  aliased max_freqs out, as trends.py does; the curves and the table show them.

statsmodels is used rather than lifelines: it is already pinned for the other models, its
survival code is maintained with the rest of the library, and it has both the Kaplan–Meier
estimator and the Cox model this needs.

`metrics()` names (suffix `/<param>_<value>` per varying parameter, as trends.metrics):
`escape_hr10` (`_low`, `_high`), `escape_ph_p`, `escape_runs`, `escape_events`,
`escape_budget`; per max_freq `plateau_at_budget/max_freq_<m>` (`_low`, `_high`).
"""

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps
from statsmodels.duration.hazard_regression import PHReg
from statsmodels.duration.survfunc import SurvfuncRight

from analysis import logistic, stats, trends
from analysis.settings import diverged_of, setting_suffix, settings, well_posed
from pipeline import evaluate, progress

REQUIRED = ("optimizer_steps", "steps_per_epoch")


def has_progress(runs: pd.DataFrame) -> bool:
    """Whether any FINISHED run carries the progress metrics."""
    if any(c not in runs for c in REQUIRED):
        return False
    done = runs["status"] == "FINISHED"
    return bool(runs.loc[done, "optimizer_steps"].notna().any())


def budget_of(runs: pd.DataFrame) -> np.ndarray:
    """Each run's planned updates: train_steps when set, else epochs × steps_per_epoch."""
    per_epoch = runs["steps_per_epoch"].to_numpy(float)
    epochs = runs["epochs"].to_numpy(float)
    steps = (
        runs["train_steps"].astype("Float64").fillna(0).to_numpy(float)
        if "train_steps" in runs
        else np.zeros(len(runs))
    )
    planned = np.where(steps > 0, steps, epochs * per_epoch)
    return np.maximum(planned, runs["optimizer_steps"].to_numpy(float))


def rejudge(
    runs: pd.DataFrame, histories: dict[str, tuple[np.ndarray, np.ndarray]], ratio: float
) -> pd.Series:
    """escape_step at another threshold, from each run's (updates, mae_ratio_train) history
    (store.metric_series) by pipeline.progress's own rule; NaN for runs that diverged at it or
    have no history."""
    out = []
    for run_id, diverged in zip(runs["run_id"], runs["diverged"], strict=True):
        steps, values = histories.get(run_id, (np.empty(0), np.empty(0)))
        step = None
        if len(steps) and not (pd.isna(diverged) or bool(diverged)):
            step = progress.escape_step(steps.astype(int), values, ratio)
        out.append(math.nan if step is None else float(step))
    return pd.Series(out, index=runs.index, dtype=float)


def records(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per FINISHED run with progress data: max_freq, time (updates), event (1:
    escaped), epochs (time / steps_per_epoch), budget (updates), escaped_by (update of escape
    or inf), failure_mode."""
    done = runs[(runs["status"] == "FINISHED") & runs["optimizer_steps"].notna()]
    budget = budget_of(done)
    escaped = done["escape_step"].to_numpy(float) if "escape_step" in done else np.nan
    escaped = np.where(diverged_of(done).to_numpy(), np.nan, escaped)
    event = np.isfinite(escaped)
    time = np.where(event, escaped, budget)
    return pd.DataFrame(
        {
            "max_freq": done["max_freq"].to_numpy(int),
            "time": time,
            "event": event.astype(int),
            "epochs": time / done["steps_per_epoch"].to_numpy(float),
            "budget": budget,
            "escaped_by": np.where(event, escaped, np.inf),
            "failure_mode": (
                done["failure_mode"].astype(object).to_numpy()
                if "failure_mode" in done
                else np.full(len(done), None, dtype=object)
            ),
            "diverged": diverged_of(done).to_numpy(),
        },
        index=done.index,
    )


# --- Kaplan–Meier ----------------------------------------------------------------------------


def km_curve(time: np.ndarray, event: np.ndarray) -> pd.DataFrame:
    """The Kaplan–Meier step function of "still on the plateau" with its pointwise 95% band
    (log(−log) transform): columns time, surv, low, high, from time 0 (with 1) to the last
    time any run was followed."""
    fit = SurvfuncRight(np.asarray(time, float), np.asarray(event, int))
    surv, se = fit.surv_prob, fit.surv_prob_se
    with np.errstate(divide="ignore", invalid="ignore"):
        half = logistic.Z * se / np.abs(surv * np.log(surv))
        low = surv ** np.exp(half)
        high = surv ** np.exp(-half)
    # S = 1 (no event yet) or 0 (all escaped): the transform is undefined; the band is the point
    # at 0, and at 1 the band's upper end is 1.
    low = np.where(surv >= 1, 1.0, np.where(surv <= 0, 0.0, low))
    high = np.where(surv >= 1, 1.0, np.where(surv <= 0, 0.0, high))
    curve = pd.DataFrame(
        {
            "time": np.r_[0.0, fit.surv_times],
            "surv": np.r_[1.0, surv],
            "low": np.r_[1.0, low],
            "high": np.r_[1.0, high],
        }
    )
    end = float(np.max(time))
    if end > curve["time"].iloc[-1]:  # runs followed past the last escape: the curve goes on
        curve.loc[len(curve)] = [end, *curve.iloc[-1][["surv", "low", "high"]]]
    return curve


def median_escape(time: np.ndarray, event: np.ndarray) -> tuple[float, float, float]:
    """The median time to escape and its 95% interval (inf where the curve does not fall to
    one half; NaN where statsmodels gives no bound)."""
    if not np.any(event):
        return math.inf, math.inf, math.inf
    fit = SurvfuncRight(np.asarray(time, float), np.asarray(event, int))
    median = fit.quantile(0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = fit.quantile_ci(0.5, alpha=1 - logistic.LEVEL)
    median = math.inf if median is None or np.isnan(median) else float(median)
    low = math.nan if low is None or np.isnan(low) else float(low)
    high = math.inf if high is None or np.isnan(high) else float(high)
    return median, low, high


# --- the Cox model ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EscapeTrend:
    runs: int
    events: int
    max_freqs: tuple[int, ...]
    hr10: float = math.nan  # escape rate ratio per +PER max_freq, and its 95% interval
    hr10_low: float = math.nan
    hr10_high: float = math.nan
    p: float = math.nan  # two-sided Wald p-value for no effect
    ph_r: float = math.nan  # Schoenfeld residuals vs rank of event time: correlation, p-value
    ph_p: float = math.nan
    reason: str = ""  # why no fit: 'one max_freq', 'no escapes', 'no convergence', 'separated'

    @property
    def verdict(self) -> str:
        """'faster', 'slower' (leaving the plateau as max_freq grows), 'cannot tell', 'no fit'."""
        if math.isnan(self.hr10_low):
            return "no fit"
        return "faster" if self.hr10_low > 1 else "slower" if self.hr10_high < 1 else "cannot tell"


def escape_trend(rec: pd.DataFrame) -> EscapeTrend:
    """Cox model of the time to escape on max_freq (per +PER), Efron ties."""
    max_freqs = tuple(sorted({int(m) for m in rec["max_freq"]}))
    base = {"runs": len(rec), "events": int(rec["event"].sum()), "max_freqs": max_freqs}
    if len(max_freqs) < 2:
        return EscapeTrend(**base, reason="one max_freq")
    if base["events"] == 0:
        return EscapeTrend(**base, reason="no escapes")
    x = (rec["max_freq"].to_numpy(float) - rec["max_freq"].mean()) / trends.PER
    model = PHReg(rec["time"].to_numpy(float), x[:, None], status=rec["event"].to_numpy(int),
                  ties="efron")  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = model.fit()
    beta, se = float(result.params[0]), float(result.bse[0])
    if not (math.isfinite(beta) and math.isfinite(se)) or se == 0:
        return EscapeTrend(**base, reason="no convergence")
    if (
        abs(beta) > 1
        and model.loglike(np.array([2 * beta])) >= model.loglike(result.params) - 1e-9
    ):
        # The partial likelihood still rises past the "estimate": every escape at one end of
        # max_freq comes before any run at the other end leaves the plateau (or none does).
        # It has no maximum, so there is no finite rate ratio and no Wald interval.
        return EscapeTrend(**base, reason="separated")
    residuals = np.asarray(result.schoenfeld_residuals)[:, 0]
    on = np.isfinite(residuals) & (rec["event"].to_numpy() == 1)
    ph_r = ph_p = math.nan
    if on.sum() >= 3 and np.ptp(residuals[on]) > 0:
        ranks = sps.rankdata(rec["time"].to_numpy(float)[on])
        if np.ptp(ranks) > 0:
            ph_r, ph_p = (float(v) for v in sps.pearsonr(residuals[on], ranks))
    return EscapeTrend(
        **base,
        hr10=math.exp(beta),
        hr10_low=math.exp(beta - logistic.Z * se),
        hr10_high=math.exp(beta + logistic.Z * se),
        p=float(2 * sps.norm.sf(abs(beta / se))),
        ph_r=ph_r,
        ph_p=ph_p,
    )


# --- per setting -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Escape:
    setting: dict[str, Any]
    budget: float  # the common budget (updates) every run of the setting reached
    table: pd.DataFrame = field(repr=False)  # one row per max_freq (columns: see `per_max_freq`)
    curves: dict[int, tuple[pd.DataFrame, pd.DataFrame]] = field(repr=False)  # updates, epochs
    trend: EscapeTrend
    at_budget: trends.DivergenceTrend  # "still on the plateau at the budget" vs max_freq
    aliased: tuple[int, ...] = ()  # max_freqs in the table and curves, not in the two fits


MODE_COLUMNS = tuple(f"mode_{m}" for m in evaluate.FAILURE_MODES)


def per_max_freq(rec: pd.DataFrame, budget: float) -> pd.DataFrame:
    rows = []
    for max_freq, group in rec.groupby("max_freq", sort=True):
        n = len(group)
        median, low, high = median_escape(group["time"], group["event"])
        per_epoch = float(np.median(group["time"] / group["epochs"]))
        half = int(np.sum(group["escaped_by"] > budget / 2))
        full = int(np.sum(group["escaped_by"] > budget))
        modes = group.loc[group["diverged"], "failure_mode"]
        rows.append(
            {
                "max_freq": int(max_freq),
                "runs": n,
                "escaped": int(group["event"].sum()),
                "median_steps": median,
                "median_low": low,
                "median_high": high,
                "median_epochs": median / per_epoch,
                "steps_per_epoch": per_epoch,
                "plateau_half": half,
                "plateau_half_low": stats.wilson_interval(half, n)[0],
                "plateau_half_high": stats.wilson_interval(half, n)[1],
                "plateau_budget": full,
                "plateau_budget_low": stats.wilson_interval(full, n)[0],
                "plateau_budget_high": stats.wilson_interval(full, n)[1],
                "late_escapes": half - full,
                "diverged_end": int(group["diverged"].sum()),
                **{f"mode_{m}": int((modes == m).sum()) for m in evaluate.FAILURE_MODES},
                "mode_unknown": int(modes.isna().sum()),
            }
        )
    return pd.DataFrame(rows)


def fit(runs: pd.DataFrame) -> list[Escape]:
    """The time-to-escape analysis per setting; [] when no run carries progress data."""
    if not has_progress(runs):
        return []
    out = []
    for setting, part in settings(runs):
        rec = records(part)
        if rec.empty:
            continue
        budget = float(rec["budget"].min())
        posed, aliased = well_posed(part)
        fitted = rec.loc[posed.index.intersection(rec.index)]
        curves = {
            int(m): (km_curve(g["time"], g["event"]), km_curve(g["epochs"], g["event"]))
            for m, g in rec.groupby("max_freq", sort=True)
        }
        at_budget = trends.divergence_trend(
            pd.DataFrame(
                {
                    "status": "FINISHED",
                    "max_freq": fitted["max_freq"],
                    "diverged": fitted["escaped_by"] > budget,
                }
            )
        )
        out.append(
            Escape(
                setting,
                budget,
                per_max_freq(rec, budget),
                curves,
                escape_trend(fitted),
                at_budget,
                aliased,
            )
        )
    return out


def metrics(escapes: list[Escape]) -> dict[str, float]:
    """The key numbers as one flat dict of floats (names in the module docstring)."""
    out = {}
    for e in escapes:
        suffix = setting_suffix(e.setting)
        t = e.trend
        out |= {
            f"escape_hr10{suffix}": t.hr10,
            f"escape_hr10_low{suffix}": t.hr10_low,
            f"escape_hr10_high{suffix}": t.hr10_high,
            f"escape_ph_p{suffix}": t.ph_p,
            f"escape_runs{suffix}": float(t.runs),
            f"escape_events{suffix}": float(t.events),
            f"escape_budget{suffix}": e.budget,
        }
        for row in e.table.itertuples(index=False):
            key = f"plateau_at_budget{suffix}/max_freq_{row.max_freq}"
            out[key] = row.plateau_budget / row.runs
            out[f"{key}_low"] = row.plateau_budget_low
            out[f"{key}_high"] = row.plateau_budget_high
    return {k: float(v) for k, v in out.items()}
