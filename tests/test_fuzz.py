"""Fuzz every parameter of every entry point through the real CLI (`main(argv)` in process):
each odd value ends in success or in exit 2 with one `error:` line naming the parameter, never
a traceback, and no run is left RUNNING."""

import importlib

import pytest
from mlflow.tracking import MlflowClient

# Huge, negative, zero, not-a-number, infinite, overflowing, empty, non-ASCII, very long, quotes.
VALUES = ["", "-1", "0", "nan", "inf", "1e309", "9" * 30, "ß∂ƒ", "x" * 3000, "'\"; --"]
TINY = {"max_freq": "3", "samples_per_freq": "1", "test_samples_per_freq": "1", "epochs": "1",
        "lstm_units": "2", "dense_units": "2"}  # fmt: skip
ENTRY_POINTS = {
    "pipeline.generate_data": TINY,
    "pipeline.main": TINY,
    "pipeline.train": {**TINY, "data": "0" * 32},
    "pipeline.evaluate": {"train_run_id": "0" * 32},
    "pipeline.sweep": {"max_freqs": "3", "seeds": "1", "workers": "1", **TINY},
    "analysis": {"study": "fuzz"},
    "pipeline.reap": {"study": "fuzz"},
}


def _parameters(module) -> list[str]:
    parser_owner = importlib.import_module(module if module != "analysis" else "analysis.__main__")
    with pytest.raises(SystemExit):  # --help lists every flag
        parser_owner.main(["--help"])


def _flags(capsys, module: str) -> list[str]:
    _parameters(module)
    text = capsys.readouterr().out
    return sorted(
        {w[2:].rstrip(",") for w in text.split() if w.startswith("--") and w != "--help"}
    )


# In `make test`: two values no parameter accepts (every case is a refusal, seconds in all).
# The full list runs in `make test-all`: accepted values run tiny real runs and sweeps.
QUICK = ["1e309!", "ß∂ƒ'\"; --"]


def test_two_odd_values_for_every_parameter_are_refused_with_one_line(store, capsys):
    tried, refused = _fuzz(store, capsys, QUICK)
    assert tried == refused > 100  # 58 parameters over 7 entry points


@pytest.mark.slow
def test_odd_values_for_every_parameter_end_in_one_line_or_success(store, capsys):
    tried, refused = _fuzz(store, capsys, VALUES)
    assert tried > 500 and refused > 400


def test_runs_refused_with_any_text_as_a_parameter_still_load():
    import pandas as pd

    from analysis.load import tidy

    now = pd.Timestamp.now()
    raw = pd.DataFrame(
        {"run_id": ["a", "b", "c"], "experiment_id": ["1"] * 3, "status": ["FAILED"] * 3,
         "start_time": [now] * 3, "end_time": [now] * 3,
         "params.max_freq": ["inf", "9" * 30, "5"], "params.seed": ["1e309", "-1", "x"]}
    )  # fmt: skip
    table = tidy(raw).set_index("run_id")
    assert table.loc["c", "max_freq"] == 5 and pd.isna(table.loc["a", "max_freq"])
    assert pd.isna(table.loc["b", "max_freq"]) and table.loc["b", "seed"] == -1


def _fuzz(store, capsys, values) -> tuple[int, int]:
    tried = refused = 0
    ran: list[str] = []
    for module, base in ENTRY_POINTS.items():
        entry = importlib.import_module(module if module != "analysis" else "analysis.__main__")
        flags = _flags(capsys, module)
        assert flags, module
        for flag in flags:
            for value in values:
                if module == "pipeline.sweep" and value in ("", "0"):
                    continue  # valid (a derived study, local Ray, one worker per core): a sweep
                given = {k: v for k, v in base.items() if k in flags} | {flag: value}
                argv = [f"--{k}={v}" for k, v in given.items()]
                tried += 1
                case = f"{module} --{flag}={value[:40]!r}"
                try:
                    entry.main(argv)
                    code = 0
                except SystemExit as exc:
                    code = exc.code
                except Exception as exc:
                    raise AssertionError(f"{case}: {exc!r}") from exc
                _, err = capsys.readouterr()
                assert code in (0, 2), f"{case}: exit {code}\n{err[-2000:]}"
                assert "Traceback" not in err, f"{case}\n{err[-2000:]}"
                if code == 0:
                    ran.append(case)
                if code == 2:
                    refused += 1
                    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
                    assert len(lines) == 1, f"{case}: {err[-2000:]}"
    running = MlflowClient().search_runs([store.experiment_id], "attributes.status = 'RUNNING'")
    assert running == []
    print(f"fuzz: {tried} cases, {refused} refused with one line, {tried - refused} ran: {ran}")
    return tried, refused
