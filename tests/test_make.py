"""The studies behind `make study` and its one-line targets: the sweeps they launch, as planned.

`make -n` prints a target's commands without running them; the study file and the overrides
that its `mlflow run . -e study` line names go through pipeline.study and the sweep's own
parsing and planning, so these tests see the same jobs the target would run."""

import collections
import re
import subprocess

import pytest
from conftest import ROOT

from pipeline import study, sweep
from pipeline.config import SweepConfig


def planned(target: str, *make_vars: str) -> tuple[str, list[sweep.Job]]:
    """The study name and the jobs of the sweep that `make <target>` would launch."""
    out = subprocess.run(
        ["make", "-n", "-s", target, *make_vars],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    (line,) = [ln for ln in out.splitlines() if "mlflow run . -e study" in ln]
    path = re.search(r"-P file=(\S+)", line).group(1)
    overrides = study.parse_overrides([re.search(r'-P set="([^"]*)"', line).group(1)])
    raw = sweep.parse_args(study.sweep_argv(study.read(str(ROOT / path)), overrides))
    cfg = SweepConfig.from_strings(raw)
    # the report follows, on the study the file and the same overrides name
    (report,) = [ln for ln in out.splitlines() if "python -m analysis --study" in ln]
    assert f"pipeline.study {path}" in report
    assert all(f"--set {kv}" in report for kv in (f"{k}={v}" for k, v in overrides.items()))
    return cfg.study, sweep.plan(cfg, raw)


def test_the_default_study_runs_on_jax():
    study, jobs = planned("study")
    assert study == "default"
    assert len(jobs) == 25
    assert {j.params["backend"] for j in jobs} == {"jax"}
    assert sorted({j.params["max_freq"] for j in jobs}) == [5, 10, 20, 30, 40]
    assert {j.params["epochs"] for j in jobs} == {200}
    # everything else is the single run's reference configuration
    assert {j.params["samples_per_freq"] for j in jobs} == {10}
    assert {j.params["target_scale"] for j in jobs} == {"none"}
    assert all(j.axes == () for j in jobs)  # one backend: not a grid axis


def test_the_study_backend_can_be_chosen():
    _, jobs = planned("study", "SET=backend=tensorflow seeds=2")
    assert len(jobs) == 10 and {j.params["backend"] for j in jobs} == {"tensorflow"}


def test_the_backend_study_pairs_every_seed_on_both_backends():
    study, jobs = planned("backends")
    assert study == "backends"
    cells = collections.Counter((j.params["backend"], j.params["max_freq"]) for j in jobs)
    assert cells == {(b, m): 20 for b in ("tensorflow", "jax") for m in (10, 20, 30)}
    assert all(j.axes == ("backend",) for j in jobs)
    # same data per seed: the two backends' runs differ in nothing but the backend
    by_pair = collections.defaultdict(list)
    for job in jobs:
        rest = {k: v for k, v in job.params.items() if k != "backend"}
        by_pair[tuple(sorted(rest.items()))].append(job.params["backend"])
    assert all(sorted(b) == ["jax", "tensorflow"] for b in by_pair.values())


def test_the_budget_study_gives_every_max_freq_the_same_number_of_updates():
    study, jobs = planned("budget")
    assert study == "budget"
    cells = collections.Counter(j.params["max_freq"] for j in jobs)
    assert cells == {m: 16 for m in (10, 20, 30, 40, 50, 60)}
    assert {j.params["train_steps"] for j in jobs} == {6000}
    assert {j.params["backend"] for j in jobs} == {"jax"}
    assert {j.params["samples_per_freq"] for j in jobs} == {10}


def test_the_remainder_study_varies_the_last_batch_at_max_freq_30():
    study, jobs = planned("remainder")
    assert study == "remainder"
    cells = collections.Counter(j.params["batch_size"] for j in jobs)
    assert cells == {b: 16 for b in (29, 32, 33, 36)}
    # 290 training series: what each batch size leaves in the epoch's last batch
    assert {b: 290 - 32 * 0 - b * ((290 - 1) // b) for b in cells} == {
        29: 29,
        32: 2,
        33: 26,
        36: 2,
    }
    assert {j.params["max_freq"] for j in jobs} == {30}
    assert {j.params["train_steps"] for j in jobs} == {6000}
    assert all(j.axes == ("batch_size",) for j in jobs)


def test_the_extended_budget_study_stops_runs_once_off_the_plateau():
    study, jobs = planned("extend")
    assert study == "extend"
    cells = collections.Counter(j.params["max_freq"] for j in jobs)
    assert cells == {m: 24 for m in (20, 30, 40, 50)}
    assert {j.params["train_steps"] for j in jobs} == {24000}
    assert {j.params["stop_on_escape"] for j in jobs} == {True}
    # every run is checked at 6,000 updates, the budget study's end
    assert {j.params["check_every"] for j in jobs} == {150} and 6000 % 150 == 0
    assert {j.params["backend"] for j in jobs} == {"jax"}


def test_the_shape_study_covers_10_to_50_in_steps_of_5_stopping_once_decided():
    study, jobs = planned("shape")
    assert study == "shape"
    cells = collections.Counter(j.params["max_freq"] for j in jobs)
    assert cells == {m: 32 for m in range(10, 51, 5)}
    assert {j.params["train_steps"] for j in jobs} == {6000}
    assert {j.params["stop_on_escape"] for j in jobs} == {True}
    assert {j.params["backend"] for j in jobs} == {"jax"}
    _, later = planned("shape", "SET=first_seed=32 seeds=8")
    assert sorted({j.params["seed"] for j in later}) == list(range(32, 40))  # grown, not rerun


def test_the_relapse_study_is_shapes_first_seeds_to_the_full_budget_unstopped():
    study, jobs = planned("relapse")
    assert study == "relapse"
    cells = collections.Counter(j.params["max_freq"] for j in jobs)
    assert cells == {m: 16 for m in (20, 25, 30, 35, 40)}
    assert sorted({j.params["seed"] for j in jobs}) == list(range(16))  # shape's first seeds
    assert {j.params["train_steps"] for j in jobs} == {6000}
    assert {j.params["stop_on_escape"] for j in jobs} == {False}
    # the same checks as shape's runs (40 over the budget), so a run's stop point pairs up
    _, shape = planned("shape")
    assert {j.params["check_every"] for j in jobs} == {j.params["check_every"] for j in shape}
    assert {j.params["backend"] for j in jobs} == {"jax"}


def test_the_scale_study_crosses_the_target_scale_with_max_freq_10_to_50_at_200_epochs():
    study, jobs = planned("scale")
    assert study == "scale" and len(jobs) == 240
    cells = collections.Counter((j.params["target_scale"], j.params["max_freq"]) for j in jobs)
    assert cells == {(t, m): 24 for t in ("none", "max_freq") for m in (10, 20, 30, 40, 50)}
    assert {j.params["epochs"] for j in jobs} == {200}
    assert {j.params["train_steps"] for j in jobs} == {0}  # the reference budget, to the end
    assert {j.params["stop_on_escape"] for j in jobs} == {False}
    assert {j.params["samples_per_freq"] for j in jobs} == {10}


def test_the_original_study_is_the_askers_setting_raw_and_scaled():
    from pipeline.config import ORIGINAL

    study, jobs = planned("original")
    assert study == "original" and len(jobs) == 8
    for key, value in ORIGINAL.items():
        assert {j.params[key] for j in jobs} == {value}, key
    assert collections.Counter(j.params["target_scale"] for j in jobs) == {
        "none": 4,
        "max_freq": 4,
    }
    assert {j.params["epochs"] for j in jobs} == {200}


@pytest.mark.parametrize(
    "target",
    [
        "study",
        "backends",
        "causes",
        "scale",
        "budget",
        "remainder",
        "extend",
        "shape",
        "relapse",
        "original",
    ],
)
def test_a_study_target_names_its_study(target):
    study, _ = planned(target)
    assert study == {"study": "default"}.get(target, target)
