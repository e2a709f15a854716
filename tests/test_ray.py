"""The Ray executor, all on this machine: a Ray started by the sweep, a simulated two-node
cluster that loses a node, a worker killed mid-run, SIGTERM to the sweep, and the refusals
(a cluster on other machines with a local store, an address where no Ray answers)."""

import os
import secrets
import signal
import socket
import time
from pathlib import Path

import pytest
import ray
from procs import alive, children, cmdline, wait_until
from ray.cluster_utils import Cluster

from pipeline import sweep
from pipeline.executors import ray as ray_cluster
from pipeline.executors.ray import other_machines
from pipeline.sweep import cluster_refusal as refusal

TINY = [
    "--max_freqs", "3,4",
    "--epochs", "2",
    "--samples_per_freq", "2",
    "--test_samples_per_freq", "2",
    "--executor", "ray",
]  # fmt: skip
PAIRS = {f"max_freq={f} seed={s}" for f in (3, 4) for s in (0, 1)}
SWEEP_TIMEOUT_S = 240
# Under pytest-xdist (make test) every Ray test runs in one worker: one Ray at a time.
pytestmark = pytest.mark.xdist_group("ray")
linux_only = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="finds Ray's processes in /proc"
)


def _sweep_args(study: str, seeds: int, *extra: str) -> list[str]:
    return [*TINY, "--seeds", str(seeds), "--study", study, *extra]


def _finish(proc, timeout_s: float = SWEEP_TIMEOUT_S) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout_s)
    except BaseException:
        proc.kill()
        proc.communicate(timeout=30)
        raise


def _ray_workers(raylet: int, title: str) -> list[int]:
    """The Ray workers of `raylet` whose process title starts with `title`."""
    return [p for p in children(raylet) if cmdline(p).startswith(title)]


def _raylet_pid(node) -> int:
    return node.all_processes[ray._private.ray_constants.PROCESS_TYPE_RAYLET][0].process.pid


def _assert_each_pair_finished_once(store, study: str, pairs: set[str]) -> list:
    (sweep_run,) = store.runs(step="sweep", study=study)
    assert sweep_run.info.status == "FINISHED"
    mains = store.runs(step="main", study=study)
    assert {r.data.tags["mlflow.parentRunId"] for r in mains} == {sweep_run.info.run_id}
    finished = sorted(r.info.run_name for r in mains if r.info.status == "FINISHED")
    assert finished == sorted(pairs)
    assert not [r.info.run_name for r in store.runs() if r.info.status == "RUNNING"]
    assert sweep_run.data.metrics["runs_finished"] == len(pairs)
    return mains


@pytest.fixture(autouse=True)
def no_ray_left():
    """Whatever a test does, this process is not left connected to a Ray instance."""
    yield
    if ray.is_initialized():
        ray.shutdown()


@pytest.fixture
def cluster():
    """A simulated Ray cluster on this machine (every node on one IP), with its own token;
    `cluster(head_cpus, worker_cpus)` starts it; always shut down."""
    saved = {k: os.environ.get(k) for k in ray_cluster.AUTH_ENV}
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
    ray_cluster._reload_auth()
    made = []

    def start(head_cpus: int, worker_cpus: int = 0):
        c = Cluster(
            initialize_head=True,
            head_node_args={"num_cpus": head_cpus, "include_dashboard": False},
        )
        made.append(c)
        worker = c.add_node(num_cpus=worker_cpus) if worker_cpus else None
        c.wait_for_nodes()
        return c, worker

    try:
        yield start
    finally:
        for c in made:
            c.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        ray_cluster._reload_auth()


def test_local_ray_runs_a_sweep_and_resumes(store, capsys):
    token_file = Path.home() / ".ray" / "auth_token"
    had_token_file = token_file.exists()
    auth_env = {k: os.environ.get(k) for k in ray_cluster.AUTH_ENV}
    sweep.main(_sweep_args("local", 2, "--workers", "2"))
    out = capsys.readouterr().out
    assert "to run on Ray started here" in out and "(1 node, 2 CPUs)" in out
    mains = _assert_each_pair_finished_once(store, "local", PAIRS)
    assert len(mains) == 4 and len(store.runs(step="train")) == 4
    assert all("mae_test" in r.data.metrics for r in mains)
    lines = [ln for ln in out.splitlines() if ln.startswith("max_freq=")]
    assert sorted(ln.split("  ")[0].strip() for ln in lines) == sorted(PAIRS)
    assert all("mae_test=" in ln and "diverged=" in ln for ln in lines)
    assert not ray.is_initialized()
    assert {k: os.environ.get(k) for k in ray_cluster.AUTH_ENV} == auth_env
    assert token_file.exists() == had_token_file  # a private token, not one left in ~/.ray

    sweep.main(_sweep_args("local", 2, "--workers", "2"))
    again = capsys.readouterr().out
    assert "4 already finished, 0 to run" in again
    second = store.runs(step="sweep", study="local")[-1]
    assert second.data.metrics["runs_skipped"] == 4 and second.data.metrics["runs_finished"] == 0
    assert len(store.runs(step="main", study="local")) == 4


@pytest.mark.slow  # ~75 s; a worker killed mid-run stays in make test
def test_sweep_survives_losing_a_node(store, cluster):
    """Head and worker node, one CPU each: both runs train at once, one on each node; the
    worker node is lost; its job is run again on the head and closes the lost attempt."""
    c, worker = cluster(head_cpus=1, worker_cpus=1)
    proc = store.start("pipeline.sweep", *_sweep_args("lost", 1, "--ray_address", c.address))
    try:
        wait_until(lambda: len(store.runs(step="train")) >= 2, 120, "both runs to train")
        c.remove_node(worker, allow_graceful=False)  # as a machine lost: SIGKILL, no goodbye
        out, err = _finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert proc.returncode == 0, err[-3000:]
    assert "(2 nodes, 2 CPUs)" in out
    pairs = {"max_freq=3 seed=0", "max_freq=4 seed=0"}
    mains = _assert_each_pair_finished_once(store, "lost", pairs)
    (lost,) = [r for r in mains if r.info.status != "FINISHED"]
    assert lost.info.status == "KILLED"
    assert "the job was run again" in lost.data.tags["error"]  # closed by the retry
    again = [r for r in mains if r.info.run_name == lost.info.run_name]
    assert [r.info.status for r in again] == ["KILLED", "FINISHED"]


@linux_only
def test_worker_killed_mid_run_is_retried(store, cluster):
    c, _ = cluster(head_cpus=2)
    raylet = _raylet_pid(c.head_node)
    proc = store.start("pipeline.sweep", *_sweep_args("sigkill", 1, "--ray_address", c.address))
    try:
        wait_until(lambda: len(store.runs(step="train")) >= 2, 120, "both runs to train")
        busy = wait_until(lambda: _ray_workers(raylet, "ray::max_freq="), 30, "a busy Ray worker")
        os.kill(busy[0], signal.SIGKILL)
        _, err = _finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert proc.returncode == 0, err[-3000:]
    pairs = {"max_freq=3 seed=0", "max_freq=4 seed=0"}
    mains = _assert_each_pair_finished_once(store, "sigkill", pairs)
    (dead,) = [r for r in mains if r.info.status != "FINISHED"]
    assert dead.info.status == "KILLED"
    assert "the job was run again" in dead.data.tags["error"]  # closed by the retry
    names = [r.info.run_name for r in mains]
    assert len(mains) == 3 and names.count(dead.info.run_name) == 2


@pytest.mark.slow  # ~25 s; the rest of this file is about all the 3 minutes it may take
@linux_only
def test_sigterm_ends_the_ray_sweep_killed(store):
    """Same as the local executor: exit 130, the sweep and the open runs KILLED, Ray gone."""
    proc = store.start(
        "pipeline.sweep", *_sweep_args("term", 1, "--workers", "2", "--epochs", "100000")
    )
    try:
        wait_until(lambda: len(store.runs(step="train")) >= 2, 150, "both runs to train")
        time.sleep(2)  # well inside fit()
        ray_processes = children(proc.pid)  # Ray's GCS, raylet and helpers
        proc.send_signal(signal.SIGTERM)
        _, err = _finish(proc, 120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert proc.returncode == 130, err[-3000:]
    statuses = {(r.data.tags["step"], r.info.status) for r in store.runs()}
    assert ("sweep", "KILLED") in statuses and ("main", "KILLED") in statuses
    assert not any(status == "RUNNING" for _, status in statuses)
    wait_until(
        lambda: not any(alive(p) for p in ray_processes),
        30,
        "Ray's processes to exit",
    )


def test_multi_machine_refusal():
    here = "10.0.0.1"
    node = {"NodeManagerAddress": here, "Alive": True}
    other = {"NodeManagerAddress": "10.0.0.2", "Alive": True}
    dead = {"NodeManagerAddress": "10.0.0.3", "Alive": False}
    assert other_machines([node, dict(node), dead], {here}) == []
    assert other_machines([node, other, dead], {here}) == ["10.0.0.2"]

    sqlite = "sqlite:////tmp/mlflow.db"
    assert refusal([], sqlite, "file:///tmp/artifacts") == ""
    why = refusal(["10.0.0.2"], sqlite, "file:///tmp/artifacts")
    assert why.startswith(f"tracking_uri={sqlite!r} is not allowed: ") and "10.0.0.2" in why
    assert "\n" not in why
    assert refusal(["10.0.0.2"], "/tmp/mlruns", None).startswith("tracking_uri='/tmp/mlruns'")
    server = "http://mlflow.example:5000"
    why = refusal(["10.0.0.2"], server, "file:///tmp/artifacts")
    assert why.startswith("artifact_location='file:///tmp/artifacts' is not allowed")
    assert refusal(["10.0.0.2"], server, "/data/artifacts").startswith("artifact_location=")
    assert refusal(["10.0.0.2"], server, "mlflow-artifacts:/") == ""
    assert refusal(["10.0.0.2"], "postgresql://db:5432/mlflow", "s3://bucket/a") == ""


def test_a_task_ray_gave_up_on_is_one_line():
    assert ray_cluster._failure(ray.exceptions.WorkerCrashedError()) == (
        "its Ray worker process died, 3 times"
    )
    lost = ray.exceptions.NodeDiedError("Task failed because the node … died.\nNode IP: x")
    assert ray_cluster._failure(lost).endswith("3 times (the last time with its node)")
    assert ray_cluster._failure(ray.exceptions.TaskCancelledError()) == (
        "its Ray task was cancelled"
    )
    crash = ray.exceptions.RayTaskError("run_job", "Traceback …", ImportError("no tf\nmore"))
    assert ray_cluster._failure(crash) == "ImportError: no tf"
    setup = ray.exceptions.RuntimeEnvSetupError("Failed to set up runtime environment.\nlog…")
    assert ray_cluster._failure(setup).endswith(": Failed to set up runtime environment.")


def test_cluster_on_other_machines_with_a_local_store_is_refused(store, capsys, monkeypatch):
    """check() through the sweep, with Ray faked: a node on another IP, a SQLite store."""
    nodes = [
        {"NodeID": "here", "NodeManagerAddress": "10.0.0.1", "Alive": True},
        {"NodeID": "there", "NodeManagerAddress": "10.0.0.2", "Alive": True},
    ]
    calls = []

    class Context:
        gcs_address = "10.0.0.1:6379"

        def get_node_id(self) -> str:
            return "here"

    monkeypatch.setattr(ray_cluster.RayExecutor, "_probe", lambda self, address: address)
    monkeypatch.setattr(ray, "init", lambda **kwargs: calls.append("init"))
    monkeypatch.setattr(ray, "shutdown", lambda: calls.append("shutdown"))
    monkeypatch.setattr(ray, "nodes", lambda: nodes)
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 8.0})
    monkeypatch.setattr(ray, "get_runtime_context", Context)
    with pytest.raises(SystemExit) as exit_info:
        sweep.main(_sweep_args("far", 1, "--ray_address", "10.0.0.1:6379"))
    assert exit_info.value.code == 2 and calls == ["init", "shutdown"]
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"error: tracking_uri={store.uri!r} is not allowed: ")
    assert "(10.0.0.2)" in err
    (run,) = store.runs(step="sweep")
    assert run.info.status == "FAILED" and run.data.tags["error"] == err[len("error: ") :]


def test_unreachable_ray_address_is_refused_in_seconds(store, capsys):
    with socket.socket() as s:
        s.bind(("", 0))
        port = s.getsockname()[1]  # free: nothing answers there
    address = f"127.0.0.1:{port}"
    start = time.monotonic()
    with pytest.raises(SystemExit) as exit_info:
        sweep.main(_sweep_args("unreachable", 1, "--ray_address", address))
    assert exit_info.value.code == 2 and time.monotonic() - start < 30
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: ray_address={address!r} is not allowed: ")
    (run,) = store.runs(step="sweep")
    assert run.info.status == "FAILED" and run.data.tags["error"] == err[-1][len("error: ") :]
    assert not [r for r in store.runs() if r.info.status == "RUNNING"]
    assert not ray.is_initialized()
