"""Close a study's stale runs: RUNNING runs whose process died without ending them.

Every open `main` and `sweep` run refreshes its `heartbeat` tag every 30 s. A run whose
heartbeat is older than --stale_after_min (SIGKILL, the OOM killer, a lost node, a closed
laptop) is marked KILLED, with its open child runs, and an `error` tag saying why. Live runs,
of this or another sweep, keep beating and are never touched. A resumed sweep does the same
before it starts; this module does it alone.

    python -m pipeline.reap --study default [--stale_after_min 10] [--experiment NAME]
"""

import argparse
import sys

from pipeline import command, names, tracking
from pipeline.config import SweepConfig
from pipeline.names import UserError


def reap(study: str, stale_after_min: float, experiment: str = "") -> list:
    if not study:
        raise UserError("study='' is not allowed: expected the name of a study")
    SweepConfig(study=study, stale_after_min=stale_after_min)  # the sweep's own validation
    return tracking.reap_stale(
        tracking.experiment_ids(experiment), study, names.seconds(stale_after_min)
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.reap", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--study", required=True, help="the study's name (tag `study`)")
    parser.add_argument(
        "--stale_after_min", default="10", help="minutes without a heartbeat; default 10"
    )
    parser.add_argument("--experiment", default="", help="experiment name; empty = all")
    args = parser.parse_args(argv)
    tracking.configure_client()
    try:
        tracking.check_store()
        try:
            minutes = float(args.stale_after_min)
        except ValueError:
            minutes = float("nan")
        reaped = reap(args.study, minutes, args.experiment)
    except UserError as exc:
        command.fail(exc)
    for run in reaped:
        print(f"KILLED {run.info.run_id} ({run.data.tags.get('step')}, {run.info.run_name})")
    print(f"study {args.study!r}: {len(reaped)} stale RUNNING runs marked KILLED")


if __name__ == "__main__":
    main(sys.argv[1:])
