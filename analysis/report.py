"""Write a study's report: tables, figures, report.md and a self-contained report.html."""

import base64
import html
import math
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import figures, store

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
    "mae_test_median": "median test MAE",
    "mae_test_iqr": "IQR",
    "mae_test_mean_ci": "mean [95% CI]",
    "mae_test_median_converged": "median, non-diverged",
    "divergence": "diverged [95% Wilson]",
    "ref_fft_mae_test_median": "FFT peak",
    "ref_forest_mae_test_median": "forest",
}


def sample_runs(runs: pd.DataFrame, per_max_freq: int) -> pd.DataFrame:
    """Up to `per_max_freq` FINISHED runs per max_freq (lowest seeds first), for the figures
    that need one store query per run."""
    done = runs[runs["status"] == "FINISHED"]
    return done.sort_values("seed").groupby("max_freq").head(per_max_freq)


def loss_histories(runs: pd.DataFrame) -> dict[int, list[np.ndarray]]:
    histories = store.metric_histories(list(runs["run_id"]), "loss")
    curves: dict[int, list[np.ndarray]] = {}
    for run_id, max_freq in zip(runs["run_id"], runs["max_freq"], strict=True):
        if run_id in histories:
            curves.setdefault(int(max_freq), []).append(histories[run_id])
    return curves


def prediction_errors(runs: pd.DataFrame) -> pd.DataFrame:
    """|error| of every test prediction of the runs, from their evaluate runs' artifacts."""
    with_eval = runs.dropna(subset=["eval_run_id"])
    uris = store.artifact_uris(list(with_eval["eval_run_id"]))
    frames = []
    for eval_run_id, max_freq in zip(with_eval["eval_run_id"], with_eval["max_freq"], strict=True):
        table = store.read_artifact_csv(uris.get(eval_run_id, ""), "predictions/test.csv")
        if table is not None:
            frames.append(
                pd.DataFrame(
                    {
                        "max_freq": int(max_freq),
                        "true_freq": table["true_freq"],
                        "abs_error": table["error"].abs(),
                    }
                )
            )
    if not frames:
        return pd.DataFrame(columns=["max_freq", "true_freq", "abs_error"])
    return pd.concat(frames)


def _fmt(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.3g}"


def readable_summary(summary: pd.DataFrame) -> pd.DataFrame:
    s = summary
    view = s[["max_freq", "runs", "finished", "failed", "killed"]].copy()
    view["mae_test_median"] = s["mae_test_median"].map(_fmt)
    view["mae_test_iqr"] = [
        f"{_fmt(a)}–{_fmt(b)}" for a, b in zip(s["mae_test_q1"], s["mae_test_q3"], strict=True)
    ]
    view["mae_test_mean_ci"] = [
        f"{_fmt(m)} [{_fmt(lo)}, {_fmt(hi)}]"
        for m, lo, hi in zip(
            s["mae_test_mean"], s["mae_test_ci_low"], s["mae_test_ci_high"], strict=True
        )
    ]
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
    first = runs.iloc[0]
    return (
        f"{first['epochs']} epochs, {first['samples_per_freq']} series/frequency, "
        f"{first['time_steps']} steps, {first['backend']}"
    )


def write(
    runs: pd.DataFrame,
    summary: pd.DataFrame,
    title: str,
    ratio: float | None,
    out: Path,
    per_max_freq: int,
) -> list[Path]:
    """Every report file under `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    setting = setting_text(runs)
    runs.to_csv(out / "runs.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    sample = sample_runs(runs, per_max_freq)
    figures.mae_vs_max_freq(runs, summary, setting, out / FIGURES[0])
    figures.divergence_rate(summary, runs, setting, out / FIGURES[1])
    figures.learning_curves(loss_histories(sample), setting, out / FIGURES[2])
    figures.error_by_frequency(prediction_errors(sample), setting, out / FIGURES[3])

    threshold = (
        f"re-judged at mae_ratio_train ≥ {ratio:g}"
        if ratio is not None
        else "as logged by each run (mae_ratio_train ≥ its divergence_ratio)"
    )
    readable = readable_summary(summary)
    table = markdown_table(readable)
    intro = (
        f"{len(runs)} runs over max_freq {', '.join(map(str, summary['max_freq']))} "
        f"({setting}). MAE in cycles per 2π on the held-out set; intervals are 95%. "
        f"Divergence: non-finite loss, or {threshold}. FAILED/KILLED runs are counted, not "
        f"used in the statistics. Learning curves and error by frequency use up to "
        f"{per_max_freq} finished runs per max_freq."
    )
    md = [f"# {title}", "", intro, "", table, ""]
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
        f"<h1>{html.escape(title)}</h1><p>{html.escape(intro)}</p>"
        f"{readable.to_html(index=False, border=0)}{images}</body></html>"
    )
    (out / "report.html").write_text(page)
    return [out / n for n in ("runs.csv", "summary.csv", *FIGURES, "report.md", "report.html")]
