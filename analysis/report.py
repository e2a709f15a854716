"""Write a study's report: tables, figures, report.md and a self-contained report.html.

Both open with **Findings**: sentences generated from the trend fits (analysis/trends.py) with
their 95% intervals and run counts, "cannot tell" where an interval spans no effect, and the
seeds a clear answer would take; one block per setting when parameters other than max_freq
and seed vary (grid axes or not: the report says which). Right after come the sections of
analysis/factors.py where they apply: "Which cause matters" (or "Factor effects"), one model
of every varying factor, and "Backends compared".
"""

import base64
import html
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import escape, factors, figures, stats, store, trends
from pipeline import evaluate, progress
from pipeline.config import DataConfig

FIGURES = (
    "mae_vs_max_freq.png",
    "divergence_rate.png",
    "learning_curves.png",
    "error_by_frequency.png",
)
ESCAPE_FIGURE = "escape_survival.png"  # only for runs with progress data
# Late escapes: a chance below this (upper 95% bound) that a run on the plateau at half the
# budget leaves it by the budget means the curves have flattened.
LATE_ESCAPE_FLAT = 0.1
SUMMARY_VIEW = {
    "max_freq": "max_freq",
    "runs": "runs",
    "finished": "finished",
    "failed": "failed",
    "killed": "killed",
    "mae_test_median_ci": "median test MAE [95% CI]",
    "mae_test_iqr": "IQR",
    "mae_test_mean": "mean",
    "mae_test_median_converged": "median, non-diverged",
    "divergence": "diverged [95% Wilson]",
    "ref_fft_mae_test_median": "FFT peak",
    "ref_forest_mae_test_median": "forest",
}
SETTING_TEXT = ("epochs", "samples_per_freq", "time_steps", "backend")


def setting_labels(runs: pd.DataFrame) -> pd.Series:
    """Each run's setting of the varying parameters, as a label ('all runs' if none vary)."""
    labels = pd.Series("", index=runs.index, dtype=object)
    for setting, part in trends.settings(runs):
        labels[part.index] = trends.label(setting)
    return labels


def judged_runs(runs: pd.DataFrame, ratio: float | None) -> pd.DataFrame:
    """stats.judged, and with another threshold each run's escape_step re-judged from its
    mae_ratio_train history (read from the store)."""
    judged = stats.judged(runs, ratio)
    if ratio is None or not escape.has_progress(judged):
        return judged
    histories = store.metric_series(list(judged["run_id"]), "mae_ratio_train")
    return judged.assign(escape_step=escape.rejudge(judged, histories, ratio))


def sample_runs(runs: pd.DataFrame, per_max_freq: int) -> pd.DataFrame:
    """Up to `per_max_freq` FINISHED runs per setting and max_freq (lowest seeds first), for
    the figures that need one store query per run."""
    done = runs[runs["status"] == "FINISHED"].assign(setting=setting_labels(runs))
    return done.sort_values("seed").groupby(["setting", "max_freq"]).head(per_max_freq)


def loss_histories(runs: pd.DataFrame) -> dict[tuple[str, int], list[np.ndarray]]:
    """(setting label, max_freq) → the loss histories of `runs` (from sample_runs)."""
    histories = store.metric_histories(list(runs["run_id"]), "loss")
    curves: dict[tuple[str, int], list[np.ndarray]] = {}
    for run_id, name, max_freq in zip(
        runs["run_id"], runs["setting"], runs["max_freq"], strict=True
    ):
        if run_id in histories:
            curves.setdefault((name, int(max_freq)), []).append(histories[run_id])
    return curves


def prediction_errors(runs: pd.DataFrame) -> pd.DataFrame:
    """|error| of every test prediction of `runs` (from sample_runs), from their evaluate
    runs' artifacts."""
    columns = ["setting", "max_freq", "true_freq", "abs_error"]
    with_eval = runs.dropna(subset=["eval_run_id"])
    uris = store.artifact_uris(list(with_eval["eval_run_id"]))
    tables = store.read_artifact_csvs(
        [uris.get(r, "") for r in with_eval["eval_run_id"]], "predictions/test.csv"
    )
    frames = []
    for table, name, max_freq in zip(
        tables, with_eval["setting"], with_eval["max_freq"], strict=True
    ):
        if table is not None:
            frames.append(
                pd.DataFrame(
                    {
                        "setting": name,
                        "max_freq": int(max_freq),
                        "true_freq": table["true_freq"],
                        "abs_error": table["error"].abs(),
                    }
                )
            )
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames)[columns]


def _fmt(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.3g}"


def readable_summary(summary: pd.DataFrame) -> pd.DataFrame:
    s = summary
    params = [c for c in s.columns if c in trends.varying_params(s)]
    view = s[[*params, "max_freq", "runs", "finished", "failed", "killed"]].copy()
    view[params] = view[params].apply(lambda column: column.map(trends.value_text))
    view["mae_test_median_ci"] = [
        f"{_fmt(m)} [{_fmt(lo)}, {_fmt(hi)}]"
        for m, lo, hi in zip(
            s["mae_test_median"],
            s["mae_test_median_ci_low"],
            s["mae_test_median_ci_high"],
            strict=True,
        )
    ]
    view["mae_test_iqr"] = [
        f"{_fmt(a)}–{_fmt(b)}" for a, b in zip(s["mae_test_q1"], s["mae_test_q3"], strict=True)
    ]
    view["mae_test_mean"] = s["mae_test_mean"].map(_fmt)
    view["mae_test_median_converged"] = s["mae_test_median_converged"].map(_fmt)
    view["divergence"] = [
        f"{k}/{n} = {_fmt(r)} [{_fmt(lo)}, {_fmt(hi)}]"
        for k, n, r, lo, hi in zip(
            s["diverged"],
            s["finished"],
            s["divergence_rate"],
            s["divergence_ci_low"],
            s["divergence_ci_high"],
            strict=True,
        )
    ]
    view["ref_fft_mae_test_median"] = s["ref_fft_mae_test_median"].map(_fmt)
    view["ref_forest_mae_test_median"] = s["ref_forest_mae_test_median"].map(_fmt)
    return view.rename(columns=SUMMARY_VIEW)


def markdown_table(frame: pd.DataFrame) -> str:
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def setting_text(runs: pd.DataFrame) -> str:
    """The parameters shared by every run, for titles: '200 epochs, …, tensorflow'."""
    parts = []
    budget = runs["train_steps"].dropna().unique() if "train_steps" in runs else []
    for name, unit in zip(
        SETTING_TEXT, (" epochs", " series/frequency", " steps", ""), strict=True
    ):
        values = runs[name].dropna().unique() if name in runs else []
        if name == "epochs" and len(budget) == 1 and budget[0] > 0:
            parts.append(f"{budget[0]} updates")
        elif len(values) == 1:
            parts.append(f"{values[0]}{unit}")
    varying = trends.varying_params(runs)
    if varying:
        parts.append(f"by {', '.join(varying)}")
    return ", ".join(parts)


# --- findings ---------------------------------------------------------------------------------


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def _freqs(values: tuple[int, ...]) -> str:
    return ", ".join(map(str, values))


def divergence_finding(d: trends.DivergenceTrend) -> str:
    if d.runs == 0:
        return "**Divergence**: no finished runs."
    counted = f"{d.events} of {d.runs} finished runs diverged (max_freq {_freqs(d.max_freqs)})"
    if d.events == 0:
        upper = stats.wilson_interval(0, d.runs)[1]
        return (
            f"**No divergence observed**: {counted}; the rate is below {upper:.0%} with 95% "
            "confidence (Wilson). No odds ratio: there is no trend to fit."
        )
    if d.events == d.runs:
        lower = stats.wilson_interval(d.runs, d.runs)[0]
        return (
            f"**Every run diverged**: {counted}; the rate is above {lower:.0%} with 95% "
            "confidence (Wilson). No odds ratio: there is no trend to fit."
        )
    if not d.method:
        return f"**Divergence**: {counted}; {d.note}."
    interval = f"{_fmt(d.or10_low)} to {_fmt(d.or10_high)}"
    how = "logistic regression, Wald interval"
    if d.method == "firth":
        how = f"{d.note}, profile-likelihood interval"
    verdict = {
        "grows": "**Divergence grows with max_freq**: the odds of diverging multiply by",
        "falls": "**Divergence falls with max_freq**: the odds of diverging multiply by",
        "cannot tell": "**Divergence vs max_freq: cannot tell**; the odds of diverging "
        "multiply by",
    }[d.verdict]
    nothing = " contains 1, no effect" if d.verdict == "cannot tell" else ""
    return (
        f"{verdict} {_fmt(d.or10)} per +{trends.PER} max_freq (95% CI {interval}{nothing}; "
        f"one-sided {_p(d.p_increasing)} for a rising rate); {counted}; {how}."
    )


def error_finding(e: trends.ErrorTrend) -> str:
    runs = f"{e.runs} non-diverged finished runs"
    if math.isnan(e.exponent):
        return f"**Test error**: {e.note} ({runs})."
    interval = (
        f"95% bootstrap CI {e.low:.2f} to {e.high:.2f}" if not math.isnan(e.low) else "no CI"
    )
    verdict = {
        "grows": "**Test error grows with max_freq**:",
        "falls": "**Test error falls with max_freq**:",
        "cannot tell": "**Test error vs max_freq: cannot tell**;",
        "no fit": "**Test error vs max_freq: cannot tell**;",
    }[e.verdict]
    nothing = " contains 0, no effect" if e.verdict == "cannot tell" else ""
    note = f" {e.note[0].upper()}{e.note[1:]}." if e.note else ""
    return (
        f"{verdict} the typical (geometric-mean) test MAE grows like "
        f"max_freq^{e.exponent:.2f} ({interval}{nothing}; {runs}, max_freq "
        f"{_freqs(e.max_freqs)}; least squares on log–log).{note}"
    )


def seeds_finding(t: trends.Trends) -> str | None:
    a, d = t.seeds, t.divergence
    if math.isnan(a.seeds):
        return None
    if math.isinf(a.seeds):
        or10 = math.exp(trends.PER * d.coef[1])
        flat = ": the fitted trend is about flat" if 0.8 < or10 < 1.25 else ""
        return (
            f"**Seeds**: at the fitted trend (odds ×{_fmt(or10)} per +{trends.PER} max_freq), "
            f"more than {trends.SEED_CAP} seeds per max_freq would be needed for a 95% interval "
            f"that excludes no effect; no feasible number suffices{flat}."
        )
    enough = ", enough" if a.seeds <= a.current else ""
    return (
        f"**Seeds**: if the fitted divergence trend is the true one, about {a.seeds:.0f} seeds "
        f"per max_freq (at max_freq {_freqs(a.max_freqs)}; this study has {a.current:.3g}"
        f"{enough}) give a 95% interval on the odds ratio that excludes 1 in {a.power:.0%} of "
        "repeat studies."
    )


def _aliased(runs: pd.DataFrame) -> str | None:
    notes = []
    for steps, part in runs.groupby("time_steps"):
        over = sorted({int(m) for m in part["max_freq"] if DataConfig(int(m), int(steps)).aliased})
        if over:
            limit = DataConfig(time_steps=int(steps)).aliasing_limit
            notes.append(f"max_freq {_freqs(tuple(over))} (time_steps={steps}, limit {limit:g})")
    if not notes:
        return None
    return (
        f"**Aliasing**: at {'; '.join(notes)} the highest frequency max_freq − 1 reaches the "
        "aliasing limit (time_steps − 1)/2, where the task is ill-posed; those runs are in the "
        "fits."
    )


def findings(fits: list[trends.Trends], runs: pd.DataFrame) -> list[tuple[str, list[str]]]:
    """Sections of sentences: ('', general) first, then one per setting (titled by its label
    when parameters vary, else untitled)."""
    general = []
    varying = trends.varying_params(runs)
    declared = trends.declared_axes(runs)

    def values(names: list[str]) -> str:
        return "; ".join(
            f"{p} ({', '.join(sorted({trends.value_text(v) for v in runs[p]}))})" for p in names
        )

    if axes := [p for p in varying if p in declared]:
        general.append(
            f"**Grid axes {values(axes)}**: each setting is fitted and reported separately."
        )
    if others := [p for p in varying if p not in declared]:
        swept = ", ".join([*trends.GRID_AXES, *declared])
        general.append(
            f"**Runs differ in {values(others)}**, which is not a declared grid axis (the sweep "
            f"varied {swept}): runs are grouped by it and each setting is reported separately."
        )
    if "time_steps" in runs and (aliasing := _aliased(runs)):
        general.append(aliasing)
    sections = [("", general)] if general else []
    for t in fits:
        lines = [divergence_finding(t.divergence), error_finding(t.error)]
        lines += [s for s in [seeds_finding(t)] if s]
        sections.append((trends.label(t.setting) if varying else "", lines))
    return sections


def _markdown(sections: list[tuple[str, list[str]]]) -> list[str]:
    out = ["## Findings", ""]
    for title, lines in sections:
        if title:
            out.append(f"- **{title}**")
        out += [f"{'  ' if title else ''}- {line}" for line in lines]
    return [*out, ""]


def _inline(text: str) -> str:
    return re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(text))


def _html(sections: list[tuple[str, list[str]]]) -> str:
    items = []
    for title, lines in sections:
        inner = "".join(f"<li>{_inline(line)}</li>" for line in lines)
        items.append(f"<li><b>{html.escape(title)}</b><ul>{inner}</ul></li>" if title else inner)
    return f"<h2>Findings</h2><ul>{''.join(items)}</ul>"


def section_markdown(section: factors.Section) -> list[str]:
    """A factors.Section as markdown lines: title, paragraphs, bullets, table."""
    out = [f"## {section.title}", ""]
    for paragraph in section.paragraphs:
        out += [paragraph, ""]
    if section.bullets:
        out += [*(f"- {line}" for line in section.bullets), ""]
    if len(section.table.columns):
        out += [markdown_table(section.table), ""]
    return out


def section_html(section: factors.Section) -> str:
    paragraphs = "".join(f"<p>{_inline(p)}</p>" for p in section.paragraphs)
    bullets = "".join(f"<li>{_inline(line)}</li>" for line in section.bullets)
    table = section.table.to_html(index=False, border=0) if len(section.table.columns) else ""
    return (
        f"<h2>{html.escape(section.title)}</h2>{paragraphs}"
        f"{f'<ul>{bullets}</ul>' if bullets else ''}{table}"
    )


# --- leaving the plateau ---------------------------------------------------------------------


def _steps(value: float) -> str:
    return "not reached" if math.isinf(value) else _fmt(value)


def _count(k: float, n: float, low: float, high: float) -> str:
    return f"{int(k)}/{int(n)} [{_fmt(low)}, {_fmt(high)}]"


def _median_steps(median: float, low: float, high: float) -> str:
    if math.isinf(median):
        return "not reached"
    return f"{_fmt(median)} [{'–' if math.isnan(low) else _fmt(low)}, {_steps(high)}]"


def escape_trend_sentence(e: escape.Escape) -> str:
    t = e.trend
    if t.verdict == "no fit":
        return f"**Time to escape vs max_freq**: {t.note} ({t.events} of {t.runs} runs escaped)."
    interval = f"95% CI {_fmt(t.hr10_low)} to {_fmt(t.hr10_high)}, two-sided {_p(t.p)}"
    head = {
        "slower": "**Leaving the plateau takes longer at larger max_freq**: the rate of "
        "escape multiplies by",
        "faster": "**Runs leave the plateau sooner at larger max_freq**: the rate of escape "
        "multiplies by",
        "cannot tell": "**Time to escape vs max_freq: not resolved**; the rate of escape "
        "multiplies by",
    }[t.verdict]
    ph = ""
    if not math.isnan(t.ph_p):
        ph = (
            f" Proportional-hazards check: Schoenfeld residuals against the rank of time, "
            f"r = {t.ph_r:.2f}, {_p(t.ph_p)}"
            + (
                "; the ratio changes during training, so it is an average over the budget."
                if t.ph_p < 0.05
                else "."
            )
        )
    return (
        f"{head} {_fmt(t.hr10)} per +{trends.PER} max_freq ({interval}; {t.events} of "
        f"{t.runs} runs escaped; Cox model, Efron ties).{ph}"
    )


def budget_sentence(e: escape.Escape) -> str:
    t, d = e.table, e.at_budget
    counts = ", ".join(
        f"{r.plateau_budget}/{r.runs} at {r.max_freq}" for r in t.itertuples(index=False)
    )
    head = f"**At a common budget of {e.budget:.0f} updates** still on the plateau: {counts}"
    if d.method:
        verdict = {
            "grows": "rises with max_freq",
            "falls": "falls with max_freq",
            "cannot tell": "vs max_freq is not resolved",
        }[d.verdict]
        how = "Firth logistic" if d.method == "firth" else "logistic"
        return (
            f"{head}; the rate {verdict}: odds ×{_fmt(d.or10)} per +{trends.PER} max_freq "
            f"(95% CI {_fmt(d.or10_low)} to {_fmt(d.or10_high)}, {how})."
        )
    return f"{head} ({d.note})."


def delay_sentence(e: escape.Escape) -> str:
    """Late escapes: of the runs still on the plateau at half the budget, how many left it by
    the budget, with a Wilson interval on that chance."""
    t = e.table
    half, full = int(t["plateau_half"].sum()), int(t["plateau_budget"].sum())
    late = half - full
    if half == 0:
        return (
            f"**Failure or delay**: every run had left the plateau by {e.budget / 2:.0f} "
            "updates, half the budget."
        )
    low, high = stats.wilson_interval(late, half)
    if high < LATE_ESCAPE_FLAT:
        what = (
            f"the curves have flattened (below {LATE_ESCAPE_FLAT:.0%} with 95% confidence): "
            "at this budget what is left on the plateau is failure, not delay"
        )
    elif low > 0:
        what = "runs were still leaving the plateau: part of what is left is delay"
    else:
        what = (
            f"not resolved: the chance lies between {low:.0%} and {high:.0%}, so a longer "
            "budget or more runs would tell failure from delay"
        )
    return (
        f"**Failure or delay**: of the {half} runs still on the plateau at {e.budget / 2:.0f} "
        f"updates (half the budget), {late} left it by {e.budget:.0f}: a chance of "
        f"{late / half:.0%} (95% Wilson {low:.0%} to {high:.0%}); {what}."
    )


def escape_section(escapes: list[escape.Escape], title_labels: bool) -> factors.Section:
    """The time-to-escape section: method, per-setting verdicts, one table."""
    runs = sum(int(e.table["runs"].sum()) for e in escapes)
    intro = (
        f"{runs} FINISHED runs with progress checks. A run is on the plateau while its "
        "mae_ratio_train (a forward pass over the training set without dropout, at update 0, "
        f"at {progress.CHECKPOINTS} evenly spaced updates and after the last) is at or above "
        "the divergence threshold; it escaped at the first check from which it stayed below "
        "(so a run diverged exactly when it never escaped). Curves: Kaplan–Meier "
        "(statsmodels SurvfuncRight), runs that never escaped censored at the end of their "
        "budget, pointwise 95% bands (Greenwood, log(−log)); medians with Brookmeyer–Crowley "
        "intervals. The common budget is the smallest budget among a setting's runs; every "
        "run reached it, so the fraction still on the plateau there is a plain proportion "
        "(95% Wilson interval). Escape rate vs max_freq: Cox proportional hazards "
        "(statsmodels PHReg). Failure modes of the runs that diverged: "
        + ", ".join(evaluate.FAILURE_MODES)
        + " (pipeline/evaluate.py)."
    )
    bullets, frames = [], []
    for e in escapes:
        where = f"{trends.label(e.setting)}: " if title_labels else ""
        bullets += [
            where + escape_trend_sentence(e),
            where + budget_sentence(e),
            where + delay_sentence(e),
        ]
        t = e.table
        view = pd.DataFrame(index=t.index)
        if title_labels:
            view["setting"] = trends.label(e.setting)
        view["max_freq"] = t["max_freq"]
        view["runs"] = t["runs"]
        view["escaped"] = t["escaped"]
        view["median escape, updates [95% CI]"] = [
            _median_steps(*v) for v in t[["median_steps", "median_low", "median_high"]].to_numpy()
        ]
        view["median escape, epochs"] = t["median_epochs"].map(_steps)
        view[f"on plateau at {e.budget / 2:.0f} [95% Wilson]"] = [
            _count(k, n, lo, hi)
            for k, n, lo, hi in t[
                ["plateau_half", "runs", "plateau_half_low", "plateau_half_high"]
            ].to_numpy()
        ]
        view[f"on plateau at {e.budget:.0f} [95% Wilson]"] = [
            _count(k, n, lo, hi)
            for k, n, lo, hi in t[
                ["plateau_budget", "runs", "plateau_budget_low", "plateau_budget_high"]
            ].to_numpy()
        ]
        view["diverged at end of training"] = t["diverged_end"]
        view["failure modes: " + " / ".join(evaluate.FAILURE_MODES)] = [
            " / ".join(str(int(r[c])) for c in escape.MODE_COLUMNS)
            + (f" (+{int(r['mode_unknown'])} untagged)" if r["mode_unknown"] else "")
            for _, r in t.iterrows()
        ]
        frames.append(view)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return factors.Section("Leaving the plateau: failure or delay?", [intro], bullets, table)


# --- the files ------------------------------------------------------------------------------


def write(
    runs: pd.DataFrame,
    summary: pd.DataFrame,
    title: str,
    ratio: float | None,
    out: Path,
    per_max_freq: int,
    fits: list[trends.Trends] | None = None,
    comparisons: factors.Comparisons | None = None,
    escapes: list[escape.Escape] | None = None,
) -> list[Path]:
    """Every report file under `out`; returns their paths. `fits`, `comparisons` and
    `escapes`: trends.fit, factors.fit and escape.fit of the runs as judged at `ratio`
    (judged_runs), fitted here if not given."""
    out.mkdir(parents=True, exist_ok=True)
    setting = setting_text(runs)
    runs.to_csv(out / "runs.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    judged = judged_runs(runs, ratio)
    fits = trends.fit(judged) if fits is None else fits
    comparisons = factors.fit(judged) if comparisons is None else comparisons
    escapes = escape.fit(judged) if escapes is None else escapes
    extra = factors.sections(comparisons)
    names = list(FIGURES)
    if escapes:
        extra.insert(0, escape_section(escapes, bool(trends.varying_params(judged))))
        figures.escape_survival(escapes, setting, out / ESCAPE_FIGURE)
        names.append(ESCAPE_FIGURE)
    sample = sample_runs(judged, per_max_freq)
    figures.mae_vs_max_freq(judged, summary, setting, out / FIGURES[0], fits)
    figures.divergence_rate(summary, judged, setting, out / FIGURES[1], fits)
    figures.learning_curves(loss_histories(sample), setting, out / FIGURES[2])
    figures.error_by_frequency(prediction_errors(sample), setting, out / FIGURES[3])

    threshold = (
        f"re-judged at mae_ratio_train ≥ {ratio:g}"
        if ratio is not None
        else "as logged by each run (mae_ratio_train ≥ its divergence_ratio)"
    )
    readable = readable_summary(summary)
    table = markdown_table(readable)
    max_freqs = ", ".join(map(str, sorted(summary["max_freq"].unique())))
    intro = (
        f"{len(runs)} runs over max_freq {max_freqs} ({setting}). MAE in cycles per 2π on the "
        "held-out set; intervals are 95%; the median's is distribution-free (order "
        "statistics) and needs at least 6 runs ('–' otherwise). "
        f"Divergence: non-finite loss, or {threshold}. FAILED/KILLED runs are counted, not "
        f"used in the statistics. Learning curves and error by frequency use up to "
        f"{per_max_freq} finished runs per max_freq."
    )
    sections = findings(fits, judged)
    md = [f"# {title}", "", *_markdown(sections)]
    md += [line for section in extra for line in section_markdown(section)]
    md += [intro, "", table, ""]
    md += [f"![{name}]({name})" for name in names]
    (out / "report.md").write_text("\n".join(md) + "\n")

    images = "".join(
        f'<figure><img alt="{n}" src="data:image/png;base64,'
        f'{base64.b64encode((out / n).read_bytes()).decode()}"></figure>'
        for n in names
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
        "padding:3px 6px;text-align:right}img{max-width:100%}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{_html(sections)}"
        f"{''.join(map(section_html, extra))}<p>{html.escape(intro)}</p>"
        f"{readable.to_html(index=False, border=0)}{images}</body></html>"
    )
    (out / "report.html").write_text(page)
    return [out / n for n in ("runs.csv", "summary.csv", *names, "report.md", "report.html")]
