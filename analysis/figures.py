"""The report's figures: matplotlib, PNG, readable at README size.

One colour (or line style) per setting of the varying parameters (analysis/settings.py); the fitted
trends of analysis/trends.py are drawn with their 95% bands next to the per-point intervals.
"""

import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import trends
from analysis.settings import DIVERGED, Outcome, diverged_of, label, settings
from pipeline.config import DataConfig
from pipeline.plots import pyplot

STYLES = ("-", "--", ":", "-.")


def _aliasing_lines(ax, runs: pd.DataFrame) -> None:
    """Mark the aliasing limit of each time_steps in the runs, where the x axis reaches it."""
    steps = sorted(int(v) for v in runs["time_steps"].dropna().unique())
    for t in steps:
        first = DataConfig(time_steps=t).first_aliased_max_freq
        if runs["max_freq"].max() >= first:
            where = f", time_steps={t}" if len(steps) > 1 else ""
            ax.axvline(
                first, color="crimson", ls=":", lw=1.5,
                label=f"aliasing from max_freq={first} (max_freq − 1 ≥ (T − 1)/2{where})",
            )  # fmt: skip


def _fit_with_band(ax, curve, column: str, color, label: str) -> None:
    """A fitted curve (`column` against max_freq) and its 95% band, in the setting's colour."""
    ax.plot(curve["max_freq"], curve[column], color=color, lw=2, label=label)
    ax.fill_between(curve["max_freq"], curve["low"], curve["high"], color=color, alpha=0.15)


def _finish(fig, ax, path: Path, title: str) -> None:
    ax.set_title(textwrap.fill(title, 90), fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", color="gray")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    pyplot().close(fig)


def _select(frame: pd.DataFrame, setting: dict) -> pd.DataFrame:
    """The rows of `frame` (the summary) that belong to `setting`."""
    keep = np.ones(len(frame), dtype=bool)
    for name, value in setting.items():
        column = frame[name]
        keep &= (column.isna() if value is None else column.eq(value).fillna(False)).to_numpy(bool)
    return frame[keep]


def _parts(runs: pd.DataFrame, fits: list[trends.Trends] | None):
    """(index, prefix for legend labels, colour, setting, its runs, its fit or None)."""
    by_label = {label(t.setting): t for t in fits or []}
    parts = settings(runs)
    colors = pyplot().cm.tab10(np.arange(len(parts)) % 10)
    for i, (color, (setting, part)) in enumerate(zip(colors, parts, strict=True)):
        name = label(setting)
        prefix = f"{name}: " if len(parts) > 1 else ""
        yield i, len(parts), prefix, color, setting, part, by_label.get(name)


def _bars(centre, low, high) -> list[np.ndarray]:
    """errorbar's yerr: distances to the interval ends (never negative from rounding)."""
    centre = np.asarray(centre, dtype=float)
    return [
        np.clip(centre - np.asarray(low, dtype=float), 0, None),
        np.clip(np.asarray(high, dtype=float) - centre, 0, None),
    ]


def _log_x_ticks(ax, values) -> None:
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.set_xticks(sorted(set(values)))
    ax.set_xticklabels([f"{v:g}" for v in sorted(set(values))])
    ax.xaxis.set_minor_formatter(NullFormatter())


def error_and_divergence(
    runs: pd.DataFrame,
    summary: pd.DataFrame,
    setting: str,
    path: Path,
    outcome: Outcome = DIVERGED,
):
    """The figure the project exists for, two panels against max_freq: the test error of the
    runs that learned (their median with its 95% interval, each run a dot) and the rate of
    the study's outcome (diverged, or never learned within the budget) with 95% Wilson
    intervals; one colour per setting."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2), dpi=110)
    done = runs[runs["status"] == "FINISHED"]
    freqs = sorted({int(m) for m in done["max_freq"]}) or [1]
    errors = False
    for i, count, prefix, color, part_setting, part, _fit in _parts(done, None):
        rows = _select(summary, part_setting).sort_values("max_freq")
        shift = 1 + 0.02 * (i - (count - 1) / 2)  # side by side on the log axis
        learned = part[~diverged_of(part).to_numpy() & part["mae_test"].notna().to_numpy()]
        left.scatter(learned["max_freq"] * shift, learned["mae_test"], s=8, alpha=0.3,
                     color=color, lw=0)  # fmt: skip
        errors = errors or bool((learned["mae_test"] > 0).any())
        median = rows["mae_test_learned_median"].to_numpy(float)
        low = rows["mae_test_learned_median_ci_low"].to_numpy(float)
        high = rows["mae_test_learned_median_ci_high"].to_numpy(float)
        left.errorbar(
            rows["max_freq"] * shift, median,
            yerr=_bars(median, np.where(np.isnan(low), median, low),
                       np.where(np.isnan(high), median, high)),
            fmt="o-", color=color, capsize=3, label=f"{prefix}median, 95% CI",
        )  # fmt: skip
        rate = rows["divergence_rate"].to_numpy(float)
        right.errorbar(
            rows["max_freq"] * shift, rate,
            yerr=_bars(rate, rows["divergence_ci_low"], rows["divergence_ci_high"]),
            fmt="o-", color=color, capsize=3, label=f"{prefix}rate, 95% Wilson",
        )  # fmt: skip
    for ax in (left, right):
        ax.set_xlim(min(freqs) / 1.15, max(freqs) * 1.15)  # also where a panel has no point
        _log_x_ticks(ax, freqs)
        ax.set_xlabel("max_freq (frequencies 1 … max_freq−1)")
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    if errors:
        left.set_yscale("log")
    else:
        left.text(0.5, 0.5, "no run that learned has a final error\n(see the findings)",
                  transform=left.transAxes, ha="center", color="gray", fontsize=8)  # fmt: skip
    left.set_ylabel("test MAE of the runs that learned (cycles per 2π)")
    left.set_title("Error, when it learns", fontsize=10)
    right.set_ylim(-0.02, 1.02)
    right.set_ylabel(f"fraction of finished runs {outcome.counted}")
    right.set_title(
        "Divergence" if outcome is DIVERGED else "Never learned within the budget", fontsize=10
    )
    fig.suptitle(textwrap.fill(f"Error and failure to learn vs max_freq: {setting}", 110),
                 fontsize=10)  # fmt: skip
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def mae_vs_max_freq(
    runs: pd.DataFrame,
    summary: pd.DataFrame,
    setting: str,
    path: Path,
    fits: list[trends.Trends] | None = None,
):
    """Every run (diverged ones as crosses), the median of the runs that learned with its 95%
    interval per max_freq, and the power law fitted to them."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    for i, count, prefix, color, part_setting, part, fit in _parts(runs, fits):
        done = part[(part["status"] == "FINISHED") & np.isfinite(part["mae_test"])]
        spread = np.exp(0.04 * (i - (count - 1) / 2))  # settings side by side, on a log axis
        jitter = np.exp((done["seed"].astype(float) % 7 - 3) * 0.012) * spread
        diverged = diverged_of(done).to_numpy()
        for flag, marker, text in (
            (False, "o", "runs"),
            (True, "x", "diverged runs (not fitted)"),
        ):
            sel = diverged == flag
            ax.scatter(
                done["max_freq"].to_numpy(float)[sel] * jitter.to_numpy()[sel],
                done["mae_test"].to_numpy()[sel],
                s=12,
                alpha=0.35,
                marker=marker,
                color=color,
                label=text if i == 0 else None,
            )
        rows = _select(summary, part_setting)
        med = rows["mae_test_learned_median"].to_numpy(float)
        if not np.isfinite(med).any():
            continue  # no run in this setting learned
        ax.errorbar(
            rows["max_freq"].to_numpy(float) * spread,
            med,
            yerr=_bars(
                med,
                rows["mae_test_learned_median_ci_low"],
                rows["mae_test_learned_median_ci_high"],
            ),
            fmt="s",
            ms=5,
            color=color,
            mec="black",
            capsize=3,
            label=f"{prefix}median of the runs that learned, 95% CI",
        )
        if fit is not None and not math.isnan(fit.error.exponent):
            e = fit.error
            curve = trends.error_curve(e, np.geomspace(min(e.max_freqs), max(e.max_freqs), 100))
            _fit_with_band(
                ax,
                curve,
                "mae",
                color,
                f"{prefix}fit ∝ max_freq^{e.exponent:.2f} [{e.low:.2f}, {e.high:.2f}], "
                f"{e.runs} runs",
            )
        for ref, style, text in (
            ("ref_fft_mae_test_median", "--", "FFT peak (no learning)"),
            ("ref_forest_mae_test_median", "-.", "random forest on |FFT|"),
        ):
            if rows[ref].notna().any():
                ax.plot(
                    rows["max_freq"],
                    rows[ref],
                    ls=style,
                    lw=1.2,
                    color="dimgray" if count == 1 else color,
                    label=text if i == 0 else None,
                )
    _aliasing_lines(ax, runs)
    _log_x_ticks(ax, runs["max_freq"].dropna().astype(int))
    ax.set_yscale("log")
    ax.set_xlabel("max_freq (frequencies 1 … max_freq−1; log scale)")
    ax.set_ylabel("test MAE (cycles per 2π, log scale)")
    _finish(fig, ax, path, f"Test error of the runs that learned vs max_freq, power-law fit and "
            f"95% band: {setting}")  # fmt: skip


def divergence_rate(
    summary: pd.DataFrame,
    runs: pd.DataFrame,
    setting: str,
    path: Path,
    fits: list[trends.Trends] | None = None,
    outcome: Outcome = DIVERGED,
):
    """The observed rate of the study's outcome (diverged; never learned within the budget in
    a study that stops runs) with 95% Wilson intervals per max_freq, and the fitted logistic
    curve
    with its 95% band where one trend fits (the report's deviance test does not reject it
    against max_freq as categories); where it is rejected no curve is drawn, as the report
    gives no odds ratio."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    for i, count, prefix, color, part_setting, _part, fit in _parts(runs, fits):
        rows = _select(summary, part_setting)
        x = rows["max_freq"].to_numpy(float) + 0.25 * (i - (count - 1) / 2)
        rate = rows["divergence_rate"].to_numpy(float)
        ax.errorbar(
            x,
            rate,
            yerr=_bars(rate, rows["divergence_ci_low"], rows["divergence_ci_high"]),
            fmt="o",
            color=color,
            capsize=3,
            label=f"{prefix}observed rate, 95% Wilson interval",
        )
        if count == 1:
            for xi, yi, n in zip(x, rate, rows["finished"], strict=True):
                ax.annotate(
                    f"n={n}", (xi, yi), textcoords="offset points", xytext=(6, 4), fontsize=7
                )
        d = fit.divergence if fit is not None else None
        shape = fit.shape if fit is not None else None
        if shape is not None and shape.p < trends.ALPHA:
            ax.plot([], [], " ", label=f"{prefix}one logistic trend rejected (deviance, "
                    f"bootstrap p = {shape.p:.2g}): none drawn")  # fmt: skip
        elif d is not None and d.method:
            grid = np.linspace(min(d.max_freqs), max(d.max_freqs), 200)
            curve = trends.divergence_curve(d, grid)
            how = "Firth logistic" if d.method == "firth" else "logistic"
            _fit_with_band(
                ax,
                curve,
                "rate",
                color,
                f"{prefix}{how} fit: odds ×{d.or10:.3g} [{d.or10_low:.3g}, "
                f"{d.or10_high:.3g}] per +{trends.PER}",
            )
    _aliasing_lines(ax, runs)
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlabel("max_freq (frequencies 1 … max_freq−1)")
    ax.set_ylabel(f"fraction of finished runs {outcome.counted}")
    title = "Divergence rate" if outcome is DIVERGED else "Never learned within the budget"
    _finish(fig, ax, path, f"{title} vs max_freq, 95% intervals: {setting}")


def _by_setting_and_freq(keys) -> tuple[dict, dict]:
    """Line colour per max_freq, line style per setting label."""
    plt = pyplot()
    freqs = sorted({f for _, f in keys})
    labels = sorted({s for s, _ in keys})
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(freqs)))
    return (
        dict(zip(freqs, colors, strict=True)),
        {s: STYLES[i % len(STYLES)] for i, s in enumerate(labels)},
    )


def learning_curves(curves: dict[tuple[str, int], list[np.ndarray]], setting: str, path: Path):
    """curves: (setting label, max_freq) → loss histories of its runs; plots the median across
    runs, one colour per max_freq and one line style per setting."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    color_of, style_of = _by_setting_and_freq(curves)
    for (name, max_freq), histories in sorted(curves.items()):
        length = max(len(h) for h in histories)
        padded = np.full((len(histories), length), np.nan)
        for i, h in enumerate(histories):
            padded[i, : len(h)] = np.where(np.isfinite(h), h, np.nan)
        with np.errstate(all="ignore"):
            median = np.nanmedian(padded, axis=0)
        where = f", {name}" if len(style_of) > 1 else ""
        ax.plot(
            np.arange(length),
            median,
            color=color_of[max_freq],
            ls=style_of[name],
            label=f"max_freq={max_freq}{where} ({len(histories)} run{'s' * (len(histories) > 1)})",
        )
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss, MSE (median across runs, log scale)")
    _finish(fig, ax, path, f"Learning curves by max_freq: {setting}")


def error_by_frequency(errors: pd.DataFrame, setting: str, path: Path):
    """errors: columns setting (label), max_freq, true_freq, abs_error (test predictions of
    finished runs)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    groups = sorted(errors.groupby(["setting", "max_freq"]))
    color_of, style_of = _by_setting_and_freq([key for key, _ in groups])
    for (name, max_freq), group in groups:
        med = group.groupby("true_freq")["abs_error"].median()
        where = f", {name}" if len(style_of) > 1 else ""
        ax.plot(
            med.index,
            med.to_numpy(),
            marker=".",
            color=color_of[max_freq],
            ls=style_of[name],
            label=f"max_freq={max_freq}{where}",
        )
    ax.set_yscale("log")
    ax.set_xlabel("true frequency (cycles per 2π)")
    ax.set_ylabel("median |error| on the test set (log scale)")
    _finish(fig, ax, path, f"Error by true frequency: {setting}")


def escape_survival(escapes: list, setting: str, path: Path):
    """The fraction still on the plateau at each check (escape.fit). Top: every max_freq
    against optimizer updates and against epochs, one colour per max_freq and one line style
    per setting, for comparison. Below: one small panel per setting and max_freq with its
    pointwise 95% Clopper–Pearson band, from update 0 to its budget and no further (with
    every band in one panel they hide each other)."""
    plt = pyplot()
    keys = [(label(e.setting), m) for e in escapes for m in e.curves]
    color_of, style_of = _by_setting_and_freq(keys)
    rows = max(1, math.ceil(len(keys) / 6))
    cols = max(2, math.ceil(len(keys) / rows))  # two at least: the top row has two halves
    fig = plt.figure(figsize=(12, 4.4 + 2.3 * rows), dpi=110)
    grid = fig.add_gridspec(1 + rows, cols, height_ratios=[2.2] + [1] * rows)
    half = max(1, cols // 2)
    top = [fig.add_subplot(grid[0, :half]), fig.add_subplot(grid[0, half:])]
    panels = []
    for e in escapes:
        name = label(e.setting)
        counts = dict(zip(e.table["max_freq"], e.table["runs"], strict=True))
        for max_freq, pair in sorted(e.curves.items()):
            where = f", {name}" if len(style_of) > 1 else ""
            color = color_of[max_freq]
            for ax, curve in zip(top, pair, strict=True):
                ax.step(curve["time"], curve["surv"], where="post", color=color,
                        ls=style_of[name],
                        label=f"max_freq={max_freq}{where} ({counts[max_freq]} runs)")  # fmt: skip
            note = " (aliased)" if max_freq in e.aliased else ""
            panels.append((f"max_freq={max_freq}{note}{where}", pair[0], color, e.budget))
        top[0].axvline(e.budget, color="gray", ls=":", lw=1)
    for ax, unit in zip(top, ("optimizer updates", "epochs"), strict=True):
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel(unit)
        ax.set_ylabel("fraction still on the plateau")
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    top[0].set_title("against optimizer updates (dotted: common budget)", fontsize=9)
    top[1].set_title("against epochs", fontsize=9)
    first = None
    for i, (title, curve, color, budget) in enumerate(panels):
        ax = fig.add_subplot(grid[1 + i // cols, i % cols], sharex=first, sharey=first)
        first = first or ax
        ax.fill_between(curve["time"], curve["low"], curve["high"], step="post", color=color,
                        alpha=0.25, lw=0)  # fmt: skip
        ax.step(curve["time"], curve["surv"], where="post", color=color)
        ax.axvline(budget, color="gray", ls=":", lw=1)
        ax.set_title(title, fontsize=8)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=7)
        if i % cols == 0:
            ax.set_ylabel("still on, pointwise 95% band", fontsize=7)
        if i + cols >= len(panels):  # the lowest panel of its column
            ax.set_xlabel("optimizer updates", fontsize=7)
    title = (
        "Runs still on the plateau at each check (pointwise 95% Clopper–Pearson bands below): "
        f"{setting}"
    )
    fig.suptitle(textwrap.fill(title, 120), fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
