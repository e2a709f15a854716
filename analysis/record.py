"""A study record: what the docs cite, committed beside them. Reads a study's runs from the
tracking store (never trains) and writes docs/results/<study>/: the report (report.md and its
figures), summary.csv, runs.csv, and manifest.json with the exact command, the commit and
machine it ran on, its dates, its runs by status and its wall time (from its sweep runs).

    python -m analysis.record --study budget --command "make budget" --commit 291d963
    python -m analysis.record --study backends --out docs/results/backends …

Running it again on the same store regenerates the same record (the date aside).
"""

import argparse
import datetime
import json
import sys
from pathlib import Path

import pandas as pd

from pipeline import tracking
from pipeline.config import UserError

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
KEPT = ("report.md", "summary.csv", "runs.csv")  # report.html embeds the figures: not kept


def sweep_runs(experiment_ids: list[str], studies: list[str]) -> pd.DataFrame:
    """The sweep runs of the studies: start, end, status, seconds."""
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
                }
            )
    return pd.DataFrame(rows)


def manifest(
    runs: pd.DataFrame,
    sweeps: pd.DataFrame,
    studies: list[str],
    command: str,
    commit: str,
    machine: str,
    note: str,
) -> dict:
    finished = sweeps[sweeps["status"] == "FINISHED"] if len(sweeps) else sweeps
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
        "note": note,
        "regenerate": (
            f"python -m analysis.record --study {','.join(studies)} --command {command!r} "
            f"--commit {commit}" + (f" --machine {machine!r}" if machine else "")
        ),
        "generated": datetime.date.today().isoformat(),
    }


def record(
    studies: list[str], out: Path, command: str, commit: str, machine: str = "", note: str = ""
) -> Path:
    """Write the record of `studies` (several: the slices of one study, reported as one)."""
    from analysis import load, report, stats

    runs = load.load_runs(None, studies)
    summary = stats.summarize(runs)
    results = report.analyse(report.judged_runs(runs, None))
    title = f"Sine-frequency LSTM: error and divergence vs max_freq ({'+'.join(studies)})"
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.png"):
        stale.unlink()
    written = report.write(runs, summary, title, None, out, 20, results)
    for path in written:
        if path.name not in KEPT and path.suffix != ".png":
            path.unlink()
    sweeps = sweep_runs(tracking.experiment_ids(None), studies)
    info = manifest(runs, sweeps, studies, command, commit, machine, note)
    (out / "manifest.json").write_text(json.dumps(info, indent=2) + "\n")
    return out


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
    args = parser.parse_args(argv)
    tracking.configure_client()
    studies = [s for s in args.study.split(",") if s]
    out = Path(args.out) if args.out else RESULTS / studies[0]
    try:
        tracking.check_store()
        folder = record(studies, out, args.command, args.commit, args.machine, args.note)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(f"record: {folder} ({', '.join(sorted(p.name for p in folder.iterdir()))})")


if __name__ == "__main__":
    main(sys.argv[1:])
