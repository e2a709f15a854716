"""A study record: what the docs cite, committed beside them. Reads a study's runs from the
tracking store (never trains) and writes docs/results/<study>/: the report (report.md and its
figures), summary.csv, runs.csv, and manifest.json with the exact command, the commit and
machine it ran on, its dates, its runs by status and its wall time (from its sweep runs).

    python -m analysis.record --study budget --command "make budget" --commit 291d963
    python -m analysis.record --study backends --out docs/results/backends …

A study can be grown over days or machines: `--from FOLDER` (repeatable) adds the runs of
earlier records (their runs.csv), and `--no_store` reads only those, so a record is rebuilt
or re-analysed by today's analysis without the store it came from (the learning curves and
errors by frequency, which need the store, are then kept as they were). Runs are counted once
per study and parameters (a pair trained in two places or at two commits: the first kept),
and the manifest lists its sources. `make shape SHAPE_FIRST_SEED=32` grows a study with new
seeds rather than training its old ones again.

Running it again on the same store regenerates the same record (the date aside).
"""

import argparse
import datetime
import hashlib
import json
import re
import sys
import tomllib
from pathlib import Path

import pandas as pd

from pipeline import tracking
from pipeline.names import UserError

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
KEPT = ("report.md", "summary.csv", "runs.csv")  # report.html embeds the figures: not kept
# Report lines that need the store (the runs' metric histories): re-read without it, a record
# keeps them from its earlier report, as it keeps the figures that need the store.
# Lines only the store can write (their setting's label may come first: '- backend=jax: **…').
STORE_ONLY = re.compile(r"^- (?:[^*]*: )?\*\*The stopping rule, checked")
KEPT_NOTE = (
    " *(Kept from this record's earlier report: the check reads the runs' mae_ratio_train "
    "histories, which only the tracking store holds.)*"
)


def keep_store_only_lines(report: Path, previous: str) -> None:
    """Carry the lines of `previous` (the earlier report.md) that only the store can write
    into `report` when it lacks them: after the last bullet of the same section."""
    lines = report.read_text().split("\n")
    old = [ln for ln in previous.split("\n") if STORE_ONLY.match(ln)]
    missing = [ln for ln in old if not any(n.startswith(ln[:60]) for n in lines)]
    if not missing:
        return
    head = next((i for i, ln in enumerate(lines) if ln.startswith("## Leaving the plateau")), None)
    if head is None:
        return
    at = head + 1
    while at < len(lines) and not lines[at].startswith("- "):
        at += 1
    while at < len(lines) and lines[at].startswith("- "):
        at += 1
    kept = [ln if ln.endswith(KEPT_NOTE) else ln + KEPT_NOTE for ln in missing]
    report.write_text("\n".join(lines[:at] + kept + lines[at:]))


def earlier_sections(sources: list[Path]) -> tuple[str, ...] | None:
    """The report sections the earlier records name (None: every section that applies)."""
    named = set()
    for folder in sources:
        meta = Path(folder) / "manifest.json"
        given = json.loads(meta.read_text()).get("report_sections") if meta.is_file() else None
        if given is None:
            return None
        named |= set(given)
    return tuple(sorted(named)) if named else None


def manifest(
    runs: pd.DataFrame,
    sweeps: pd.DataFrame | None,
    studies: list[str],
    command: str,
    commit: str,
    machine: str,
    note: str,
) -> dict:
    from analysis import load

    sweeps = pd.DataFrame() if sweeps is None else sweeps
    finished = sweeps[sweeps["status"] == "FINISHED"] if len(sweeps) else sweeps
    files = sorted(
        {(f, h) for f, h in zip(sweeps.get("study_file", []), sweeps.get("study_file_sha256", []),
                                strict=True) if f}
    )  # fmt: skip
    starts = pd.to_datetime(runs["start_time"])
    started = starts.min()
    ended = (starts + pd.to_timedelta(runs["duration_s"], unit="s")).max()
    machines = sorted({m for m in sweeps.get("machine", []) if m}) or [machine]
    return {
        "studies": studies,
        "command": command,
        "commit": commit,
        "code_versions": sorted(runs["code_version"].dropna().unique().tolist()),
        "machine": machine or ", ".join(machines),
        "first_run": started.isoformat(),
        "last_run_end": ended.isoformat(),
        "runs": len(runs),
        "runs_by_status": {k: int(v) for k, v in runs["status"].value_counts().items()},
        "duplicates_left_out": int(runs.attrs.get("duplicates", 0)),
        "sweeps": len(sweeps),
        "wall_time_s": round(float(finished["seconds"].sum()), 1) if len(finished) else None,
        # the study file(s) the sweeps ran, with the content hash: rerun it as it ran
        "study_files": [{"path": f, "sha256": h} for f, h in files],
        "report_sections": list(sections) if (sections := load.report_sections(sweeps)) else None,
        "note": note,
        "regenerate": (
            f"python -m analysis.record --study {','.join(studies)} --command {command!r} "
            f"--commit {commit}" + (f" --machine {machine!r}" if machine else "")
        ),
        "generated": datetime.date.today().isoformat(),
    }


def gather(
    studies: list[str], sources: list[Path], use_store: bool
) -> tuple[pd.DataFrame, list[dict]]:
    """The studies' runs from the store (if `use_store`) and from the records in `sources`,
    one per study and run key; and what each source gave."""
    from analysis import load

    parts, given = [], []
    if use_store:
        store_runs = load.load_runs(None, studies)
        parts.append(store_runs)
        given.append({"source": tracking.tracking_uri(), "runs": len(store_runs)})
    for folder in sources:
        path = Path(folder) / "runs.csv"
        if not path.is_file():
            raise UserError(f"from={str(folder)!r} is not allowed: expected a record folder "
                            "with a runs.csv (docs/results/<study>)")  # fmt: skip
        part = load.read_csv(path)
        part = part[part["study"].isin(studies)] if "study" in part else part.iloc[:0]
        if part.empty:
            raise UserError(f"from={str(folder)!r} is not allowed: it holds no runs of "
                            f"study {','.join(studies)!r}")  # fmt: skip
        meta = Path(folder) / "manifest.json"
        commit = json.loads(meta.read_text()).get("commit") if meta.is_file() else None
        parts.append(part)
        given.append({"source": str(folder), "commit": commit, "runs": len(part)})
    runs = load.one_per_pair(pd.concat(parts, ignore_index=True), by="params")
    return runs.sort_values(["max_freq", "seed", "start_time"], ignore_index=True), given


def record(
    studies: list[str],
    out: Path,
    command: str,
    commit: str,
    machine: str = "",
    note: str = "",
    sources: list[Path] | None = None,
    use_store: bool = True,
    study_file: Path | None = None,
) -> Path:
    """Write the record of `studies` (several: the slices of one study, reported as one),
    from the store and/or earlier records (`sources`)."""
    from analysis import load, report, stats

    sources = list(sources or [])
    runs, given = gather(studies, sources, use_store)
    duplicates = runs.attrs.get("duplicates", 0)
    summary = stats.summarize(runs)
    histories = report.plateau_histories(runs) if use_store else None
    sweeps = load.sweep_runs(tracking.experiment_ids(None), studies) if use_store else None
    sections = load.report_sections(sweeps) if use_store else earlier_sections(sources)
    named = read_study_file(study_file) if study_file else None
    if named is not None:
        sections = named["sections"]
    judged = report.judged_runs(runs, None)
    results = report.analyse(judged, histories=histories, sections=sections)
    title = report.title_of(runs, "+".join(studies))
    out.mkdir(parents=True, exist_ok=True)
    kept = {"learning_curves.png", "error_by_frequency.png"} if not use_store else set()
    for stale in out.glob("*.png"):
        if stale.name not in kept:
            stale.unlink()
    runs.attrs["duplicates"] = duplicates
    previous = (out / "report.md").read_text() if (out / "report.md").is_file() else ""
    written = report.write(runs, summary, title, None, out, 20, results, from_store=use_store)
    for path in written:
        if path.name not in KEPT and path.suffix != ".png":
            path.unlink()
    if not use_store:
        keep_store_only_lines(out / "report.md", previous)
    info = manifest(runs, sweeps, studies, command, commit, machine, note)
    if sources:
        info["sources"] = given
        earlier = [json.loads((Path(f) / "manifest.json").read_text()) for f in sources
                   if (Path(f) / "manifest.json").is_file()]  # fmt: skip
        if not use_store and earlier:
            walls = [m.get("wall_time_s") for m in earlier]
            info["wall_time_s"] = sum(walls) if all(w is not None for w in walls) else None
            info["sweeps"] = sum(int(m.get("sweeps", 0)) for m in earlier)
        if not use_store and len(earlier) == 1:  # one record re-read by today's analysis
            first = earlier[0]
            kept_keys = ("command", "commit", "machine", "note", "study_files", "report_sections")
            info |= {k: first[k] for k in kept_keys if k in first}
            info["reanalysed"] = {"commit": commit, "date": info["generated"], "note": note}
        extra = " ".join(f"--from {f}" for f in sources) + ("" if use_store else " --no_store")
        info["regenerate"] += f" {extra}"
    if named is not None:  # a record older than study files: the file that plans its runs
        info["study_files"] = [{k: named[k] for k in ("path", "sha256")}
                               | {"equivalent": "the runs predate study files; this file plans "
                                  "the same runs (tests/test_study_file.py)"}]  # fmt: skip
        info["report_sections"] = list(sections)
    (out / "manifest.json").write_text(json.dumps(info, indent=2) + "\n")
    return out


def read_study_file(path: Path) -> dict:
    """A study file's path (relative to the project when inside it), SHA-256 and report
    sections (every section when it names none)."""
    if not Path(path).is_file():
        raise UserError(f"study_file={str(path)!r} is not allowed: no such file")
    raw = Path(path).read_bytes()
    try:
        data = tomllib.loads(raw.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(
            f"study_file={str(path)!r} is not allowed: not valid TOML ({exc})"
        ) from None
    resolved = Path(path).resolve()
    shown = resolved.relative_to(ROOT) if resolved.is_relative_to(ROOT) else resolved
    sections = data.get("sections")
    return {
        "path": str(shown),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "sections": tuple(sorted(sections)) if sections else None,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.record", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--study", required=True, help="study name, or several: a,b")
    parser.add_argument("--command", required=True, help="the command that ran the study")
    parser.add_argument("--commit", required=True, help="the git commit it ran on")
    parser.add_argument("--machine", default="", help="where it ran (else the sweeps' tag)")
    parser.add_argument("--note", default="", help="anything a reader must know")
    parser.add_argument("--out", default="", help="default: docs/results/<study>")
    parser.add_argument(
        "--from", dest="sources", action="append", default=[],
        help="a record folder whose runs.csv adds runs (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--no_store", action="store_true", help="read only the --from records, not the store"
    )
    parser.add_argument(
        "--study_file", default="",
        help="the study file that plans this record's runs, for a record made before study "
        "files: its report sections are used and its path and SHA-256 recorded",
    )  # fmt: skip
    args = parser.parse_args(argv)
    tracking.configure_client()
    studies = [s for s in args.study.split(",") if s]
    out = Path(args.out) if args.out else RESULTS / studies[0]
    try:
        if args.no_store and not args.sources:
            raise UserError("no_store is not allowed without --from: there would be no runs")
        if not args.no_store:
            tracking.check_store()
        folder = record(
            studies, out, args.command, args.commit, args.machine, args.note,
            [Path(f) for f in args.sources], not args.no_store,
            Path(args.study_file) if args.study_file else None,
        )  # fmt: skip
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(f"record: {folder} ({', '.join(sorted(p.name for p in folder.iterdir()))})")


if __name__ == "__main__":
    main(sys.argv[1:])
