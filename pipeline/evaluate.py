"""Stage 3, evaluate: score a trained model on both sets and decide whether it diverged.

Reads: `--train_run_id` (a FINISHED train run: its model, its data, its loss and
mae_ratio_train histories) and an EvalConfig. Writes (as an `evaluate` run): metrics `mae_*`,
`rmse_*`, `r2_*`, `baseline_mae_*`, `mae_ratio_*` for train and test, the reference
estimators' `ref_fft_mae_*` and `ref_forest_mae_*` (see references.py), `diverged` (0/1) with
tag `diverged_reason`, `prediction_spread_train`, `escape_step` (if the run left the
plateau), tag `failure_mode` (if it diverged); `predictions/{train,test}.csv` (true_freq,
phase, prediction, error) and `plots/predicted_vs_true.png`.

Divergence, the one definition used everywhere: a run diverged if its training loss became
non-finite, or if mae_train / baseline_mae_train ≥ divergence_ratio, where the baseline is the
best constant predictor (the median training frequency): it ended on the plateau
(pipeline/progress.py, which applies the same rule during training). From the train run's
mae_ratio_train history, `escape_step` is the update at which it left the plateau for good
(logged only when it did). A diverged run's tag `failure_mode` says how it failed, from its
training-set predictions and loss, the first that applies:

- `nonfinite_loss`: the loss became NaN or infinite (training stopped there);
- `dead_output`: the output is 0 for every series (the final relu is stuck below zero);
- `constant`: the predictions hardly vary with frequency: the spread of the per-frequency
  mean predictions is below CONSTANT_SPREAD of the spread of the frequencies themselves
  (metric `prediction_spread_train`, logged for every run);
- `partial`: the predictions follow frequency, but not closely enough to pass the threshold.

    mlflow run . -e evaluate -P train_run_id=<train run id> --env-manager local
"""

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline import generate_data, progress
from pipeline.config import EvalConfig
from pipeline.generate_data import Dataset
from pipeline.model import predict as predict_series
from pipeline.names import CONSTANT, DEAD, NONE, NONFINITE, PARTIAL, UserError
from pipeline.references import reference_metrics

CONSTANT_SPREAD = 0.1  # per-frequency mean predictions spread less than this: a constant
DEAD_OUTPUT = 1e-6  # |prediction| at most this for every series: the output is dead


@dataclass
class Evaluation:
    metrics: dict[str, float]
    diverged_reason: str  # NONFINITE, MAE_RATIO or NONE
    predictions: dict[str, pd.DataFrame]
    failure_mode: str | None = None  # one of FAILURE_MODES when diverged


def regression_metrics(true: np.ndarray, pred: np.ndarray, split: str) -> dict[str, float]:
    if not np.all(np.isfinite(pred)):
        return {f"{m}_{split}": math.nan for m in ("mae", "rmse", "r2")}
    err = pred - true
    ss_tot = float(np.sum((true - true.mean()) ** 2))
    return {
        f"mae_{split}": progress.mae(true, pred),
        f"rmse_{split}": float(np.sqrt(np.mean(err**2))),
        f"r2_{split}": 1 - float(np.sum(err**2)) / ss_tot if ss_tot > 0 else math.nan,
    }


def prediction_spread(true: np.ndarray, pred: np.ndarray) -> float:
    """Standard deviation of the per-frequency mean predictions over that of the frequencies:
    1 for perfect predictions, 0 for a constant; NaN for non-finite predictions."""
    pred = np.asarray(pred, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(pred)):
        return math.nan
    freqs, which = np.unique(np.asarray(true, dtype=np.float64), return_inverse=True)
    means = np.bincount(which, weights=pred) / np.bincount(which)
    return float(np.std(means) / np.std(freqs)) if len(freqs) > 1 else math.nan


def failure_mode(reason: str, true: np.ndarray, pred: np.ndarray) -> str | None:
    """How a diverged run failed (module docstring); None when it did not diverge."""
    if reason == NONE:
        return None
    pred = np.asarray(pred, dtype=np.float64).reshape(-1)
    if reason == NONFINITE or not np.all(np.isfinite(pred)):
        return NONFINITE
    if np.all(np.abs(pred) <= DEAD_OUTPUT):
        return DEAD
    spread = prediction_spread(true, pred)
    return CONSTANT if not spread >= CONSTANT_SPREAD else PARTIAL


def escape_of(
    history: Sequence[tuple[int, float]], final_ratio: float, reason: str, threshold: float
) -> int | None:
    """`escape_step` from the (update, mae_ratio_train) history of training, whose last point
    is replaced by the run's final mae_ratio_train (the same number, unless the model was
    reloaded); never for a diverged run."""
    if not history or reason != NONE:
        return None
    steps = [int(step) for step, _ in history]
    ratios = [float(ratio) for _, ratio in history[:-1]] + [final_ratio]
    return progress.escape_step(steps, ratios, threshold)


def evaluate(
    cfg: EvalConfig,
    datasets: dict[str, Dataset],
    predictions: dict[str, np.ndarray],
    loss: Sequence[float],
    references: dict[str, float] | None = None,
    history: Sequence[tuple[int, float]] = (),
) -> Evaluation:
    """Pure scoring: the metrics, the divergence verdict, how a diverged run failed, when a run
    left the plateau (from `history`, training's (update, mae_ratio_train) points) and the
    prediction tables. `references` are the reference estimators' metrics, if already
    computed."""
    baseline = float(np.median(datasets["train"].freq))  # best constant under absolute error
    metrics: dict[str, float] = {}
    tables = {}
    for split, ds in datasets.items():
        pred = np.asarray(predictions[split], dtype=np.float64).reshape(-1)
        true = ds.freq.astype(np.float64)
        metrics |= regression_metrics(true, pred, split)
        metrics[f"baseline_mae_{split}"] = progress.baseline_mae(true, baseline)
        metrics[f"mae_ratio_{split}"] = metrics[f"mae_{split}"] / metrics[f"baseline_mae_{split}"]
        tables[split] = pd.DataFrame(
            {"true_freq": true, "phase": ds.phase, "prediction": pred, "error": pred - true}
        )
    train_true, train_pred = tables["train"]["true_freq"], tables["train"]["prediction"]
    metrics["prediction_spread_train"] = prediction_spread(train_true, train_pred)
    metrics |= references if references is not None else reference_metrics(datasets)
    reason = progress.divergence_reason(loss, metrics["mae_ratio_train"], cfg.divergence_ratio)
    metrics["diverged"] = float(reason != NONE)
    escaped = escape_of(history, metrics["mae_ratio_train"], reason, cfg.divergence_ratio)
    if escaped is not None:
        metrics["escape_step"] = float(escaped)
    mode = failure_mode(reason, train_true, train_pred)
    return Evaluation(metrics, reason, tables, mode)


def predict(
    model, datasets: dict[str, Dataset], known: dict[str, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """The model's predictions per split; `known` ones (already made by train) are reused."""
    known = known or {}
    return {
        split: known[split] if split in known else predict_series(model, ds.x)
        for split, ds in datasets.items()
    }


def run_step(
    cfg: EvalConfig,
    train_run_id: str,
    model=None,
    datasets: dict[str, Dataset] | None = None,
    loss: Sequence[float] | None = None,
    parent_run_id: str | None = None,
    references: dict[str, float] | None = None,
    known_predictions: dict[str, np.ndarray] | None = None,
    history: Sequence[tuple[int, float]] | None = None,
) -> tuple[str, Evaluation]:
    """Evaluate and log an `evaluate` run. Whatever is not passed in memory is read from the
    train run (`history`: its (update, mae_ratio_train) points)."""
    from pipeline import plots, tracking

    params = {**cfg.as_params(), "train_run_id": train_run_id}
    with tracking.step_run("evaluate", params, parent_run_id) as run:
        train_run = tracking.get_run(train_run_id, "train", "train_run_id")
        if datasets is None:
            datasets = generate_data.load(tracking.download(train_run.data.tags["data_uri"]))
        if loss is None:
            history = tracking.metric_history(train_run_id, "loss")
            loss = [value for _, _, value in sorted(history, key=lambda point: point[0])]
        if history is None:
            points = tracking.metric_history(train_run_id, "mae_ratio_train")
            history = [(step, value) for step, _, value in sorted(points, key=lambda p: p[0])]
        if model is None:
            model = tracking.load_keras_model(train_run_id)
        predictions = predict(model, datasets, known_predictions)
        result = evaluate(cfg, datasets, predictions, loss, references, history)
        tracking.log_metrics(result.metrics)
        tracking.set_tags(
            {
                "diverged_reason": result.diverged_reason,
                "train_run_id": train_run_id,
                **({"failure_mode": result.failure_mode} if result.failure_mode else {}),
            }
        )
        with tracking.staged_artifacts() as folder:
            (folder / "predictions").mkdir()
            for split, table in result.predictions.items():
                table.to_csv(folder / "predictions" / f"{split}.csv", index=False)
            max_freq = int(datasets["train"].freq.max()) + 1
            plots.predicted_vs_true(
                {
                    s: (t["true_freq"].to_numpy(), t["prediction"].to_numpy())
                    for s, t in result.predictions.items()
                },
                f"Predicted vs true frequency, max_freq={max_freq}",
                folder / "plots" / "predicted_vs_true.png",
            )
        return run.info.run_id, result


def main(argv: list[str] | None = None) -> None:
    from pipeline import command, keras_backend, tracking

    def execute(cfg: EvalConfig, raw: dict[str, str]) -> None:
        # The model must be loaded on the backend it was trained with.
        try:
            train_run = tracking.get_run(raw["train_run_id"], "train", "train_run_id")
            keras_backend.activate(train_run.data.params["backend"])
        except UserError:
            pass  # run_step raises it again, inside the evaluate run, which records it
        run_step(cfg, raw["train_run_id"])

    command.run(
        "evaluate",
        __doc__,
        EvalConfig.from_strings,
        execute,
        [EvalConfig],
        argv,
        extra=[("train_run_id", "the id of a FINISHED train run")],
    )


if __name__ == "__main__":
    main(sys.argv[1:])
