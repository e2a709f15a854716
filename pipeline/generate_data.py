"""Stage 1, generate_data: sine series labelled with their frequency.

Reads: a DataConfig. Writes (as artifacts of a `generate_data` run, under `data/`):
`train.npz` and `test.npz`, each with `x` (n, time_steps, 1) float32, `freq` (n,) float32 and
`phase` (n,) float64. Both sets hold every frequency 1 … max_freq−1; the test set draws its
phases from a stream independent of the training set's. Deterministic in its parameters.

    mlflow run . -e generate_data -P max_freq=20 --env-manager local
"""

import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import keys
from pipeline.config import DataConfig
from pipeline.names import UserError

SPLITS = ("train", "test")


@dataclass(frozen=True)
class Dataset:
    x: np.ndarray  # (n, time_steps, 1) float32
    freq: np.ndarray  # (n,) float32, the target
    phase: np.ndarray  # (n,) float64, φ of each series

    def __len__(self) -> int:
        return len(self.freq)


def sine_series(freq: np.ndarray, phase: np.ndarray, time_steps: int) -> np.ndarray:
    """sin(f·t) for t = time_steps points from φ to 2π+φ, endpoint included."""
    t = np.linspace(phase, phase + 2 * np.pi, time_steps, axis=1)
    return np.sin(freq[:, None] * t).astype(np.float32)[..., None]


def make_dataset(cfg: DataConfig, per_freq: int, rng: np.random.Generator) -> Dataset:
    freq = np.repeat(np.arange(1, cfg.max_freq, dtype=np.float32), per_freq)
    phase = rng.uniform(0.0, 1.0, size=freq.size)
    return Dataset(sine_series(freq, phase, cfg.time_steps), freq, phase)


def generate(cfg: DataConfig) -> dict[str, Dataset]:
    """The training and held-out sets; independent random streams spawned from the seed."""
    train_rng, test_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(cfg.seed).spawn(2)
    )
    return {
        "train": make_dataset(cfg, cfg.samples_per_freq, train_rng),
        "test": make_dataset(cfg, cfg.test_samples_per_freq, test_rng),
    }


def generator_version() -> str:
    """The code that makes the arrays: this module's source."""
    return keys.source_digest([Path(__file__).resolve()])


def data_key(cfg: DataConfig) -> str:
    """Identifies the arrays a config produces with this code; equal keys mean a data run can
    be reused (a change to this module makes new data)."""
    return keys.params_key(cfg.as_params(), generator_version())


def aliasing_warning(cfg: DataConfig) -> str | None:
    if not cfg.aliased:
        return None
    return (
        f"max_freq − 1 = {cfg.max_freq - 1} ≥ (time_steps − 1)/2 = {cfg.aliasing_limit:g}: "
        "the highest frequencies alias at this sampling rate, so the task is ill-posed"
    )


def flag_aliasing(cfg: DataConfig) -> None:
    """Warn (once per process: same call site) and tag the active run if the series alias."""
    from pipeline import tracking

    warning = aliasing_warning(cfg)
    if warning:
        warnings.warn(warning, stacklevel=1)
        tracking.set_tags({"aliasing_warning": warning})


def save(datasets: dict[str, Dataset], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for split, ds in datasets.items():
        np.savez(folder / f"{split}.npz", x=ds.x, freq=ds.freq, phase=ds.phase)


def load(folder: Path) -> dict[str, Dataset]:
    """Read what `save` wrote; anything missing or malformed is a UserError naming the file."""
    out = {}
    for split in SPLITS:
        path = Path(folder) / f"{split}.npz"
        try:
            with np.load(path, allow_pickle=False) as z:
                ds = Dataset(z["x"], z["freq"], z["phase"])
        except (OSError, KeyError, ValueError) as exc:
            raise UserError(f"data: cannot read {path}: {exc}") from None
        n = len(ds.freq)
        if ds.x.ndim != 3 or ds.x.shape[0] != n or ds.x.shape[2] != 1 or ds.phase.shape != (n,):
            raise UserError(
                f"data: {path} is malformed: x{ds.x.shape}, freq{ds.freq.shape}, "
                f"phase{ds.phase.shape}; expected x (n, time_steps, 1), freq (n,), phase (n,)"
            )
        out[split] = ds
    return out


def run_step(cfg: DataConfig, parent_run_id: str | None = None) -> str:
    """Generate and log the datasets as a `generate_data` run; returns its run id."""
    from pipeline import tracking

    with tracking.step_run("generate_data", cfg.as_params(), parent_run_id) as run:
        flag_aliasing(cfg)
        tracking.set_tags({"data_key": data_key(cfg)})
        datasets = generate(cfg)
        with tracking.staged_artifacts() as folder:
            save(datasets, folder / "data")
        tracking.log_metrics({f"n_{split}": len(ds) for split, ds in datasets.items()})
        return run.info.run_id


def main(argv: list[str] | None = None) -> None:
    from pipeline import command

    def build(raw: dict[str, str]) -> DataConfig:
        from pipeline import resources

        cfg = DataConfig.from_strings(raw)
        resources.check_data(cfg)  # what cannot fit is refused before any work
        return cfg

    command.run(
        "generate_data",
        __doc__,
        build,
        lambda cfg, raw: run_step(cfg),
        [DataConfig],
        argv,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
