"""Faults of the machine rather than of the code, and how a run's error is written: one line
each, for the user and for the run's `error` tag."""

import errno
from urllib.parse import urlparse

from pipeline.names import UserError


class StoreError(UserError):
    """The tracking store cannot be used: unreachable, refused us, or is not ours to write."""


def one_line(exc: BaseException) -> str:
    fault = describe_fault(exc)
    if fault:
        return fault
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, UserError) else f"{type(exc).__name__}: {text}"


_DISK_ERRNOS = {
    errno.ENOSPC: "the disk is full",
    errno.EFBIG: "the file size limit was hit",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EACCES: "permission denied",
    errno.EROFS: "the file system is read-only",
    errno.EPERM: "permission denied",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
}


def describe_fault(exc: BaseException) -> str | None:
    """One line for a fault of the machine rather than of the code: a full or unwritable
    disk, a locked or corrupt SQLite store. None for anything else."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:  # MLflow wraps the OSError or sqlite3 error
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS:
            where = f" {exc.filename}" if exc.filename else ""
            return f"cannot write{where}: {_DISK_ERRNOS[exc.errno]} ({exc.strerror})"
        text = str(exc)
        if "database is locked" in text:
            return (
                f"tracking store {redacted(_current_uri())} is locked by another process and "
                "stayed locked past the wait; run again when it is free"
            )
        if "file is not a database" in text or "database disk image is malformed" in text:
            store = redacted(_current_uri())
            return f"tracking store {store} is not a readable MLflow database; it was not modified"
        exc = exc.__cause__ or exc.__context__
    return None


def _current_uri() -> str:
    import mlflow

    return mlflow.get_tracking_uri()


def redacted(uri: str) -> str:
    """The URI with its password, if any, replaced by ***."""
    parsed = urlparse(uri)
    return uri.replace(f"{parsed.password}@", "***@") if parsed.password else uri
