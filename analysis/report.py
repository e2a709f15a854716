"""Write a study's report: tables, figures, report.md and a self-contained report.html.

Both open with **Findings** (analysis/wording.py writes every sentence): the divergence trend
and the error of the runs that learned, each with its 95% interval, its two-sided p-value and
the p-value's Holm adjustment over the report's tests, and the seeds a clear answer would take;
one block per setting when parameters other than max_freq and seed vary (grid axes or not:
the report says which). Then the sections that apply: "Leaving the plateau" (runs with
progress checks, analysis/escape.py), "Which cause matters" or "Factor effects"
(analysis/factors.py) and "Backends compared" (analysis/backends.py); then the summary table
and the figures.
"""

import base64
import html
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup

from analysis import backends, escape, factors, family, figures, stats, store, trends, wording
from analysis.settings import (
    NEVER_LEARNED,
    label,
    outcome_of,
    setting_suffix,
    settings,
    varying_params,
)

OVERVIEW = "error_and_divergence.png"  # first in every report: the question's own figure
FIGURES = (
    "mae_vs_max_freq.png",
    "divergence_rate.png",
    "learning_curves.png",
    "error_by_frequency.png",
)
ESCAPE_FIGURE = "escape_survival.png"  # only for runs with progress data
CAPTIONS = {
    OVERVIEW: "Left: each learned run's test MAE (dots), their median and its 95% interval. "
    "Right: the share of runs that {failed} (95% Wilson).",
    "mae_vs_max_freq.png": "Every run's test MAE (crosses: {failed}); the learned runs' median "
    "(95% interval) and the fitted power law (band).",
    "divergence_rate.png": "The share of runs that {failed} (95% Wilson) and the fitted "
    "logistic curve (95% band).",
    "learning_curves.png": "Training loss per epoch of up to {per} runs per max_freq.",
    "error_by_frequency.png": "The absolute error of each test prediction, by the true "
    "frequency, for the same runs.",
    ESCAPE_FIGURE: "The share of runs still on the plateau against optimizer updates "
    "(Kaplan–Meier), one curve per max_freq.",
}
# The methods are explained in docs/reading-the-report.md; a report links it relative to its
# own folder (METHODS# in a sentence becomes that link).
METHODS_DOC = Path(__file__).resolve().parent.parent / "docs" / "reading-the-report.md"
SETTING_TEXT = ("epochs", "samples_per_freq", "time_steps", "backend")


def title_of(runs: pd.DataFrame, name: str) -> str:
    """A report's title, naming the study's outcome."""
    failing = "never learning" if outcome_of(runs) is NEVER_LEARNED else "divergence"
    return f"Sine-frequency LSTM: error and {failing} vs max_freq ({name})"


def setting_labels(runs: pd.DataFrame) -> pd.Series:
    """Each run's setting of the varying parameters, as a label ('all runs' if none vary)."""
    labels = pd.Series("", index=runs.index, dtype=object)
    for setting, part in settings(runs):
        labels[part.index] = label(setting)
    return labels


def judged_runs(runs: pd.DataFrame, ratio: float | None) -> pd.DataFrame:
    """stats.judged, and with another threshold each run's escape_step re-judged from its
    mae_ratio_train history (read from the store)."""
    judged = stats.judged(runs, ratio)
    if ratio is None or not escape.has_progress(judged):
        return judged
    histories = store.metric_series(list(judged["run_id"]), "mae_ratio_train")
    return judged.assign(escape_step=escape.rejudge(judged, histories, ratio))


def plateau_histories(runs: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The mae_ratio_train histories of the full-budget runs with progress checks (what the
    stopping rule's check reads), from the store."""
    if not escape.has_progress(runs):
        return {}
    done = runs[(runs["status"] == "FINISHED") & runs["optimizer_steps"].notna()]
    full = done[~escape.stopped_of(done)]
    return store.metric_series(list(full["run_id"]), "mae_ratio_train") if len(full) else {}


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
    varying = varying_params(runs)
    if varying:
        parts.append(f"by {', '.join(varying)}")
    return ", ".join(parts)


def _markdown(sections: list[tuple[str, list[str]]]) -> list[str]:
    out = ["## Findings", ""]
    for title, lines in sections:
        if title:
            out.append(f"- **{title}**")
        out += [f"{'  ' if title else ''}- {line}" for line in lines]
    return [*out, ""]


def _inline(text: str) -> str:
    """**bold** and [text](link) of a markdown line, as HTML."""
    bold = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(text))
    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', bold)


def _html_table(frame: pd.DataFrame) -> Markup:
    cells = frame.map(lambda v: _inline(str(v)))
    return Markup(cells.to_html(index=False, border=0, escape=False))


TEMPLATES = Path(__file__).resolve().parent / "templates"


def render_html(out: Path, outcome, per_max_freq: int, **page) -> str:
    """report.html from templates/report.html.j2: the same content as report.md, with every
    figure embedded (self-contained)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True, lstrip_blocks=True
    )
    env.filters["inline"] = lambda text: Markup(_inline(str(text)))
    env.filters["table"] = _html_table

    def figure(name: str) -> Markup:
        data = base64.b64encode((out / name).read_bytes()).decode()
        return Markup(
            f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption(name, outcome, per_max_freq))}</figcaption>"
            "</figure>"
        )

    return env.get_template("report.html.j2").render(figure=figure, **page)


def caption(name: str, outcome, per_max_freq: int = 20) -> str:
    return CAPTIONS.get(name, "").format(failed=outcome.counted, per=per_max_freq)


def section_markdown(section: wording.Section) -> list[str]:
    """A wording.Section as markdown lines: title, paragraphs, bullets, tables."""
    out = [f"## {section.title}", ""]
    for paragraph in section.paragraphs:
        out += [paragraph, ""]
    if section.bullets:
        out += [*(f"- {line}" for line in section.bullets), ""]
    if len(section.table.columns):
        out += [markdown_table(section.table), ""]
    for caption, table in section.tables:
        out += [f"**{caption}**", "", markdown_table(table), ""]
    return out


# --- the analysis and the files ---------------------------------------------------------------


@dataclass(frozen=True)
class Results:
    """Every fit of a report, and the family of its tests."""

    fits: list[trends.Trends]
    effects: factors.FactorEffects | None
    comparison: backends.BackendComparison | None
    escapes: list[escape.Escape]
    family: family.Family

    def metrics(self) -> dict[str, float]:
        """The fits' metrics for the `analysis` run, with the Holm-adjusted p-values of the
        backend tests (`backend_mwu_p_holm/<where>`, `backend_divergence_p_holm/<where>`)."""
        out = {
            **trends.metrics(self.fits),
            **factors.metrics(self.effects),
            **backends.metrics(self.comparison),
            **escape.metrics(self.escapes),
        }
        for t in self.fits:
            suffix = setting_suffix(t.setting)
            out[f"trend_divergence_p_holm{suffix}"] = self.family.holm(
                ("divergence", label(t.setting))
            )
            out[f"trend_mae_p_holm{suffix}"] = self.family.holm(("error", label(t.setting)))
        if self.comparison is not None:
            params = backends.setting_columns(self.comparison.table)
            for _, row in self.comparison.table.iterrows():
                where = backends.where(row, params)
                out[f"backend_mwu_p_holm/{where}"] = self.family.holm(("backend_mwu", where))
                out[f"backend_divergence_p_holm/{where}"] = self.family.holm(
                    ("backend_fisher", where)
                )
        return {k: float(v) for k, v in out.items()}


def analyse(
    judged: pd.DataFrame,
    resamples: int = factors.RESAMPLES,
    seed: int = 0,
    histories: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    sections: tuple[str, ...] | None = None,
) -> Results:
    """The fits of the runs as judged (judged_runs): the trends always, and of escape, factors
    and backends those that `sections` names (None: every one that applies; a study file
    names its own). `histories` (plateau_histories) adds the stopping rule's check to the
    escape section."""

    def wanted(name: str) -> bool:
        return sections is None or name in sections

    fits = trends.fit(judged)
    effects = factors.effects(judged, resamples, seed) if wanted("factors") else None
    comparison = backends.compare(judged, resamples, seed) if wanted("backends") else None
    escapes = escape.fit(judged, histories) if wanted("escape") else []
    return Results(
        fits, effects, comparison, escapes, family.family_of(fits, effects, comparison, escapes)
    )


def write(
    runs: pd.DataFrame,
    summary: pd.DataFrame,
    title: str,
    ratio: float | None,
    out: Path,
    per_max_freq: int,
    results: Results | None = None,
    from_store: bool = True,
) -> list[Path]:
    """Every report file under `out`; returns their paths. `results`: analyse() of the runs
    as judged at `ratio` (judged_runs), made here if not given. Without `from_store` (runs
    re-read from a record's runs.csv) the two figures that need the store's histories and
    artifacts are not redrawn: those already in `out` are kept and linked."""
    out.mkdir(parents=True, exist_ok=True)
    setting = setting_text(runs)
    runs.to_csv(out / "runs.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    judged = judged_runs(runs, ratio)
    r = analyse(judged) if results is None else results
    extra = []
    names = list(FIGURES)
    if r.escapes:
        extra.append(wording.escape_section(r.escapes, bool(varying_params(judged)), r.family))
        figures.escape_survival(r.escapes, setting, out / ESCAPE_FIGURE)
        names.append(ESCAPE_FIGURE)
    if r.effects is not None:
        extra.append(wording.effects_section(r.effects, r.family))
    if r.comparison is not None and len(r.comparison.table):
        extra.append(wording.backends_section(r.comparison, r.family))
    sample = sample_runs(judged, per_max_freq)
    figures.mae_vs_max_freq(judged, summary, setting, out / FIGURES[0], r.fits)
    outcome = outcome_of(judged)
    figures.error_and_divergence(judged, summary, setting, out / OVERVIEW, outcome)
    figures.divergence_rate(summary, judged, setting, out / FIGURES[1], r.fits, outcome)
    if from_store:
        figures.learning_curves(loss_histories(sample), setting, out / FIGURES[2])
        figures.error_by_frequency(prediction_errors(sample), setting, out / FIGURES[3])
    else:
        names = [n for n in names if n not in FIGURES[2:] or (out / n).exists()]

    threshold = (
        f"re-judged at mae_ratio_train ≥ {ratio:g}"
        if ratio is not None
        else "as logged by each run (mae_ratio_train ≥ its divergence_ratio)"
    )
    readable = wording.readable_summary(summary, outcome)
    table = markdown_table(readable)
    max_freqs = ", ".join(map(str, sorted(summary["max_freq"].unique())))
    counted = (
        "the share of finished runs that never learned within the budget (the study stops "
        "runs once confirmed off the plateau)"
        if outcome is NEVER_LEARNED
        else "the share of finished runs that diverged"
    )
    intro = (
        f"{len(runs)} runs over max_freq {max_freqs} ({setting}). Per row: {counted} (95% "
        "Wilson), and the test MAE of the runs that learned (median, 95% order-statistic "
        "interval, '–' under 6 runs); the last MAE column mixes in the rest. FAILED/KILLED runs "
        "are counted, not analysed ([columns](METHODS#the-summary-table))."
    )
    if ratio is not None:
        intro += f" Divergence {threshold}."
    if duplicates := runs.attrs.get("duplicates", 0):
        intro += (
            f" {duplicates} more FINISHED run{'s' * (duplicates != 1)} of a pair already "
            "counted (same study and run_key: trained twice) left out, the first kept."
        )
    sections = wording.findings(r.fits, judged, r.family)
    alt = f"Error of the runs that learned, and {outcome.title.lower()}, against max_freq"
    overview = f"![{alt}]({OVERVIEW})"
    tests = wording.tests_table(r.family, outcome)
    tests_intro = (
        f"Two-sided p-values, Holm-adjusted over all {len(tests)} tests; sentences cite them by "
        "number."
    )
    md = [f"# {title}", "", overview, "", f"*{caption(OVERVIEW, outcome)}*", ""]
    at_a_glance = wording.glance(r.fits, judged, r.family)
    md += ["## At a glance", "", *(f"- {line}" for line in at_a_glance), ""]
    md += _markdown(sections)
    md += [line for section in extra for line in section_markdown(section)]
    md += [intro, "", table, ""]
    if len(tests):
        md += ["## Tests", "", tests_intro, "", markdown_table(tests), ""]
    for name in names:
        md += [f"![{name}]({name})", "", f"*{caption(name, outcome, per_max_freq)}*", ""]
    methods = os.path.relpath(METHODS_DOC, out.resolve())
    text = "\n".join(md).replace("METHODS#", f"{methods}#")
    (out / "report.md").write_text(text.rstrip("\n") + "\n")

    page = render_html(
        title=title,
        overview=OVERVIEW,
        glance=at_a_glance,
        findings=sections,
        sections=extra,
        intro=intro,
        summary=readable,
        tests=tests,
        tests_intro=tests_intro,
        images=names,
        out=out,
        outcome=outcome,
        per_max_freq=per_max_freq,
    )
    (out / "report.html").write_text(page.replace("METHODS#", f"{methods}#"))
    files = ("runs.csv", "summary.csv", OVERVIEW, *names, "report.md", "report.html")
    return [out / n for n in files]
