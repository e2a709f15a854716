"""The edges where data could be lost or changed: foreign stores, database URIs, concurrent
sweeps of one study, fast refusals, and first contact (a Python without the project's
packages, the experiment's UI view, run names)."""

import hashlib
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import mlflow
import pytest
from conftest import ROOT
from mlflow.tracking import MlflowClient

from pipeline import generate_data, names, tracking
from pipeline.config import SweepConfig
from pipeline.names import ConfigError
from pipeline.tracking import liveness


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- stores ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["other program", "not sqlite"])
def test_a_foreign_sqlite_file_is_refused_and_left_byte_for_byte(tmp_path, kind):
    db = tmp_path / "notes.db"
    if kind == "other program":
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
            conn.execute("INSERT INTO notes (text) VALUES ('keep me')")
        conn.close()
    else:
        db.write_bytes(b"not a database at all\n" * 100)
    before = _sha(db)
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.generate_data", "--max_freq", "3"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{db}"},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    (line,) = done.stderr.strip().splitlines()
    what = "another program's SQLite database (tables: notes)" if kind == "other program" else (
        "not a readable MLflow database (not SQLite)"
    )  # fmt: skip
    assert line == (
        f"error: tracking store sqlite:///{db} is {what}"
        + (", not an MLflow store" if kind == "other program" else "")
        + "; it was not modified: point MLFLOW_TRACKING_URI at a new file or an MLflow store"
    )
    assert _sha(db) == before


def test_a_database_with_some_but_not_all_of_mlflows_tables_is_foreign(tmp_path):
    """Another program's SQLite file that happens to have tables called `runs` and
    `experiments` (but no migration table) is not an MLflow store: refused, left untouched."""
    db = tmp_path / "lab.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, distance REAL)")
        conn.execute("CREATE TABLE experiments (id INTEGER PRIMARY KEY, title TEXT)")
        conn.execute("INSERT INTO runs (distance) VALUES (5.0)")
    conn.close()
    before = _sha(db)
    with pytest.raises(tracking.StoreError, match="another program's SQLite database"):
        tracking.check_store(f"sqlite:///{db}")
    assert _sha(db) == before


def test_an_empty_or_new_sqlite_file_and_an_mlflow_store_are_used(tmp_path, store):
    empty = tmp_path / "empty.db"
    empty.touch()
    tracking.check_store(f"sqlite:///{empty}")
    tracking.check_store(f"sqlite:///{tmp_path / 'new.db'}")
    tracking.check_store(store.uri)  # the fixture's MLflow store


@pytest.mark.parametrize(
    ("uri", "hint"),
    [
        ("mysql://u:secret@db:3306/mlflow", ""),
        ("mssql+pyodbc://u@db/mlflow", ""),
        ("./mlruns", "; MLflow 3.13+ no longer writes the ./mlruns file store: use "
                     "sqlite:///mlflow.db"),
    ],
)  # fmt: skip
def test_stores_without_a_driver_here_are_refused_in_one_line(uri, hint):
    with pytest.raises(tracking.StoreError) as err:
        tracking.check_store(uri)
    shown = uri.replace("secret@", "***@")
    assert str(err.value) == (
        f"tracking_uri={shown!r} is not allowed: expected a local SQLite file "
        "(sqlite:///path.db), a PostgreSQL database (postgresql://…) or a tracking server "
        f"(http://, https://){hint}"
    )


# --- liveness ---------------------------------------------------------------------------------


def test_stale_after_min_has_a_lower_bound_of_four_heartbeats():
    assert tracking.MIN_STALE_AFTER_S == 4 * names.HEARTBEAT_EVERY_S == 120
    for minutes in (0.001, 1.0, 1.99):
        with pytest.raises(ConfigError, match="expected a number of minutes ≥ 2"):
            SweepConfig(stale_after_min=minutes)
    assert SweepConfig(stale_after_min=2.0).stale_after_min == 2.0


def test_the_heartbeat_writes_and_reads_unix_seconds():
    """The clock the writer and the reader share: a beat written now is now in seconds (not
    milliseconds), and a run that never beat counts from its start, which MLflow keeps in
    milliseconds."""
    now = time.time()
    assert abs(float(liveness.beat()[names.HEARTBEAT_TAG]) - now) < 5
    assert abs(float(names.beat()) - now) < 5 and names.beat(1000.7) == "1000"
    assert names.last_beat(names.beat(now - 60), 0) == pytest.approx(now - 60, abs=1)
    assert names.last_beat(None, int(now * 1000) - 600_000) == pytest.approx(now - 600, abs=1)
    assert names.seconds(10) == 600


def test_a_run_that_never_beat_is_reaped_by_its_start_time(store):
    """Runs made before heartbeats (no tag): judged by their start, in milliseconds."""
    client = MlflowClient()
    old = client.create_run(store.experiment_id, tags={"step": "main", "study": "s"},
                            start_time=int((time.time() - 1200) * 1000))  # fmt: skip
    new = client.create_run(store.experiment_id, tags={"step": "main", "study": "s"})
    reaped = tracking.reap_stale([store.experiment_id], "s", names.seconds(10))
    assert [r.info.run_id for r in reaped] == [old.info.run_id]
    assert client.get_run(new.info.run_id).info.status == "RUNNING"


def _main_run(experiment_id: str, run_key: str, beat_age_s: float, status: str = "RUNNING"):
    client = MlflowClient()
    tags = {"step": "main", "study": "s", "run_key": run_key,
            names.HEARTBEAT_TAG: names.beat(time.time() - beat_age_s)}  # fmt: skip
    run = client.create_run(experiment_id, tags=tags)
    if status != "RUNNING":
        client.set_terminated(run.info.run_id, status)
    time.sleep(0.01)  # distinct start times
    return client.get_run(run.info.run_id)


def test_a_pair_belongs_to_its_first_live_or_finished_claim(store):
    e = store.experiment_id
    _main_run(e, "k", beat_age_s=3600)  # an earlier claim whose process died
    first = _main_run(e, "k", beat_age_s=1)
    second = _main_run(e, "k", beat_age_s=1)
    other_pair = _main_run(e, "j", beat_age_s=1)
    window = 600
    assert liveness.earlier_claim(first, e, "s", "k", window) is None  # the stale one: dead
    assert liveness.earlier_claim(second, e, "s", "k", window).info.run_id == first.info.run_id
    assert liveness.earlier_claim(other_pair, e, "s", "j", window) is None
    done = _main_run(e, "k", beat_age_s=1, status="FINISHED")  # a result beats any claim
    assert liveness.earlier_claim(first, e, "s", "k", window).info.run_id == done.info.run_id
    killed = _main_run(e, "m", beat_age_s=1, status="KILLED")
    assert liveness.earlier_claim(killed, e, "s", "m", window) is None


TWO_SWEEPS = ["--max_freqs", "3,4", "--seeds", "2", "--epochs", "1", "--workers", "1",
              "--samples_per_freq", "2", "--test_samples_per_freq", "2", "--lstm_units", "4",
              "--dense_units", "3", "--study", "twice", "--backend", "jax"]  # fmt: skip


def test_two_sweeps_of_one_study_at_once_train_every_pair_exactly_once(store):
    first = store.start("pipeline.sweep", *TWO_SWEEPS)
    second = store.start("pipeline.sweep", *TWO_SWEEPS)
    outputs = [store.finish(p, 600) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], [o[1][-2000:] for o in outputs]
    mains = store.runs(step="main", study="twice")
    assert all(r.info.status == "FINISHED" for r in mains)
    names = sorted(r.info.run_name for r in mains)
    assert names == [f"max_freq={m} seed={s}" for m in (3, 4) for s in (0, 1)]  # once each
    sweeps = store.runs(step="sweep", study="twice")
    assert len(sweeps) == 2 and {r.info.run_name for r in sweeps} == {"sweep twice"}
    finished = [s.data.metrics["runs_finished"] for s in sweeps]
    skipped = [s.data.metrics["runs_skipped"] for s in sweeps]
    assert sum(finished) == 4 and [f + k for f, k in zip(finished, skipped, strict=True)] == [4, 4]
    # Every trained pair has exactly one train and one evaluate run: nothing trained twice.
    assert len(store.runs(step="train")) == len(store.runs(step="evaluate")) == 4


def test_the_analysis_keeps_one_run_per_pair_and_says_how_many_it_dropped(store):
    from analysis import load

    e = store.experiment_id
    for key in ("a", "a", "b"):
        run = _main_run(e, key, 1, status="FINISHED")
        client = MlflowClient()
        client.log_param(run.info.run_id, "max_freq", "3")
        client.log_param(run.info.run_id, "seed", "0" if key == "a" else "1")
        client.log_metric(run.info.run_id, "diverged", 0.0)
    runs = load.load_runs(study="s")
    assert sorted(runs["run_key"]) == ["a", "b"]
    assert runs.attrs["duplicates"] == 1


# --- fast refusals ---------------------------------------------------------------------------


REFUSALS = textwrap.dedent(
    """
    import sys, time
    from pipeline import evaluate, generate_data, main, reap, sweep, train
    from analysis.__main__ import main as analysis
    cases = [
        (train.main, ["--data", "/nonexistent/path"]),
        (train.main, ["--data", "", "--epochs", "0"]),
        (main.main, ["--max_freq", "1"]),
        (generate_data.main, ["--max_freq", "1"]),
        (evaluate.main, ["--train_run_id", "0" * 32]),
        (sweep.main, ["--stale_after_min", "0.001"]),
        (sweep.main, ["--backend", "torch"]),
        (reap.main, ["--study", "x", "--stale_after_min", "0"]),
        (analysis, ["--study", "nothing-here"]),
    ]
    for entry, argv in cases:
        start = time.perf_counter()
        try:
            entry(argv)
        except SystemExit as exit:
            code = exit.code
        print(entry.__module__, code, f"{time.perf_counter() - start:.2f}", flush=True)
    heavy = [m for m in ("tensorflow", "jax", "keras") if m in sys.modules]
    print("heavy", ",".join(heavy) or "none")
    """
)


def test_every_refusal_comes_before_tensorflow_or_jax_is_imported(store):
    done = subprocess.run(
        [sys.executable, "-c", REFUSALS], cwd=ROOT, env=store.env(), capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == "heavy none", done.stderr[-3000:]
    codes = [line.split()[1] for line in lines[:-1]]
    assert codes == ["2"] * 9, done.stdout
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 9
    assert errors[0].startswith("error: data='/nonexistent/path' is not allowed")


# --- first contact ---------------------------------------------------------------------------


def test_a_python_without_the_projects_packages_says_how_to_fix_it(tmp_path):
    bare = Path(sys.base_prefix) / "bin" / "python3"
    probe = subprocess.run([str(bare), "-c", "import mlflow"], capture_output=True, timeout=60)
    if probe.returncode == 0:
        pytest.skip("the base Python has the project's packages installed")
    done = subprocess.run(
        [str(bare), "-m", "pipeline.sweep", "--max_freqs", "3"], cwd=ROOT,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: this Python ({bare}) lacks the project's packages")
    assert "source .venv/bin/activate" in line and "make run" in line


def test_runs_without_an_experiment_go_to_the_projects_in_the_training_view(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    mlflow.set_tracking_uri(uri)
    generate_data.main(["--max_freq", "3"])
    experiment = mlflow.get_experiment_by_name(tracking.DEFAULT_EXPERIMENT)
    assert experiment is not None
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    (run,) = MlflowClient().search_runs([experiment.experiment_id])
    assert run.data.tags["step"] == "generate_data"
    assert MlflowClient().search_runs(["0"]) == []  # nothing in MLflow's Default
