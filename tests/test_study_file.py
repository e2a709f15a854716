"""Study files (studies/<name>.toml, pipeline/study.py): read and checked, overridden, rerun
as the records ran, and every one of them run for real in smoke mode with its report.

`make test-studies` (pytest -k study_file, slow tests included) runs them all; `make test`
runs the default file's smoke run, `make test-slow` the others."""

import hashlib
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT

from pipeline import study, sweep
from pipeline.config import ORIGINAL, PASSED_THROUGH, SweepConfig, as_text
from pipeline.names import UserError

FILES = sorted((ROOT / "studies").glob("*.toml"))
NAMES = [p.stem for p in FILES]
RECORDS = ROOT / "docs" / "results"
# What the records' commands overrode (their manifests' `command`): the rest is the file.
RECORD_OVERRIDES = {"backends": {"seeds": "10"}}


def plan_of(name: str, overrides: dict[str, str] | None = None, smoke: bool = False):
    raw = sweep.parse_args(study.sweep_argv(study.read(name), overrides or {}, smoke))
    cfg = SweepConfig.from_strings(raw)
    return cfg, raw, sweep.plan(cfg, raw)


def test_study_file_every_study_of_the_makefile_has_one():
    targets = "default backends causes scale budget remainder extend shape relapse original"
    assert NAMES == sorted(targets.split())
    makefile = (ROOT / "Makefile").read_text()
    for name in NAMES[1:]:
        if name != "default":  # `make study` runs it
            assert f"\n{name}: ; @$(MAKE) --no-print-directory study NAME=$@ ##" in makefile


@pytest.mark.parametrize("name", NAMES)
def test_study_file_says_why_beside_every_value(name):
    text = (ROOT / "studies" / f"{name}.toml").read_text()
    s = study.read(name)
    assert s.question.endswith("?") and s.sections[0] == "trend"
    value_lines = [ln for ln in text.splitlines() if "=" in ln and not ln.startswith("#")]
    for line in value_lines:
        if line.split("=")[0].strip() not in ("question", "sections"):
            assert "  # " in line, f"{name}.toml: no reason beside {line!r}"


@pytest.mark.parametrize("name", NAMES)
def test_study_file_plans_the_runs_of_its_committed_record(name):
    """The file, with what the record's command overrode, plans exactly the record's runs:
    every (max_freq, seed, axis) cell and every other parameter's value."""
    runs = pd.read_csv(RECORDS / name / "runs.csv")
    _, _, jobs = plan_of(name, RECORD_OVERRIDES.get(name))
    planned = pd.DataFrame([j.params for j in jobs])

    def texts(values):
        return sorted(as_text(v).lower() for v in values)

    # (a record made before a parameter existed ran at what is now its default)
    for column in [c for c in ["max_freq", "seed", *PASSED_THROUGH] if c in runs]:
        assert texts(planned[column]) == texts(runs[column]), f"{name}: {column}"


def test_study_file_original_is_the_askers_setting():
    _, _, jobs = plan_of("original")
    for key, value in ORIGINAL.items():
        assert {j.params[key] for j in jobs} == {value}, key
    assert sorted(j.params["target_scale"] for j in jobs) == ["max_freq"] * 4 + ["none"] * 4


def test_study_file_overrides_win_and_make_axes():
    cfg, raw, jobs = plan_of("shape", {"seeds": "2", "first_seed": "32", "max_freqs": "10,20"})
    assert cfg.study == "shape"
    assert sorted({(j.params["max_freq"], j.params["seed"]) for j in jobs}) == [
        (10, 32), (10, 33), (20, 32), (20, 33)
    ]  # fmt: skip
    assert {j.params["train_steps"] for j in jobs} == {6000}  # the file's, not overridden
    _, _, jobs = plan_of("default", {"backend": "tensorflow,jax", "study": "mine"})
    assert {j.axes for j in jobs} == {("backend",)} and len(jobs) == 50
    assert raw["study_file"] == "studies/shape.toml"
    assert (
        raw["study_file_sha256"]
        == hashlib.sha256((ROOT / "studies" / "shape.toml").read_bytes()).hexdigest()
    )
    assert raw["report_sections"] == "trend,escape"


def test_study_file_smoke_mode_cuts_the_grid_and_keeps_every_axis():
    cfg, _, jobs = plan_of("causes", smoke=True)
    assert cfg.study == "causes-smoke" and cfg.max_freq_values == [10, 50] and cfg.seeds == 1
    assert len(jobs) == 2 * 2 * 2  # max_freqs × samples_per_freq × target_scale
    assert {j.params["train_steps"] for j in jobs} == {study.SMOKE_STEPS}
    _, _, jobs = plan_of("extend", smoke=True)
    assert {j.params["check_every"] for j in jobs} == {1}
    assert {j.params["stop_on_escape"] for j in jobs} == {True}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[grid]\nsedes = 3\n", "[grid] 'sedes' is not a grid parameter"),
        ("[grid]\nbackend = 'jax'\n", "an axis is a list; a single value goes in [fixed]"),
        ("[fixed]\nbackend = ['jax']\n", "a list is an axis: [grid]"),
        ("[fixed]\nmax_freqs = 3\n", "[fixed] 'max_freqs' is not an experiment parameter"),
        ("[grid]\nseeds = [1, 2]\n", "[grid] seeds = [1, 2]: expected one integer"),
        ("sections = ['trend', 'plots']\n", "sections = ['trend', 'plots']: expected a list"),
        ("grid = [\n", "not valid TOML"),
        ("title = 'x'\n", "unknown key 'title'"),
    ],
)
def test_study_file_mistakes_are_one_line_errors_naming_the_file(tmp_path, text, message):
    path = tmp_path / "mine.toml"
    path.write_text(text)
    with pytest.raises(UserError) as exc:
        study.read(str(path))
    assert str(exc.value).startswith(f"study file {str(path)!r}: ")
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_study_file_a_bad_value_is_refused_before_any_run(store, tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text("[grid]\nmax_freqs = [2, 10]\nseeds = 1\n")
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.study", str(path)],
        cwd=ROOT, env=store.env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("error: max_freqs='2,10' is not")
    assert not store.runs(step="main")
    assert all(r.info.status == "FAILED" for r in store.runs())  # nothing left RUNNING
    unknown = subprocess.run(
        [sys.executable, "-m", "pipeline.study", "nosuch", "--name"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert unknown.returncode == 2
    assert "error: study file 'nosuch': no such file; the project's studies: backends" in (
        unknown.stderr
    )


def test_study_file_a_users_own_file_runs_without_the_makefile(tmp_path):
    """The documented example (docs/studies.md) is a valid study of its own name."""
    doc = (ROOT / "docs" / "studies.md").read_text()
    example = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "my_study.toml"
    path.write_text(example)
    raw = sweep.parse_args(study.sweep_argv(study.read(str(path)), {}))
    cfg = SweepConfig.from_strings(raw)
    assert cfg.study == "my_study" and len(sweep.plan(cfg, raw)) > 0
    assert raw["study_file"] == str(path.resolve())


SMOKE_FAST = {"default"}  # in make test; the others in make test-slow


@pytest.mark.parametrize(
    "name", [n if n in SMOKE_FAST else pytest.param(n, marks=pytest.mark.slow) for n in NAMES]
)
def test_study_file_runs_in_smoke_mode_with_its_report(name, store, tmp_path):
    if name in SMOKE_FAST:  # through MLflow's own entry point, as `make study` runs it
        done = store.mlflow_run(
            "study", file=str(ROOT / "studies" / f"{name}.toml"), set="workers=2", smoke="true"
        )
    else:
        done = subprocess.run(
            [sys.executable, "-m", "pipeline.study", name, "--smoke", "--set", "workers=2"],
            cwd=ROOT,
            env=store.env(),
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    _, _, jobs = plan_of(name, smoke=True)
    runs = store.runs(step="main", study=f"{name}-smoke")
    assert len(runs) == len(jobs) and all(r.info.status == "FINISHED" for r in runs)
    (sweep_run,) = store.runs(step="sweep", study=f"{name}-smoke")
    assert sweep_run.data.params["study_file"] == f"studies/{name}.toml"
    assert sweep_run.info.run_name == f"sweep {name}-smoke"
    assert sweep_run.data.params["report_sections"] == ",".join(study.read(name).sections)
    artifact = Path(sweep_run.info.artifact_uri.removeprefix("file://")) / f"{name}.toml"
    assert artifact.read_text() == (ROOT / "studies" / f"{name}.toml").read_text()
    report = subprocess.run(
        [sys.executable, "-m", "analysis", "--study", f"{name}-smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        env=store.env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert report.returncode == 0, report.stderr[-3000:]
    text = (tmp_path / f"{name}-smoke" / "report.md").read_text()
    assert text.startswith("# ") and "![" in text
    assert len(pd.read_csv(tmp_path / f"{name}-smoke" / "runs.csv")) == len(jobs)


def test_study_file_sections_decide_which_fits_the_report_runs():
    from analysis import load, report, stats

    judged = stats.judged(load.read_csv(RECORDS / "causes" / "runs.csv"), None)
    only_trend = report.analyse(judged, resamples=20, sections=("trend",))
    assert only_trend.effects is None and only_trend.escapes == []
    assert only_trend.comparison is None and len(only_trend.fits) == 4  # one per setting
    both = report.analyse(judged, resamples=20, sections=("trend", "factors"))
    assert both.effects is not None and both.escapes == []
    every = report.analyse(judged, resamples=20)  # no study file: all that apply
    assert every.effects is not None and every.escapes


def test_study_file_sections_are_read_from_the_studys_sweeps():
    from analysis import load

    sweeps = pd.DataFrame({"report_sections": ["trend,escape", "trend,factors"]})
    assert load.report_sections(sweeps) == ("escape", "factors", "trend")
    assert load.report_sections(pd.DataFrame({"report_sections": ["trend", ""]})) is None
    assert load.report_sections(None) is None
