"""Report on a study: how error and divergence grow with max_freq.

Reads `main` runs from the tracking store (MLFLOW_TRACKING_URI, default sqlite:///mlflow.db);
never trains. Writes reports/<study or experiment>/: runs.csv, summary.csv, four PNG figures,
report.md and a self-contained report.html, and logs the same files as artifacts of an
`analysis` run.

    python -m analysis --study <name>          (or: mlflow run . -e analyze -P study=<name>)
"""

import argparse
import os
import sys
from pathlib import Path

from analysis import load, report, stats
from pipeline import tracking
from pipeline.config import UserError


def parse_ratio(text: str) -> float | None:
    if text in ("", None):
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise UserError(
            f"divergence_ratio={text!r} is not allowed: expected a number > 0, or empty"
        )
    return value


def analyze(
    experiment: str,
    study: str,
    ratio: float | None,
    out_root: Path,
    per_max_freq: int = 20,
    log_to_experiment: bool = True,
) -> Path:
    """Write the report and log it as an `analysis` run (in `experiment` if
    `log_to_experiment`, else in the active one); returns the report folder."""
    runs = load.load_runs(experiment or None, study or None)
    summary = stats.summarize(runs, ratio)
    name = study or experiment or "all-experiments"
    out = out_root / name
    title = f"Sine-frequency LSTM: error and divergence vs max_freq ({name})"
    files = report.write(runs, summary, title, ratio, out, per_max_freq)
    if experiment and log_to_experiment:
        tracking.use_experiment(experiment)
    params = {"experiment": experiment, "study": study, "divergence_ratio": ratio or "logged"}
    with tracking.step_run("analysis", params, tags={"study": study} if study else None):
        tracking.log_files(files)
        tracking.log_metrics({"runs": len(runs), "max_freqs": len(summary)})
    return out


def main(argv: list[str] | None = None) -> None:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        prog="python -m analysis",
        description=doc.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--experiment", default="", help="experiment name; empty = all")
    parser.add_argument("--study", default="", help="study name (tag `study`); empty = all")
    parser.add_argument(
        "--divergence_ratio",
        default="",
        help="re-judge divergence at this mae_ratio_train; empty = as logged",
    )
    parser.add_argument("--out", default="reports", help="folder for reports/<name>/")
    parser.add_argument(
        "--curves_per_max_freq",
        type=int,
        default=20,
        help="runs per max_freq read for learning curves and error by frequency",
    )
    args = parser.parse_args(argv)
    tracking.configure_client()
    # Under `mlflow run -e analyze` the launcher has already made our run, in its experiment.
    launched = bool(os.environ.get("MLFLOW_RUN_ID"))
    try:
        tracking.check_store()
        ratio = parse_ratio(args.divergence_ratio)
        out = analyze(
            args.experiment,
            args.study,
            ratio,
            Path(args.out),
            args.curves_per_max_freq,
            log_to_experiment=not launched,
        )
    except UserError as exc:
        if launched and not isinstance(exc, tracking.StoreError):
            tracking.record_failure("analysis", vars(args), str(exc))
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(f"report: {out / 'report.html'} (and report.md, summary.csv, runs.csv, figures)")


if __name__ == "__main__":
    main(sys.argv[1:])
