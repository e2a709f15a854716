"""Every sentence and table of the report, written from the fits' results objects in one
place, with one number formatter (`fmt`).

Rules of the wording:
- a verdict follows its two-sided 95% interval: "grows" / "falls" when it excludes no effect,
  else "not resolved", with the interval's ends ("the odds ratio lies between X and Y") —
  never "no effect";
- every p-value is two-sided and printed beside its Holm-adjusted value over the report's
  family of tests (`Family`: every verdict of the report that carries a p-value), and a
  verdict whose adjusted p-value is not below 5% says so;
- divergence and the error of the runs that learned are two outcomes, stated apart;
- equivalence is claimed only by a test of it against a stated margin (backends.py).
"""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis import backends, escape, factors, stats, trends
from analysis import family as family_words
from analysis.family import ALPHA, Family
from analysis.settings import (
    DIVERGED,
    GRID_AXES,
    NEVER_LEARNED,
    Outcome,
    declared_axes,
    label,
    outcome_of,
    stopped_of,
    value_text,
    varying_params,
)
from pipeline import names
from pipeline.config import DataConfig

PER = trends.PER


def fmt(value: float | int | None) -> str:
    """The one number format: 3 significant digits, '–' for a missing value, '∞' for inf."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{value:.3g}"


def ci(value: float, low: float, high: float) -> str:
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"


def p_text(p: float) -> str:
    return "–" if p is None or math.isnan(p) else "< 0.001" if p < 0.001 else f"{p:.2g}"


def count(k: float, n: float, low: float, high: float) -> str:
    return f"{int(k)}/{int(n)} [{fmt(low)}, {fmt(high)}]"


def sentence_case(text: str) -> str:
    return text[0].upper() + text[1:] if text else text


# --- the family's words ------------------------------------------------------------------------


def tests_text(family: Family, key: tuple) -> str:
    """'test 3': where the report's table of tests gives its p-value and Holm's adjustment
    (p-values appear there, once, not in the sentences)."""
    if key not in family.raw:
        return "no p-value"
    return f"[test {family.number(key)}](#tests)"


def tests_table(family: Family, outcome: Outcome = DIVERGED) -> pd.DataFrame:
    """Every test of the report: its number, what it tests, the setting, the two-sided p and
    Holm's adjustment over all of them."""
    rows = []
    for key, p in family.raw.items():
        text, setting = family_words.what(key, outcome.title.lower())
        rows.append(
            {
                "test": family.number(key),
                "what it tests": text,
                "setting": setting or "all runs",
                "p": p_text(p),
                "Holm p": p_text(family.holm(key)),
            }
        )
    return pd.DataFrame(rows)


def caveat(family: Family, key: tuple, significant: bool) -> str:
    """For a verdict that rests on an interval excluding no effect: a warning when it does
    not survive the adjustment."""
    if significant and family.holm(key) >= ALPHA:
        return " (only before Holm's adjustment over the report's tests)"
    return ""


# --- findings ---------------------------------------------------------------------------------


def freqs(values: tuple[int, ...]) -> str:
    return ", ".join(map(str, values))


FIRTH_REASONS = {
    "separation": "separation: a max_freq threshold splits the counted runs from the others",
    "few events": f"fewer than {trends.logistic.MIN_EVENTS} runs counted, or not counted",
    "no convergence": "the maximum-likelihood fit did not converge",
}
NO_FIT = {
    "no runs": "no finished runs",
    "one max_freq": "a single max_freq: no trend to fit",
    "no learned runs": "no run that learned has a final error (each ended on the plateau, or "
    "was stopped at its escape by stop_on_escape, where its error is not the budget's)",
}


def placed(max_freqs: tuple[int, ...], at: tuple[int, ...]) -> str:
    """Where the counted runs fall: ': 1 at 20, 2 at 40' ('' when none, or not known)."""
    parts = [f"{k} at {m}" for m, k in zip(max_freqs, at, strict=False) if k]
    return f": {', '.join(parts)}" if parts else ""


def divergence_finding(
    d: trends.DivergenceTrend, family: Family, key: tuple, outcome: Outcome = DIVERGED
) -> str:
    o = outcome
    counted = f"{d.events} of {d.runs} finished runs {o.counted}{placed(d.max_freqs, d.at)}"
    if d.runs == 0:
        return f"**{o.title}**: no finished runs."
    if d.reason == "no events":
        upper = stats.wilson_interval(0, d.runs)[1]
        return (
            f"**{o.none}**: {counted}; the rate is below {upper:.0%} with 95% "
            "confidence (Wilson). No odds ratio: there is no trend to fit."
        )
    if d.reason == "only events":
        lower = stats.wilson_interval(d.runs, d.runs)[0]
        return (
            f"**{o.every}**: {counted}; the rate is above {lower:.0%} with 95% "
            "confidence (Wilson). No odds ratio: there is no trend to fit."
        )
    if not d.method:
        return f"**{o.title}**: {counted}; {NO_FIT.get(d.reason, d.reason)}."
    how = "logistic regression, Wald interval"
    if d.method == "firth":
        how = (
            f"[Firth](METHODS#firth) logistic regression ({FIRTH_REASONS.get(d.reason, d.reason)}"
            "), profile-likelihood interval"
        )
    interval = f"95% CI {fmt(d.or10_low)} to {fmt(d.or10_high)}"
    tests = tests_text(family, key)
    if d.verdict == "cannot tell":
        return (
            f"**{o.title} vs max_freq: not resolved**: the odds of {o.odds} change by a "
            f"factor between {fmt(d.or10_low)} and {fmt(d.or10_high)} per +{PER} max_freq "
            f"(estimate {fmt(d.or10)}; {tests}); {counted}; {how}."
        )
    word = "grows" if d.verdict == "grows" else "falls"
    warning = caveat(family, key, True)
    return (
        f"**{o.title} {word} with max_freq**{warning}: the odds of {o.odds} multiply by "
        f"{fmt(d.or10)} per +{PER} max_freq ({interval}; {tests}); {counted}; {how}."
    )


def signed(value: float) -> str:
    return f"+{fmt(value)}" if value > 0 else fmt(value)


def rise_fall_text(c, family: Family, key: tuple) -> str:
    """The pre-specified rise-then-fall test (analysis/curvature.py) in words."""
    if c is None:
        return ""
    holm = family.holm(key)
    del holm  # in the table of tests
    curve = (
        f"a quadratic term in max_freq, {fmt(c.curvature)} per ({PER} max_freq)² (95% CI "
        f"{fmt(c.curvature_low)} to {fmt(c.curvature_high)}; one-sided, against one trend: "
        f"{tests_text(family, key)})"
    )
    if c.rises_then_falls:
        peak = f", the fitted curve peaking near max_freq {c.peak:.0f}" if c.peak == c.peak else ""
        return (
            f"**it rises and then falls**{caveat(family, key, True)}: {curve}{peak} (a point "
            "estimate, no interval)"
        )
    return f"a rise then a fall is not resolved: {curve}"


def shape_finding(t: trends.Trends, family: Family, name: str, outcome: Outcome = DIVERGED) -> str:
    """Is the rate one log-linear trend, does it rise and then fall, which way do the steps
    go, is any max_freq a peak, and where is it highest: the finding when one trend does not
    fit."""
    sh = t.shape
    c = sh.tests
    reference = (
        f"[bootstrap](METHODS#shape-tests), {c.replicates} studies: "
        f"{tests_text(family, ('divergence_shape', name))}"
        if c is not None
        else "no test"
    )
    test = (
        f"deviance {fmt(sh.lack_of_fit)} on {sh.df} df against a level per max_freq, {reference}"
    )
    title = outcome.title
    if sh.p < ALPHA:
        head = (
            f"**{title} vs max_freq is not one log-linear trend** ({test}), so no odds ratio "
            f"per +{PER} is given; the rates are read per max_freq"
        )
    else:
        head = (
            f"**The shape of {title[0].lower() + title[1:]} vs max_freq**: one log-linear "
            f"trend is not rejected ({test}; not rejecting it does not show it)"
        )
    rates = ", ".join(
        f"{k}/{n} at {m}" for m, n, k in zip(sh.max_freqs, sh.runs, sh.diverged, strict=True)
    )
    steps = "; ".join(
        f"{r.max_freq} vs {r.previous}: {signed(r.diff)} (95% CI {fmt(r.low)} to {fmt(r.high)}; "
        f"{tests_text(family, ('divergence_step', name, r.max_freq))})"
        for r in sh.steps.itertuples(index=False)
    )
    pattern = {
        "not monotone": "two steps are resolved in opposite directions",
        "rises": "every resolved step is a rise",
        "falls": "every resolved step is a fall",
        "not resolved": "no step is resolved",
    }[sh.pattern]
    peaks = (
        f"a peak at max_freq {freqs(sh.peaks)}, resolved above both neighbours"
        if sh.peaks
        else "no max_freq is resolved above both neighbours"
    )
    top = ", ".join(map(str, sh.highest))
    lower = [m for m in sh.max_freqs if m not in sh.not_below_highest]
    highest = f"the highest rate is at max_freq {top}"
    if lower:
        highest += f", resolved above {freqs(tuple(lower))}"
    bend = rise_fall_text(c, family, ("rise_fall", name))
    return (
        f"{head}. {sentence_case(outcome.column)}: {rates}. "
        + (f"Shape: {bend}. " if bend else "")
        + f"Each max_freq against the one before ([Newcombe](METHODS#newcombe)): {steps}. "
        f"After Holm's adjustment among these steps, {pattern}; {peaks}; {highest}."
    )


def error_finding(e: trends.ErrorTrend, family: Family, key: tuple) -> str:
    runs = f"{e.runs} runs that learned (finished, off the plateau at the end)"
    if math.isnan(e.exponent):
        return f"**Error of the runs that learned**: {NO_FIT.get(e.reason, e.reason)} ({runs})."
    freq_text = f"max_freq {freqs(e.max_freqs)}"
    if e.reason == "one run each":
        return (
            f"**Error of the runs that learned**: typical test MAE ∝ max_freq^{e.exponent:.2f} "
            f"({runs}, {freq_text}); one run per max_freq: no interval."
        )
    interval = f"95% CI {e.low:.2f} to {e.high:.2f}"
    singles = ""
    if e.singles:
        singles = (
            f" max_freq {freqs(e.singles)} has one run: its variance is the pooled variance "
            "of the others."
        )
    how = f"[log–log least squares](METHODS#error-trend); {e.runs} runs that learned"
    if e.verdict == "cannot tell":
        return (
            f"**Error of the runs that learned vs max_freq: not resolved**: the exponent b in "
            f"test MAE ∝ max_freq^b lies between {e.low:.2f} and {e.high:.2f} (estimate "
            f"{e.exponent:.2f}; {tests_text(family, key)}; {how}).{singles}"
        )
    word = "grows" if e.verdict == "grows" else "falls"
    return (
        f"**The error of the runs that learned {word} with max_freq**"
        f"{caveat(family, key, True)}: typical (geometric-mean) test MAE ∝ "
        f"max_freq^{e.exponent:.2f} ({interval}; {tests_text(family, key)}; {how}).{singles}"
    )


def seeds_finding(t: trends.Trends) -> str | None:
    a, d = t.seeds, t.divergence
    if math.isnan(a.seeds):
        return None
    at = f"more than {trends.SEED_CAP}" if math.isinf(a.seeds) else f"about {a.seeds:.0f}"
    head = (
        f"**[Seeds](METHODS#seeds)**: at the fitted trend (odds ×{fmt(d.or10)} per +{PER}), "
        f"{at} seeds per max_freq resolve it in {a.power:.0%} of simulated repeats"
    )
    if math.isinf(a.weak):
        span = (
            "no number does where its interval reaches no effect"
            if math.isinf(a.strong) or a.strong == a.seeds
            else f"{a.strong:.0f} at its interval's strong end, none at the other (no effect)"
        )
    else:
        span = f"{a.strong:.0f} to {a.weak:.0f} over its interval"
    own = (
        f"; this study's {a.current:.3g} do in {a.current_power:.0%}"
        if not math.isnan(a.current_power)
        else f"; this study has {a.current:.3g}"
    )
    return f"{head}; {span}{own}."


def aliased(runs: pd.DataFrame) -> str | None:
    notes = []
    for steps, part in runs.groupby("time_steps"):
        over = sorted({int(m) for m in part["max_freq"] if DataConfig(int(m), int(steps)).aliased})
        if over:
            limit = DataConfig(time_steps=int(steps)).aliasing_limit
            notes.append(f"max_freq {freqs(tuple(over))} (time_steps={steps}, limit {limit:g})")
    if not notes:
        return None
    return (
        f"**Aliasing**: at {'; '.join(notes)} the highest frequency max_freq − 1 reaches the "
        "aliasing limit (time_steps − 1)/2, where the task is ill-posed: the tables and figures "
        "show those runs, the trend fits leave them out."
    )


def stopped_note(runs: pd.DataFrame) -> str | None:
    """What the count of a study that stops runs at a confirmed escape measures."""
    if outcome_of(runs) is not NEVER_LEARNED:
        return None
    done = runs[runs["status"] == "FINISHED"]
    stopped = int(stopped_of(done).sum())
    return (
        f"**Outcome: never learned within the budget**: {stopped} of the {len(done)} finished "
        "runs were stopped once confirmed off the plateau (stop_on_escape), so this study does "
        "not see the end of training: it counts the runs never confirmed off the plateau "
        "within the budget, not divergence. A run can learn and fall back onto the plateau "
        "before its budget (a relapse, measured on full-budget runs: `make relapse`), so "
        "divergence at the budget is at least this count."
    )


def findings(
    fits: list[trends.Trends], runs: pd.DataFrame, family: Family
) -> list[tuple[str, list[str]]]:
    """Sections of sentences: ('', general) first, then one per setting (titled by its label
    when parameters vary, else untitled)."""
    general = []
    varying = varying_params(runs)
    declared = declared_axes(runs)

    def values(names: list[str]) -> str:
        return "; ".join(
            f"{p} ({', '.join(sorted({value_text(v) for v in runs[p]}))})" for p in names
        )

    if axes := [p for p in varying if p in declared]:
        general.append(f"**Grid axes {values(axes)}**: each setting is fitted on its own.")
    if others := [p for p in varying if p not in declared]:
        swept = ", ".join([*GRID_AXES, *declared])
        general.append(
            f"**Runs differ in {values(others)}**, which is not a declared grid axis (the sweep "
            f"varied {swept}): runs are grouped by it and each setting is reported separately."
        )
    if "time_steps" in runs and (note := aliased(runs)):
        general.append(note)
    if note := stopped_note(runs):
        general.append(note)
    sections = [("", general)] if general else []
    outcome = outcome_of(runs)
    for t in fits:
        name = label(t.setting)
        one_trend = t.shape is None or not t.shape.p < ALPHA
        lines = (
            [divergence_finding(t.divergence, family, ("divergence", name), outcome)]
            if one_trend
            else []
        )
        if t.shape is not None and t.shape.tests is not None:  # no events: nothing to shape
            lines.append(shape_finding(t, family, name, outcome))
        lines.append(error_finding(t.error, family, ("error", name)))
        lines += [s for s in [seeds_finding(t)] if s and one_trend]
        if t.aliased:
            lines.append(
                f"**Left out of these fits**: max_freq {freqs(t.aliased)}, aliased (the table "
                "and figures show them)."
            )
        sections.append((name if varying else "", lines))
    return sections


def glance(fits: list[trends.Trends], runs: pd.DataFrame, family: Family) -> list[str]:
    """One short line per question and setting: the verdict in plain words, one number with
    its interval, and where the runs fall; the details follow in the findings. A verdict that
    does not hold after Holm's adjustment says so."""
    outcome = outcome_of(runs)
    varying = bool(varying_params(runs))
    lines = []

    def holds(key: tuple) -> str:
        return "" if family.holm(key) < ALPHA else " (only before Holm's adjustment)"

    for t in fits:
        name = label(t.setting)
        where = f" ({name})" if varying else ""
        d, sh = t.divergence, t.shape
        counted = f"{d.events} of {d.runs} {outcome.counted}{placed(d.max_freqs, d.at)}"
        if d.runs == 0:
            verdict = "no finished runs"
        elif sh is not None and sh.p < ALPHA:
            top = ", ".join(map(str, sh.highest))
            verdict = (
                f"not one trend{holds(('divergence_shape', name))}, highest at max_freq {top}"
            )
            if sh.tests is not None and sh.tests.rises_then_falls:
                verdict = (
                    f"rises, then falls{holds(('rise_fall', name))}; highest at max_freq {top}"
                )
        elif d.method and d.verdict != "cannot tell":
            word = "grows" if d.verdict == "grows" else "falls"
            verdict = (
                f"{word} with max_freq{holds(('divergence', name))}, odds ×{fmt(d.or10)} per "
                f"+{PER} [{fmt(d.or10_low)}, {fmt(d.or10_high)}]"
            )
        elif d.method:
            verdict = (
                f"not resolved, odds ×{fmt(d.or10)} per +{PER} "
                f"[{fmt(d.or10_low)}, {fmt(d.or10_high)}]"
            )
        else:
            verdict = NO_FIT.get(d.reason, {"no events": "none", "only events": "all"}.get(
                d.reason, d.reason))  # fmt: skip
        lines.append(f"**{outcome.title}{where}: {verdict}**; {counted}.")
        e = t.error
        if math.isnan(e.exponent):
            error = NO_FIT.get(e.reason, e.reason)
        else:
            word = {"grows": "grows", "falls": "falls"}.get(e.verdict, "not resolved")
            if word != "not resolved":
                word += holds(("error", name))
            error = f"{word}, ∝ max_freq^{e.exponent:.2f}"
            if not math.isnan(e.low):
                error += f" [{e.low:.2f}, {e.high:.2f}]"
        lines.append(f"**Error of the runs that learned{where}: {error}**; {e.runs} runs.")
    return lines


# --- sections ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """A report section: paragraphs and bullets (**bold** marks emphasis), then tables."""

    title: str
    paragraphs: list[str]
    bullets: list[str]
    table: pd.DataFrame
    tables: tuple[tuple[str, pd.DataFrame], ...] = ()  # more, each under a caption


def _suppressed(e: factors.FactorEffects, outcome: str) -> bool:
    """Whether the cells, not main effects, describe `outcome`."""
    return bool(e.cells_instead(outcome))


def _effect_part(row, e: factors.FactorEffects, family: Family, outcome: str) -> str:
    numeric = row["level"].startswith("per +")
    per = f" per +{PER} max_freq" if numeric else ""
    if outcome == "mae_ratio":
        key, value, low, high = (
            ("factor_median", row["key"]),
            *row[["median_effect", "median_low", "median_high"]],
        )
        what, null = "the learned runs' median mae_ratio_test", 0.0
        if _suppressed(e, outcome):
            return f"{what}: see the cells ({CELLS_WHY[e.cells_instead(outcome)]})"
        if math.isnan(value):
            return f"{what}: no estimate (a level without runs that learned)"
        if math.isnan(low):
            return f"{what} differs by {fmt(value)}{per} (no interval: one run per cell)"
        if stats.verdict(low, high, null) in ("grows", "falls"):
            how = "higher" if low > null else "lower"
            return (
                f"{what} is {fmt(abs(value))} {how}{per}{caveat(family, key, True)} (95% CI "
                f"{fmt(low)} to {fmt(high)}; {tests_text(family, key)})"
            )
        return (
            f"{what}: not resolved, the difference lies between {fmt(low)} and {fmt(high)}{per} "
            f"(estimate {fmt(value)}; {tests_text(family, key)})"
        )
    key, value, low, high = ("factor_or", row["key"]), *row[["odds_ratio", "or_low", "or_high"]]
    if _suppressed(e, outcome):
        return f"divergence: see the cells ({CELLS_WHY[e.cells_instead(outcome)]})"
    if math.isnan(value):
        return f"divergence: {DIVERGENCE_NO_FIT.get(e.divergence.reason, e.divergence.reason)}"
    if stats.verdict(low, high, 1.0) in ("grows", "falls"):
        return (
            f"the odds of diverging multiply by {fmt(value)}{per}{caveat(family, key, True)} "
            f"(95% CI {fmt(low)} to {fmt(high)}; {tests_text(family, key)})"
        )
    return (
        f"divergence: not resolved, the odds ratio lies between {fmt(low)} and {fmt(high)}{per} "
        f"(estimate {fmt(value)}; {tests_text(family, key)})"
    )


CELLS_WHY = {
    "interaction": "additivity rejected",
    "separation": "separated: no finite odds ratio",
}
DIVERGENCE_NO_FIT = {
    "no events": "no divergence observed: nothing to fit",
    "only events": "every finished run diverged: nothing to fit",
}


def effect_sentence(row: pd.Series, e: factors.FactorEffects, family: Family) -> str:
    """One factor level's effects in words, the two outcomes apart."""
    numeric = row["level"].startswith("per +")
    head = f"**{row['factor']}, {row['level']}**"
    if not numeric:
        head = (
            f"**{row['factor']}={row['level']} vs {row['reference']}** ({row['runs']} runs, "
            f"{row['events']} diverged, {row['learned']} learned)"
        )
    if not row["estimable"]:
        return f"{head}: confounded with other factors: not estimable."
    parts = [_effect_part(row, e, family, "divergence"), _effect_part(row, e, family, "mae_ratio")]
    return f"{head}: {'; '.join(parts)}."


def _additivity_sentence(e: factors.FactorEffects, family: Family) -> list[str]:
    out = []
    names = {"divergence": "divergence", "mae_ratio": "the learned runs' median mae_ratio_test"}
    for outcome, what in names.items():
        test = e.additivity.get(outcome)
        key = ("additivity", outcome)
        stat = (
            f"{test.test} statistic {fmt(test.statistic)} on {test.df} df; "
            f"{tests_text(family, key)}"
            if test is not None
            else ""
        )
        if e.cells_instead(outcome) == "separation":
            where = e.cells[e.cells["diverged"] > 0]
            out.append(
                f"**Divergence is confined to {len(where)} of the {len(e.cells)} cells** (the "
                "cells below): the factors separate diverged from other runs, so the additive "
                "model's odds ratios are infinite, Firth's finite ones are set by its penalty "
                "rather than by the data, and no test on the logit scale can tell a corner from "
                f"additive effects ({stat}). Read the cells' rates, not main-effect odds ratios."
            )
            continue
        if test is None:
            if outcome == "mae_ratio" and e.cells is not None:
                out.append(
                    f"**Additivity of {what}**: not testable, a cell has no run that learned; "
                    "the main effects below assume it."
                )
            continue
        if test.rejected:
            out.append(
                f"**The factors interact for {what}**{caveat(family, key, True)}: additivity is "
                f"rejected ({stat}), so main effects would misstate them; read the cells "
                "below instead."
            )
        else:
            out.append(
                f"**Additivity of {what} is not rejected** ({stat}); the main effects below "
                "assume it (not rejecting it does not show it)."
            )
    return out


def effects_section(e: factors.FactorEffects, family: Family) -> Section:
    def described(f: factors.Factor) -> str:
        if f.numeric:
            return f"{f.name} (numeric, per +{PER})"
        levels = ", ".join(value_text(v) for v in f.levels)
        return f"{f.name} ({levels} vs reference {value_text(f.reference)})"

    notes = [f"one value of {name} among FINISHED runs: left out" for name in e.left_out]
    if e.confounded:
        notes.append(f"confounded with other factors, not estimable: {', '.join(e.confounded)}")
    if e.table.empty:
        text = " ".join(f"{sentence_case(n)}." for n in notes)
        return Section(e.title, [f"{e.runs} FINISHED runs. {text}"], [], pd.DataFrame())
    d = e.divergence
    firth_why = {
        "separation": "separation: a combination of the factors splits diverged from other runs"
    }.get(d.reason, FIRTH_REASONS.get(d.reason, d.reason))
    how = {
        "logit": "logistic regression (maximum likelihood), odds ratios with 95% Wald intervals",
        "firth": f"Firth-penalised logistic regression ({firth_why}), odds ratios with 95% "
        "profile penalised-likelihood intervals",
    }.get(d.method, DIVERGENCE_NO_FIT.get(d.reason, d.reason))
    intro = (
        f"Two outcomes, two models with main effects, over {e.runs} FINISHED runs "
        f"({e.events} diverged, {e.learned} learned); factors: "
        f"{'; '.join(map(described, e.factors)) or 'none'}. Divergence (every finished run): "
        f"{how}. Error of the runs that learned: median (quantile 0.5) regression of "
        "mae_ratio_test (QuantReg), the difference in the median vs the reference level with a "
        f"95% percentile bootstrap interval ({e.resamples} resamples of runs within each "
        "design cell)."
    )
    if e.median is not None and e.median.singles:
        notes.append(
            f"{e.median.singles} of {e.median.cells} design cells hold one learned run: the "
            "intervals omit their spread"
        )
    if e.nonfinite:
        notes.append(f"{e.nonfinite} learned runs with a non-finite mae_ratio_test left out")
    extra = [f"{sentence_case(n)}." for n in notes]
    t = e.table
    view = pd.DataFrame(
        {
            "factor": t["factor"],
            "level": t["level"],
            "reference": t["reference"],
            "runs": t["runs"],
            "diverged": t["events"],
            "learned": t["learned"],
            "odds ratio of diverging [95% CI]": [
                "see cells" if _suppressed(e, "divergence") else ci(*v)
                for v in t[["odds_ratio", "or_low", "or_high"]].to_numpy(float)
            ],
            "Δ median mae_ratio_test, learned runs [95% CI]": [
                "see cells" if _suppressed(e, "mae_ratio") else ci(*v)
                for v in t[["median_effect", "median_low", "median_high"]].to_numpy(float)
            ],
        }
    )
    bullets = _additivity_sentence(e, family)
    bullets += [effect_sentence(row, e, family) for _, row in t.iterrows()]
    tables = ()
    if e.cells is not None:
        tables = (("Every cell of the factorial", _cells_view(e.cells, e)),)
    if e.by_max_freq is not None:
        bullets += level_sentences(e)
        tables += (("Each level at each max_freq", _cells_view(e.by_max_freq, e)),)
    return Section(e.title, [" ".join([intro, *extra])], bullets, view, tables)


def _cells_view(c: pd.DataFrame, e: factors.FactorEffects) -> pd.DataFrame:
    """A cell table (factors.cell_table) for people: the levels, then each count with its
    exact interval and the learned runs' median with its interval."""
    names = [n for n in c.columns if n in {f.name for f in e.factors} or n == "max_freq"]
    view = c[names].copy()
    view["runs"] = c["runs"]
    view["diverged [95% Clopper–Pearson]"] = [
        count(k, n, lo, hi)
        for k, n, lo, hi in c[["diverged", "runs", "rate_low", "rate_high"]].to_numpy(float)
    ]
    view["learned"] = c["learned"]
    view["median mae_ratio_test, learned [95% CI]"] = [
        ci(*v) for v in c[["median", "median_low", "median_high"]].to_numpy(float)
    ]
    return view


def level_sentences(e: factors.FactorEffects) -> list[str]:
    """Each level pooled over max_freq, with where its divergences fall, and for a level with
    none, how rare they can still be (the pooled and the per-cell exact upper bounds)."""
    names = [f.name for f in e.factors if not f.numeric]
    cells = e.by_max_freq
    out = []
    for _, row in e.pooled.iterrows():
        level = ", ".join(f"{n}={row[n]}" for n in names)
        mine = cells[np.all([cells[n] == row[n] for n in names], axis=0)]
        k, n = int(row["diverged"]), int(row["runs"])
        if k == 0:
            worst = float(mine["rate_high"].max())
            out.append(
                f"**{level}: no run diverged**, 0 of {n} over max_freq "
                f"{freqs(tuple(int(m) for m in mine['max_freq']))}: the rate is at most "
                f"{fmt(float(row['rate_high']))} pooled, and at most {fmt(worst)} at any one "
                "max_freq (95% Clopper–Pearson upper bounds)."
            )
        else:
            where = ", ".join(
                f"{int(r['diverged'])}/{int(r['runs'])} at {r['max_freq']}"
                for _, r in mine.iterrows()
            )
            out.append(
                f"**{level}**: {k} of {n} diverged (95% Clopper–Pearson "
                f"{fmt(float(row['rate_low']))} to {fmt(float(row['rate_high']))}): {where}."
            )
    return out


def backend_sentences(b: backends.BackendComparison, family: Family) -> list[str]:
    """Equivalence (TOST) first, then the per-max_freq tests, then fit time."""
    t, ref, other = b.table, b.reference, b.other
    params = backends.setting_columns(t)
    out = []
    for what, e, unit in (
        ("Test error of the runs that learned", b.mae, f"median ratio {other}/{ref}"),
        ("Divergence", b.divergence, f"odds ratio {other}/{ref}"),
    ):
        if e is None or e.verdict == "no fit":
            out.append(f"**{what}, pooled**: too few runs for a comparison.")
            continue
        margin = f"{fmt(e.margin[0])}–{fmt(e.margin[1])}"
        where = (
            f"{unit} {fmt(e.estimate)}, 95% CI {fmt(e.low95)} to {fmt(e.high95)}; {e.runs} runs"
        )
        words = {
            "equivalent": f"**{what}: equivalent** within the margin ({where}).",
            "different, within the margin": f"**{what}: a difference, but within the margin**"
            f" ({where}).",
            "different": f"**{what}: different** ({where}).",
            "not resolved": f"**{what}: not resolved at this sample size**: its 90% CI "
            f"{fmt(e.low90)} to {fmt(e.high90)} leaves the margin {margin} ({where}).",
        }
        out.append(words[e.verdict])
    if t["mwu_p"].isna().all():
        out.append("**Test MAE by max_freq**: no max_freq has learned runs from both backends.")
    else:  # the numbers are the table's; the words say only what they resolve

        def after_holm(kind: str) -> list[str]:
            return [
                backends.label_of(r, params)
                for _, r in t.iterrows()
                if family.holm((kind, backends.where(r, params))) < ALPHA
            ]

        resolved, flagged = after_holm("backend_mwu"), after_holm("backend_fisher")
        if not resolved and not flagged:
            out.append("**By max_freq**: no difference survives Holm's adjustment.")
        else:
            out.append(
                "**By max_freq**, after Holm's adjustment: the error differs at "
                f"{', '.join(resolved) or 'no max_freq'}, divergence at "
                f"{', '.join(flagged) or 'no max_freq'}."
            )
    speed = t["fit_seconds_ratio"].dropna()
    if speed.empty:
        out.append("**Fit time**: fit_seconds not logged for both backends.")
    else:
        lo, hi = speed.min(), speed.max()
        span = fmt(lo) if len(speed) == 1 else f"{fmt(lo)}–{fmt(hi)}"
        verdict = f"{other} faster" if hi < 1 else f"{other} slower" if lo > 1 else "mixed"
        out.append(
            f"**Fit time**: {other}'s median fit_seconds is {span}× {ref}'s ({verdict}; "
            f"{len(speed)} comparison{'s' * (len(speed) != 1)})."
        )
    return out


def backends_section(b: backends.BackendComparison, family: Family) -> Section:
    t, ref, other = b.table, b.reference, b.other
    params = backends.setting_columns(t)
    intro = (
        f"Pooled over max_freq: is {other} within a stated margin of {ref} "
        f"([equivalence](METHODS#backends-compared))? By max_freq: the learned runs' error "
        f"ratio ({b.resamples} bootstrap resamples per backend), the divergence counts, their "
        "tests (each backend's own figures: the summary table)."
    )
    # Each backend's median and rate, with their intervals, are the summary table's rows.
    view = t[params].map(value_text) if params else pd.DataFrame(index=t.index)
    view["max_freq"] = t["max_freq"]
    view[f"error {other}/{ref} [95% CI]"] = [
        ci(*v) for v in t[["median_ratio", "ratio_low", "ratio_high"]].to_numpy()
    ]
    view["Mann–Whitney"] = [
        tests_text(family, ("backend_mwu", backends.where(r, params))) for _, r in t.iterrows()
    ]
    view[f"diverged, {ref} vs {other}"] = [
        f"{r['ref_diverged']:.0f}/{r['ref_runs']:.0f} vs {r['other_diverged']:.0f}/"
        f"{r['other_runs']:.0f}"
        for _, r in t.iterrows()
    ]
    view["Fisher"] = [
        tests_text(family, ("backend_fisher", backends.where(r, params))) for _, r in t.iterrows()
    ]
    view[f"fit time {other}/{ref}"] = t["fit_seconds_ratio"].map(fmt)
    return Section("Backends compared", [intro], backend_sentences(b, family), view)


# --- leaving the plateau ---------------------------------------------------------------------


def updates(value: float) -> str:
    """A number of updates: '6,000', '1.18e+03' style avoided (they are counts of updates)."""
    return f"{value:,.0f}"


def median_text(row) -> str:
    """'≤ 147 [0, 294]', '735 [441, 1,176]', '2,058 [735, > 6,000]', '> 6,000 [1,029, –]':
    the first check with at most half still on the plateau, and its 95% interval; 'budget' is
    the max_freq's own (with epochs, larger max_freqs are followed further than the common
    budget)."""
    budget = updates(row["budget"])
    if math.isinf(row["median_steps"]):
        value = f"> {budget}"
    elif row["median_after"] == 0:
        value = f"≤ {updates(row['median_steps'])}"
    else:
        value = updates(row["median_steps"])
    high = f"> {budget}" if math.isinf(row["median_high"]) else updates(row["median_high"])
    return f"{value} [{updates(row['median_low'])}, {high}]"


def steps_text(m: escape.HazardModel, family: Family, name: str) -> str:
    parts = []
    for row in m.steps.itertuples(index=False):
        key = ("escape_step", name, row.max_freq)
        parts.append(
            f"{row.max_freq} vs {row.previous}: {fmt(row.theta)} (95% CI {fmt(row.low)} to "
            f"{fmt(row.high)}; {tests_text(family, key)})"
        )
    return "; ".join(parts)


def escape_model_sentence(e: escape.Escape, family: Family, name: str) -> str:
    m = e.model
    if not m.method:
        why = {
            "one max_freq": "a single max_freq: nothing to compare",
            "no escapes": "no run left the plateau: no rate to compare",
        }.get(m.reason, m.reason)
        return f"**Escape vs max_freq**: {why} ({m.events} of {m.runs} runs escaped)."
    shape = (
        f"likelihood ratio {fmt(m.shape_stat)} on {m.shape_df} df, "
        f"{tests_text(family, ('escape_shape', name))}"
    )
    steps = (
        "Each max_freq against the one before, as θ, the chance that a run at the larger one "
        f"stays on the plateau longer (½: no difference; ties count half): "
        f"{steps_text(m, family, name)}"
    )
    if m.one_rate:
        key = ("escape_trend", name)
        fits = (
            f"one log-linear rate is not rejected against max_freq as categories ({shape}; not "
            "rejecting it does not show it)"
            if m.shape_df
            else "two max_freqs: one comparison"
        )
        how = (
            f"discrete-time hazard model, conditional likelihood, profile interval; {m.events} "
            f"of {m.runs} runs escaped; where the curves cross, the rate is an average over the "
            "budget"
        )
        if m.verdict == "cannot tell":
            return (
                f"**Escape vs max_freq: not resolved**: {fits}; the odds of leaving the plateau "
                f"at a check change by a factor between {fmt(m.or10_low)} and "
                f"{fmt(m.or10_high)} per +{PER} max_freq (estimate {fmt(m.or10)}; "
                f"{tests_text(family, key)}; {how}). {steps}."
            )
        word = "sooner" if m.verdict == "faster" else "later"
        return (
            f"**Runs leave the plateau {word} at larger max_freq**{caveat(family, key, True)}: "
            f"{fits}; the odds of leaving it at a check multiply by {fmt(m.or10)} per +{PER} "
            f"max_freq (95% CI {fmt(m.or10_low)} to {fmt(m.or10_high)}; "
            f"{tests_text(family, key)}; {how}). {steps}."
        )
    pattern = {
        "not monotone": "two steps are resolved in opposite directions: **the pattern is not "
        "monotone**",
        "slower": "every resolved step is towards later escapes; the others are not "
        "resolved, so whether escape keeps slowing, or turns, is not resolved",
        "faster": "every resolved step is towards sooner escapes; the others are not "
        "resolved, so whether the pattern is monotone is not resolved",
        "not resolved": "no step is resolved",
    }[m.pattern]
    return (
        f"**Escape vs max_freq: no single rate fits**: one log-linear rate of leaving the "
        f"plateau does not fit against max_freq as categories at the 5% level ({shape}; the "
        f"choice of what to print, made before Holm's adjustment; discrete-time hazard model, "
        f"conditional likelihood), so none is given. {steps}. With Holm's adjustment among "
        f"these steps, {pattern}."
    )


def budget_sentence(e: escape.Escape, family: Family, key: tuple) -> str:
    t, d = e.table, e.at_budget
    counts = ", ".join(
        f"{r.plateau_budget}/{r.runs} at {r.max_freq}" for r in t.itertuples(index=False)
    )
    head = f"**At a common budget of {updates(e.budget)} updates** still on the plateau: {counts}"
    if not d.method:
        reason = {
            "no events": "none, so no trend to fit",
            "only events": "all of them, so no trend to fit",
        }.get(d.reason, NO_FIT.get(d.reason, d.reason))
        return f"{head} ({reason})."
    how = "Firth logistic" if d.method == "firth" else "logistic"
    sh = e.at_budget_shape
    if sh is not None and sh.p < ALPHA:  # one trend does not fit: its odds are not read
        return (
            f"{head}; one log-linear trend does not fit these counts (deviance "
            f"{fmt(sh.lack_of_fit)} on {sh.df} df against max_freq as categories, p = "
            f"{p_text(sh.p)}), so no odds ratio per +{PER} is read from them, only the counts "
            f"per max_freq (the {how} slope's test, counted among the report's tests: "
            f"{tests_text(family, key)})."
        )
    if d.verdict == "cannot tell":
        return (
            f"{head}; vs max_freq not resolved: the odds change by a factor between "
            f"{fmt(d.or10_low)} and {fmt(d.or10_high)} per +{PER} max_freq ({how}; "
            f"{tests_text(family, key)})."
        )
    word = "rises" if d.verdict == "grows" else "falls"
    return (
        f"{head}; the rate {word} with max_freq{caveat(family, key, True)}: odds "
        f"×{fmt(d.or10)} per +{PER} max_freq (95% CI {fmt(d.or10_low)} to {fmt(d.or10_high)}, "
        f"{how}; {tests_text(family, key)})."
    )


def percent(value: float) -> str:
    """'36%', and '0.2%' rather than a misleading '0%' for a small positive chance."""
    return f"{value:.1%}" if 0 < value < 0.01 or 0.99 < value < 1 else f"{value:.0%}"


def late_sentence(late: escape.Late) -> str:
    """Late escapes with their interval, and only what that interval carries."""
    start, budget = updates(late.start), updates(late.budget)
    if late.runs == 0:
        return f"every run had left the plateau by {start} updates"
    interval = f"95% Clopper–Pearson {percent(late.low)} to {percent(late.high)}"
    head = (
        f"of the {late.runs} runs still on the plateau at {start} updates, {late.escaped} left "
        f"it by {budget} ({percent(late.rate)}; {interval})"
    )
    if late.high < 0.5:
        what = (
            f"so between {start} and {budget} updates most of them stay on it: at most "
            f"{percent(late.high)} leave"
        )
    elif late.low > 0.5:
        what = f"so most of them were delayed, not failed: at least {percent(late.low)} leave"
    else:
        what = "so whether most of them are delayed or failed is not resolved"
    return f"{head}: {what}"


def delay_sentence(e: escape.Escape) -> str:
    """Failure or delay, as far as the budget carries: late escapes from a quarter and from
    half of it, and what no budget of this length can tell."""
    parts = [late_sentence(late) for late in e.late]
    left_out = f" (max_freq {freqs(e.aliased)}, aliased, not counted)" if e.aliased else ""
    return (
        f"**Failure or delay, within {updates(e.budget)} updates**{left_out}: "
        + "; ".join(parts)
        + ". Runs still on the plateau at the budget may leave it later or never: these runs "
        "cannot tell the two apart, only a longer budget can."
    )


def reference_sentence(e: escape.Escape, family: Family, name: str) -> str:
    """The equal-update study read at each max_freq's own 200-epoch point."""
    r = e.reference
    t = r.table
    counts = ", ".join(
        f"{row.not_learned}/{row.runs} at {row.max_freq}" for row in t.itertuples(index=False)
    )
    d = r.trend
    lo, hi = (min(d.max_freqs), max(d.max_freqs)) if d.max_freqs else escape.REFERENCE_RANGE
    if d.method:
        word = {"grows": "rises", "falls": "falls"}.get(d.verdict, "is not resolved")
        warn = caveat(family, ("reference_trend", name), d.verdict != "cannot tell")
        trend = (
            f"over max_freq {lo}–{hi} the rate {word}{warn}: "
            f"odds ×{fmt(d.or10)} per +{PER} (95% CI {fmt(d.or10_low)} to {fmt(d.or10_high)}; "
            f"{tests_text(family, ('reference_trend', name))})"
        )
    else:
        trend = f"over max_freq {lo}–{hi}: {NO_FIT.get(d.reason, d.reason)}"
    shape = ""
    if (sh := r.shape) is not None and sh.tests is not None:
        c = sh.tests
        fits = "the rate is not" if sh.p < ALPHA else "not rejected as"
        shape = (
            f"; over all of them {fits} one log-linear trend (deviance "
            f"{fmt(sh.lack_of_fit)} on {sh.df} df, bootstrap: "
            f"{tests_text(family, ('reference_shape', name))}) and "
            + rise_fall_text(c, family, ("reference_rise_fall", name))
        )
    return (
        f"**At the reference {r.epochs} epochs** ({r.epochs} × each max_freq's updates per "
        f"epoch, where a {r.epochs}-epoch run of the same seed ends; read from escape_step): "
        f"not yet learned {counts}; {trend}{shape}."
    )


def rule_sentence(r: escape.RuleCheck) -> str:
    if r.stopped == 0:
        return (
            f"**The stopping rule, checked**: of {r.runs} full-budget runs, none was off the "
            "plateau at two checks in a row before its budget: nothing to check."
        )
    text = (
        f"**The stopping rule, checked on full-budget runs**: of {r.runs} runs, {r.stopped} were "
        f"off the plateau at two checks in a row before their budget (where stop_on_escape "
        f"would have ended them); {r.diverged} of those ended diverged ({r.diverged}/"
        f"{r.stopped}; 95% Clopper–Pearson {fmt(r.low)} to {fmt(r.high)})"
        + (
            ": they relapsed, and a stopped study would have counted them as not diverged."
            if r.diverged
            else ": none relapsed."
        )
    )
    if len(r.table) < 2:
        return text
    relapsed = "; ".join(
        f"{row.max_freq}: {row.relapsed}/{row.stopped}"
        + (f" [{fmt(row.low)}, {fmt(row.high)}]" if row.stopped else "")
        for row in r.table.itertuples(index=False)
    )
    counts = "; ".join(
        f"{row.max_freq}: {row.never} vs {row.diverged} of {row.runs}"
        for row in r.table.itertuples(index=False)
    )
    return (
        f"{text} Relapsed by max_freq (of the runs the rule would have stopped): {relapsed}. "
        f"Never confirmed off the plateau (what a stopped study counts as never learned within "
        f"the budget) against "
        f"diverged at the budget: {counts}."
    )


def escape_section(escapes: list[escape.Escape], title_labels: bool, family: Family) -> Section:
    """The time-to-escape section: method, per-setting verdicts, one table."""
    runs = sum(int(e.table["runs"].sum()) for e in escapes)
    stopped = sum(int(e.table["stopped"].sum()) for e in escapes)
    intro = (
        f"{runs} FINISHED runs with progress checks"
        + (f", {stopped} of them stopped once off the plateau (stop_on_escape)" if stopped else "")
        + ". A run is on the plateau while its mae_ratio_train is at or above the divergence "
        "threshold; it escaped at the first check from which it stayed below. Intervals are "
        "pointwise 95% Clopper–Pearson; θ is the chance that a run at the larger max_freq stays "
        "on the plateau longer (½: no difference) ([how escapes are read]"
        "(METHODS#leaving-the-plateau))."
    )
    bullets, frames, steps = [], [], []
    for e in escapes:
        name = label(e.setting)
        where = f"{name}: " if title_labels else ""
        bullets += [
            where + escape_model_sentence(e, family, name),
            where + budget_sentence(e, family, ("budget", name)),
            where + delay_sentence(e),
        ]
        if e.reference is not None:
            bullets.append(where + reference_sentence(e, family, name))
        if e.rule is not None:
            bullets.append(where + rule_sentence(e.rule))
        if e.aliased:
            bullets.append(
                f"{where}The models and counts that pool max_freqs leave out max_freq "
                f"{freqs(e.aliased)} (aliased); the table and curves show it."
            )
        t = e.table
        view = pd.DataFrame(index=t.index)
        if title_labels:
            view["setting"] = name
        view["max_freq"] = t["max_freq"]
        view["runs"] = t["runs"]
        view["escaped"] = t["escaped"]
        if t["stopped"].any():
            view["stopped at escape"] = t["stopped"]
        view["median escape, updates [95% CI]"] = [
            median_text({**r, "budget": r["followed_to"]}) for _, r in t.iterrows()
        ]
        view["median escape, epochs"] = [
            "–" if math.isinf(v) else fmt(v) for v in t["median_epochs"]
        ]
        for column, at in (
            ("plateau_quarter", e.budget / 4),
            ("plateau_half", e.budget / 2),
            ("plateau_budget", e.budget),
        ):
            view[f"on plateau at {updates(at)} [95% CP]"] = [
                count(k, n, lo, hi)
                for k, n, lo, hi in t[
                    [column, "runs", f"{column}_low", f"{column}_high"]
                ].to_numpy()
            ]
        view[f"{e.outcome.column} at end of training"] = t["diverged_end"]
        view["failure modes: " + " / ".join(names.FAILURE_MODES)] = [
            " / ".join(str(int(r[c])) for c in escape.MODE_COLUMNS)
            + (f" (+{int(r['mode_unknown'])} untagged)" if r["mode_unknown"] else "")
            for _, r in t.iterrows()
        ]
        frames.append(view)
        for row in e.model.steps.itertuples(index=False):
            steps.append(
                {
                    **({"setting": name} if title_labels else {}),
                    "max_freq": f"{row.max_freq} vs {row.previous}",
                    "common budget": updates(row.budget),
                    "θ: later escape at the larger [95% CI]": ci(row.theta, row.low, row.high),
                    "p (Holm among steps)": f"{p_text(row.p)} ({p_text(row.p_holm)})",
                }
            )
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    tables = (
        (("Escape, each max_freq against the one before",
          pd.DataFrame(steps)),)
        if steps
        else ()
    )  # fmt: skip
    readings = [reference_table(e, name if title_labels else "") for e in escapes
                if e.reference is not None]  # fmt: skip
    if readings:
        epochs = escapes[0].reference.epochs if escapes[0].reference else escape.REFERENCE_EPOCHS
        tables += ((f"At the reference {epochs} epochs, beside the budget",
                    pd.concat(readings, ignore_index=True)),)  # fmt: skip
    return Section("Leaving the plateau: failure or delay?", [intro], bullets, table, tables)


def reference_table(e: escape.Escape, setting: str) -> pd.DataFrame:
    """Per max_freq: its reference update, not yet learned there [95% CP], and the study's
    own count at its budget, under the study's outcome name."""
    t = e.reference.table
    view = pd.DataFrame(index=t.index)
    if setting:
        view["setting"] = setting
    view["max_freq"] = t["max_freq"]
    view[f"update at {e.reference.epochs} epochs"] = t["update"].map(updates)
    view["not yet learned there [95% CP]"] = [
        count(k, n, lo, hi)
        for k, n, lo, hi in t[["not_learned", "runs", "low", "high"]].to_numpy()
    ]
    view[f"{e.outcome.column} at the budget ({updates(e.budget)})"] = [
        f"{k}/{n}" for k, n in t[["at_budget", "runs"]].to_numpy()
    ]
    return view


# --- the summary table -------------------------------------------------------------------------


SUMMARY_VIEW = {
    "max_freq": "max_freq",
    "runs": "runs",
    "finished": "finished",
    "failed": "failed",
    "killed": "killed",
    "divergence": "{} [95% Wilson]",
    "learned": "learned",
    "stopped": "stopped at escape (no final error)",
    "learned_median_ci": "median test MAE, learned runs [95% CI]",
    "learned_iqr": "IQR, learned",
    "all_median": "median test MAE, all finished runs",
    "ref_fft_mae_test_median": "FFT peak",
    "ref_forest_mae_test_median": "forest",
}


def readable_summary(summary: pd.DataFrame, outcome: Outcome = DIVERGED) -> pd.DataFrame:
    s = summary
    params = [c for c in s.columns if c in varying_params(s)]
    view = s[[*params, "max_freq", "runs", "finished", "failed", "killed"]].copy()
    view[params] = view[params].apply(lambda column: column.map(value_text))
    view["divergence"] = [
        f"{k}/{n} = {fmt(r)} [{fmt(lo)}, {fmt(hi)}]"
        for k, n, r, lo, hi in s[
            ["diverged", "finished", "divergence_rate", "divergence_ci_low", "divergence_ci_high"]
        ].itertuples(index=False)
    ]
    view["learned"] = s["learned"]
    if "stopped" in s and s["stopped"].any():
        view["stopped"] = s["stopped"]
    view["learned_median_ci"] = [
        ci(*v)
        for v in s[
            ["mae_test_learned_median", "mae_test_learned_median_ci_low",
             "mae_test_learned_median_ci_high"]
        ].to_numpy(float)
    ]  # fmt: skip
    view["learned_iqr"] = [
        "–" if math.isnan(a) else f"{fmt(a)}–{fmt(b)}"
        for a, b in s[["mae_test_learned_q1", "mae_test_learned_q3"]].to_numpy(float)
    ]
    view["all_median"] = s["mae_test_median"].map(fmt)
    view["ref_fft_mae_test_median"] = s["ref_fft_mae_test_median"].map(fmt)
    view["ref_forest_mae_test_median"] = s["ref_forest_mae_test_median"].map(fmt)
    names = {k: v.format(outcome.column) for k, v in SUMMARY_VIEW.items()}
    return view.rename(columns=names)
