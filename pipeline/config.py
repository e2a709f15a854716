"""Every knob of the pipeline: its default, its meaning and what values it allows.

One frozen dataclass per stage is the single source of truth for defaults. The CLI builds its
flags from these fields, `MLproject` repeats the defaults (a test keeps them equal), and
`__post_init__` validates every value once, raising `ConfigError` with a one-line message that
names the parameter, the value given and what is allowed.
"""

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.names import (
    ENGINES,
    HEARTBEAT_EVERY_S,
    MIN_STALE_AFTER_MIN,
    ConfigError,
)

BACKENDS = ("tensorflow", "jax")
TARGET_SCALES = ("none", "max_freq")
STUDY_NAME_ALLOWED = "letters, digits, '-' and '_' (at most 64)"


def _knob(default: Any, help: str, ok: Callable[[Any], bool], allowed: str) -> Any:
    return field(default=default, metadata={"help": help, "ok": ok, "allowed": allowed})


def _choice(default: str, help: str, values: tuple[str, ...]) -> Any:
    """A knob that takes one of `values`."""
    return _knob(default, help, lambda v: v in values, " or ".join(values))


INT_MAX = 2**31 - 1  # sizes: what NumPy and TensorFlow shapes and loops take
MAX_RUNS = 10_000  # a sweep plans at most this many runs unless max_runs asks for more
SEED_MAX = 2**32 - 1  # what NumPy's and Keras's seeding takes


def _between(low: int, high: int = INT_MAX) -> Callable[[Any], bool]:
    return lambda v: low <= v <= high


def _integers(low: int, high: int = INT_MAX) -> str:
    return f"an integer from {low} to {high}"


def _positive_finite(v: float) -> bool:
    return math.isfinite(v) and v > 0


class _Validated:
    """Mixin: check each field against its metadata, parse fields from strings."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
                object.__setattr__(self, f.name, value)
            if type(value) is not f.type or not f.metadata["ok"](value):
                raise ConfigError(f.name, value, f.metadata["allowed"])

    @classmethod
    def from_strings(cls, raw: Mapping[str, Any]) -> Any:
        """Build from CLI/MLflow strings; keys of other stages are ignored."""
        values = {}
        for f in dataclasses.fields(cls):
            if f.name in raw and raw[f.name] is not None:
                values[f.name] = _parse(f, raw[f.name])
        return cls(**values)

    def as_params(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


BOOLEANS = {"true": True, "false": False}


def as_text(value: Any) -> str:
    """A default as the CLI and MLproject write it: `false`, not Python's `False`."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _parse(f: dataclasses.Field, text: Any) -> Any:
    if not isinstance(text, str):
        return text
    if f.type is bool:
        flag = BOOLEANS.get(text.strip().lower())
        if flag is None:
            raise ConfigError(f.name, text, f.metadata["allowed"])
        return flag
    try:
        if f.type is int:
            return int(text.strip())
        if f.type is float:
            return float(text)
    except ValueError:
        raise ConfigError(f.name, text, f.metadata["allowed"]) from None
    return text


@dataclass(frozen=True)
class DataConfig(_Validated):
    """generate_data: sin(f·t) series for f = 1 … max_freq−1, t over one period from phase φ."""

    max_freq: int = _knob(
        20,
        "frequencies 1 … max_freq−1 are generated",
        _between(3),
        _integers(3) + " (at 2 there is one frequency: nothing to tell apart)",
    )
    time_steps: int = _knob(100, "points per series, over [φ, 2π+φ]", _between(2), _integers(2))
    samples_per_freq: int = _knob(10, "training series per frequency", _between(1), _integers(1))
    test_samples_per_freq: int = _knob(
        10, "held-out series per frequency", _between(1), _integers(1)
    )
    seed: int = _knob(
        0, "seed for phases and weights", _between(0, SEED_MAX), _integers(0, SEED_MAX)
    )

    @property
    def aliasing_limit(self) -> float:
        """(time_steps − 1) / 2: over one period sampled at time_steps points (endpoint
        included), frequency f and (time_steps − 1) − f give the same samples up to a phase."""
        return (self.time_steps - 1) / 2

    @property
    def aliased(self) -> bool:
        """Whether the highest generated frequency, max_freq − 1, reaches the limit."""
        return self.max_freq - 1 >= self.aliasing_limit

    @property
    def first_aliased_max_freq(self) -> int:
        """The smallest max_freq whose series alias at this time_steps."""
        return math.ceil(self.aliasing_limit + 1)


@dataclass(frozen=True)
class TrainConfig(_Validated):
    """train: Input → LSTM → Dense(relu) → Dropout → Dense(1, relu), Adam on MSE."""

    epochs: int = _knob(
        200, "training epochs (ignored when train_steps > 0)", _between(1), _integers(1)
    )
    train_steps: int = _knob(
        0,
        "optimizer updates to make, whatever max_freq and samples_per_freq are (the last "
        "epoch is cut short); 0 = train for `epochs` epochs",
        _between(0),
        _integers(0) + " (0 = off: train for epochs)",
    )
    batch_size: int = _knob(32, "minibatch size", _between(1), _integers(1))
    lstm_units: int = _knob(100, "LSTM width", _between(1), _integers(1))
    dense_units: int = _knob(100, "hidden Dense width", _between(1), _integers(1))
    dropout: float = _knob(
        0.1, "dropout rate after the hidden Dense", lambda v: 0 <= v < 1, "a number in [0, 1)"
    )
    learning_rate: float = _knob(
        0.001, "Adam learning rate (Keras default 0.001)", _positive_finite, "a number > 0"
    )
    backend: str = _choice("tensorflow", "Keras backend", BACKENDS)
    target_scale: str = _choice(
        "none",
        "train on f (none) or on f / max_freq (max_freq); predictions are in frequency units",
        TARGET_SCALES,
    )
    seed: int = _knob(
        0, "seed for phases and weights", _between(0, SEED_MAX), _integers(0, SEED_MAX)
    )
    check_every: int = _knob(
        0,
        "optimizer updates between two plateau checks (mae_ratio_train on the training set); "
        "0 = 40 checks evenly spaced over the budget",
        _between(0),
        _integers(0) + " (0 = 40 evenly spaced checks)",
    )
    stop_on_escape: bool = _knob(
        False,
        "end training once the run is off the plateau at two checks in a row (its outcome is "
        "decided: it did not diverge); its mae_* are then at that update, not the budget's",
        lambda v: True,
        "true or false",
    )
    divergence_ratio: float = _knob(
        0.5,
        "the plateau: mae_train / baseline_mae_train ≥ this (shared with evaluate's "
        "divergence verdict)",
        _positive_finite,
        "a number > 0",
    )


@dataclass(frozen=True)
class EvalConfig(_Validated):
    """evaluate: metrics on both sets and the divergence verdict."""

    divergence_ratio: float = _knob(
        0.5,
        "a run diverged if mae_train / baseline_mae_train ≥ this",
        _positive_finite,
        "a number > 0",
    )


@dataclass(frozen=True)
class PipelineConfig:
    """Everything `main` needs: the three stage configs, sharing one seed."""

    data: DataConfig
    train: TrainConfig
    eval: EvalConfig

    @classmethod
    def from_strings(cls, raw: Mapping[str, Any]) -> "PipelineConfig":
        return cls(
            DataConfig.from_strings(raw),
            TrainConfig.from_strings(raw),
            EvalConfig.from_strings(raw),
        )

    def as_params(self) -> dict[str, Any]:
        return {**self.data.as_params(), **self.train.as_params(), **self.eval.as_params()}

    @staticmethod
    def parse(name: str, text: str) -> Any:
        """One parameter from its string, typed (not yet range-checked)."""
        for config in (DataConfig, TrainConfig, EvalConfig):
            for f in dataclasses.fields(config):
                if f.name == name:
                    return _parse(f, text)
        raise KeyError(name)


# The original question's setting, which did not learn: one 2,000-point series per frequency
# 1…300 (`make original`). The reference experiment is the proposed fix: 10 series per
# frequency, frequencies 1…max_freq−1 with a small max_freq, 100 points.
ORIGINAL = {"time_steps": 2000, "max_freq": 301, "samples_per_freq": 1, "test_samples_per_freq": 1}

# What a sweep passes to every run unchanged, or varies as a grid axis (all but max_freq, seed).
PASSED_THROUGH = tuple(
    dict.fromkeys(
        f.name
        for config in (DataConfig, TrainConfig, EvalConfig)
        for f in dataclasses.fields(config)
        if f.name not in ("max_freq", "seed")
    )
)


def _host_port(text: str) -> bool:
    host, _, port = text.removeprefix("ray://").rpartition(":")
    return bool(host) and port.isdigit() and 0 < int(port) < 65536 and " " not in host


def _study_name(v: str) -> bool:
    return v == "" or (v.replace("-", "").replace("_", "").isalnum() and len(v) <= 64)


def _freq_list(text: str) -> bool:
    parts = [p.strip() for p in text.split(",")]
    return all(p.isdigit() and 3 <= int(p) <= INT_MAX for p in parts) and len(set(parts)) == len(
        parts
    )


@dataclass(frozen=True)
class SweepConfig(_Validated):
    """sweep: every (max_freq, seed) pair as a full pipeline run, under one sweep run."""

    max_freqs: str = _knob(
        "5,10,20,30,40",
        "comma-separated max_freq values",
        _freq_list,
        f"distinct integers from 3 to {INT_MAX}, comma-separated",
    )
    seeds: int = _knob(
        5,
        "how many seeds for each max_freq: first_seed … first_seed+seeds−1",
        _between(1, SEED_MAX),
        _integers(1, SEED_MAX),
    )
    first_seed: int = _knob(
        0,
        "the first seed (a study grown later takes the seeds after those it has)",
        _between(0, SEED_MAX),
        _integers(0, SEED_MAX),
    )
    max_runs: int = _knob(
        MAX_RUNS,
        "the most runs a sweep starts without being asked for more (a typo in max_freqs or "
        "seeds is refused in seconds); 0 = no limit",
        _between(0),
        _integers(0) + " (0 = no limit)",
    )
    workers: int = _knob(
        0, "parallel worker processes; 0 = one per CPU core", _between(0), _integers(0)
    )
    study: str = _knob(
        "",
        "study name (tag `study`); empty = derived from the sweep's parameters",
        _study_name,
        STUDY_NAME_ALLOWED,
    )

    executor: str = _choice(
        "local",
        "where the runs execute: local worker processes, or tasks on a Ray cluster",
        ENGINES,
    )
    ray_address: str = _knob(
        "",
        "with executor=ray: empty = start Ray here with `workers` CPUs; 'auto' or host:port = "
        "join a running cluster",
        lambda v: v in ("", "auto") or _host_port(v),
        "empty, 'auto' or host:port",
    )
    stale_after_min: float = _knob(
        10.0,
        "RUNNING runs of the study with no heartbeat for this long are marked KILLED and rerun",
        lambda v: math.isfinite(v) and v >= MIN_STALE_AFTER_MIN,
        f"a number of minutes ≥ {MIN_STALE_AFTER_MIN:g} (four missed heartbeats of "
        f"{HEARTBEAT_EVERY_S:g} s)",
    )

    @property
    def max_freq_values(self) -> list[int]:
        return [int(p) for p in self.max_freqs.split(",")]

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.first_seed + self.seeds - 1 > SEED_MAX:
            raise ConfigError(
                "first_seed", self.first_seed, f"at most {SEED_MAX} − seeds + 1 = "
                f"{SEED_MAX - self.seeds + 1} (the last seed must be a seed)",
            )  # fmt: skip

    @property
    def seed_values(self) -> range:
        return range(self.first_seed, self.first_seed + self.seeds)


def _ratio_or_empty(text: str) -> bool:
    try:
        return text == "" or _positive_finite(float(text))
    except ValueError:
        return False


@dataclass(frozen=True)
class AnalyzeConfig(_Validated):
    """analyze: the report on a study's or an experiment's `main` runs (analysis/)."""

    experiment: str = _knob("", "experiment name; empty = all", lambda v: True, "any name")
    study: str = _knob(
        "",
        "study name (tag `study`), or several separated by commas, reported as one "
        "(the slices of a study run apart); empty = all",
        lambda v: v == "" or all(name and _study_name(name) for name in v.split(",")),
        STUDY_NAME_ALLOWED + ", or several such names separated by commas",
    )
    divergence_ratio: str = _knob(
        "",
        "re-judge divergence at this mae_ratio_train; empty = as logged",
        _ratio_or_empty,
        "a number > 0, or empty",
    )
    out: str = _knob(
        "reports", "folder for reports/<name>/", lambda v: v.strip() != "", "a folder path"
    )
    curves_per_max_freq: int = _knob(
        20,
        "runs per max_freq read for learning curves and error by frequency",
        _between(1),
        _integers(1),
    )

    @property
    def ratio(self) -> float | None:
        return float(self.divergence_ratio) if self.divergence_ratio else None
