"""Valid but impossible: what cannot fit in memory, or cannot be seeded, is refused before any
work with one line, exit 2 and a FAILED run; bad data given to `train` is not trained on."""

import time

import numpy as np
import pytest

from pipeline import resources
from pipeline.config import ORIGINAL, DataConfig, PipelineConfig
from pipeline.generate_data import Dataset, generate, save
from pipeline.names import UserError

GIB = 2**30


def _cfg(**raw) -> PipelineConfig:
    return PipelineConfig.from_strings({k: str(v) for k, v in raw.items()})


def test_the_estimate_grows_with_each_driver_and_the_defaults_fit_easily():
    base = sum(n.bytes for n in resources.estimate(_cfg()))
    assert base < 0.1 * GIB
    for knob in ("samples_per_freq", "time_steps", "lstm_units", "batch_size", "max_freq"):
        bigger = sum(n.bytes for n in resources.estimate(_cfg(**{knob: 1000})))
        assert bigger > base, knob
    resources.check(_cfg(), available=2 * GIB)
    resources.check(_cfg(**ORIGINAL), available=2 * GIB)  # the original setting fits too


def test_a_run_that_cannot_fit_names_what_drives_it():
    with pytest.raises(UserError) as err:
        resources.check(_cfg(lstm_units=100_000), available=16 * GIB)
    message = str(err.value)
    assert message.startswith("lstm_units=100000, dense_units=100: the run needs about ")
    assert "this machine has 16.0 GiB available: lower lstm_units or dense_units" in message
    with pytest.raises(UserError, match=r"^max_freq=20, samples_per_freq=10000000, "):
        resources.check(_cfg(samples_per_freq=10_000_000), available=16 * GIB)


def test_workers_multiply_what_a_sweep_needs():
    cfg = _cfg(samples_per_freq=2000)
    one = (resources.BASE_BYTES + sum(n.bytes for n in resources.estimate(cfg))) * 1.5
    resources.check(cfg, copies=1, available=int(one))
    with pytest.raises(UserError, match=r"× 2 workers .* lower .* or workers$"):
        resources.check(cfg, copies=2, available=int(one))


def test_available_memory_is_positive_and_below_the_machines():
    import psutil

    assert 0 < resources.available_bytes() <= psutil.virtual_memory().total


@pytest.mark.parametrize(
    ("module", "argv", "starts"),
    [
        ("main", ["--samples_per_freq", "1000000000"], "max_freq=20, samples_per_freq=1000000000"),
        ("main", ["--lstm_units", "10000000"], "lstm_units=10000000, dense_units=100"),
        ("main", ["--seed", "18446744073709551616"], "seed=18446744073709551616 is not allowed"),
        ("generate_data", ["--time_steps", "1000000000"], "max_freq=20, samples_per_freq=10"),
        ("sweep", ["--max_freqs", "5,10", "--lstm_units", "10000000"], "lstm_units=10000000"),
    ],
)
def test_impossible_runs_are_refused_in_seconds_with_a_failed_run(
    store, capsys, module, argv, starts
):
    import importlib

    start = time.monotonic()
    with pytest.raises(SystemExit) as done:
        importlib.import_module(f"pipeline.{module}").main(argv)
    assert done.value.code == 2 and time.monotonic() - start < 20
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {starts}")
    (run,) = store.runs()
    assert run.info.status == "FAILED" and run.data.tags["error"] == err[0].removeprefix("error: ")
    assert not store.runs(step="main") or module == "main"  # a sweep starts no pair


def _data_folder(tmp_path, poison: bool):
    sets = generate(DataConfig(max_freq=3, samples_per_freq=2, test_samples_per_freq=1))
    if poison:
        x = sets["train"].x.copy()
        x[1, 5, 0] = np.nan
        sets["train"] = Dataset(x, sets["train"].freq, sets["train"].phase)
    save(sets, tmp_path / "data")
    return str(tmp_path / "data")


def test_train_refuses_data_with_nan_and_names_a_missing_folder(store, capsys, tmp_path):
    from pipeline import train

    for data, message in (
        (
            _data_folder(tmp_path, poison=True),
            "data has 1 series with NaN or infinite values (first: row 1): expected finite "
            "numbers; regenerate it with generate_data",
        ),
        ("/nonexistent/path", "data='/nonexistent/path' is not allowed: expected a "),
    ):
        with pytest.raises(SystemExit) as done:
            train.main(["--data", data, "--epochs", "1"])
        assert done.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: {message}"), err
    assert [r.info.status for r in store.runs(step="train")] == ["FAILED", "FAILED"]
