"""Process helpers for tests that kill things: bounded waits, and the machine's processes as
the pipeline itself reads them (pipeline/processes.py)."""

import os
import time
from collections.abc import Callable

from pipeline.processes import alive, children, cmdline

__all__ = ["alive", "children", "cmdline", "kill_all", "spawned_workers", "wait_until"]


def wait_until(check: Callable[[], object], timeout_s: float, what: str, every_s: float = 0.5):
    """Poll `check` until it returns something truthy; fail the test loudly after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(every_s)


def kill_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def spawned_workers(pid: int) -> list[int]:
    """The multiprocessing (spawn) workers among the children of `pid`."""
    return [c for c in children(pid) if "spawn_main" in cmdline(c)]
