"""What runs on this machine, read from /proc (Linux): the one place the pipeline, the team
server and the tests look at processes."""

import os
from pathlib import Path


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces and
    parentheses: split after its last closing one); None when there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def alive(pid: int) -> bool:
    """Whether `pid` exists and has not exited: a zombie (exited, not yet reaped) does not
    count."""
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def reap_and_check(pid: int) -> bool:
    """`alive`, after reaping `pid` if it is an exited child of this process."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    return alive(pid)


def processes() -> list[tuple[int, int, int]]:
    """(pid, parent pid, process group) of every process."""
    out = []
    for path in Path("/proc").glob("[0-9]*"):
        fields = _stat(int(path.name))
        if fields is not None:
            out.append((int(path.name), int(fields[1]), int(fields[2])))
    return out


def children(pid: int) -> list[int]:
    """Direct children of `pid`."""
    return [p for p, parent, _ in processes() if parent == pid]


def group_members(pgid: int) -> list[int]:
    """Live processes of process group `pgid` (zombies of our own are reaped)."""
    return [p for p, _, group in processes() if group == pgid and reap_and_check(p)]


def cmdline(pid: int) -> str:
    """The command line of `pid`, '' if it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
