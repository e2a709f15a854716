"""Figures logged by the pipeline's steps (matplotlib, Agg, PNG)."""

from pathlib import Path

import numpy as np


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def learning_curve(
    loss: list[float],
    title: str,
    path: Path,
    progress: list[tuple[int, float]] | None,
    threshold: float,
) -> None:
    """The loss per epoch; beside it, when given, mae_ratio_train against optimizer updates
    with the plateau threshold."""
    plt = pyplot()
    panels = 2 if progress else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4), dpi=100, squeeze=False)
    ax = axes[0, 0]
    epochs = np.arange(len(loss))
    values = np.asarray(loss, dtype=float)
    ax.plot(epochs, np.where(np.isfinite(values), values, np.nan), label="training loss (MSE)")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean squared error (training units²)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    if progress:
        ax = axes[0, 1]
        steps, ratios = (np.asarray(v, dtype=float) for v in zip(*progress, strict=True))
        ax.plot(steps, np.where(np.isfinite(ratios), ratios, np.nan), marker=".",
                label="mae_ratio_train (no dropout)")  # fmt: skip
        text = f"plateau threshold {threshold:g} (divergence_ratio)"
        ax.axhline(threshold, color="crimson", ls="--", lw=1, label=text)
        ax.set_yscale("log")
        ax.set_xlabel("optimizer updates")
        ax.set_ylabel("training MAE / constant-guess MAE (log scale)")
        ax.set_title("Leaving the plateau")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def predicted_vs_true(sets: dict[str, tuple[np.ndarray, np.ndarray]], title: str, path: Path):
    """sets: split name → (true frequency, prediction)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5), dpi=100)
    top = max(float(np.max(true)) for true, _ in sets.values()) + 1
    ax.plot([0, top], [0, top], color="grey", lw=1, ls="--", label="perfect prediction")
    for (name, (true, pred)), marker in zip(sets.items(), "o^", strict=False):
        jitter = (np.arange(len(true)) % 7 - 3) * 0.03  # spread points that share a frequency
        ax.scatter(true + jitter, pred, s=12, alpha=0.6, marker=marker, label=f"{name} set")
    ax.set_xlabel("true frequency (cycles per 2π)")
    ax.set_ylabel("predicted frequency (cycles per 2π)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
