"""What runs on this machine, through psutil: the one place the pipeline and the tests look at
processes (the team server, which must not import the pipeline, uses psutil directly)."""

import os

import psutil


def alive(pid: int) -> bool:
    """Whether `pid` exists and has not exited: a zombie (exited, not yet reaped) does not
    count."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


def reap_and_check(pid: int) -> bool:
    """`alive`, after reaping `pid` if it is an exited child of this process."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    return alive(pid)


def children(pid: int) -> list[int]:
    """Direct children of `pid`."""
    try:
        return [p.pid for p in psutil.Process(pid).children()]
    except psutil.NoSuchProcess:
        return []


def group_members(pgid: int) -> list[int]:
    """Live processes of process group `pgid` (zombies of our own are reaped)."""
    members = []
    for pid in psutil.pids():
        try:
            if os.getpgid(pid) == pgid and reap_and_check(pid):
                members.append(pid)
        except (ProcessLookupError, PermissionError):
            continue
    return members


def cmdline(pid: int) -> str:
    """The command line of `pid`, '' if it is gone."""
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return ""
