"""Report on a study: how error and divergence grow with max_freq.

Reads `main` runs from the tracking store (MLFLOW_TRACKING_URI, default sqlite:///mlflow.db);
never trains. Writes reports/<study or experiment>/: runs.csv, summary.csv, four PNG figures,
report.md and a self-contained report.html, and logs the same files as artifacts of an
`analysis` run.

    python -m analysis --study <name>          (or: mlflow run . -e analyze -P study=<name>)
    python -m analysis --study <a>,<b>         (the slices of one study, run apart, as one)
"""

import os
import sys
from pathlib import Path

from pipeline import tracking
from pipeline.config import AnalyzeConfig
from pipeline.names import UserError


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
    from analysis import load

    studies = study.split(",") if study else []
    runs = load.load_runs(experiment or None, studies or None)
    from analysis import report, stats  # the statistics' libraries: once there is data

    summary = stats.summarize(runs, ratio)
    sweeps = load.sweep_runs(tracking.experiment_ids(experiment or None), studies)
    results = report.analyse(
        report.judged_runs(runs, ratio),
        histories=report.plateau_histories(runs),
        sections=load.report_sections(sweeps) if studies else None,
    )
    name = study.replace(",", "+") or experiment or "all-experiments"
    out = out_root / name
    title = report.title_of(runs, name)
    files = report.write(runs, summary, title, ratio, out, per_max_freq, results)
    if experiment and log_to_experiment:
        tracking.use_experiment(experiment)
    params = {"experiment": experiment, "study": study, "divergence_ratio": ratio or "logged"}
    tags = {"study": study} if study else None
    with tracking.step_run("analysis", params, tags=tags, run_name=f"analysis {name}"):
        tracking.log_files(files)
        tracking.log_metrics(
            {
                "runs": len(runs),
                "max_freqs": summary["max_freq"].nunique(),
                "duplicate_runs": runs.attrs.get("duplicates", 0),
                **results.metrics(),
            }
        )
    return out


def main(argv: list[str] | None = None) -> None:
    from pipeline.command import build_parser

    summary = (__doc__ or "").split("\n\n")[0]
    parser = build_parser("python -m analysis", summary, [AnalyzeConfig])
    raw = vars(parser.parse_args(argv))
    tracking.configure_client()
    tracking.default_experiment()
    # Under `mlflow run -e analyze` the launcher has already made our run, in its experiment.
    launched = bool(os.environ.get("MLFLOW_RUN_ID"))
    try:
        tracking.check_store()
        cfg = AnalyzeConfig.from_strings(raw)
        out = analyze(
            cfg.experiment,
            cfg.study,
            cfg.ratio,
            Path(cfg.out),
            cfg.curves_per_max_freq,
            log_to_experiment=not launched,
        )
    except UserError as exc:
        if launched and not isinstance(exc, tracking.StoreError):
            tracking.record_failure("analysis", raw, str(exc))
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:  # the report folder: written before the store is touched
        fault = tracking.describe_fault(exc)
        print(f"error: out={raw['out']!r}: {fault or tracking.one_line(exc)}", file=sys.stderr)
        sys.exit(2)
    print(f"report: {out / 'report.html'} (and report.md, summary.csv, runs.csv, figures)")


if __name__ == "__main__":
    main(sys.argv[1:])
