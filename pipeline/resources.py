"""Will a run fit in memory? An estimate from its parameters, checked before any work.

Valid parameters can still ask for more than the machine has (`--samples_per_freq 1000000000`
or `--lstm_units 10000000`): without this check the run works for a while, then dies with a
NumPy or TensorFlow traceback, or is killed by the kernel's OOM killer and left RUNNING.
`check(cfg)` compares `estimate(cfg)` with `available_bytes()` (free memory, or what is left
under the container's limit, whichever is smaller) and raises a one-line UserError naming the
parameters that drive the largest part.

The estimate is deliberately generous (peaks, not averages): 4-byte floats everywhere Keras
works, 8- and 16-byte ones where NumPy does.
"""

import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import DataConfig, PipelineConfig, TrainConfig
from pipeline.model import parameter_count
from pipeline.names import UserError
from pipeline.references import PAD

GIB = 2**30
BASE_BYTES = 1 * GIB  # Python, TensorFlow or JAX, MLflow, scikit-learn, matplotlib loaded


@dataclass(frozen=True)
class Need:
    part: str
    bytes: int
    drivers: str  # the parameters that make this part large


def series_counts(data: DataConfig) -> tuple[int, int]:
    return (data.max_freq - 1) * data.samples_per_freq, (data.max_freq - 1) * (
        data.test_samples_per_freq
    )


def data_needs(data: DataConfig) -> list[Need]:
    n_train, n_test = series_counts(data)
    points = (n_train + n_test) * data.time_steps
    largest = max(n_train, n_test) * data.time_steps
    drivers = "max_freq, samples_per_freq, test_samples_per_freq, time_steps"
    return [
        # float32 arrays kept, plus a copy while saving or loading; float64 while generating
        Need("data", points * 4 * 2 + largest * 16, drivers),
        # the FFT reference: a PAD-times zero-padded complex spectrum of the largest split
        Need("reference estimators", largest * PAD * (16 + 8), drivers),
    ]


def training_needs(train: TrainConfig, time_steps: int, n_train: int) -> list[Need]:
    weights = parameter_count(time_steps, train)
    batch = min(train.batch_size, max(n_train, 1))
    return [
        # weights, gradients and Adam's two moments
        Need("model", weights * 4 * 4, "lstm_units, dense_units"),
        # per time step the LSTM keeps its gates and states for backpropagation
        Need(
            "training activations",
            batch * time_steps * train.lstm_units * 12 * 4 + batch * train.dense_units * 8,
            "batch_size, time_steps, lstm_units",
        ),
    ]


def estimate(cfg: PipelineConfig) -> list[Need]:
    n_train, _ = series_counts(cfg.data)
    return data_needs(cfg.data) + training_needs(cfg.train, cfg.data.time_steps, n_train)


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_bytes() -> int:
    """Memory this process may still use: MemAvailable, capped by a cgroup limit."""
    free = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
    except OSError:
        pass
    if free is None:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    for limit, used in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # cgroup v2
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),  # v1
    ):
        cap, current = _read_int(limit), _read_int(used)
        if cap is not None and current is not None and cap < 2**60:
            free = min(free, max(cap - current, 0))
    return free


def _gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB" if n < 1024 * GIB else f"{n / GIB:.3g} GiB"


def refuse_if_too_big(
    needs: list[Need],
    copies: int = 1,
    available: int | None = None,
    values: dict[str, object] | None = None,
) -> None:
    """UserError when `copies` runs at once (a sweep's workers) need more than is available;
    it names the parameters behind the largest part (with their `values`, when given)."""
    total = (BASE_BYTES + sum(n.bytes for n in needs)) * copies
    available = available_bytes() if available is None else available
    if total <= available:
        return
    top = max(needs, key=lambda n: n.bytes)
    names = top.drivers.split(", ")
    given = ", ".join(f"{n}={values[n]}" if values and n in values else n for n in names)
    parts = ", ".join(f"{n.part} {_gib(n.bytes)}" for n in needs if n.bytes >= GIB // 10)
    times = f" × {copies} workers" if copies > 1 else ""
    lower = f"lower {' or '.join(names)}" + (" or workers" if copies > 1 else "")
    raise UserError(
        f"{given}: the run needs about {_gib(total)} of memory{times} "
        f"({parts or 'mostly the libraries'}), this machine has {_gib(available)} available: "
        f"{lower}"
    )


def check(cfg: PipelineConfig, copies: int = 1, available: int | None = None) -> None:
    refuse_if_too_big(estimate(cfg), copies, available, cfg.as_params())


def check_data(cfg: DataConfig, available: int | None = None) -> None:
    refuse_if_too_big(data_needs(cfg), 1, available, cfg.as_params())


def largest(cfgs: list[PipelineConfig]) -> PipelineConfig:
    return max(cfgs, key=lambda c: sum(n.bytes for n in estimate(c)))
