"""Which runs belong together: the parameters that vary among them besides max_freq and seed
(declared grid axes or not), the runs of each combination (a *setting*), and how a setting is
written in labels and metric names. Every fit and table of the analysis is made per setting:
runs that differ in, say, learning_rate are never pooled.
"""

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.load import PARAM_TYPES
from pipeline.names import GRID_AXES_TAG

GRID_AXES = ("max_freq", "seed")  # every sweep's axes; others are named by the grid_axes tag


def varying_params(runs: pd.DataFrame) -> list[str]:
    """Pipeline parameters other than the grid axes that take more than one value in `runs`
    (a missing value counts as a value). Run bookkeeping columns are not parameters."""
    return [
        name
        for name in PARAM_TYPES
        if name not in GRID_AXES and name in runs and runs[name].nunique(dropna=False) > 1
    ]


def declared_axes(runs: pd.DataFrame) -> list[str]:
    """The parameters that the runs' sweeps declared as grid axes besides max_freq and seed
    (the `grid_axes` tag of each main run), sorted."""
    if GRID_AXES_TAG not in runs:
        return []
    tags = runs[GRID_AXES_TAG].dropna().unique()
    return sorted({axis for text in tags for axis in str(text).split(",") if axis})


def plain(value: Any) -> Any:
    if pd.isna(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def settings(
    runs: pd.DataFrame, params: list[str] | None = None
) -> list[tuple[dict[str, Any], pd.DataFrame]]:
    """(setting, its runs) per combination of `params` (default: `varying_params`), sorted;
    a setting maps each parameter to its value (None: not logged). [({}, runs)] if none vary."""
    params = varying_params(runs) if params is None else list(params)
    if not params:
        return [({}, runs)]
    out = []
    for key, group in runs.groupby(params, dropna=False, sort=True):
        values = key if isinstance(key, tuple) else (key,)
        out.append(({p: plain(v) for p, v in zip(params, values, strict=True)}, group))
    return out


def value_text(value: Any) -> str:
    """A parameter value as text: 0.1, 'jax', 'unset' (missing)."""
    value = plain(value)
    if value is None:
        return "unset"
    return f"{value:g}" if isinstance(value, float) else str(value)


def label(setting: dict[str, Any]) -> str:
    """'dropout=0.2, backend=jax'; 'all runs' for the empty setting."""
    return ", ".join(f"{k}={value_text(v)}" for k, v in setting.items()) or "all runs"


def diverged_of(finished: pd.DataFrame) -> pd.Series:
    """The verdict of FINISHED runs as bools; a run without one counts as diverged."""
    return finished["diverged"].fillna(True).astype(bool)


@dataclass(frozen=True)
class Outcome:
    """What a study's count of failed runs measures, and its words. A run trained to its whole
    budget is judged at the end: **diverged** (on the plateau after its last update). A study
    that stops runs once confirmed off the plateau (stop_on_escape) cannot see the end: it
    counts the runs that **never learned within the budget** (never confirmed off the plateau),
    a first-passage outcome that misses the runs that learned and fell back (relapses). The
    two are never reported as one."""

    key: str  # "diverged" | "never_learned"
    counted: str  # "… of 32 finished runs <counted>"
    title: str  # a finding's head: "<title> vs max_freq"
    odds: str  # "the odds of <odds>"
    none: str  # the head when no run failed
    every: str  # … when every run failed
    column: str  # a table column, a figure axis


DIVERGED = Outcome(
    "diverged", "diverged", "Divergence", "diverging", "No divergence observed",
    "Every run diverged", "diverged",
)  # fmt: skip
NEVER_LEARNED = Outcome(
    "never_learned", "never learned within the budget", "Never learning within the budget",
    "never learning within the budget", "Every run learned within the budget",
    "No run learned within the budget", "never learned within the budget",
)  # fmt: skip


def outcome_of(runs: pd.DataFrame) -> Outcome:
    """NEVER_LEARNED for the runs of a study that stops runs at a confirmed escape (the
    parameter stop_on_escape, or a run the rule stopped), else DIVERGED."""
    stopping = bool(stopped_of(runs).any())
    if "stop_on_escape" in runs:
        flags = runs["stop_on_escape"].astype("string").str.lower().eq("true").fillna(False)
        stopping = stopping or bool(flags.any())
    return NEVER_LEARNED if stopping else DIVERGED


def stopped_of(runs: pd.DataFrame) -> np.ndarray:
    """Runs the stopping rule ended at a confirmed escape (tag stopped_on_escape=true): they
    count as not diverged (a few would have relapsed by the budget), and their errors are at
    the stopping update, not at the budget."""
    if "stopped_on_escape" not in runs:
        return np.zeros(len(runs), bool)
    flags = runs["stopped_on_escape"].astype("string").str.lower().eq("true")
    return flags.fillna(False).to_numpy(bool)


def metric_part(text: Any) -> str:
    """A value as a valid part of an MLflow metric name."""
    return re.sub(r"[^A-Za-z0-9_.\- ]", "_", value_text(text))


def setting_suffix(setting: dict[str, Any]) -> str:
    """The metric-name suffix of a setting: '/<param>_<value>' per varying parameter."""
    return "".join(f"/{metric_part(k)}_{metric_part(v)}" for k, v in setting.items())


def aliased_mask(runs: pd.DataFrame) -> np.ndarray:
    """Runs whose highest frequency reaches the aliasing limit (pipeline DataConfig.aliased):
    they answer an ill-posed question, so trends are fitted without them."""
    from pipeline.config import DataConfig

    if "time_steps" not in runs:
        return np.zeros(len(runs), bool)
    steps = runs["time_steps"].fillna(DataConfig().time_steps).astype(int)
    return np.array(
        [DataConfig(time_steps=int(t)).first_aliased_max_freq <= m
         for m, t in zip(runs["max_freq"].astype(int), steps, strict=True)],
        dtype=bool,
    )  # fmt: skip


def well_posed(runs: pd.DataFrame) -> tuple[pd.DataFrame, tuple[int, ...]]:
    """The runs without the aliased ones, and the aliased max_freqs left out."""
    mask = aliased_mask(runs)
    left_out = tuple(sorted({int(m) for m in runs.loc[mask, "max_freq"]}))
    return runs[~mask], left_out
