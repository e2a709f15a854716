"""The report's figures: matplotlib, PNG, readable at README size."""

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.plots import _pyplot


def _aliasing_line(ax, runs: pd.DataFrame) -> None:
    """Mark (time_steps − 1)/2 where the x axis reaches it."""
    limit = (runs["time_steps"].dropna().min() - 1) / 2
    if runs["max_freq"].max() >= limit:
        ax.axvline(limit, color="crimson", ls=":", lw=1.5, label=f"aliasing limit {limit:g}")


def _finish(fig, ax, path: Path, title: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    _pyplot().close(fig)


def mae_vs_max_freq(runs: pd.DataFrame, summary: pd.DataFrame, setting: str, path: Path):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    done = runs[(runs["status"] == "FINISHED") & np.isfinite(runs["mae_test"])]
    jitter = (done["seed"].astype(float) % 7 - 3) * 0.12
    for flag, marker, color, label in (
        (False, "o", "tab:blue", "run"),
        (True, "x", "tab:red", "diverged run"),
    ):
        part = done[done["diverged"].fillna(False) == flag]
        ax.scatter(
            part["max_freq"] + jitter[part.index],
            part["mae_test"],
            s=14,
            alpha=0.5,
            marker=marker,
            color=color,
            label=label,
        )
    x = summary["max_freq"]
    ax.plot(x, summary["mae_test_median"], color="black", lw=2, label="median")
    ax.fill_between(
        x,
        summary["mae_test_q1"],
        summary["mae_test_q3"],
        color="black",
        alpha=0.12,
        label="interquartile range",
    )
    for ref, style, label in (
        ("ref_fft_mae_test_median", "--", "FFT peak (no learning)"),
        ("ref_forest_mae_test_median", "-.", "random forest on |FFT|"),
    ):
        if summary[ref].notna().any():
            ax.plot(x, summary[ref], ls=style, lw=1.5, label=label)
    _aliasing_line(ax, runs)
    ax.set_yscale("log")
    ax.set_xlabel("max_freq (frequencies 1 … max_freq−1)")
    ax.set_ylabel("test MAE (cycles per 2π, log scale)")
    _finish(fig, ax, path, f"LSTM test error vs max_freq: {setting}")


def divergence_rate(summary: pd.DataFrame, runs: pd.DataFrame, setting: str, path: Path):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    x = summary["max_freq"]
    ax.plot(x, summary["divergence_rate"], marker="o", color="tab:red", label="divergence rate")
    ax.fill_between(
        x,
        summary["divergence_ci_low"],
        summary["divergence_ci_high"],
        color="tab:red",
        alpha=0.15,
        label="95% Wilson interval",
    )
    for xi, yi, n in zip(x, summary["divergence_rate"], summary["finished"], strict=True):
        ax.annotate(
            f"n={n}", (xi, yi), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7
        )
    _aliasing_line(ax, runs)
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlabel("max_freq (frequencies 1 … max_freq−1)")
    ax.set_ylabel("fraction of finished runs that diverged")
    _finish(fig, ax, path, f"Divergence rate vs max_freq: {setting}")


def learning_curves(curves: dict[int, list[np.ndarray]], setting: str, path: Path):
    """curves: max_freq → loss histories of its runs; plots the median across runs."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    colors = plt.cm.viridis(np.linspace(0, 0.9, max(len(curves), 1)))
    for color, (max_freq, histories) in zip(colors, sorted(curves.items()), strict=False):
        length = max(len(h) for h in histories)
        padded = np.full((len(histories), length), np.nan)
        for i, h in enumerate(histories):
            padded[i, : len(h)] = np.where(np.isfinite(h), h, np.nan)
        with np.errstate(all="ignore"):
            median = np.nanmedian(padded, axis=0)
        ax.plot(
            np.arange(length),
            median,
            color=color,
            label=f"max_freq={max_freq} ({len(histories)} runs)",
        )
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss, MSE (median across runs, log scale)")
    _finish(fig, ax, path, f"Learning curves by max_freq: {setting}")


def error_by_frequency(errors: pd.DataFrame, setting: str, path: Path):
    """errors: columns max_freq, true_freq, abs_error (test predictions of finished runs)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    groups = sorted(errors.groupby("max_freq"))
    colors = plt.cm.viridis(np.linspace(0, 0.9, max(len(groups), 1)))
    for color, (max_freq, group) in zip(colors, groups, strict=False):
        med = group.groupby("true_freq")["abs_error"].median()
        ax.plot(med.index, med.to_numpy(), marker=".", color=color, label=f"max_freq={max_freq}")
    ax.set_yscale("log")
    ax.set_xlabel("true frequency (cycles per 2π)")
    ax.set_ylabel("median |error| on the test set (log scale)")
    _finish(fig, ax, path, f"Error by true frequency: {setting}")
