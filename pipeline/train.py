"""Stage 2, train: fit the reference LSTM to the training set of a generate_data run.

Reads: `--data`, a generate_data run id or the URI of its `data` artifact folder, and a
TrainConfig. With target_scale=max_freq the network fits f / max_freq (so `loss` is in those
units) and the logged model multiplies its output back: predictions are always frequencies.
Writes (as a `train` run): metric `loss` per epoch (step = epoch index from 0),
`fit_seconds`, `epochs_completed`; tag `nonfinite_loss`; the model under `model` (MLflow Keras
flavour, with signature and input example); `plots/learning_curve.png`.
A non-finite loss stops training early; the run still finishes and evaluate calls it diverged.

    mlflow run . -e train -P data=<generate_data run id> -P epochs=200 --env-manager local
"""

import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import numpy as np

from pipeline import generate_data
from pipeline.config import TrainConfig, UserError
from pipeline.generate_data import Dataset
from pipeline.model import build_model, predict, with_output_scale

RUN_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class TrainResult:
    model: Any
    loss: list[float]
    fit_seconds: float
    train_prediction: np.ndarray | None = None  # on the training set, once logged

    @property
    def loss_finite(self) -> bool:
        return bool(np.all(np.isfinite(self.loss)))


def train(
    cfg: TrainConfig, data: Dataset, on_epoch: Callable[[int, float], None] | None = None
) -> TrainResult:
    """Fit a fresh model; seeded, so the same config and data give the same weights on CPU."""
    import keras

    keras.utils.set_random_seed(cfg.seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    scale = target_scale(cfg, data)
    model = build_model(data.x.shape[1], cfg)
    callbacks = [keras.callbacks.TerminateOnNaN()]
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
        epochs=cfg.epochs,
        verbose=0,
        callbacks=callbacks,
    )
    seconds = time.perf_counter() - start
    if scale != 1.0:
        model = with_output_scale(model, scale)
    return TrainResult(model, [float(v) for v in history.history["loss"]], seconds)


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
            try:
                datasets = generate_data.load(tracking.download(data_uri))
            except UserError as exc:
                raise UserError(
                    f"data={data_ref!r} is not allowed: expected a generate_data run id or the "
                    f"URI of its data folder ({exc})"
                ) from None
            check_data_for_training(cfg, datasets["train"])
        loss_log = tracking.SeriesLogger("loss")
        try:
            result = train(cfg, datasets["train"], on_epoch=loss_log)
        except BaseException:  # an interrupted or failed run keeps every epoch it finished
            loss_log.flush(quietly=True)
            raise
        loss_log.flush()
        tracking.set_tags({"nonfinite_loss": str(not result.loss_finite).lower()})
        tracking.log_metrics(
            {"fit_seconds": result.fit_seconds, "epochs_completed": len(result.loss)}
        )
        with tracking.staged_artifacts() as folder:
            title = f"Training loss, {len(datasets['train'])} series, backend {cfg.backend}"
            plots.learning_curve(result.loss, title, folder / "plots" / "learning_curve.png")
            # The example's prediction is read off the whole training set's, which evaluate
            # needs next anyway: one predict, one compile (jax) instead of two.
            result.train_prediction = predict(result.model, datasets["train"].x)
            log_model(
                result.model, datasets["train"].x[:2], result.train_prediction[:2], cfg.backend
            )
        return run.info.run_id, result


def main(argv: list[str] | None = None) -> None:
    from pipeline import cli

    def execute(cfg: TrainConfig, raw: dict[str, str]) -> None:
        cli.activate_backend(cfg.backend)
        run_step(cfg, raw["data"])

    cli.run(
        "train",
        __doc__,
        TrainConfig.from_strings,
        execute,
        [TrainConfig],
        argv,
        extra=[("data", "a generate_data run id, or the URI of its data artifact folder")],
    )


if __name__ == "__main__":
    main(sys.argv[1:])
