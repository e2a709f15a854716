"""The tracking store: which one, whether it answers, and whether it is ours to write.

Stores the project documents: a local SQLite file (MLflow's default, sqlite:///mlflow.db), a
PostgreSQL database (postgresql://…, psycopg 3 installed) and a tracking server
(http(s)://…). `check_store` asks the store one cheap question with a short timeout before
any work, so an unreachable server or rejected credentials end a command in seconds with one
line; it refuses any other scheme in one line, and a SQLite file that exists but is not an
MLflow database (another program's tables, or not SQLite at all) without touching it: MLflow
would otherwise add its tables to it.
"""

import os
import sqlite3
from pathlib import Path
from urllib.parse import unquote, urlparse

from pipeline.tracking.faults import StoreError, redacted

STORE_CHECK_TIMEOUT_S = 5.0
# MLflow retries a failed request 7 times with doubling waits (about 4 minutes). A shorter
# ladder (2+4+8+16 s) rides out a server restart without hanging for minutes when it is gone.
HTTP_RETRIES, HTTP_TIMEOUT_S = "4", "30"
SQLITE_TIMEOUT_S = 120  # concurrent writers wait for the lock instead of failing
DATABASES = ("postgresql",)  # database schemes with a driver installed here
MLFLOW_TABLES = {"alembic_version", "experiments", "runs"}
ALLOWED = (
    "a local SQLite file (sqlite:///path.db), a PostgreSQL database (postgresql://…) or a "
    "tracking server (http://, https://)"
)


def configure_client() -> None:
    """Process-wide client settings (environment defaults a user can still override)."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", HTTP_RETRIES)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", HTTP_TIMEOUT_S)
    # Progress bars for artifact copies are noise in a pipeline's log.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def tracking_uri() -> str:
    import mlflow

    return mlflow.get_tracking_uri()


def set_tracking_uri(uri: str) -> None:
    import mlflow

    mlflow.set_tracking_uri(uri)


def scheme(uri: str) -> str:
    """'sqlite', 'postgresql', 'http', …: the URI's scheme without a '+driver' part."""
    return urlparse(uri).scheme.split("+")[0]


def local_folder(uri: str) -> Path | None:
    """The folder an artifact URI names on this machine (a path, or file://), else None (a
    server's or a cloud store's)."""
    parsed = urlparse(uri)
    return Path(unquote(parsed.path)) if parsed.scheme in ("", "file") else None


def sqlite_file(uri: str) -> Path | None:
    """The file of a sqlite:/// URI (query string dropped), else None."""
    if scheme(uri) != "sqlite" or not uri.startswith("sqlite:///"):
        return None
    return Path(unquote(uri.removeprefix("sqlite:///").split("?")[0]))


def is_shared_store(uri: str) -> bool:
    """Whether other machines can reach this store (a server or a database server), as
    opposed to a file on this machine (SQLite, a local folder)."""
    return scheme(uri) in ("http", "https", "postgresql", "mysql", "mssql")


def patient(uri: str) -> str:
    """The URI, with a SQLite store told to wait for the write lock rather than fail."""
    if sqlite_file(uri) is not None and "timeout=" not in uri:
        uri += ("&" if "?" in uri else "?") + f"timeout={SQLITE_TIMEOUT_S}"
    return uri


def check_store(uri: str | None = None, timeout_s: float = STORE_CHECK_TIMEOUT_S) -> None:
    """Raise StoreError with one line unless the tracking store is one this project supports,
    answers within `timeout_s` and, if a SQLite file, is new, empty or MLflow's."""
    uri = uri or tracking_uri()
    kind = scheme(uri)
    if kind in ("http", "https"):
        _check_server(uri, timeout_s)
    elif kind in DATABASES:
        _check_database(uri, timeout_s)
    elif kind == "sqlite":
        _check_sqlite(uri)
    else:
        shown = redacted(uri.partition("?")[0])
        hint = (
            "; MLflow 3.13+ no longer writes the ./mlruns file store: use sqlite:///mlflow.db"
            if kind in ("", "file")
            else ""
        )
        raise StoreError(f"tracking_uri={shown!r} is not allowed: expected {ALLOWED}{hint}")


def _check_sqlite(uri: str) -> None:
    """A SQLite file that exists, is not empty and is not an MLflow store is refused, read
    only (its bytes stay as they were)."""
    path = sqlite_file(uri)
    if path is None or not path.is_file() or path.stat().st_size == 0:
        return
    shown = uri.partition("?")[0]
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        conn.close()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc):
            return  # someone writes to it: MLflow waits for the lock, or says it stayed locked
        raise StoreError(
            f"tracking store {shown} is not a readable MLflow database ({exc}); it was not "
            "modified: point MLFLOW_TRACKING_URI at a new file or an MLflow store"
        ) from None
    except sqlite3.DatabaseError:
        raise StoreError(
            f"tracking store {shown} is not a readable MLflow database (not SQLite); it was "
            "not modified: point MLFLOW_TRACKING_URI at a new file or an MLflow store"
        ) from None
    if tables and not MLFLOW_TABLES <= tables:
        listed = ", ".join(sorted(tables)[:5]) + (", …" if len(tables) > 5 else "")
        raise StoreError(
            f"tracking store {shown} is another program's SQLite database (tables: {listed}), "
            "not an MLflow store; it was not modified: point MLFLOW_TRACKING_URI at a new file "
            "or an MLflow store"
        )


def _credentials() -> tuple[tuple[str, str] | None, dict[str, str]]:
    user, password = (os.environ.get(f"MLFLOW_TRACKING_{k}") for k in ("USERNAME", "PASSWORD"))
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return ((user, password or "") if user else None), headers


def _check_server(uri: str, timeout_s: float) -> None:
    import requests

    auth, headers = _credentials()
    url = f"{uri.rstrip('/')}/api/2.0/mlflow/experiments/search"
    try:
        answer = requests.post(
            url, json={"max_results": 1}, auth=auth, headers=headers, timeout=timeout_s
        )
    except requests.exceptions.RequestException as exc:
        why = _why(exc, timeout_s)
        raise StoreError(f"tracking server {uri} is not reachable: {why}") from None
    if answer.status_code == 401:
        hint = (
            "check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
            if auth or headers
            else "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
        )
        raise StoreError(f"tracking server {uri} rejected the credentials (HTTP 401): {hint}")
    if answer.status_code == 403:
        who = f"user {auth[0]!r}" if auth else "this client"
        raise StoreError(
            f"tracking server {uri} refused {who} (HTTP 403): ask its admin for permission"
        )
    if not answer.ok:
        raise StoreError(
            f"tracking server {uri} is not usable: it answered HTTP {answer.status_code}"
        )


def _why(exc: BaseException, timeout_s: float) -> str:
    import requests

    text = str(exc)
    if isinstance(exc, requests.exceptions.Timeout) or "timed out" in text:
        return f"no answer within {timeout_s:g} s"
    if "Connection refused" in text:
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "host name not found"
    if "No route to host" in text or "Network is unreachable" in text:
        return "no route to host"
    return type(exc).__name__


def _check_database(uri: str, timeout_s: float) -> None:
    """PostgreSQL answers (the driver is psycopg 3, SQLAlchemy 2.1's default)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(uri, connect_args={"connect_timeout": int(timeout_s)})
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.SQLAlchemyError as exc:
        first = str(exc.orig if hasattr(exc, "orig") else exc).strip().splitlines()[0]
        safe = urlparse(uri)._replace(netloc=urlparse(uri).hostname or "").geturl()
        raise StoreError(f"tracking database {safe} is not reachable: {first}") from None
    finally:
        engine.dispose()
