"""Stage 2, train: fit the reference LSTM to the training set of a generate_data run.

Reads: `--data`, a generate_data run id or the URI of its `data` artifact folder, and a
TrainConfig. With target_scale=max_freq the network fits f / max_freq (so `loss` is in those
units) and the logged model multiplies its output back: predictions are always frequencies.
Writes (as a `train` run): metric `loss` per epoch (step = epoch index from 0),
`mae_ratio_train` during training (step = optimizer updates made; pipeline/progress.py),
`fit_seconds`, `epochs_completed`, `optimizer_steps`, `steps_per_epoch`, and `stop_step` when
`stop_on_escape` ended training early; tags `nonfinite_loss`, `stopped_on_escape`;
the model under `model` (MLflow Keras flavour, with signature and input example);
`plots/learning_curve.png`. The budget is `epochs` epochs, or exactly `train_steps` updates.
A non-finite loss stops training early; the run still finishes and evaluate calls it diverged.
With `stop_on_escape`, training also ends at the check that confirms the run is off the
plateau (pipeline/progress.py), and the rest of the budget is saved. The run then counts as
learned; at long budgets a few such runs would have fallen back (docs/experiment.md).

    mlflow run . -e train -P data=<generate_data run id> -P epochs=200 --env-manager local
"""

import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import numpy as np

from pipeline import generate_data, progress
from pipeline.config import TrainConfig
from pipeline.generate_data import Dataset
from pipeline.model import build_model, predict, with_output_scale
from pipeline.names import UserError

RUN_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class TrainResult:
    model: Any
    loss: list[float]  # per epoch begun (the last one partial when train_steps cuts it)
    fit_seconds: float
    steps: int = 0  # optimizer updates made
    steps_per_epoch: int = 0
    train_prediction: np.ndarray | None = None  # on the training set, in frequency units
    progress: list[tuple[int, float]] = field(default_factory=list)  # (update, mae_ratio_train)
    stopped_on_escape: bool = False  # the stopping rule ended training before the budget

    @property
    def loss_finite(self) -> bool:
        return bool(np.all(np.isfinite(self.loss)))


def _budget_callback(total: int, checks: set[int], check: Callable[[Any, int], bool]):
    """Counts updates; checks the model at the updates in `checks` (a check that returns True
    ends training: the stopping rule); stops after `total`."""
    import keras

    class Budget(keras.callbacks.Callback):
        steps = 0
        stopped = False  # by a check, before the budget

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            self.steps += 1
            if self.steps in checks and check(self.model, self.steps):  # `.model` syncs jax
                self.stopped = self.steps < total
                self._model.stop_training = True
            if self.steps >= total:
                self._model.stop_training = True  # no sync needed to set a flag

    return Budget()


def train(
    cfg: TrainConfig,
    data: Dataset,
    on_epoch: Callable[[int, float], None] | None = None,
    on_progress: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Fit a fresh model for the configured budget (`epochs`, or exactly `train_steps`
    updates), checking mae_ratio_train at update 0, at progress.checkpoints and after the last
    update (pipeline/progress.py); `on_progress(update, ratio)` sees each check as it happens.
    With `stop_on_escape`, training ends at the check that confirms an escape. Seeded, so the
    same config and data give the same weights on CPU; the checks do not change them
    (inference mode draws no random numbers), and neither does the budget: a longer budget
    repeats a shorter one's updates first."""
    import keras

    keras.utils.set_random_seed(cfg.seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    scale = target_scale(cfg, data)
    model = build_model(data.x.shape[1], cfg)
    epochs, total = progress.budget(cfg.epochs, cfg.train_steps, len(data), cfg.batch_size)
    baseline = progress.baseline_mae(data.freq)
    points: list[tuple[int, float]] = []

    def record(step: int, prediction: np.ndarray) -> None:
        ratio = progress.mae(data.freq, prediction) / baseline
        points.append((step, ratio))
        if on_progress is not None:
            on_progress(step, ratio)

    def check(net: Any, step: int) -> bool:
        """Record a check; True when the stopping rule ends training here."""
        record(step, predict(net, data.x) * np.float32(scale))
        ratios = [ratio for _, ratio in points]
        return cfg.stop_on_escape and progress.confirmed_escape(ratios, cfg.divergence_ratio)

    check(model, 0)
    checks = set(progress.checkpoints(total, every=cfg.check_every))
    budget = _budget_callback(total, checks, check)
    callbacks = [keras.callbacks.TerminateOnNaN(), budget]
    if on_epoch is not None:
        callbacks.append(
            keras.callbacks.LambdaCallback(
                on_epoch_end=lambda epoch, logs: on_epoch(epoch, logs["loss"])
            )
        )
    start = time.perf_counter()
    history = model.fit(
        data.x,
        data.freq / np.float32(scale),
        batch_size=cfg.batch_size,
        epochs=epochs,
        verbose=0,
        callbacks=callbacks,
    )
    seconds = time.perf_counter() - start
    if scale != 1.0:
        model = with_output_scale(model, scale)
    # The last point is the run's own figure: the same prediction evaluate scores. A run the
    # rule stopped was checked at this very update: that point is replaced, not repeated.
    prediction = predict(model, data.x)
    if points[-1][0] == budget.steps and budget.steps > 0:
        points[-1] = (budget.steps, progress.mae(data.freq, prediction) / baseline)
    else:
        record(budget.steps, prediction)
    return TrainResult(
        model,
        [float(v) for v in history.history["loss"]],
        seconds,
        budget.steps,
        progress.steps_per_epoch(len(data), cfg.batch_size),
        prediction,
        points,
        budget.stopped,
    )


def check_data_for_training(cfg: TrainConfig, data: Dataset) -> None:
    """Data given to `train` on its own: finite, and small enough to train on here."""
    from pipeline import resources

    bad = ~np.isfinite(data.x).all(axis=(1, 2)) | ~np.isfinite(data.freq)
    if bad.any():
        raise UserError(
            f"data has {int(bad.sum())} series with NaN or infinite values (first: row "
            f"{int(np.argmax(bad))}): expected finite numbers; regenerate it with generate_data"
        )
    needs = resources.training_needs(cfg, data.x.shape[1], len(data))
    resources.refuse_if_too_big(needs, values=cfg.as_params())


def target_scale(cfg: TrainConfig, data: Dataset) -> float:
    """What the training target is divided by: 1, or max_freq (the data's highest frequency
    + 1, as generate_data makes them)."""
    return float(data.freq.max()) + 1.0 if cfg.target_scale == "max_freq" else 1.0


def resolve_data(ref: str) -> str:
    """A generate_data run id, or any artifact URI / path, as the URI of the data folder."""
    from pipeline import tracking

    if not ref:
        raise UserError("data='' is not allowed: expected a generate_data run id or a data URI")
    if RUN_ID.match(ref):
        tracking.get_run(ref, "generate_data", "data")
        return f"runs:/{ref}/data"
    return ref


def load_data(cfg: TrainConfig, data_ref: str) -> dict[str, Dataset]:
    """The datasets `data_ref` names, checked for training; a UserError names what is wrong.
    Needs neither TensorFlow nor jax: `train` refuses bad data before importing them."""
    from pipeline import tracking

    try:
        datasets = generate_data.load(tracking.download(resolve_data(data_ref)))
    except UserError as exc:
        if str(exc).startswith("data="):
            raise
        raise UserError(
            f"data={data_ref!r} is not allowed: expected a generate_data run id or the URI of "
            f"its data folder ({exc})"
        ) from None
    check_data_for_training(cfg, datasets["train"])
    return datasets


def model_requirements(backend: str) -> list[str]:
    """Pinned, so MLflow skips its slow requirement inference (≈10 s → ≈1 s)."""
    return [f"{p}=={metadata.version(p)}" for p in ("keras", backend, "numpy")]


def log_model(model: Any, example: np.ndarray, prediction: np.ndarray, backend: str) -> None:
    from pipeline import tracking

    tracking.log_keras_model(model, example, prediction, model_requirements(backend))


def run_step(
    cfg: TrainConfig,
    data_ref: str,
    datasets: dict[str, Dataset] | None = None,
    parent_run_id: str | None = None,
) -> tuple[str, TrainResult]:
    """Train and log a `train` run; `datasets` skips the download when already in memory."""
    from pipeline import plots, tracking

    params = {**cfg.as_params(), "data": data_ref}
    with tracking.step_run("train", params, parent_run_id) as run:
        import keras

        data_uri = resolve_data(data_ref)
        tracking.set_tags({"data_uri": data_uri, "keras_backend": keras.backend.backend()})
        if datasets is None:
            datasets = load_data(cfg, data_ref)
        loss_log = tracking.SeriesLogger("loss")
        ratio_log = tracking.SeriesLogger("mae_ratio_train")  # step = optimizer updates
        try:
            result = train(cfg, datasets["train"], on_epoch=loss_log, on_progress=ratio_log)
        except BaseException:  # an interrupted or failed run keeps every point it reached
            loss_log.flush(quietly=True)
            ratio_log.flush(quietly=True)
            raise
        loss_log.flush()
        ratio_log.flush()
        tracking.set_tags(
            {
                "nonfinite_loss": str(not result.loss_finite).lower(),
                "stopped_on_escape": str(result.stopped_on_escape).lower(),
            }
        )
        tracking.log_metrics(
            {
                "fit_seconds": result.fit_seconds,
                "epochs_completed": len(result.loss),
                "optimizer_steps": result.steps,
                "steps_per_epoch": result.steps_per_epoch,
                **({"stop_step": result.steps} if result.stopped_on_escape else {}),
            }
        )
        with tracking.staged_artifacts() as folder:
            title = f"Training, {len(datasets['train'])} series, backend {cfg.backend}"
            plots.learning_curve(
                result.loss, title, folder / "plots" / "learning_curve.png", result.progress,
                cfg.divergence_ratio,
            )  # fmt: skip
            # The example's prediction is read off the whole training set's, which evaluate
            # needs next anyway: one predict, one compile (jax) instead of two.
            log_model(
                result.model, datasets["train"].x[:2], result.train_prediction[:2], cfg.backend
            )
        return run.info.run_id, result


def main(argv: list[str] | None = None) -> None:
    from pipeline import command, keras_backend

    def build(raw: dict[str, str]) -> tuple[TrainConfig, dict[str, Dataset]]:
        cfg = TrainConfig.from_strings(raw)
        return cfg, load_data(cfg, raw["data"])  # bad data is refused before Keras loads

    def execute(built: tuple[TrainConfig, dict[str, Dataset]], raw: dict[str, str]) -> None:
        cfg, datasets = built
        keras_backend.activate(cfg.backend)
        run_step(cfg, raw["data"], datasets)

    command.run(
        "train",
        __doc__,
        build,
        execute,
        [TrainConfig],
        argv,
        extra=[("data", "a generate_data run id, or the URI of its data artifact folder")],
    )


if __name__ == "__main__":
    main(sys.argv[1:])
