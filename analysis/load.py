"""Runs from the tracking store as one tidy pandas DataFrame, one row per `main` run.

MLflow returns parameters as strings; here each gets the type of its config field, metrics are
floats, and `status` keeps FAILED/KILLED/RUNNING runs (counted by the summary, never dropped).
"""

import dataclasses

import numpy as np
import pandas as pd

from analysis import store
from pipeline import tracking
from pipeline.config import DataConfig, EvalConfig, TrainConfig
from pipeline.names import UserError

PARAM_TYPES = {
    f.name: f.type for c in (DataConfig, TrainConfig, EvalConfig) for f in dataclasses.fields(c)
}
TAGS = (
    "study",
    "grid_axes",
    "diverged_reason",
    "failure_mode",
    "aliasing_warning",
    "eval_run_id",
    "run_key",
    "code_version",
    "stopped_on_escape",
)


def load_runs(
    experiment: str | None = None, study: str | list[str] | None = None, fast: bool = True
) -> pd.DataFrame:
    """Every `main` run of the experiment (all experiments if None), optionally of one study
    or of several (a list: their runs together, as one study)."""
    studies = [study] if isinstance(study, str) else list(study or [])
    experiment_ids = tracking.experiment_ids(experiment)
    parts = []
    for name in studies or [""]:
        part = store.search(
            experiment_ids, {"step": "main", **({"study": name} if name else {})}, fast=fast
        )
        if part.empty:
            where = (
                f"study={','.join(studies)!r}"
                if studies
                else f"experiment={experiment or 'any'!r}"
            )
            which = f" ({name!r} has none)" if len(studies) > 1 else ""
            raise UserError(f"{where} is not allowed: it has no pipeline runs to report on{which}")
        parts.append(part)
    return one_per_pair(tidy(pd.concat(parts, ignore_index=True)))


def one_per_pair(runs: pd.DataFrame, by: str = "run_key") -> pd.DataFrame:
    """The runs with one FINISHED run per study and `run_key` (the first to start): a pair two
    sweeps both trained (made before sweeps claimed pairs, or by hand) counts once. With
    by="params" a pair is its parameters whatever the code (runs merged from records made at
    different commits: the same seed trained twice is one run, not two). How many were left
    out is `attrs["duplicates"]`; runs in other states are all kept (an earlier KILLED or
    FAILED attempt of a pair is part of the record)."""
    done = (runs["status"].eq("FINISHED") & runs["run_key"].notna()).fillna(False).to_numpy(bool)
    keys = runs["study"].astype(str) + "|" + runs["run_key"].astype(str)
    if by == "params":
        names = [p for p in PARAM_TYPES if p in runs]
        keys = runs["study"].astype(str) + "|" + runs[names].astype(str).agg("|".join, axis=1)
        done = runs["status"].eq("FINISHED").fillna(False).to_numpy(bool)
    first = runs[done].assign(_key=keys[done]).sort_values("start_time").drop_duplicates("_key")
    dropped = runs.index[done].difference(first.index)
    out = runs.drop(index=dropped).reset_index(drop=True)
    out.attrs["duplicates"] = len(dropped)
    return out


def read_csv(path) -> pd.DataFrame:
    """A record's runs.csv (written by report.write) back as a runs table, typed as tidy()
    types the store's: a study can be re-read, or grown, from committed records."""
    raw = pd.read_csv(path, dtype={"run_id": str, "eval_run_id": str, "run_key": str})
    out = raw.copy()
    out["status"] = raw["status"].astype("string")
    out["start_time"] = pd.to_datetime(raw["start_time"], format="mixed", utc=True)
    for name, kind in PARAM_TYPES.items():
        if name not in raw:
            continue
        if kind is str:
            out[name] = raw[name].astype("string")
        elif kind is bool:
            out[name] = (
                raw[name]
                .astype("string")
                .str.lower()
                .map({"true": True, "false": False})
                .astype("boolean")
            )
        elif kind is int:
            out[name] = pd.to_numeric(raw[name], errors="coerce").astype("Int64")
        else:
            out[name] = pd.to_numeric(raw[name], errors="coerce").astype(float)
    for tag in TAGS:
        out[tag] = raw[tag].astype("string") if tag in raw else pd.NA
    if "diverged" in raw:
        text = raw["diverged"].astype("string").str.lower()
        out["diverged"] = text.map({"true": True, "false": False, "1.0": True, "0.0": False})
        out["diverged"] = out["diverged"].astype("boolean")
    return out


def tidy(raw: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "run_id": raw["run_id"],
            "experiment_id": raw["experiment_id"],
            "status": raw["status"].astype("string"),
            "start_time": pd.to_datetime(raw["start_time"]),
            "duration_s": (
                pd.to_datetime(raw["end_time"]) - pd.to_datetime(raw["start_time"])
            ).dt.total_seconds(),
        }
    )
    for name, kind in PARAM_TYPES.items():
        column = raw.get(f"params.{name}")
        if column is None:
            continue
        if kind is str:
            out[name] = column.astype("string")
        elif kind is bool:  # logged as 'True'/'False'; runs from before the knob: missing
            flags = column.astype("string").str.lower().map({"true": True, "false": False})
            out[name] = flags.astype("boolean")
        else:
            numbers = pd.to_numeric(column, errors="coerce").astype(float)
            if kind is int:  # a refused run may carry any text ('inf', '1e309', '9' * 30)
                whole = np.isfinite(numbers) & (numbers.abs() < 2**62) & (numbers % 1 == 0)
                numbers = numbers.where(whole).astype("Int64")
            out[name] = numbers
    for tag in TAGS:
        column = raw.get(f"tags.{tag}")
        out[tag] = column.astype("string") if column is not None else pd.NA
    for column in raw.columns:
        if column.startswith("metrics."):
            out[column.removeprefix("metrics.")] = raw[column].astype(float)
    if "diverged" in out:
        out["diverged"] = out["diverged"].map({1.0: True, 0.0: False}).astype("boolean")
    return out.sort_values(["max_freq", "seed", "start_time"], ignore_index=True)


SWEEP_PARAMS = ("study_file", "study_file_sha256", "report_sections")  # set by pipeline.study


def sweep_runs(experiment_ids: list[str], studies: list[str]) -> pd.DataFrame:
    """The sweep runs of the studies: start, end, status, seconds, machine, and the study file
    each ran (its path, SHA-256 and report sections; empty for a sweep run without one)."""
    rows = []
    for study in studies:
        for run in tracking.runs_with_tags(
            experiment_ids, {"step": "sweep", "study": study}, None, newest_first=False
        ):
            end = run.info.end_time or run.info.start_time
            rows.append(
                {
                    "run_id": run.info.run_id,
                    "study": study,
                    "status": run.info.status,
                    "start": run.info.start_time,
                    "end": end,
                    "seconds": (end - run.info.start_time) / 1000,
                    "machine": run.data.tags.get("machine", ""),
                    **{k: run.data.params.get(k, "") for k in SWEEP_PARAMS},
                }
            )
    return pd.DataFrame(rows, columns=["run_id", "study", "status", "start", "end", "seconds",
                                       "machine", *SWEEP_PARAMS])  # fmt: skip


def report_sections(sweeps: pd.DataFrame | None) -> tuple[str, ...] | None:
    """The report sections the studies' files name (their union), or None (every section that
    applies) when a sweep ran without a study file."""
    if sweeps is None or not len(sweeps) or not sweeps["report_sections"].astype(bool).all():
        return None
    named = {s for text in sweeps["report_sections"] for s in text.split(",") if s}
    return tuple(sorted(named))
