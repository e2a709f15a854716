"""What a person sees in the MLflow UI: the experiment's description, and one saved view per
study that the link `make ui` prints opens.

MLflow keeps a run list's state (filter, order, columns, charts) in the URL or in an experiment
tag `mlflow.sharedViewState.<key>` that the URL names with `viewStateShareKey=<key>`; the
columns and the charts can only be given the second way. A study's view is its `main` runs as
a flat list ordered by mae_test, with the columns that answer the question, and, in the chart
view, mae_test and diverged against max_freq first.
"""

import json
from collections.abc import Sequence

import mlflow
from mlflow.tracking import MlflowClient

from pipeline.names import STEP_TAG, STUDY_TAG

DESCRIPTION_TAG = "mlflow.note.content"  # the UI's experiment description
VIEW_TAG = "mlflow.sharedViewState."
TRAINING_VIEW = "workflowType=machine_learning"  # MLflow 3 opens experiments as GenAI otherwise
COLUMNS = ("max_freq", "seed")  # params, then the grid's other axes, then METRICS
METRICS = ("mae_test", "diverged", "escape_step", "mae_ratio_train")

DESCRIPTION = """\
**Can a small LSTM learn the frequency of a sine wave, and how do its error and its chance of
failing to train grow with `max_freq`?** Each `main` run trains one network on sine series of
frequencies 1 … max_freq − 1 and predicts the frequency of held-out series
(docs/experiment.md). Its child runs are `generate_data`, `train` and `evaluate`; a `sweep` run
is one study (tag `study`), an `analysis` run its report.

Runs are named `max_freq=… seed=…` (and any other varied parameter); a child run's name starts
with its step.

**The step axis.** `loss` is logged per epoch (step = epoch, from 0). `mae_ratio_train`'s
history is logged at the plateau checks (step = optimizer updates). Every other metric is one
value per run.

**Metrics** (frequencies in cycles per 2π, like the target):
- `mae_test`, `mae_train`: mean absolute error of the predicted frequency (held-out, training);
  `rmse_*`, `r2_*` alike.
- `diverged`: 1 if the run ended on the plateau: a non-finite loss, or `mae_ratio_train` ≥ its
  `divergence_ratio` (0.5): it predicts about as well as a constant.
- `mae_ratio_train`, `mae_ratio_test`: `mae_*` / the best constant predictor's MAE
  (`baseline_mae_*`). 1: no better than a constant; 0: perfect.
- `escape_step`: the optimizer update at which the run left the plateau for good; absent if it
  never did. `stop_step`: where the stopping rule ended training (stop_on_escape).
- `ref_fft_mae_*`: MAE of a non-learned estimator, the peak of the zero-padded FFT: what the
  data allow without learning. `ref_forest_mae_*`: a random forest on |FFT| features.
- `prediction_spread_train`: spread of the predictions over spread of the frequencies (1 is
  right, 0 is a constant).
- `fit_seconds`, `optimizer_steps`, `steps_per_epoch`, `epochs_completed`: the training's
  cost and size. `n_train`, `n_test`: series (generate_data).
- A `sweep` run's `runs_total`, `runs_finished`, `runs_failed`, `runs_diverged`,
  `runs_skipped`: what the study did. An `analysis` run's metrics are its report's figures
  (docs/reading-the-report.md).

Every name is documented in docs/experiment.md; `make ui` prints a link to the newest study.
"""


def describe_experiment(experiment_id: str, tags: dict[str, str] | None = None) -> None:
    """Write the description, unless someone wrote their own (ours is replaced when it
    changes). `tags`: the experiment's, if already read."""
    client = MlflowClient()
    tags = client.get_experiment(experiment_id).tags if tags is None else tags
    current = tags.get(DESCRIPTION_TAG)
    if current is None or (current != DESCRIPTION and current.startswith(DESCRIPTION[:60])):
        client.set_experiment_tag(experiment_id, DESCRIPTION_TAG, DESCRIPTION)


def view_key(study: str) -> str:
    return f"study-{study}" if study else "all-main-runs"


def view_state(study: str, axes: Sequence[str] = ()) -> dict:
    """The run list's state for a study ('' : every main run of the experiment)."""
    where = f"tags.{STEP_TAG} = 'main'" + (f" and tags.{STUDY_TAG} = '{study}'" if study else "")
    params = [*COLUMNS, *(a for a in axes if a not in COLUMNS)]
    section = {"uuid": "question", "name": "The question: against max_freq", "display": True,
               "isReordered": False, "deleted": False, "isGenerated": False}  # fmt: skip
    generated = {"uuid": "model-metrics", "name": "Model metrics", "display": True,
                 "isReordered": False, "deleted": False, "isGenerated": True}  # fmt: skip
    charts = [
        {"uuid": f"question-{metric}", "type": "SCATTER", "metricSectionId": "question",
         "deleted": False, "isGenerated": False, "displayName": f"{metric} against max_freq",
         "xaxis": {"key": "max_freq", "type": "PARAM"},
         "yaxis": {"key": metric, "type": "METRIC"}, "runsCountToCompare": 1000}
        for metric in ("mae_test", "diverged")
    ]  # fmt: skip
    return {
        "searchFilter": where,
        "orderByKey": "metrics.`mae_test`",
        "orderByAsc": True,
        "selectedColumns": [f"params.`{p}`" for p in params] + [f"metrics.`{m}`" for m in METRICS],
        "runsHiddenMode": "SHOW_ALL",  # charts show every run, not the first ten
        "compareRunSections": [section, generated],
        "compareRunCharts": charts,
        "isAccordionReordered": True,
    }


def save_study_view(experiment_id: str, study: str, axes: Sequence[str] = ()) -> str:
    """Write the study's view as an experiment tag; returns its key."""
    key = view_key(study)
    state = json.dumps(view_state(study, axes), separators=(",", ":"))
    MlflowClient().set_experiment_tag(experiment_id, VIEW_TAG + key, state)
    return key


def newest_study(experiment_id: str) -> tuple[str, list[str]]:
    """The study of the experiment's newest sweep run, and its grid axes besides max_freq and
    seed; ('', []) if it has no sweep run."""
    runs = MlflowClient().search_runs(
        [experiment_id],
        filter_string=f"tags.{STEP_TAG} = 'sweep'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        return "", []
    axes = runs[0].data.params.get("grid_axes", "").split(",")
    return runs[0].data.tags.get(STUDY_TAG, ""), [a for a in axes if a not in COLUMNS and a]


def ui_link(base: str, experiment_name: str) -> str:
    """The UI page of the experiment's newest study (its view written if missing), in the
    model-training view; the experiment's main runs if it has no study; the experiments list
    if the experiment does not exist yet."""
    found = mlflow.get_experiment_by_name(experiment_name)
    root = base.rstrip("/")
    if found is None:
        return f"{root}/#/experiments?{TRAINING_VIEW}"
    describe_experiment(found.experiment_id)
    study, axes = newest_study(found.experiment_id)
    key = save_study_view(found.experiment_id, study, axes)
    return (
        f"{root}/#/experiments/{found.experiment_id}/runs?viewStateShareKey={key}&{TRAINING_VIEW}"
    )
