"""Services for tests: a team tracking server on free loopback ports, always stopped after.

with team_server() as server:   # PostgreSQL + authenticated mlflow server, ~15 s to start
    MlflowClient(server.uri) ...  # with MLFLOW_TRACKING_USERNAME/PASSWORD from server
"""

import io
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

from services.server import ADMIN_USER, TeamServer


@dataclass(frozen=True)
class RunningServer:
    server: TeamServer
    uri: str
    admin_user: str
    admin_password: str
    root: Path
    output: str  # what start() printed
    start_s: float  # how long start() took


def free_ports(count: int) -> list[int]:
    """`count` distinct free TCP ports on 127.0.0.1 (all held open until all are picked)."""
    with ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]


@contextmanager
def team_server(workers: int = 1) -> Iterator[RunningServer]:
    """Start a TeamServer in a throwaway folder on free loopback ports; stop and delete it after,
    also when the test fails."""
    # Not pytest's tmp_path: that is mode 0700, and under root PostgreSQL runs as the `postgres`
    # user, which must traverse to root/pgdata. 0711 lets it through without listing anything.
    root = Path(tempfile.mkdtemp(prefix="teamserver-"))
    root.chmod(0o711)
    port, pg_port = free_ports(2)
    server = TeamServer(root, host="127.0.0.1", port=port, pg_port=pg_port, workers=workers)
    try:
        output = io.StringIO()
        started = time.monotonic()
        with redirect_stdout(output):
            server.start()
        yield RunningServer(
            server=server,
            uri=server.uri,
            admin_user=ADMIN_USER,
            admin_password=server.admin_password_file.read_text().strip(),
            root=root,
            output=output.getvalue(),
            start_s=time.monotonic() - started,
        )
    finally:
        try:
            server.stop(quiet=True)
        finally:
            shutil.rmtree(root, ignore_errors=True)
