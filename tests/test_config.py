"""Configuration: defaults, parsing and the one-line errors for bad input."""

import dataclasses
import os
import re
from pathlib import Path

import pytest
import yaml

from pipeline.config import (
    ORIGINAL,
    PASSED_THROUGH,
    AnalyzeConfig,
    DataConfig,
    EvalConfig,
    PipelineConfig,
    SweepConfig,
    TrainConfig,
    as_text,
)
from pipeline.names import ConfigError, UserError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        (
            "max_freq",
            "1",
            "an integer from 3 to 2147483647 (at 2 there is one frequency: nothing to tell apart)",
        ),
        (
            "max_freq",
            "2",
            "an integer from 3 to 2147483647 (at 2 there is one frequency: nothing to tell apart)",
        ),
        (
            "max_freq",
            "abc",
            "an integer from 3 to 2147483647 (at 2 there is one frequency: nothing to tell apart)",
        ),
        (
            "max_freq",
            "2.5",
            "an integer from 3 to 2147483647 (at 2 there is one frequency: nothing to tell apart)",
        ),
        ("time_steps", "1", "an integer from 2 to 2147483647"),
        ("samples_per_freq", "0", "an integer from 1 to 2147483647"),
        ("epochs", "0", "an integer from 1 to 2147483647"),
        ("batch_size", "-3", "an integer from 1 to 2147483647"),
        ("dropout", "1", "a number in [0, 1)"),
        ("dropout", "-0.1", "a number in [0, 1)"),
        ("learning_rate", "0", "a number > 0"),
        ("learning_rate", "nan", "a number > 0"),
        ("backend", "torch", "tensorflow or jax"),
        ("divergence_ratio", "0", "a number > 0"),
        ("seed", "-1", "an integer from 0 to 4294967295"),
        ("seed", "18446744073709551616", "an integer from 0 to 4294967295"),
        ("lstm_units", "2147483648", "an integer from 1 to 2147483647"),
        ("epochs", "99999999999999999999", "an integer from 1 to 2147483647"),
    ],
)
def test_bad_values_name_parameter_value_and_allowed(name, value, allowed):
    with pytest.raises(ConfigError) as info:
        PipelineConfig.from_strings({name: value})
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{name}=")
    assert value in message and message.endswith(f"expected {allowed}")


def test_strings_parse_to_typed_values():
    cfg = PipelineConfig.from_strings(
        {"max_freq": "30", "dropout": "0", "learning_rate": "1e-2", "backend": "jax", "x": "?"}
    )
    assert cfg.data.max_freq == 30 and cfg.train.dropout == 0.0
    assert cfg.train.learning_rate == pytest.approx(0.01) and cfg.train.backend == "jax"
    assert type(cfg.train.dropout) is float


def test_seed_is_shared_by_data_and_training():
    cfg = PipelineConfig.from_strings({"seed": "7"})
    assert cfg.data.seed == cfg.train.seed == 7


def test_aliasing_limit():
    assert DataConfig(time_steps=100).aliasing_limit == 49.5
    assert not DataConfig(max_freq=50).aliased and DataConfig(max_freq=51).aliased


def _mlproject():
    return yaml.safe_load((ROOT / "MLproject").read_text())["entry_points"]


@pytest.mark.parametrize(
    ("entry", "configs"),
    [
        ("main", [DataConfig, TrainConfig, EvalConfig]),
        ("generate_data", [DataConfig]),
        ("train", [TrainConfig]),
        ("evaluate", [EvalConfig]),
        ("sweep", [SweepConfig, DataConfig, TrainConfig, EvalConfig]),
        ("analyze", [AnalyzeConfig]),
    ],
)
def test_mlproject_defaults_and_types_equal_the_code(entry, configs):
    declared = _mlproject()[entry]["parameters"]
    mlflow_type = {int: "int", float: "float", str: "string", bool: "string"}
    fields = {f.name: f for c in configs for f in dataclasses.fields(c)}
    if entry == "sweep":  # the sweep sets these per run
        del fields["max_freq"], fields["seed"]
    config_params = {k: v for k, v in declared.items() if "default" in v}
    assert set(config_params) == set(fields)
    for name, spec in config_params.items():
        if entry == "sweep" and name in PASSED_THROUGH:  # a value or a grid axis: a string
            assert spec["type"] == "string" and spec["default"] == as_text(fields[name].default)
            continue
        assert spec["type"] == mlflow_type[fields[name].type], name
        default = fields[name].default
        assert spec["default"] == (as_text(default) if isinstance(default, bool) else default)
    # Every parameter reaches the command, as a flag of the same name.
    command = _mlproject()[entry]["command"]
    assert set(re.findall(r"--(\w+) \{(\w+)\}", command)) == {(k, k) for k in declared}


def test_conda_env_pins_equal_requirements():
    pins = [
        line.strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    conda = yaml.safe_load((ROOT / "conda.yaml").read_text())
    pip_deps = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    assert pip_deps == pins
    assert "python=3.11" in conda["dependencies"]
    assert all("==" in pin for pin in pins)


def test_the_original_preset_is_the_makefiles_and_valid():
    line = next(
        ln for ln in (ROOT / "Makefile").read_text().splitlines() if ln.startswith("ORIGINAL =")
    )
    assert dict(re.findall(r"-P (\w+)=(\d+)", line)) == {k: str(v) for k, v in ORIGINAL.items()}
    data = DataConfig.from_strings({k: str(v) for k, v in ORIGINAL.items()})
    assert (data.max_freq, data.time_steps, data.samples_per_freq) == (301, 2000, 1)
    assert not data.aliased  # the highest frequency, 300, is far below (2000 − 1)/2


def test_a_second_backend_in_one_process_is_refused():
    import keras

    from pipeline.keras_backend import activate as activate_backend

    other = "jax" if keras.backend.backend() == "tensorflow" else "tensorflow"
    with pytest.raises(UserError) as err:
        activate_backend(other)
    assert str(err.value) == (
        f"backend={other!r} is not allowed: Keras is already running on "
        f"{keras.backend.backend()!r} in this process"
    )


@pytest.mark.parametrize("value", ["0", "-1", "x", "nan", "inf"])
def test_the_analysis_divergence_ratio_is_validated(value):
    with pytest.raises(ConfigError) as err:
        AnalyzeConfig.from_strings({"divergence_ratio": value})
    assert str(err.value) == (
        f"divergence_ratio={value!r} is not allowed: expected a number > 0, or empty"
    )


@pytest.mark.parametrize("value", ["a,b", "backends-mf10,backends-mf20-30", "one"])
def test_the_analysis_takes_one_study_or_several(value):
    assert AnalyzeConfig.from_strings({"study": value}).study == value


@pytest.mark.parametrize("value", ["a,,b", "a,", ",a", "a b", "a,b c"])
def test_a_bad_study_list_is_refused(value):
    with pytest.raises(ConfigError, match=rf"^study={value!r} is not allowed: expected letters"):
        AnalyzeConfig.from_strings({"study": value})


def test_jax_compiles_are_cached_on_disk_unless_the_user_set_it_up(monkeypatch, tmp_path):
    from pipeline import keras_backend

    for name in ("DIR", "MAX_SIZE"):
        monkeypatch.delenv(f"JAX_COMPILATION_CACHE_{name}", raising=False)
    monkeypatch.delenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    keras_backend.use_jax_compilation_cache()
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "sine-lstm" / "jax")
    assert int(os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"]) == 512 * 2**20  # bounded, locked
    assert float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]) < 1  # jax's default: 1

    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/elsewhere")
    monkeypatch.setenv("JAX_COMPILATION_CACHE_MAX_SIZE", "1000")  # the user's own bound
    keras_backend.use_jax_compilation_cache()
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == "/elsewhere"
    assert os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"] == "1000"


def test_a_sweep_can_start_at_a_later_seed_but_not_past_the_last_one():
    cfg = SweepConfig.from_strings({"seeds": "8", "first_seed": "32"})
    assert list(cfg.seed_values) == list(range(32, 40))
    with pytest.raises(
        ConfigError, match=r"first_seed=4294967290 is not allowed: expected at most"
    ):
        SweepConfig.from_strings({"seeds": "8", "first_seed": "4294967290"})
