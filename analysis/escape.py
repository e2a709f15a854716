"""Time to leave the plateau: is divergence a failure or a delay? Pure functions of the runs
table (analysis/load.py), as judged (stats.judged), for runs that carry progress data (the
metric `optimizer_steps`, logged since the training budget and the plateau checks of
pipeline/progress.py).

What the data are. A run is seen only at its checks (update 0, the checkpoints, the end of
its budget), so its escape is known to lie between the check before `escape_step` and
`escape_step`: the times are grouped. A run that never escaped is known only to need more
than its budget, and may never escape at all: the data within a budget cannot tell "never"
from "slow", and nothing here pretends to. Every run of a (setting, max_freq) group is
followed to the same budget (a run the stopping rule ended has its escape seen; one whose
loss went non-finite failed for good and counts as on the plateau to its budget). Hence, per
setting of the varying parameters (analysis/settings.py) and max_freq:

- **Still on the plateau at each check**: the fraction of the group's runs whose escape_step
  is later. No run is censored before the budget, so this is the Kaplan–Meier estimate and a
  plain binomial proportion; its 95% interval is Clopper–Pearson's, which covers at least 95%
  at every level of the curve (near 1 and near 0 included), so the band is drawn from update
  0 to the budget and nowhere beyond it.
- **The median time to escape**: the first check at which at most half are still on the
  plateau ("≤ c" when that is the first check: it fell before it; "> budget" when never). Its
  95% interval inverts the checks' intervals: above every check whose lower bound exceeds ½,
  at or below the first whose upper bound is under ½. Each side errs only when the
  one-sided 97.5% bound at one check does, so it covers at least 95% by construction.
- **Escape vs max_freq**: a discrete-time hazard model, logistic regression of "escaped at this
  check" over the runs still on the plateau just before it, with a free intercept for every
  check at which some run escaped (the baseline hazard) and max_freq either as categories
  (coded as successive differences: each max_freq against the one before) or as one
  log-linear term per +PER. A likelihood-ratio test of the one term against the categories
  decides what the report gives: the per-+PER odds ratio only where the categories do not fit
  better (p ≥ ALPHA); otherwise each max_freq against the one before, and "not monotone" only
  where two of those steps are resolved (Holm within the steps) in opposite directions.
  Maximum likelihood with Wald intervals; Firth's penalised likelihood with profile intervals
  where the escapes are separated (analysis/logistic.py). Where hazards are not proportional
  (curves that cross) an odds ratio is an average over the budget, weighted by who is still
  on the plateau; coverage of that average is tested at the budget study's own design, with
  never-escaping runs and crossing curves (benchmarks/coverage_checks.py, docs/coverage.md).
- **Divergence at the common budget**: the smallest budget among a setting's runs, which every
  run reached; the fraction still on the plateau there per max_freq, and trends.py's
  divergence trend on "still on the plateau at the common budget".
- **Late escapes (failure or delay)**: of the well-posed runs still on the plateau at a
  quarter and at half of the common budget, how many left it by the budget, with a
  Clopper–Pearson interval. Only a longer budget can say more (`make extend`).
- **The stopping rule, checked**: over full-budget runs with their mae_ratio_train histories,
  how many runs the rule (pipeline/progress.py: two checks in a row off the plateau) would have
  stopped, and how many of those ended diverged all the same (*relapsed*), in all and per
  max_freq; beside it, per max_freq, the runs never confirmed off the plateau (what a stopped
  study counts as diverged) and those diverged at the budget.

- **The reference reading**: in a study that gives every max_freq the same updates
  (train_steps), each max_freq read at its own reference point, REFERENCE_EPOCHS (the
  reference experiment's 200) × its updates per epoch, where a 200-epoch run of the same seed
  ends: the runs *not yet learned* there (escape_step later than that update, or none), per
  max_freq with a Clopper–Pearson interval, beside the study's own count at the budget; the
  logistic trend over REFERENCE_RANGE (the range the original claim of a steep rise covered)
  and the shape tests (analysis/curvature.py) over all of them. Read from escape_step, so a
  run off the plateau at that update that later fell back counts as not yet learned, and the
  reading is known to the checks' spacing.

Aliased max_freqs are shown in the table and curves and left out of every model and count
that pools max_freqs, as trends.py does.

`metrics()` names (suffix `/<param>_<value>` per varying parameter, as trends.metrics):
`escape_shape_p`; `escape_or10` (`_low`, `_high`, `_p`); `escape_step_theta/max_freq_<m>`
(`_low`, `_high`, `_p`: max_freq m against the one before); `escape_runs`, `escape_events`,
`escape_budget`; per max_freq `plateau_at_budget/max_freq_<m>` (`_low`, `_high`) and
`median_escape/max_freq_<m>` (`_low`, `_high`); `late_escapes/from_<u>` (`_low`, `_high`,
`_runs`); `stop_rule_runs`, `stop_rule_diverged` (`_low`, `_high`); per max_freq
`stop_rule_relapsed/max_freq_<m>` (`_low`, `_high`, `_runs`: relapsed among the runs the rule
would stop) and `never_confirmed/max_freq_<m>` (the fraction never confirmed off the plateau);
per max_freq `not_learned_at_reference/max_freq_<m>` (`_low`, `_high`), and
`reference_trend_or10` (`_low`, `_high`, `_p`) over REFERENCE_RANGE,
`reference_shape_p` and `reference_rise_fall_p` over every max_freq.
"""

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from analysis import logistic, stats, trends
from analysis.settings import (
    DIVERGED,
    Outcome,
    diverged_of,
    outcome_of,
    setting_suffix,
    settings,
    stopped_of,
    well_posed,
)
from pipeline import names, progress
from pipeline.config import TrainConfig

REQUIRED = ("optimizer_steps", "steps_per_epoch")
ALPHA = 0.05  # the shape test's level, and Holm's within the steps
PER = trends.PER
LATE_FROM = (0.25, 0.5)  # late escapes counted from these fractions of the common budget
REFERENCE_EPOCHS = TrainConfig().epochs  # the reference experiment's budget, in epochs
REFERENCE_RANGE = (10, 30)  # the max_freqs the original "steep rise" was measured over


def clopper_pearson(k: np.ndarray | int, n: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper–Pearson) 95% interval of k/n, elementwise; NaN where n = 0."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    safe = np.where(n > 0, n, 1)
    low, high = proportion_confint(k, safe, alpha=1 - logistic.LEVEL, method="beta")
    low = np.where(n > 0, np.nan_to_num(low, nan=0.0), np.nan)
    high = np.where(n > 0, np.nan_to_num(high, nan=1.0), np.nan)
    return low, high


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
    stopped = stopped_of(runs)  # a stopped run made fewer updates than planned, by design
    return np.where(stopped, planned, np.maximum(planned, runs["optimizer_steps"].to_numpy(float)))


def check_grid(budget: float, check_every: float = 0) -> np.ndarray:
    """The updates at which a run with this budget was seen: 0, the checkpoints, the budget."""
    every = int(check_every) if np.isfinite(check_every) and check_every > 0 else 0
    return np.array([0, *progress.checkpoints(int(budget), every=every), int(budget)], float)


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
    """One row per FINISHED run with progress data: max_freq, time (updates: the escape, or
    the budget), event (1: escaped), epochs (time / steps_per_epoch), budget (updates),
    escaped_by (update of escape or inf), check_every, stopped, failure_mode, diverged."""
    done = runs[(runs["status"] == "FINISHED") & runs["optimizer_steps"].notna()]
    budget = budget_of(done)
    escaped = done["escape_step"].to_numpy(float) if "escape_step" in done else np.nan
    escaped = np.where(diverged_of(done).to_numpy(), np.nan, escaped)
    event = np.isfinite(escaped)
    time = np.where(event, escaped, budget)
    every = (
        done["check_every"].astype("Float64").fillna(0).to_numpy(float)
        if "check_every" in done
        else np.zeros(len(done))
    )
    return pd.DataFrame(
        {
            "max_freq": done["max_freq"].to_numpy(int),
            "time": time,
            "event": event.astype(int),
            "epochs": time / done["steps_per_epoch"].to_numpy(float),
            "budget": budget,
            "escaped_by": np.where(event, escaped, np.inf),
            "check_every": every,
            "stopped": stopped_of(done),
            "failure_mode": (
                done["failure_mode"].astype(object).to_numpy()
                if "failure_mode" in done
                else np.full(len(done), None, dtype=object)
            ),
            "diverged": diverged_of(done).to_numpy(),
        },
        index=done.index,
    )


# --- the curve of one group and its median ---------------------------------------------------


def plateau_curve(group: pd.DataFrame) -> pd.DataFrame:
    """Still on the plateau at each check of a (setting, max_freq) group, to its common
    budget: columns time (updates), still, runs, surv, low, high (Clopper–Pearson 95%)."""
    budget = float(group["budget"].min())
    grid = check_grid(budget, float(group["check_every"].iloc[0]))
    escaped_by = group["escaped_by"].to_numpy(float)
    still = np.array([int(np.sum(escaped_by > t)) for t in grid])
    n = len(group)
    low, high = clopper_pearson(still, np.full(len(grid), n))
    return pd.DataFrame(
        {"time": grid, "still": still, "runs": n, "surv": still / n, "low": low, "high": high}
    )


@dataclass(frozen=True)
class Median:
    """The median time to escape of a group, known to its checks."""

    value: float  # the first check with at most half still on the plateau; inf: not reached
    low: float  # the median is above this (0: no check says so)
    high: float  # … and at or below this (inf: no check says so)
    after: float  # the check before `value`: the median lies in (after, value]
    budget: float

    @property
    def at_first_check(self) -> bool:
        return math.isfinite(self.value) and self.after == 0


def median_escape(curve: pd.DataFrame) -> Median:
    """The median and its 95% interval from a group's plateau_curve (module docstring)."""
    time, surv = curve["time"].to_numpy(float), curve["surv"].to_numpy(float)
    low, high = curve["low"].to_numpy(float), curve["high"].to_numpy(float)
    reached = np.flatnonzero(surv <= 0.5)
    value = time[reached[0]] if len(reached) else math.inf
    after = time[reached[0] - 1] if len(reached) and reached[0] > 0 else 0.0
    above = time[low > 0.5]
    below = time[high < 0.5]
    return Median(
        float(value),
        float(above.max()) if len(above) else 0.0,
        float(below.min()) if len(below) else math.inf,
        float(after),
        float(time[-1]),
    )


# --- escape vs max_freq ------------------------------------------------------------------------


@dataclass(frozen=True)
class RiskSets:
    """At every check where some run escaped: per max_freq, the runs still on the plateau
    just before it (at risk) and those that escaped at it."""

    max_freqs: np.ndarray  # (G,)
    at_risk: np.ndarray  # (checks, G)
    escaped: np.ndarray  # (checks, G)


def risk_sets(rec: pd.DataFrame) -> RiskSets:
    groups = np.array(sorted({int(m) for m in rec["max_freq"]}))
    times = np.unique(rec.loc[rec["event"] == 1, "time"].to_numpy(float))
    t, e = rec["time"].to_numpy(float), rec["event"].to_numpy(int)
    mf = rec["max_freq"].to_numpy(int)
    at_risk = np.array([[np.sum((mf == g) & (t >= when)) for g in groups] for when in times])
    escaped = np.array(
        [[np.sum((mf == g) & (t == when) & (e == 1)) for g in groups] for when in times]
    )
    shape = (len(times), len(groups))
    return RiskSets(groups, at_risk.reshape(shape), escaped.reshape(shape))


def conditional_loglike(sets: RiskSets, eta: np.ndarray) -> float:
    """The discrete-time (Cox's exact, conditional logistic) log likelihood of log odds `eta`
    per max_freq: at each check, the chance that exactly the runs that escaped are the ones
    that did, given how many did. The baseline hazard of each check cancels, so no nuisance
    parameter is estimated (with one per check, the unconditional model's likelihood-ratio
    test rejected a true single rate about twice as often as it should at 16 runs a
    max_freq)."""
    w = np.exp(eta - eta.max())
    total = 0.0
    for n, d in zip(sets.at_risk, sets.escaped, strict=True):
        k = int(d.sum())
        if k == 0:
            continue
        poly = np.ones(1)  # Π_g (1 + w_g z)^n_g, to degree k
        for weight, count in zip(w, n, strict=True):
            if count:
                terms = special.comb(count, np.arange(min(count, k) + 1)) * weight ** np.arange(
                    min(count, k) + 1
                )
                poly = np.convolve(poly, terms)[: k + 1]
        total += float(d @ eta) - (math.log(poly[k]) + k * eta.max())
    return total


RIDGE = 1e-4  # keeps separated log odds finite (at |β| ≈ 10), negligible elsewhere


def _maximise(objective, start: np.ndarray) -> tuple[np.ndarray, float]:
    """Maximise objective(β) − RIDGE·|β|²/2 (BFGS); returns (β, the objective there)."""
    if len(start) == 0:
        return start, objective(start)
    res = optimize.minimize(
        lambda b: -(objective(b) - RIDGE * float(b @ b) / 2), start, method="BFGS",
        options={"gtol": 1e-7},
    )  # fmt: skip
    return res.x, objective(res.x) - RIDGE * float(res.x @ res.x) / 2


def _trend_eta(sets: RiskSets, b: np.ndarray) -> np.ndarray:
    x = (sets.max_freqs - sets.max_freqs.mean()) / PER
    return b[0] * x


def _category_eta(sets: RiskSets, b: np.ndarray) -> np.ndarray:
    return np.r_[0.0, b]


def _profile_trend(sets: RiskSets, beta: float, top: float) -> tuple[float, float, float]:
    """The per-+PER log odds' 95% profile-likelihood interval (one parameter: the profile is
    the likelihood itself; ±inf where it never falls far enough) and its LR p-value."""
    crit = sps.chi2.ppf(logistic.LEVEL, 1) / 2

    def drop(b: float) -> float:
        return top - (
            conditional_loglike(sets, _trend_eta(sets, np.array([b]))) - RIDGE * b * b / 2
        )

    ends = []
    for sign in (-1.0, 1.0):
        near, far = beta, beta + sign * 0.25
        while drop(far) < crit and abs(far) < 20:
            near, far = far, far + sign * 2 * abs(far - near)
        ends.append(
            sign * math.inf
            if drop(far) < crit
            else optimize.brentq(lambda b: drop(b) - crit, *sorted((near, far)), xtol=1e-7)
        )
    return ends[0], ends[1], float(sps.chi2.sf(2 * max(0.0, drop(0.0)), 1))


def win_probability(
    earlier: np.ndarray, later: np.ndarray, level: float = logistic.LEVEL
) -> tuple[float, float, float, float]:
    """θ = P(a run of the later group stays on the plateau longer) + ½ P(as long), from the
    two groups' escape updates (inf: not by the budget; ties are the checks' grouping), with
    a score interval {θ: (θ̂ − θ)² ≤ z²·V(θ)} whose variance V is the larger of Brunner–
    Munzel's at θ̂ (ties, unequal spreads) and Hanley–McNeil's at θ (which does not collapse
    when the groups do not overlap: 16 runs against 16 all later give [0.873, 1]), and the
    two-sided p of θ = ½ by the same statistic. Returns (θ, low, high, p)."""
    a, b = np.asarray(earlier, float), np.asarray(later, float)
    m, n = len(a), len(b)
    ranks = sps.rankdata(np.r_[a, b])
    ra, rb = ranks[:m], ranks[m:]
    theta = float((rb.mean() - (n + 1) / 2) / m)
    ia, ib = sps.rankdata(a), sps.rankdata(b)
    va = np.sum((ra - ia - ra.mean() + (m + 1) / 2) ** 2) / (m - 1) / n**2 if m > 1 else 0.0
    vb = np.sum((rb - ib - rb.mean() + (n + 1) / 2) ** 2) / (n - 1) / m**2 if n > 1 else 0.0
    brunner = float(va / m + vb / n)
    half = (m + n) / 2

    def variance(t: float) -> float:
        hanley = t * (1 - t) * (1 + (half - 1) * (1 - t) / (2 - t) + (half - 1) * t / (1 + t))
        return max(brunner, hanley / (m * n))

    z = float(sps.norm.ppf(0.5 + level / 2))

    def outside(t: float) -> float:
        return (theta - t) ** 2 - z * z * variance(t)

    inner_low, inner_high = max(theta - 1e-9, 0.0), min(theta + 1e-9, 1.0)
    low = optimize.brentq(outside, 0.0, inner_low) if outside(0.0) > 0 < inner_low else 0.0
    high = (
        optimize.brentq(outside, inner_high, 1.0) if outside(1.0) > 0 and inner_high < 1 else 1.0
    )
    p = float(2 * sps.norm.sf(abs(theta - 0.5) / math.sqrt(variance(0.5))))
    return theta, float(low), float(high), p


@dataclass(frozen=True)
class HazardModel:
    """Escape vs max_freq in one setting (module docstring)."""

    runs: int
    events: int
    max_freqs: tuple[int, ...]
    method: str = ""  # 'conditional' or '' (no fit)
    reason: str = ""  # why no fit
    shape_stat: float = math.nan  # likelihood ratio: categories vs one log-linear rate
    shape_df: int = 0
    shape_p: float = math.nan
    or10: float = math.nan  # odds of escaping at a check, per +PER max_freq
    or10_low: float = math.nan
    or10_high: float = math.nan
    or10_p: float = math.nan
    # per max_freq but the first, against the one before: previous, max_freq, budget (the
    # pair's common budget), theta (P(later escape at max_freq)), low, high, p, p_holm (Holm
    # among the steps)
    steps: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    @property
    def one_rate(self) -> bool:
        """Whether the report may give a single per-+PER rate: the categories do not fit
        better (or there are only two max_freqs, where the two models are one)."""
        return bool(self.method) and not self.shape_p < ALPHA

    @property
    def verdict(self) -> str:
        """The single rate's: 'faster', 'slower' (escape as max_freq grows), 'cannot tell'."""
        if not self.method:
            return "no fit"
        word = stats.verdict(self.or10_low, self.or10_high, 1.0)
        return {"grows": "faster", "falls": "slower"}.get(word, "cannot tell")

    @property
    def pattern(self) -> str:
        """From the steps, Holm-adjusted among themselves: 'not monotone' (two resolved in
        opposite directions), 'slower', 'faster' (every resolved step one way, at least
        one), or 'not resolved'."""
        if self.steps.empty:
            return "not resolved"
        resolved = self.steps[self.steps["p_holm"] < ALPHA]
        later, sooner = (resolved["theta"] > 0.5).any(), (resolved["theta"] < 0.5).any()
        if later and sooner:
            return "not monotone"
        return "slower" if later else "faster" if sooner else "not resolved"


def step_comparisons(rec: pd.DataFrame) -> pd.DataFrame:
    """Each max_freq against the one before: the win probability θ of a later escape at the
    larger max_freq, over the pair's common budget, with its interval and p (HazardModel.steps
    has the columns)."""
    rows = []
    for before, after in itertools.pairwise(sorted({int(m) for m in rec["max_freq"]})):
        pair = rec[rec["max_freq"].isin((before, after))]
        budget = float(pair["budget"].min())  # both followed to it
        seen = np.where(pair["escaped_by"] <= budget, pair["escaped_by"], np.inf)
        a, b = seen[pair["max_freq"] == before], seen[pair["max_freq"] == after]
        theta, low, high, p = win_probability(a, b)
        rows.append(
            {"previous": before, "max_freq": after, "budget": budget, "theta": theta,
             "low": low, "high": high, "p": p}
        )  # fmt: skip
    table = pd.DataFrame(rows)
    table["p_holm"] = multipletests(table["p"], method="holm")[1] if rows else []
    return table


def shape_p(stat: float, df: int, events: int, groups: int) -> float:
    """The likelihood ratio of categories against one rate, referred to F(df, events −
    groups) as stat/df: χ²(df) rejected a true single rate in 6.3% of studies at 16 runs a
    max_freq (1,000 simulated, docs/coverage.md), the F reference keeps it near 5%."""
    if not df:
        return math.nan
    return float(sps.f.sf(stat / df, df, max(events - groups, 1)))


def hazard_model(rec: pd.DataFrame) -> HazardModel:
    """Escape vs max_freq over one setting's well-posed runs (module docstring)."""
    max_freqs = tuple(sorted({int(m) for m in rec["max_freq"]}))
    base = {"runs": len(rec), "events": int(rec["event"].sum()), "max_freqs": max_freqs}
    if len(max_freqs) < 2:
        return HazardModel(**base, reason="one max_freq")
    if base["events"] == 0:
        return HazardModel(**base, reason="no escapes")
    sets = risk_sets(rec)
    trend, top = _maximise(lambda b: conditional_loglike(sets, _trend_eta(sets, b)), np.zeros(1))
    _, cat_top = _maximise(
        lambda b: conditional_loglike(sets, _category_eta(sets, b)), np.zeros(len(max_freqs) - 1)
    )
    shape_df = len(max_freqs) - 2
    stat = max(0.0, 2 * (cat_top - top)) if shape_df else math.nan
    low, high, p = _profile_trend(sets, float(trend[0]), top)
    table = step_comparisons(rec)
    return HazardModel(
        **base,
        method="conditional",
        shape_stat=stat,
        shape_df=shape_df,
        shape_p=shape_p(stat, shape_df, base["events"], len(max_freqs)),
        or10=math.exp(trend[0]),
        or10_low=math.exp(low),
        or10_high=math.exp(high),
        or10_p=p,
        steps=table,
    )


# --- late escapes and the stopping rule ------------------------------------------------------


@dataclass(frozen=True)
class Late:
    """Of `runs` still on the plateau at `start` updates, `escaped` left it by `budget`."""

    start: float
    budget: float
    runs: int
    escaped: int
    low: float = math.nan
    high: float = math.nan

    @property
    def rate(self) -> float:
        return self.escaped / self.runs if self.runs else math.nan


def late_escapes(rec: pd.DataFrame, budget: float, fraction: float) -> Late:
    """Late escapes from `fraction` of the common budget to the budget (well-posed runs)."""
    start = fraction * budget
    still = rec["escaped_by"].to_numpy(float) > start
    n = int(still.sum())
    k = n - int(np.sum(rec["escaped_by"].to_numpy(float) > budget))
    low, high = clopper_pearson(k, n)
    return Late(start, budget, n, k, float(low), float(high))


@dataclass(frozen=True)
class RuleCheck:
    """The stopping rule applied to full-budget runs' histories. A run the rule would have
    stopped (confirmed off the plateau before its budget) and that ended diverged all the same
    *relapsed*: a stopped study counts it as not diverged. `table` has one row per max_freq:
    runs, stopped, relapsed (with its 95% Clopper–Pearson `low`, `high` among the stopped),
    `never` (runs never confirmed off the plateau: what a stopped study counts as diverged)
    and `diverged` (at the budget: never + relapsed)."""

    table: pd.DataFrame = field(repr=False)

    @property
    def runs(self) -> int:  # full-budget runs with a history
        return int(self.table["runs"].sum())

    @property
    def stopped(self) -> int:  # … that the rule would have stopped before their budget
        return int(self.table["stopped"].sum())

    @property
    def diverged(self) -> int:  # … of which ended diverged (relapsed)
        return int(self.table["relapsed"].sum())

    @property
    def low(self) -> float:  # Clopper–Pearson 95% of diverged / stopped
        return float(clopper_pearson(self.diverged, self.stopped)[0])

    @property
    def high(self) -> float:
        return float(clopper_pearson(self.diverged, self.stopped)[1])


def rule_check(
    part: pd.DataFrame, histories: dict[str, tuple[np.ndarray, np.ndarray]] | None
) -> RuleCheck | None:
    """None without histories or full-budget runs."""
    if not histories:
        return None
    done = part[(part["status"] == "FINISHED") & part["optimizer_steps"].notna()]
    if "stop_on_escape" in done:  # runs that could not have been stopped (older runs: NaN)
        done = done[~done["stop_on_escape"].astype("boolean").fillna(False).to_numpy(bool)]
    rows = []
    for max_freq, run_id, ended, ratio in zip(
        done["max_freq"], done["run_id"], diverged_of(done), done["divergence_ratio"],
        strict=True,
    ):  # fmt: skip
        if run_id not in histories:
            continue
        _steps, values = histories[run_id]
        at = progress.first_confirmed(values, float(ratio))
        stopped = at is not None and at < len(values) - 1
        rows.append((int(max_freq), stopped, stopped and bool(ended), bool(ended)))
    if not rows:
        return None
    flags = pd.DataFrame(rows, columns=["max_freq", "stopped", "relapsed", "diverged"])
    table = flags.groupby("max_freq", sort=True).agg(
        runs=("stopped", "size"), stopped=("stopped", "sum"), relapsed=("relapsed", "sum"),
        diverged=("diverged", "sum"),
    ).reset_index()  # fmt: skip
    table = table.astype(int)
    table["never"] = table["runs"] - table["stopped"]
    low, high = clopper_pearson(table["relapsed"].to_numpy(), table["stopped"].to_numpy())
    table["low"], table["high"] = low.astype(float), high.astype(float)
    return RuleCheck(table)


# --- per setting -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Escape:
    setting: dict[str, Any]
    budget: float  # the common budget (updates) every run of the setting reached
    table: pd.DataFrame = field(repr=False)  # one row per max_freq (columns: see `per_max_freq`)
    curves: dict[int, tuple[pd.DataFrame, pd.DataFrame]] = field(repr=False)  # updates, epochs
    model: HazardModel
    at_budget: trends.DivergenceTrend  # "still on the plateau at the budget" vs max_freq
    late: tuple[Late, ...] = ()  # from a quarter and from half of the budget
    rule: RuleCheck | None = None
    aliased: tuple[int, ...] = ()  # max_freqs in the table and curves, not in the fits
    # is "still on the plateau at the budget" one log-linear trend at all (None: < 3 max_freqs)
    at_budget_shape: trends.DivergenceShape | None = None
    outcome: Outcome = DIVERGED  # what the study's count at the budget measures
    reference: "Reference | None" = None  # equal-update studies read at 200 epochs


@dataclass(frozen=True)
class Reference:
    """An equal-update study read at each max_freq's own REFERENCE_EPOCHS point."""

    epochs: int
    # max_freq, update (epochs × its updates per epoch), runs, not_learned (k), low, high
    # (Clopper–Pearson 95%), at_budget (the study's own count at its budget)
    table: pd.DataFrame = field(repr=False)
    trend: trends.DivergenceTrend  # not yet learned vs max_freq within REFERENCE_RANGE
    shape: trends.DivergenceShape | None  # … over every max_freq (None: fewer than 3)


def reference_reading(rec: pd.DataFrame, epochs: int = REFERENCE_EPOCHS) -> Reference | None:
    """The reference reading of records() of one setting's well-posed runs; None unless the
    study gives every max_freq more updates than its reference point (train_steps)."""
    if rec.empty:
        return None
    per_epoch = (rec["time"] / rec["epochs"]).to_numpy(float)
    point = epochs * np.round(per_epoch)
    if not np.all(rec["budget"].to_numpy(float) > point):
        return None
    reading = rec.assign(point=point, not_learned=rec["escaped_by"].to_numpy(float) > point)
    rows = []
    for m, g in reading.groupby("max_freq", sort=True):
        k, n = int(g["not_learned"].sum()), len(g)
        low, high = clopper_pearson(k, n)
        rows.append({"max_freq": int(m), "update": int(g["point"].iloc[0]), "runs": n,
                     "not_learned": k, "low": float(low), "high": float(high),
                     "at_budget": int(g["diverged"].sum())})  # fmt: skip
    frame = pd.DataFrame(
        {"status": "FINISHED", "max_freq": reading["max_freq"], "diverged": reading["not_learned"]}
    )
    lo, hi = REFERENCE_RANGE
    inside = frame[(frame["max_freq"] >= lo) & (frame["max_freq"] <= hi)]
    return Reference(
        epochs, pd.DataFrame(rows), trends.divergence_trend(inside), trends.divergence_shape(frame)
    )


MODE_COLUMNS = tuple(f"mode_{m}" for m in names.FAILURE_MODES)


def _at(curve: pd.DataFrame, when: float) -> int:
    """Runs still on the plateau at `when` updates (the last check at or before it)."""
    return int(curve.loc[curve["time"] <= when, "still"].iloc[-1])


def per_max_freq(rec: pd.DataFrame, budget: float, curves: dict) -> pd.DataFrame:
    rows = []
    for max_freq, group in rec.groupby("max_freq", sort=True):
        n = len(group)
        curve = curves[int(max_freq)][0]
        median = median_escape(curve)
        per_epoch = float(np.median(group["time"] / group["epochs"]))
        counts = {
            "plateau_quarter": _at(curve, budget / 4),
            "plateau_half": _at(curve, budget / 2),
            "plateau_budget": _at(curve, budget),
        }
        modes = group.loc[group["diverged"], "failure_mode"]
        row = {
            "max_freq": int(max_freq),
            "runs": n,
            "escaped": int(group["event"].sum()),
            "stopped": int(group["stopped"].sum()),
            "median_steps": median.value,
            "median_low": median.low,
            "median_high": median.high,
            "median_after": median.after,
            "followed_to": median.budget,  # this max_freq's own budget (epochs: more at larger)
            "median_epochs": median.value / per_epoch,
            "steps_per_epoch": per_epoch,
        }
        for name, k in counts.items():
            low, high = clopper_pearson(k, n)
            row |= {name: k, f"{name}_low": float(low), f"{name}_high": float(high)}
        rows.append(
            {
                **row,
                "late_escapes": counts["plateau_quarter"] - counts["plateau_budget"],
                "diverged_end": int(group["diverged"].sum()),
                **{f"mode_{m}": int((modes == m).sum()) for m in names.FAILURE_MODES},
                "mode_unknown": int(modes.isna().sum()),
            }
        )
    return pd.DataFrame(rows)


def fit(
    runs: pd.DataFrame, histories: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
) -> list[Escape]:
    """The time-to-escape analysis per setting; [] when no run carries progress data.
    `histories` (run id → mae_ratio_train steps and values) adds the stopping rule's check."""
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
        curves = {}
        for m, g in rec.groupby("max_freq", sort=True):
            curve = plateau_curve(g)
            per_epoch = float(np.median(g["time"] / g["epochs"]))
            curves[int(m)] = (curve, curve.assign(time=curve["time"] / per_epoch))
        on_plateau = pd.DataFrame(
            {
                "status": "FINISHED",
                "max_freq": fitted["max_freq"],
                "diverged": fitted["escaped_by"] > budget,
            }
        )
        at_budget = trends.divergence_trend(on_plateau)
        out.append(
            Escape(
                setting,
                budget,
                per_max_freq(rec, budget, curves),
                curves,
                hazard_model(fitted),
                at_budget,
                tuple(late_escapes(fitted, budget, f) for f in LATE_FROM),
                rule_check(part, histories),
                aliased,
                trends.divergence_shape(on_plateau),
                outcome_of(part),
                reference_reading(fitted),
            )
        )
    return out


def metrics(escapes: list[Escape]) -> dict[str, float]:
    """The key numbers as one flat dict of floats (names in the module docstring)."""
    out = {}
    for e in escapes:
        suffix = setting_suffix(e.setting)
        m = e.model
        out |= {
            f"escape_shape_p{suffix}": m.shape_p,
            f"escape_or10{suffix}": m.or10,
            f"escape_or10_low{suffix}": m.or10_low,
            f"escape_or10_high{suffix}": m.or10_high,
            f"escape_or10_p{suffix}": m.or10_p,
            f"escape_runs{suffix}": float(m.runs),
            f"escape_events{suffix}": float(m.events),
            f"escape_budget{suffix}": e.budget,
        }
        for row in m.steps.itertuples(index=False):
            key = f"escape_step_theta{suffix}/max_freq_{row.max_freq}"
            out |= {key: row.theta, f"{key}_low": row.low, f"{key}_high": row.high,
                    f"{key}_p": row.p}  # fmt: skip
        for row in e.table.itertuples(index=False):
            key = f"plateau_at_budget{suffix}/max_freq_{row.max_freq}"
            out[key] = row.plateau_budget / row.runs
            out[f"{key}_low"] = row.plateau_budget_low
            out[f"{key}_high"] = row.plateau_budget_high
            key = f"median_escape{suffix}/max_freq_{row.max_freq}"
            out |= {key: row.median_steps, f"{key}_low": row.median_low,
                    f"{key}_high": row.median_high}  # fmt: skip
        for late in e.late:
            key = f"late_escapes{suffix}/from_{late.start:.0f}"
            out |= {key: late.rate, f"{key}_low": late.low, f"{key}_high": late.high,
                    f"{key}_runs": float(late.runs)}  # fmt: skip
        if e.rule is not None:
            out[f"stop_rule_runs{suffix}"] = float(e.rule.stopped)
            out[f"stop_rule_diverged{suffix}"] = float(e.rule.diverged)
            out[f"stop_rule_diverged_low{suffix}"] = e.rule.low
            out[f"stop_rule_diverged_high{suffix}"] = e.rule.high
            for row in e.rule.table.itertuples(index=False):
                key = f"stop_rule_relapsed{suffix}/max_freq_{row.max_freq}"
                out |= {key: row.relapsed / row.stopped if row.stopped else math.nan,
                        f"{key}_low": row.low, f"{key}_high": row.high,
                        f"{key}_runs": float(row.stopped)}  # fmt: skip
                out[f"never_confirmed{suffix}/max_freq_{row.max_freq}"] = row.never / row.runs
        if (r := e.reference) is not None:
            for row in r.table.itertuples(index=False):
                key = f"not_learned_at_reference{suffix}/max_freq_{row.max_freq}"
                out |= {key: row.not_learned / row.runs, f"{key}_low": row.low,
                        f"{key}_high": row.high}  # fmt: skip
            out |= {
                f"reference_trend_or10{suffix}": r.trend.or10,
                f"reference_trend_or10_low{suffix}": r.trend.or10_low,
                f"reference_trend_or10_high{suffix}": r.trend.or10_high,
                f"reference_trend_or10_p{suffix}": r.trend.p,
            }
            if r.shape is not None:
                out[f"reference_shape_p{suffix}"] = r.shape.p
                out[f"reference_rise_fall_p{suffix}"] = r.shape.rise_fall_p
    return {k: float(v) for k, v in out.items()}
