"""`python -m pipeline.tracking`: say whether the configured tracking store answers.
`--ui_link URL`: also print where the MLflow UI at URL shows the newest study's runs (its
saved view: pipeline/tracking/views.py), and what to expect of the UI."""

import argparse
import os
import sys

from pipeline.tracking import (
    DEFAULT_EXPERIMENT,
    StoreError,
    check_store,
    configure_client,
    is_shared_store,
    tracking_uri,
)
from pipeline.tracking.views import ui_link

UI_START_S = 30  # measured: the UI answered 25 s after `mlflow ui` started, on 2 cores


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.tracking")
    parser.add_argument("--ui_link", default="", help="the MLflow UI's base URL")
    args = parser.parse_args(argv)
    configure_client()
    try:
        check_store()
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    uri = tracking_uri()
    print(f"tracking store {uri}: " + ("answers" if is_shared_store(uri) else "local"))
    if args.ui_link:
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
        print(
            f"open {ui_link(args.ui_link, name)}\n"
            f"(the newest study's runs; the UI answers about {UI_START_S} s from now. It runs "
            "in this shell until Ctrl-C.)",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
