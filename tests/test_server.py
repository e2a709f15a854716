"""The team tracking server (services/server.py): one real PostgreSQL + mlflow server for the
module, on free loopback ports (~15 s to start, ~35 s for the module). The tests run in file
order; the last one stops the server."""

import base64
import contextlib
import io
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import redirect_stdout
from pathlib import Path

import pandas as pd
import psutil
import psycopg
import pytest
from conftest import BIN, ROOT, TINY
from mlflow import MlflowClient
from mlflow.server import get_app_client

import services.server
from services.server import DB_USER, ServerError, TeamServer, postgres_bindir
from tests.servers import team_server

# One worker under pytest-xdist: the module's server is started once.
pytestmark = pytest.mark.xdist_group("server")
SECRETS = ("admin_password", "db_password", "flask_secret_key", "basic_auth.ini", "server.json")
ML_PACKAGES = ("keras", "tensorflow", "jax", "sklearn")  # the pipeline's; a server needs none


@pytest.fixture(scope="module")
def server():
    postgres_bindir()  # `make test` installs PostgreSQL: missing is a failure, not a skip
    with team_server() as running:
        yield running


def teammate_env(server, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(
        MLFLOW_TRACKING_URI=server.uri,
        MLFLOW_TRACKING_USERNAME=server.admin_user,
        MLFLOW_TRACKING_PASSWORD=server.admin_password,
        MLFLOW_EXPERIMENT_NAME="team",
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        TF_CPP_MIN_LOG_LEVEL="2",
        **extra,
    )
    return env


@pytest.fixture
def as_user(monkeypatch):
    """as_user(name, password) -> an MlflowClient that authenticates as that user."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail fast, don't back off

    def client(uri: str, name: str, password: str) -> MlflowClient:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", name)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
        return MlflowClient(tracking_uri=uri)

    return client


def get(url: str, auth: tuple[str, str] | None = None) -> int:
    request = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def live(pid: int) -> bool:
    """Whether `pid` runs: a zombie (exited, not yet reaped) does not."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def processes_of(server) -> set[int]:
    """The mlflow server's process group and the postmaster with its children."""
    state = json.loads((server.root / "server.json").read_text())
    group = set()
    for process in psutil.process_iter():
        with contextlib.suppress(ProcessLookupError):
            if os.getpgid(process.pid) == state["mlflow_pid"]:
                group.add(process.pid)
    postmaster = psutil.Process(state["postgres_pid"])
    return group | {child.pid for child in postmaster.children()} | {postmaster.pid}


def without_ml_packages(code: str) -> subprocess.CompletedProcess:
    """Run `code` in a fresh Python in which the pipeline's ML packages cannot be imported."""
    block = f"import sys; sys.modules.update(dict.fromkeys({ML_PACKAGES!r}))\n"
    return subprocess.run(
        [sys.executable, "-c", block + code],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_stop_kills_what_ignores_sigterm_and_a_zombie_is_not_running(
    tmp_path, monkeypatch, capsys
):
    """No PostgreSQL, no MLflow: a stand-in group (its command line says uvicorn) whose leader
    and child ignore SIGTERM, then a leader that has exited but is not yet reaped."""
    monkeypatch.setattr(services.server, "STOP_TIMEOUT_S", 1)
    server = TeamServer(tmp_path)
    stubborn = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"  # the child inherits it
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    leader = subprocess.Popen(
        [sys.executable, "-c", stubborn, "uvicorn"],
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    child = int(leader.stdout.readline())
    leader.stdout.close()
    (tmp_path / "server.json").write_text(json.dumps({"mlflow_pid": leader.pid}))
    started = time.monotonic()
    assert server.stop() == 0
    assert 1 <= time.monotonic() - started < 6  # TERM, 1 s in vain, then KILL
    assert not live(leader.pid) and not live(child)
    assert f"stopped mlflow server (pid {leader.pid})" in capsys.readouterr().out

    exited = subprocess.Popen([sys.executable, "-c", "pass", "uvicorn"], start_new_session=True)
    while live(exited.pid):
        time.sleep(0.05)
    assert psutil.Process(exited.pid).status() == psutil.STATUS_ZOMBIE
    (tmp_path / "server.json").write_text(json.dumps({"mlflow_pid": exited.pid}))
    assert server.status() == 3
    assert server.stop() == 0
    assert capsys.readouterr().out.splitlines() == [
        "mlflow server: stopped", "PostgreSQL: stopped", "tracking server not running",
    ]  # fmt: skip
    exited.wait()


def test_the_server_imports_and_answers_without_the_pipelines_packages(tmp_path):
    done = without_ml_packages(
        "import services.server\n"
        f"code = services.server.main(['status', '--root', {str(tmp_path)!r}])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pipeline'))\n"
        "sys.exit(code)\n"
    )
    assert done.returncode == 3, done.stderr[-3000:]
    assert done.stdout.splitlines() == ["mlflow server: stopped", "PostgreSQL: stopped", "[]"]


def test_start_serves_health_and_keeps_secrets_private(server):
    assert get(f"{server.uri}/health") == 200
    for name in SECRETS:
        assert (server.root / name).stat().st_mode & 0o777 == 0o600, name
    assert server.admin_password not in server.output
    assert f"tracking server: {server.uri}" in server.output
    assert f"MLFLOW_TRACKING_PASSWORD=$(cat {server.root / 'admin_password'})" in server.output
    assert server.start_s < 90
    print(f"server start: {server.start_s:.1f} s")


def test_second_start_says_running_and_changes_nothing(server):
    state = (server.root / "server.json").read_text()
    output = io.StringIO()
    with redirect_stdout(output):
        assert server.server.start() == 0
    assert "already running" in output.getvalue()
    assert (server.root / "server.json").read_text() == state
    pids = json.loads(state)
    assert live(pids["mlflow_pid"]) and live(pids["postgres_pid"])


def test_postgres_listens_on_loopback_only_and_wants_the_password(server):
    password = (server.root / "db_password").read_text().strip()
    dsn = dict(host="127.0.0.1", port=server.server.pg_port, user=DB_USER, dbname="mlflow")
    connection = psycopg.connect(password=password, **dsn)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW listen_addresses")
            assert cursor.fetchone() == ("127.0.0.1",)
    finally:
        connection.close()
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(password="wrong-password", **dsn)


def test_a_postgresql_tracking_uri_works_directly(server):
    """postgresql:// as MLFLOW_TRACKING_URI (no server in between): psycopg 3 is installed
    for it (SQLAlchemy 2.1's default driver); a wrong password is one line."""
    password = (server.root / "db_password").read_text().strip()
    uri = f"postgresql://{DB_USER}:{password}@127.0.0.1:{server.server.pg_port}/mlflow"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(MLFLOW_TRACKING_URI=uri, MLFLOW_EXPERIMENT_NAME="direct")
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.generate_data", "--max_freq", "3"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("direct")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["step"] == "generate_data"
    wrong = uri.replace(password, "wrong-password")
    refused = subprocess.run(
        [sys.executable, "-m", "pipeline.generate_data", "--max_freq", "3"],
        cwd=ROOT, env={**env, "MLFLOW_TRACKING_URI": wrong}, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert refused.returncode == 2
    (line,) = refused.stderr.strip().splitlines()
    head = "error: tracking database postgresql://127.0.0.1/mlflow is not reachable"
    assert line.startswith(head)
    assert "password authentication failed" in line and "wrong-password" not in line


def test_rest_api_needs_valid_credentials(server):
    url = f"{server.uri}/api/2.0/mlflow/experiments/search?max_results=1"
    assert get(url) == 401
    assert get(url, auth=(server.admin_user, "wrong-password")) == 401
    assert get(url, auth=(server.admin_user, server.admin_password)) == 200


def test_client_logs_runs_and_proxies_artifacts(server, as_user, tmp_path):
    client = as_user(server.uri, server.admin_user, server.admin_password)
    experiment_id = client.create_experiment("team-study")
    run_id = client.create_run(experiment_id).info.run_id
    client.log_metric(run_id, "mae_train", 0.25)
    (tmp_path / "notes.txt").write_text("hello")
    client.log_artifact(run_id, str(tmp_path / "notes.txt"))
    client.set_terminated(run_id)

    assert client.get_run(run_id).data.metrics == {"mae_train": 0.25}
    stored = server.root / "artifacts" / experiment_id / run_id / "artifacts" / "notes.txt"
    assert stored.read_text() == "hello"


def test_added_user_can_create_experiments_and_runs(server, as_user, capsys):
    password = server.server.add_user("alice")
    password_file = server.root / "users" / "alice.password"
    assert password_file.read_text() == password
    assert password_file.stat().st_mode & 0o777 == 0o600
    printed = capsys.readouterr().out
    assert str(password_file) in printed and password not in printed

    admin = as_user(server.uri, server.admin_user, server.admin_password)
    shared = admin.create_experiment("shared-by-admin")
    alice = as_user(server.uri, "alice", password)
    own = alice.create_experiment("alice-own")
    for experiment_id in ("0", shared, own):  # Default, a colleague's, her own
        run_id = alice.create_run(experiment_id).info.run_id
        alice.log_metric(run_id, "mae_train", 1.0)
    with pytest.raises(Exception, match="403"):
        alice.delete_experiment(shared)  # EDIT, not MANAGE, on others' experiments
    with pytest.raises(ServerError, match="alice"):
        server.server.add_user("alice")


@pytest.mark.filterwarnings("ignore:starlette.middleware.wsgi is deprecated")
def test_add_user_goes_through_mlflows_auth_client(server, monkeypatch):
    """`add-user` in a Python without the pipeline's packages; MLflow's auth client then knows
    the user, who can log in; the same name again is one line."""
    add_bob = (
        "from services.server import main\n"
        f"sys.exit(main(['add-user', 'bob', '--root', {str(server.root)!r}]))\n"
    )
    done = without_ml_packages(add_bob)
    assert done.returncode == 0, done.stderr[-3000:]
    password = (server.root / "users" / "bob.password").read_text()

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", server.admin_user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", server.admin_password)
    user = get_app_client("basic-auth", tracking_uri=server.uri).get_user("bob")
    assert user.username == "bob" and not user.is_admin
    url = f"{server.uri}/api/2.0/mlflow/experiments/search?max_results=1"
    assert get(url, auth=("bob", password)) == 200
    assert get(url, auth=("bob", "wrong-password")) == 401

    again = without_ml_packages(add_bob)
    assert again.returncode == 1
    (line,) = again.stderr.strip().splitlines()
    assert line.startswith("error: could not create user 'bob': RESOURCE_ALREADY_EXISTS")
    assert (server.root / "users" / "bob.password").read_text() == password


def _run(cmd: list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow  # ~90 s; a postgresql:// store and the server's start stay in make test
def test_the_pipeline_sweep_and_report_run_against_the_server(server, as_user, tmp_path):
    env = teammate_env(server)
    done = _run(
        [str(BIN / "mlflow"), "run", str(ROOT), "-e", "main", "--env-manager", "local",
         "--experiment-name", "team", *[f"-P{k}={v}" for k, v in TINY.items()]],
        env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    client = as_user(server.uri, server.admin_user, server.admin_password)
    team = client.get_experiment_by_name("team").experiment_id
    (main,) = client.search_runs([team], "tags.step = 'main'")
    assert main.info.status == "FINISHED" and main.data.params["epochs"] == "2"
    children = client.search_runs([team], f"tags.mlflow.parentRunId = '{main.info.run_id}'")
    steps = sorted(c.data.tags["step"] for c in children)
    assert steps == ["evaluate", "generate_data", "train"]
    # Proxied artifacts: the model and plots land in the server's folder, none on the client.
    assert list((server.root / "artifacts").rglob("MLmodel"))
    assert list((server.root / "artifacts").rglob("learning_curve.png"))
    assert not list(tmp_path.rglob("MLmodel"))

    sweep = _run(
        [sys.executable, "-m", "pipeline.sweep", "--max_freqs", "3,4", "--seeds", "1",
         "--workers", "2", "--study", "team-tiny",
         *[f"--{k}={v}" for k, v in TINY.items() if k != "max_freq"]],
        env,
    )  # fmt: skip
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    mains = client.search_runs([team], "tags.study = 'team-tiny' and tags.step = 'main'")
    assert sorted(r.info.status for r in mains) == ["FINISHED", "FINISHED"]

    report = _run(
        [sys.executable, "-m", "analysis", "--study", "team-tiny", "--out", str(tmp_path)], env
    )
    assert report.returncode == 0, report.stderr[-3000:]
    summary = pd.read_csv(tmp_path / "team-tiny" / "summary.csv")
    assert summary["max_freq"].tolist() == [3, 4] and summary["finished"].tolist() == [1, 1]
    (analysis,) = client.search_runs([team], "tags.step = 'analysis'")
    assert "report.md" in {a.path for a in client.list_artifacts(analysis.info.run_id)}


@pytest.mark.parametrize(
    ("credentials", "hint"),
    [
        ({}, "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"),
        ({"MLFLOW_TRACKING_PASSWORD": "wrong-password"}, "check MLFLOW_TRACKING_USERNAME and"),
    ],
)
def test_missing_or_wrong_credentials_are_one_line(server, credentials, hint):
    env = teammate_env(server)
    del env["MLFLOW_TRACKING_USERNAME"], env["MLFLOW_TRACKING_PASSWORD"]
    if credentials:
        env.update(MLFLOW_TRACKING_USERNAME=server.admin_user, **credentials)
    done = _run([sys.executable, "-m", "pipeline.main", "--epochs", "1"], env)
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(
            f"error: tracking server {server.uri} rejected the credentials (HTTP 401): {hint}"
        )
    )
    assert "Traceback" not in done.stderr


def test_stop_leaves_nothing_running(server, capsys):
    pids = processes_of(server)
    assert len(pids) > 3 and all(live(pid) for pid in pids)
    server.server.stop()
    assert not [pid for pid in pids if live(pid)]
    assert server.server.status() == 3
    assert "mlflow server: stopped" in capsys.readouterr().out
    assert server.server.stop() == 0  # idempotent
    assert not os.path.exists(server.root / "server.json")
