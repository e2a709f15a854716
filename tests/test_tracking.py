"""The MLflow edge: fail fast on an unusable store, heartbeats, and closing stale runs."""

import http.server
import socket
import subprocess
import sys
import threading
import time

import mlflow
import pytest
from conftest import ROOT
from mlflow.tracking import MlflowClient

from pipeline import names, reap, tracking
from pipeline.tracking import liveness


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_server_ends_every_entry_point_in_seconds(store, capsys, monkeypatch):
    uri = f"http://127.0.0.1:{_free_port()}"
    expected = f"error: tracking server {uri} is not reachable: connection refused"
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.main", "--epochs", "1"],
        cwd=ROOT,
        env={**store.env(), "MLFLOW_TRACKING_URI": uri},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert time.monotonic() - start < 60  # was 256 s of retries and a traceback
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == expected
    assert "Traceback" not in done.stderr

    # The other entry points, in process: the same line, exit 2.
    from analysis.__main__ import main as analysis_main
    from pipeline import evaluate, generate_data, sweep, train

    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    try:
        for main, argv in (
            (generate_data.main, []),
            (train.main, ["--data", "x"]),
            (evaluate.main, ["--train_run_id", "x"]),
            (sweep.main, ["--max_freqs", "3"]),
            (analysis_main, ["--study", "x"]),
            (reap.main, ["--study", "x"]),
        ):
            with pytest.raises(SystemExit) as stop:
                main(argv)
            assert stop.value.code == 2, main
            assert capsys.readouterr().err.strip() == expected, main
    finally:
        mlflow.set_tracking_uri(store.uri)


class _Answer(http.server.BaseHTTPRequestHandler):
    status = 401

    def do_POST(self):
        self.send_response(self.status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize(
    ("status", "user", "message"),
    [
        (401, None, "rejected the credentials (HTTP 401): set MLFLOW_TRACKING_USERNAME and "),
        (401, "ann", "rejected the credentials (HTTP 401): check MLFLOW_TRACKING_USERNAME and"),
        (403, "ann", "refused user 'ann' (HTTP 403): ask its admin for permission"),
        (500, None, "is not usable: it answered HTTP 500"),
    ],
)
def test_credentials_and_server_errors_are_one_line(monkeypatch, status, user, message):
    handler = type("Handler", (_Answer,), {"status": status})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
        if user:
            monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
            monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong")
        else:
            monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
        uri = f"http://127.0.0.1:{server.server_port}"
        with pytest.raises(tracking.StoreError) as err:
            tracking.check_store(uri)
        assert str(err.value).startswith(f"tracking server {uri} {message}")
    finally:
        server.shutdown()
        server.server_close()


def test_local_stores_need_no_check_and_are_not_shared(store):
    tracking.check_store(store.uri)  # returns at once
    assert not tracking.is_shared_store(store.uri)
    assert not tracking.is_shared_store("/some/folder")
    assert tracking.is_shared_store("http://host:5000")
    assert tracking.is_shared_store("postgresql+psycopg2://u@host/db")


def test_an_open_run_beats_and_a_closed_one_stops(store, monkeypatch):
    monkeypatch.setattr(liveness, "heartbeat", liveness.Heartbeat(every_s=0.3))
    with tracking.step_run("main", {}) as run:
        first = int(MlflowClient().get_run(run.info.run_id).data.tags[names.HEARTBEAT_TAG])
        time.sleep(1.6)
        later = int(MlflowClient().get_run(run.info.run_id).data.tags[names.HEARTBEAT_TAG])
        assert later > first
        assert run.info.run_id in liveness.heartbeat
    assert run.info.run_id not in liveness.heartbeat


@pytest.mark.parametrize("reason", [None, "the sweep process that started this worker died"])
def test_an_error_a_library_raises_in_place_of_the_stop_signal_ends_the_runs_killed(
    store, monkeypatch, reason
):
    """A stop signal's interrupt that a library (the backend, the store's client) catches and
    replaces with another error still ends every open run KILLED with the stop's reason, not
    FAILED with the library's error; without a stop, the same error is a failure."""
    from pipeline.tracking import signals

    monkeypatch.setattr(signals, "_last_raised", [time.monotonic()])
    monkeypatch.setattr(signals, "_interrupt_reason", [reason] if reason else [])
    try:
        with pytest.raises(KeyboardInterrupt):
            with tracking.step_run("main", {}) as main, tracking.step_run("train", {}) as train:
                raise RuntimeError("the backend's wrapper of the interrupt")
    finally:
        signals.reset()
    for run in (main, train):
        done = MlflowClient().get_run(run.info.run_id)
        assert done.info.status == "KILLED"
        expected = reason or "stopped by a signal (RuntimeError: the backend's wrapper"
        assert done.data.tags[names.ERROR_TAG].startswith(expected), done.data.tags
    with pytest.raises(RuntimeError):
        with tracking.step_run("main", {}) as plain:
            raise RuntimeError("a real failure")
    assert MlflowClient().get_run(plain.info.run_id).info.status == "FAILED"


def _running(name: str, tags: dict[str, str], beat_age_s: float | None, parent=None) -> str:
    client = MlflowClient()
    if beat_age_s is not None:
        tags = {**tags, names.HEARTBEAT_TAG: names.beat(time.time() - beat_age_s)}
    if parent:
        tags = {**tags, "mlflow.parentRunId": parent}
    run = client.create_run(mlflow.get_experiment_by_name("tests").experiment_id, tags=tags)
    client.set_tag(run.info.run_id, "mlflow.runName", name)
    return run.info.run_id


def test_reap_closes_only_stale_runs_of_the_study(store, capsys):
    study = {"study": "s"}
    dead = _running("dead", {"step": "main", **study}, beat_age_s=3600)
    dead_child = _running("train", {"step": "train"}, None, parent=dead)
    dead_sweep = _running("sweep", {"step": "sweep", **study}, beat_age_s=700)
    live = _running("live", {"step": "main", **study}, beat_age_s=5)
    other = _running("other", {"step": "main", "study": "t"}, beat_age_s=3600)
    finished = _running("done", {"step": "main", **study}, beat_age_s=3600)
    MlflowClient().set_terminated(finished, "FINISHED")

    reap.main(["--study", "s", "--stale_after_min", "10"])
    assert "study 's': 2 stale RUNNING runs marked KILLED" in capsys.readouterr().out
    status = {r: MlflowClient().get_run(r) for r in (dead, dead_child, dead_sweep, live, other)}
    for run_id in (dead, dead_child, dead_sweep):
        assert status[run_id].info.status == "KILLED"
        assert status[run_id].data.tags["error"].startswith("stale: no heartbeat for")
    assert "60 min" in status[dead].data.tags["error"]
    assert status[live].info.status == status[other].info.status == "RUNNING"
    assert MlflowClient().get_run(finished).info.status == "FINISHED"

    for minutes in ("-1", "0.001", "1.9"):  # under four missed beats: a live run looks dead
        with pytest.raises(SystemExit) as stop:
            reap.main(["--study", "s", "--stale_after_min", minutes])
        assert stop.value.code == 2
        assert capsys.readouterr().err.strip() == (
            f"error: stale_after_min={float(minutes)!r} is not allowed: expected a number of "
            "minutes ≥ 2 (four missed heartbeats of 30 s)"
        )


def test_the_reaper_reads_minutes_and_spares_runs_beating_within_the_window(store, capsys):
    """Real heartbeat ages around a 2-minute window: a run that beat 100 s ago is alive (a
    window read as seconds would reap it), one that beat 130 s ago is dead."""
    study = {"step": "main", "study": "w"}
    alive = _running("alive", study, beat_age_s=100)
    just = _running("just inside", study, beat_age_s=115)
    dead = _running("dead", study, beat_age_s=130)
    reap.main(["--study", "w", "--stale_after_min", "2"])
    assert "1 stale RUNNING runs marked KILLED" in capsys.readouterr().out
    states = {r: MlflowClient().get_run(r).info.status for r in (alive, just, dead)}
    assert states == {alive: "RUNNING", just: "RUNNING", dead: "KILLED"}
    with pytest.raises(ValueError):  # below the bound, even from code
        tracking.reap_stale(["0"], "w", 60)


def test_a_retried_job_closes_what_its_dead_attempt_left_open(store):
    sweep = _running("sweep", {"step": "sweep"}, beat_age_s=1)
    attempt = _running("a", {"step": "main", "run_key": "k1"}, 1, parent=sweep)
    child = _running("train", {"step": "train"}, 1, parent=attempt)
    other_key = _running("b", {"step": "main", "run_key": "k2"}, 1, parent=sweep)
    experiment_id = mlflow.get_experiment_by_name("tests").experiment_id
    ended = tracking.end_previous_attempts(experiment_id, sweep, "k1")
    assert sorted(ended) == sorted([attempt, child])
    assert MlflowClient().get_run(attempt).info.status == "KILLED"
    assert MlflowClient().get_run(other_key).info.status == "RUNNING"


LOST_INTERRUPT = """
import os, signal, sys, time
from pipeline import tracking

tracking.install_signal_handlers()

class Finaliser:
    def __del__(self):  # SIGTERM lands here: its KeyboardInterrupt is swallowed
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)

start = time.monotonic()
try:
    Finaliser()
    time.sleep(10)
except KeyboardInterrupt:
    print(f"interrupted after {time.monotonic() - start:.2f} s")
    sys.exit(130)
"""


def test_an_interrupt_lost_in_a_finaliser_is_sent_again():
    proc = subprocess.run(
        [sys.executable, "-c", LOST_INTERRUPT],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "Exception ignored" in proc.stderr  # the first one really was lost
    assert proc.returncode == 130, proc.stderr[-2000:]
    assert float(proc.stdout.split()[2]) < 2.0


SIGNALS = """
import os, signal, sys, time
from pipeline import tracking
from pipeline.tracking import signals

tracking.install_signal_handlers()
step = sys.argv[1]
try:
    if step == "duplicate":
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)
        except KeyboardInterrupt:
            os.kill(os.getpid(), signal.SIGTERM)  # the kernel's and the watcher's, say
            time.sleep(0.5)  # the close: a store write the duplicate must not cut
            print("closed")
            raise
    elif step == "deferred":
        with signals.deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.5)  # the write
            print("write done")
        time.sleep(10)
    elif step == "stacks":
        os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(0.2)
        print("carried on")
        sys.exit(0)
except KeyboardInterrupt:
    print("interrupted")
    sys.exit(130)
"""


@pytest.mark.parametrize(
    "step, out, code",
    [
        ("duplicate", "closed\ninterrupted\n", 130),  # a second SIGTERM inside the close
        ("deferred", "write done\ninterrupted\n", 130),  # SIGTERM inside a store write
        ("stacks", "carried on\n", 0),  # SIGUSR1: every thread's stack, and carry on
    ],
)
def test_sigterm_never_cuts_a_close_or_a_write_in_two(step, out, code):
    proc = subprocess.run(
        [sys.executable, "-c", SIGNALS, step],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (proc.stdout, proc.returncode) == (out, code), proc.stderr[-2000:]
    if step == "stacks":
        assert "Current thread" in proc.stderr and 'File "<string>"' in proc.stderr


def test_native_start_up_noise_is_dropped_and_everything_else_passed_on(capfd):
    import os

    from pipeline.keras_backend import native_noise_filtered

    noise = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1795945089.606056   16458 port.cc:153] oneDNN custom operations are on.\n"
        "E0000 00:00:1795945094.190817   16458 cuda_platform.cc:52] failed call to cuInit\n"
    )
    real = "E0000 00:00:1795945094.190817   16458 gpu_device.cc:2022] Created device GPU:0\n"
    with native_noise_filtered():
        os.write(2, (noise + real + "plain words\n").encode())
    err = capfd.readouterr().err
    assert err == real + "plain words\n"
