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

from analysis import factors, figures, stats, store, trends
from pipeline.config import DataConfig

FIGURES = (
    "mae_vs_max_freq.png",
    "divergence_rate.png",
    "learning_curves.png",
    "error_by_frequency.png",
)
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
    for name, unit in zip(
        SETTING_TEXT, (" epochs", " series/frequency", " steps", ""), strict=True
    ):
        values = runs[name].dropna().unique() if name in runs else []
        if len(values) == 1:
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
) -> list[Path]:
    """Every report file under `out`; returns their paths. `fits` and `comparisons`:
    trends.fit and factors.fit of the runs as judged at `ratio` (stats.judged), fitted here if
    not given."""
    out.mkdir(parents=True, exist_ok=True)
    setting = setting_text(runs)
    runs.to_csv(out / "runs.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    judged = stats.judged(runs, ratio)
    fits = trends.fit(judged) if fits is None else fits
    comparisons = factors.fit(judged) if comparisons is None else comparisons
    extra = factors.sections(comparisons)
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
    md += [f"![{name}]({name})" for name in FIGURES]
    (out / "report.md").write_text("\n".join(md) + "\n")

    images = "".join(
        f'<figure><img alt="{n}" src="data:image/png;base64,'
        f'{base64.b64encode((out / n).read_bytes()).decode()}"></figure>'
        for n in FIGURES
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
    return [out / n for n in ("runs.csv", "summary.csv", *FIGURES, "report.md", "report.html")]
