"""The sweep's grid: any experiment parameter given as a comma-separated list is an axis."""

import pytest

from pipeline.config import PipelineConfig, SweepConfig
from pipeline.jobs import Context
from pipeline.names import ENGINES, ConfigError
from pipeline.sweep import grid_axes, plan, run_key, study_name

RAW = {"max_freqs": "5,10", "seeds": "2"}


def _plan(**raw: str):
    return plan(SweepConfig.from_strings({**RAW, **raw}), {**RAW, **raw})


def test_a_list_valued_parameter_is_crossed_with_max_freqs_and_seeds():
    jobs = _plan(samples_per_freq="1,10", dropout="0.1")
    assert len(jobs) == 2 * 2 * 2 and len({j.run_key for j in jobs}) == 8
    cells = {(j.params["max_freq"], j.params["seed"], j.params["samples_per_freq"]) for j in jobs}
    assert cells == {(m, s, n) for m in (5, 10) for s in (0, 1) for n in (1, 10)}
    assert {j.params["dropout"] for j in jobs} == {0.1}  # a single value is no axis
    assert all(j.axes == ("samples_per_freq",) for j in jobs)
    names = {j.name for j in jobs}
    assert "max_freq=10 seed=1 samples_per_freq=1" in names and len(names) == 8
    assert [j.params["max_freq"] for j in jobs[:4]] == [10] * 4  # longest first


def test_two_axes_and_backends_grouped_one_switch_per_worker():
    jobs = _plan(backend="jax,tensorflow", epochs="1,2")
    assert len(jobs) == 2 * 2 * 2 * 2
    backends = [j.params["backend"] for j in jobs]
    assert backends == sorted(backends)  # all jax, then all tensorflow
    assert jobs[0].axes == ("epochs", "backend")
    ctx = Context("sqlite:///x.db", "1", "r", "s", "tensorflow")
    assert ctx.for_job(jobs[0]).backend == "jax" and ctx.for_job(jobs[-1]).backend == "tensorflow"


def test_a_plain_sweep_has_no_axes_and_keeps_its_names():
    jobs = _plan()
    assert grid_axes(RAW) == {} and all(j.axes == () for j in jobs)
    assert sorted(j.name for j in jobs)[0] == "max_freq=10 seed=0"


def test_a_derived_study_name_says_every_varied_value():
    raw = {**RAW, "samples_per_freq": "1,10", "backend": "tensorflow,jax"}
    name = study_name(SweepConfig.from_strings(raw), raw)
    assert name.startswith("mf5-10_s2_e200_samples_per_freq1-10_backendtensorflow-jax_")
    plain = study_name(SweepConfig.from_strings(RAW), RAW)
    assert plain != name and "samples_per_freq" not in plain
    given = {**raw, "study": "mine"}
    assert study_name(SweepConfig.from_strings(given), given) == "mine"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("samples_per_freq", "1,x", "samples_per_freq='x' is not allowed: expected an integer"),
        (
            "samples_per_freq",
            "1,0",
            "samples_per_freq=0 is not allowed: expected an integer from 1 to 2147483647",
        ),
        ("backend", "jax,theano", "backend='theano' is not allowed: expected tensorflow or jax"),
        ("dropout", "0.1,0.10", "dropout='0.1,0.10' is not allowed: expected one value, or "),
        ("epochs", "1,", "epochs='1,' is not allowed: expected one value, or distinct values"),
    ],
)
def test_bad_axis_values_are_refused_before_anything_runs(name, value, message):
    with pytest.raises(ConfigError) as err:
        _plan(**{name: value})
    assert str(err.value).startswith(message)


def test_run_key_changes_with_any_parameter_and_with_the_code(monkeypatch):
    from pipeline import keys
    from pipeline import sweep as sweep_module

    params = PipelineConfig.from_strings({}).as_params()
    key = run_key(params)
    assert run_key(dict(params)) == key
    for name in params:
        changed = {**params, name: f"{params[name]}x"}
        assert run_key(changed) != key, name
    monkeypatch.setattr(keys, "code_version", lambda: "other-code")
    assert sweep_module.run_key(params) != key


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"max_freqs": "5,5"}, "max_freqs='5,5' is not allowed: expected distinct integers"),
        (
            {"max_freqs": "5,2"},
            "max_freqs='5,2' is not allowed: expected distinct integers from 3",
        ),
        ({"study": "a b"}, "study='a b' is not allowed: expected letters, digits, '-' and '_'"),
        (
            {"study": "x" * 65},
            "is not allowed: expected letters, digits, '-' and '_' (at most 64)",
        ),
        (
            {"executor": "slurm"},
            f"executor='slurm' is not allowed: expected {' or '.join(ENGINES)}",
        ),
        ({"ray_address": "host"}, "ray_address='host' is not allowed: expected empty, 'auto'"),
    ],
)
def test_sweep_settings_are_validated(raw, message):
    with pytest.raises(ConfigError) as err:
        SweepConfig.from_strings(raw)
    assert message in str(err.value)


def test_a_failing_job_is_a_result_and_is_counted(monkeypatch):
    """run_job never raises for a failed run (the sweep goes on); the books count it."""
    from pipeline import jobs, main
    from pipeline.sweep import Bookkeeper

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(main, "run_pipeline", boom)
    monkeypatch.setattr(jobs, "prepare_worker", lambda ctx: None)
    monkeypatch.setattr(jobs.tracking, "end_previous_attempts", lambda *a: None)
    job = _plan()[0]
    result = jobs.run_job(Context("sqlite:///x.db", "1", "r", "s", "tensorflow"), job)
    assert result.status == jobs.FAILED and result.error == "RuntimeError: boom"
    books = Bookkeeper(total=2, skipped=0)
    books.book(job, result)
    books.book(job, jobs.Result(jobs.FINISHED, 1.0, "id", {"diverged": 0.0, "mae_test": 0.5}))
    books.close()
    assert books.counts["runs_failed"] == 1 and books.counts["runs_finished"] == 1


def test_an_absurd_grid_is_refused_in_seconds_with_its_size(capsys):
    """Thousands of max_freqs × a hundred thousand seeds: refused before a pair is validated,
    with the grid's size and how to ask for it anyway."""
    import time

    from pipeline import sweep

    start = time.perf_counter()
    with pytest.raises(SystemExit) as stop:
        sweep.main(["--max_freqs", ",".join(map(str, range(3, 3003))), "--seeds", "100000"])
    seconds = time.perf_counter() - start
    assert stop.value.code == 2 and seconds < 10
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after MLflow's truncation notice
    assert err.startswith(
        "error: max_runs=10000 is not allowed: expected at least the grid's 300,000,000 runs "
        "(3,000 max_freqs × 100,000 seeds) to run it"
    )
    assert "pass max_runs=300000000 if it is meant" in err
    cfg = SweepConfig.from_strings({"max_freqs": "10,20", "seeds": "3", "max_runs": "5"})
    with pytest.raises(ConfigError, match=r"the grid's 6 runs \(2 max_freqs × 3 seeds\)"):
        sweep.refuse_a_huge_grid(cfg, {"max_freqs": "10,20", "seeds": "3"})
    sweep.refuse_a_huge_grid(SweepConfig.from_strings({"max_runs": "0", "seeds": "99999"}), {})
