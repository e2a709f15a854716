"""`python -m pipeline.tracking`: say whether the configured tracking store answers.
`--ui_link URL`: also print where the MLflow UI at URL shows the project's experiment in its
model-training view (MLflow 3's UI opens experiments in its GenAI view unless told)."""

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

TRAINING_VIEW = "workflowType=machine_learning"


def ui_link(base: str) -> str:
    """The UI page of the experiment runs go to (MLFLOW_EXPERIMENT_NAME, else the project's),
    in the model-training view; the experiments list if it does not exist yet."""
    import mlflow

    name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
    found = mlflow.get_experiment_by_name(name)
    page = f"experiments/{found.experiment_id}" if found else "experiments"
    return f"{base.rstrip('/')}/#/{page}?{TRAINING_VIEW}"


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
        print(f"open {ui_link(args.ui_link)}")


if __name__ == "__main__":
    main(sys.argv[1:])
