"""The team's tracking server: PostgreSQL + `mlflow server --app-name basic-auth`, one folder.

Reads: nothing but its own folder ROOT (default `.server/`) and Debian's PostgreSQL
(/usr/lib/postgresql/<newest>/bin; `make postgres` installs it).
Writes, all under ROOT (secrets mode 0600, generated on first start, never printed):

    pgdata/            PostgreSQL data: databases `mlflow` (runs) and `mlflow_auth` (users)
    db_password        password of the database role `mlflow`
    admin_password     password of the MLflow user `admin`
    flask_secret_key   MLflow's Flask secret (MLFLOW_FLASK_SERVER_SECRET_KEY)
    basic_auth.ini     the auth app's configuration (MLFLOW_AUTH_CONFIG_PATH), rewritten each start
    users/NAME.password  one per `add-user NAME`
    artifacts/         every run's artifacts, uploaded through the server (proxied artifacts)
    server.json        pids and ports of what runs; postgres.log, server.log: the two logs

PostgreSQL listens on 127.0.0.1 only (its one client is the mlflow server on this machine) and
on a unix socket inside pgdata/. When run as root (CI), PostgreSQL runs as the `postgres` system
user, which must be able to traverse to ROOT. MLflow answers only requests whose Host header is
localhost or a private address (its DNS-rebinding guard): to reach it by name, also export
MLFLOW_SERVER_ALLOWED_HOSTS=name:port,... before starting. A start takes ~15 s.

Permissions: every user, teammates included, gets `default_permission = EDIT` on experiments
without an explicit grant. MLflow's auth app lets anyone create an experiment (its creator gets
MANAGE on it), but creating a run needs *update* (EDIT) on the run's experiment, so with the
stock READ a teammate could not log into `Default` or into a study experiment a colleague
created. EDIT allows exactly that; deleting experiments and changing grants stays with their
creators and the admin.

    python -m services.server start --host 0.0.0.0 --port 5000    # or: make server
    python -m services.server add-user alice                      # password in .server/users/
"""

import argparse
import contextlib
import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import psutil
import psycopg

DEFAULT_ROOT = Path(".server")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
DEFAULT_PG_PORT = 5433
DEFAULT_WORKERS = 2  # uvicorn workers; a handful of researchers never needs MLflow's 4
ADMIN_USER = "admin"
DEFAULT_PERMISSION = "EDIT"  # see the module docstring
DB_USER = "mlflow"
TRACKING_DB = "mlflow"
# A database of its own for the auth app: it could share `mlflow` (it keeps its own alembic
# version table), but apart the two schemas can never collide and `pg_dump mlflow` backs up the
# runs without anyone's password hashes.
AUTH_DB = "mlflow_auth"
POSTGRES_OS_USER = "postgres"  # Debian's package creates it; initdb and postgres refuse root
PG_START_TIMEOUT_S = 60
HEALTH_TIMEOUT_S = 90
STOP_TIMEOUT_S = 20
LOG_TAIL_LINES = 20
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class ServerError(Exception):
    """Something the user can fix; the CLI prints it as one line."""


class TeamServer:
    """PostgreSQL and an authenticated `mlflow server` whose state all lives under `root`."""

    def __init__(
        self,
        root: Path,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        pg_port: int = DEFAULT_PG_PORT,
        workers: int = DEFAULT_WORKERS,
    ):
        self.root = Path(root).resolve()
        self.host, self.port, self.pg_port, self.workers = host, port, pg_port, workers
        self.pgdata = self.root / "pgdata"
        self.artifacts = self.root / "artifacts"
        self.state_file = self.root / "server.json"
        self.admin_password_file = self.root / "admin_password"
        self.db_password_file = self.root / "db_password"
        self.secret_key_file = self.root / "flask_secret_key"
        self.auth_ini = self.root / "basic_auth.ini"
        self.server_log = self.root / "server.log"
        self.postgres_log = self.root / "postgres.log"
        self.users = self.root / "users"
        self._process: subprocess.Popen | None = None  # the mlflow server, when we started it
        self._as_root = os.geteuid() == 0

    @property
    def uri(self) -> str:
        """The tracking URI on this machine."""
        return f"http://{_connect_host(self.host)}:{self.port}"

    # -- the three commands --------------------------------------------------------------

    def start(self) -> int:
        """Start PostgreSQL and the mlflow server unless they already run; print how to connect."""
        if self._running():
            state = self._state()
            print(
                f"tracking server already running: http://{_connect_host(state['host'])}:"
                f"{state['port']} (pid {state['mlflow_pid']}); nothing changed"
            )
            return 0
        self._stop_quietly()  # what a half-dead earlier server left behind
        if self.pg_port == self.port:
            raise ServerError(f"--pg-port={self.pg_port} is not allowed: it is also --port")
        _require_free_port(self.host, self.port, "--port")
        _require_free_port("127.0.0.1", self.pg_port, "--pg-port")
        bindir = postgres_bindir()
        self._prepare_root()
        try:
            self._start_postgres(bindir)
            self._create_databases()
            self._start_mlflow()
            self._wait_healthy()
        except BaseException:
            self._stop_quietly()
            raise
        self._print_connection(bindir)
        return 0

    def stop(self, quiet: bool = False) -> int:
        """Stop the mlflow server (its whole process group) and PostgreSQL; idempotent."""
        stopped = []
        pgid = self._state().get("mlflow_pid")
        if pgid and self._stop_process_group(pgid):
            stopped.append(f"mlflow server (pid {pgid})")
        postmaster = self._postmaster()
        if postmaster:
            self._pg_ctl("stop", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60")
            # pg_ctl returns once the pid file is gone, a moment before the process itself.
            _wait_exited([postmaster], 10)
            stopped.append(f"PostgreSQL (pid {postmaster.pid})")
        self.state_file.unlink(missing_ok=True)
        if not quiet:
            print(f"stopped {' and '.join(stopped)}" if stopped else "tracking server not running")
        return 0

    def status(self) -> int:
        """Print what runs; 0 when the server answers, 3 when it does not (like systemd)."""
        state = self._state()
        pid = state.get("mlflow_pid")
        if pid and _process(pid):
            url = f"http://{_connect_host(state['host'])}:{state['port']}"
            health = "answers" if _healthy(url) else "does NOT answer"
            print(f"mlflow server: running, pid {pid}, {url}, /health {health}")
        else:
            print("mlflow server: stopped")
        postmaster = self._postmaster()
        if postmaster:
            print(
                f"PostgreSQL: running, pid {postmaster.pid}, 127.0.0.1:{state.get('pg_port', '?')}"
            )
        else:
            print("PostgreSQL: stopped")
        return 0 if self._running() and postmaster else 3

    def add_user(self, name: str) -> str:
        """Create MLflow user `name` with a generated password, written to users/NAME.password."""
        if not USERNAME.fullmatch(name):
            raise ServerError(
                f"user name {name!r} is not allowed: letters, digits, '.', '_', '-' (≤ 64)"
            )
        if not self._running():
            raise ServerError(f"the tracking server of {self.root} is not running: start it first")
        state = self._state()
        url = f"http://{_connect_host(state['host'])}:{state['port']}"
        password = secrets.token_urlsafe(24)
        _create_user(url, self.admin_password_file.read_text().strip(), name, password)
        # Nothing to grant: default_permission = EDIT already lets a teammate create
        # experiments and runs anywhere (see the module docstring).
        self.users.mkdir(mode=0o700, exist_ok=True)
        password_file = self.users / f"{name}.password"
        _write_secret(password_file, password)
        print(f"user {name!r} created; password in {password_file}")
        return password

    # -- PostgreSQL ----------------------------------------------------------------------

    def _prepare_root(self) -> None:
        # 0711: the `postgres` user may traverse to pgdata/ but not list or read anything else.
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o711 if self._as_root else 0o700)
        self.artifacts.mkdir(exist_ok=True)
        for path, size in (
            (self.db_password_file, 24),
            (self.admin_password_file, 24),
            (self.secret_key_file, 32),
        ):
            if not path.exists():
                _write_secret(path, secrets.token_urlsafe(size))
        # Rewritten each start: the port may change. The admin password and the database
        # password reach the server as environment variables, never through this file.
        _write_secret(
            self.auth_ini,
            "[mlflow]\n"
            f"default_permission = {DEFAULT_PERMISSION}\n"
            f"database_uri = {self._db_uri(AUTH_DB)}\n"
            f"admin_username = {ADMIN_USER}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            # Each request's password check is a PBKDF2 hash (~0.3 s on 2 cores); a run makes
            # dozens of requests. Caching a verified login for 60 s took one `main` run's
            # logging from 19.9 s to that of SQLite (benchmarks/README.md). A changed or
            # deleted password is honoured by every server worker within those 60 s.
            "auth_cache_ttl_seconds = 60\n",
        )
        if self._as_root:
            _require_postgres_os_user()
            if self._as_postgres(["test", "-x", str(self.root)]).returncode != 0:
                raise ServerError(
                    f"the {POSTGRES_OS_USER!r} user cannot reach {self.root}: "
                    "choose a --root whose parent folders others may traverse (mode o+x)"
                )

    def _start_postgres(self, bindir: Path) -> None:
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb(bindir)
        self.postgres_log.touch()
        self._give_to_postgres(self.postgres_log)
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.pg_port} "
            f"-c unix_socket_directories={shlex.quote(str(self.pgdata))}"
        )
        # -w -t: pg_ctl waits, bounded, until PostgreSQL accepts connections, and returns at
        # once with an error if it exits first (a bad setting, say).
        start = ["start", "-D", str(self.pgdata), "-l", str(self.postgres_log), "-o", options]
        try:
            self._pg_ctl(*start, "-w", "-t", str(PG_START_TIMEOUT_S))
        except ServerError:
            _print_tail(self.postgres_log)
            raise ServerError(
                f"PostgreSQL did not accept connections on 127.0.0.1:{self.pg_port} within "
                f"{PG_START_TIMEOUT_S} s; see {self.postgres_log}"
            ) from None
        finally:
            self._write_state()

    def _initdb(self, bindir: Path) -> None:
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        self._give_to_postgres(self.pgdata)
        # initdb reads the password from a file: a copy the `postgres` user may read, removed
        # straight after.
        password_copy = self.root / ".initdb-password"
        _write_secret(password_copy, self.db_password_file.read_text().strip())
        self._give_to_postgres(password_copy)
        try:
            result = self._as_postgres(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    DB_USER,
                    f"--pwfile={password_copy}",
                    "--auth-local=scram-sha-256",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-locale",
                ],
                timeout=120,
            )
        finally:
            password_copy.unlink(missing_ok=True)
        if result.returncode != 0:
            raise ServerError(f"initdb failed: {_short(result.stderr or result.stdout)}")

    def _create_databases(self) -> None:
        connection = psycopg.connect(
            host="127.0.0.1",
            port=self.pg_port,
            user=DB_USER,
            password=self.db_password_file.read_text().strip(),
            dbname="postgres",
            connect_timeout=10,
            autocommit=True,  # CREATE DATABASE cannot run inside a transaction
        )
        try:
            with connection.cursor() as cursor:
                for database in (TRACKING_DB, AUTH_DB):
                    cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
                    if cursor.fetchone() is None:
                        cursor.execute(f'CREATE DATABASE "{database}"')
        finally:
            connection.close()

    def _db_uri(self, database: str) -> str:
        # A bare postgresql://: SQLAlchemy 2.1 picks psycopg 3, the driver installed here.
        # No password: libpq takes it from PGPASSWORD (see _start_mlflow).
        return f"postgresql://{DB_USER}@127.0.0.1:{self.pg_port}/{database}"

    def db_uri(self, database: str = "mlflow") -> str:
        """The SQLAlchemy URI of one of the server's databases (no password: PGPASSWORD)."""
        return self._db_uri(database)

    def _postmaster(self) -> psutil.Process | None:
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return _process(pid)

    def _pg_ctl(self, *args: str) -> None:
        result = self._as_postgres([str(postgres_bindir() / "pg_ctl"), *args], timeout=90)
        if result.returncode != 0:
            raise ServerError(f"pg_ctl {args[0]} failed: {_short(result.stderr or result.stdout)}")

    def _as_postgres(self, cmd: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a PostgreSQL program, as the `postgres` user when we are root."""
        if self._as_root:
            cmd = ["runuser", "-u", POSTGRES_OS_USER, "--", *cmd]
        # cwd "/": the caller's folder may be one the `postgres` user cannot enter.
        return subprocess.run(
            cmd, cwd="/", capture_output=True, text=True, timeout=timeout, check=False
        )

    def _give_to_postgres(self, path: Path) -> None:
        if self._as_root:
            account = pwd.getpwnam(POSTGRES_OS_USER)
            os.chown(path, account.pw_uid, account.pw_gid)

    # -- mlflow server -------------------------------------------------------------------

    def _start_mlflow(self) -> None:
        cmd = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", self._db_uri(TRACKING_DB),
            "--artifacts-destination", str(self.artifacts),
            "--host", self.host,
            "--port", str(self.port),
            "--workers", str(self.workers),
            "--app-name", "basic-auth",
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_AUTH_")}
        env.update(
            # libpq reads PGPASSWORD, so the password is in no command line (`ps` shows those).
            PGPASSWORD=self.db_password_file.read_text().strip(),
            MLFLOW_AUTH_CONFIG_PATH=str(self.auth_ini),
            MLFLOW_AUTH_ADMIN_PASSWORD=self.admin_password_file.read_text().strip(),
            MLFLOW_FLASK_SERVER_SECRET_KEY=self.secret_key_file.read_text().strip(),
        )
        # MLflow's job runner (GenAI scorers, prompt optimisation) is seven more Python processes
        # and doubles the start time; this pipeline uses none of it. Set it to true to have it.
        env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        with open(self.server_log, "ab") as log:
            # A session of its own: the server outlives `make server`, and stop() can signal
            # its whole process group (uvicorn and its workers).
            self._process = subprocess.Popen(
                cmd,
                cwd=self.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._write_state()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        for _ in range(HEALTH_TIMEOUT_S * 2):
            if _healthy(self.uri):
                return
            if self._process.poll() is not None:
                problem = f"mlflow server exited with code {self._process.returncode}"
                break
            if time.monotonic() > deadline:
                problem = f"mlflow server did not answer {self.uri}/health in {HEALTH_TIMEOUT_S} s"
                break
            time.sleep(0.5)
        else:
            problem = f"mlflow server did not answer {self.uri}/health"
        _print_tail(self.server_log)
        raise ServerError(f"{problem}; see {self.server_log}")

    def _stop_process_group(self, pgid: int) -> bool:
        """SIGTERM the group, wait (bounded), then SIGKILL. False if nothing of it was left."""
        members = _group_members(pgid)
        commands = [_command(p) for p in members]
        if not any("mlflow" in c or "uvicorn" in c for c in commands):
            return False  # gone, or the id now belongs to someone else's processes
        for sig, wait_s in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, 5)):
            for member in members:
                with contextlib.suppress(psutil.NoSuchProcess):
                    member.send_signal(sig)
            _wait_exited(members, wait_s)
            # Taken again: the group may have started a process since (a uvicorn worker).
            members = _group_members(pgid)
            if not members:
                break
        return True

    # -- state -----------------------------------------------------------------------------

    def _running(self) -> bool:
        state = self._state()
        pid = state.get("mlflow_pid")
        return bool(pid and _process(pid)) and _healthy(
            f"http://{_connect_host(state['host'])}:{state['port']}"
        )

    def _state(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def _write_state(self) -> None:
        postmaster = self._postmaster()
        state = {
            "host": self.host,
            "port": self.port,
            "pg_port": self.pg_port,
            "postgres_pid": postmaster.pid if postmaster else None,
            "mlflow_pid": self._process.pid if self._process else None,
        }
        _write_secret(self.state_file, json.dumps(state, indent=2) + "\n")

    def _stop_quietly(self) -> None:
        try:
            self.stop(quiet=True)
        except ServerError as exc:
            print(f"while cleaning up: {exc}", file=sys.stderr)

    def _print_connection(self, bindir: Path) -> None:
        version = bindir.parent.name
        print(
            f"tracking server: {self.uri}  (PostgreSQL {version} on 127.0.0.1:{self.pg_port}, "
            f"artifacts in {_shown(self.artifacts)})"
        )
        if self.host in ("127.0.0.1", "localhost", "::1"):
            print(
                f"  (on {self.host} only; for other machines: --host 0.0.0.0, SERVER_HOST in make)"
            )
        print("teammates set:")
        print(f"  export MLFLOW_TRACKING_URI=http://{_public_address(self.host)}:{self.port}")
        print(f"  export MLFLOW_TRACKING_USERNAME={ADMIN_USER}")
        print(f"  export MLFLOW_TRACKING_PASSWORD=$(cat {self.admin_password_file})")
        root = "" if self.root == (Path.cwd() / DEFAULT_ROOT).resolve() else f" --root {self.root}"
        print(f"more users: python -m services.server add-user NAME{root}")


# -- helpers ---------------------------------------------------------------------------------


def postgres_bindir() -> Path:
    """Where PostgreSQL's programs are: $POSTGRES_BINDIR (any installation: your own build,
    conda's, Homebrew's), else the folder of an `initdb` on PATH, else the newest Debian
    /usr/lib/postgresql/<version>/bin."""
    given = os.environ.get("POSTGRES_BINDIR")
    if given:
        if not (Path(given) / "initdb").is_file():
            raise ServerError(f"POSTGRES_BINDIR={given!r} is not allowed: it holds no initdb")
        return Path(given)
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    if not found:
        raise ServerError(
            "PostgreSQL is not installed: run `make postgres` (Debian's package, needs root or "
            "sudo), or set POSTGRES_BINDIR to the bin folder of an installed PostgreSQL"
        )

    def version(bindir: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", bindir.parent.name))

    return max(found, key=version)


def _require_postgres_os_user() -> None:
    try:
        pwd.getpwnam(POSTGRES_OS_USER)
    except KeyError:
        raise ServerError(
            f"running as root but there is no {POSTGRES_OS_USER!r} user to run PostgreSQL as: "
            "install Debian's postgresql package (`make postgres`)"
        ) from None


def _require_free_port(host: str, port: int, option: str) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # As uvicorn and PostgreSQL bind: connections of an earlier server in TIME_WAIT
        # don't count, only a program listening there.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            raise ServerError(
                f"{option}={port} is not allowed: port {port} on {host} is already in use"
            ) from None


def _connect_host(host: str) -> str:
    """Where a client on this machine reaches a server bound to `host`."""
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


def _public_address(host: str) -> str:
    """The address teammates use: this machine's outward address when bound to all of them."""
    if host not in ("0.0.0.0", "", "::"):
        return host
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))  # UDP connect picks a route, sends nothing
            return probe.getsockname()[0]
        except OSError:
            return socket.gethostname()


def _healthy(url: str) -> bool:
    """Whether the server answers /health (which needs no login): a plain GET, bounded."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _create_user(url: str, admin_password: str, name: str, password: str) -> None:
    """Create MLflow user `name` as the admin, with the auth app's own client."""
    # Imported here, not at the top: mlflow.server loads the server app (~3 s), which start,
    # stop and status never use. Loading the client imports the auth app, which warns that
    # Starlette deprecated a middleware MLflow uses: MLflow's to fix, not the user's.
    from mlflow.exceptions import MlflowException
    from mlflow.server import get_app_client

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="starlette.middleware.wsgi is deprecated")
        client = get_app_client("basic-auth", tracking_uri=url)
    # The client takes its login from these two variables only: the admin's, for this call.
    credentials = {
        "MLFLOW_TRACKING_USERNAME": ADMIN_USER,
        "MLFLOW_TRACKING_PASSWORD": admin_password,
    }
    saved = {key: os.environ.get(key) for key in credentials}
    os.environ.update(credentials)
    try:
        client.create_user(name, password)
    except MlflowException as exc:
        # Its first line says what went wrong; the rest is the server's SQL and a link.
        reason = exc.message.partition("\n")[0][:300]
        raise ServerError(f"could not create user {name!r}: {reason}") from None
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _process(pid: int) -> psutil.Process | None:
    """Process `pid` while it runs: None when it is gone or has exited (a zombie, unreaped)."""
    try:
        process = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None
    return process if _alive(process) else None


def _alive(process: psutil.Process) -> bool:
    """Running and not exited: psutil counts a zombie (exited, not yet reaped) as running."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _group_members(pgid: int) -> list[psutil.Process]:
    """The running processes of process group `pgid` (psutil does not expose the group)."""
    members = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid and _alive(process):
                members.append(process)
        except ProcessLookupError:
            continue
    return members


def _command(process: psutil.Process) -> str:
    """The command line of `process`, '' if it is gone."""
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


def _wait_exited(processes: list[psutil.Process], timeout: float) -> None:
    """Wait until none of `processes` runs, at most `timeout` s, reaping those that are our
    children. A zombie counts as exited: wait_procs would wait for someone else's to be reaped."""
    deadline = time.monotonic() + timeout
    while True:
        _, left = psutil.wait_procs(
            processes, timeout=max(0.0, min(0.5, deadline - time.monotonic()))
        )
        if not any(_alive(p) for p in left) or time.monotonic() >= deadline:
            return


def _write_secret(path: Path, text: str) -> None:
    """Write `text` to `path`, readable by its owner only (mode 0600 even if it existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)


def _print_tail(log: Path) -> None:
    try:
        lines = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    except OSError:
        return
    print(f"--- last lines of {log} ---", *lines, "---", sep="\n", file=sys.stderr)


def _short(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1][:300] if lines else "(no output)"


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: a port is 1 … 65535")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="state folder")
    options.add_argument("--host", default=DEFAULT_HOST, help="address the server listens on")
    options.add_argument("--port", type=_port, default=DEFAULT_PORT)
    options.add_argument("--pg-port", type=_port, default=DEFAULT_PG_PORT, help="PostgreSQL's")
    options.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    parser = argparse.ArgumentParser(
        prog="python -m services.server", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("start", "stop", "status"):
        commands.add_parser(name, parents=[options])
    commands.add_parser("add-user", parents=[options]).add_argument("name")
    args = parser.parse_args(argv)

    server = TeamServer(args.root, args.host, args.port, args.pg_port, args.workers)
    try:
        if args.command == "add-user":
            server.add_user(args.name)
            return 0
        return {"start": server.start, "stop": server.stop, "status": server.status}[
            args.command
        ]()
    except ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
