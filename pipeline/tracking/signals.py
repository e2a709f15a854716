"""Signals: SIGTERM ends open runs KILLED (as Ctrl-C does), an interrupt that a finaliser
swallowed is sent again, and a second SIGTERM right behind the first is ignored."""

import faulthandler
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class Interrupted(KeyboardInterrupt):
    """An interrupt with a reason worth recording on the run (e.g. its sweep died). The reason
    is also kept process-wide: a library between the signal and `step_run` may re-raise the
    interrupt as a plain KeyboardInterrupt."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
        _interrupt_reason.append(reason)


_interrupt_reason: list[str] = []


_stopping = threading.Event()  # an interrupt reached code that is now closing down
RESEND_LIMIT = 20
# A SIGTERM within this many seconds of the interrupt the last one raised is a duplicate (two
# senders of one stop: the kernel and a watcher, a supervisor and a user): raising it again
# would land inside the first one's unwinding, in the middle of a store write, and could leave
# the store's write lock held by a transaction nobody ends.
DUPLICATE_WINDOW_S = 10.0
_last_raised = [-float("inf")]  # time.monotonic() of the last interrupt raised by the handler


def stopping() -> None:
    """Say that an interrupt has been caught and runs are being closed: from now on SIGTERM is
    ignored, so that a second one cannot cut the close short."""
    _stopping.set()


def install_signal_handlers(reason: Callable[[], str | None] = lambda: None) -> None:
    """Turn SIGTERM into KeyboardInterrupt (`Interrupted` when `reason()` gives one) so that
    open runs end KILLED, not RUNNING.

    A signal handler's exception is lost when Python happens to be running a finaliser (a
    `__del__`, a weakref callback; TensorFlow has many): it prints "Exception ignored" and
    carries on. Such a lost interrupt is sent again, until some code says it is `stopping()`.
    """

    def _terminate(signum: int, frame: Any) -> None:
        if _stopping.is_set() or time.monotonic() - _last_raised[0] < DUPLICATE_WINDOW_S:
            return
        if _deferring:
            _deferred.append(signum)  # raised where the write is done: see `deferred`
            return
        why = reason()
        _last_raised[0] = time.monotonic()
        raise Interrupted(why) if why else KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _terminate)
    # `kill -USR1 <pid>` prints every thread's stack to stderr: how to see where a process that
    # does not stop is stuck (the process carries on).
    try:  # on the process's real stderr (fd 2), wherever sys.stderr points now
        faulthandler.register(signal.SIGUSR1, file=sys.__stderr__, all_threads=True)
    except (AttributeError, ValueError, OSError, RuntimeError):  # no SIGUSR1, no stderr
        pass
    if not isinstance(sys.unraisablehook, _ResendLost):
        sys.unraisablehook = _ResendLost(sys.unraisablehook)


class _ResendLost:
    """sys.unraisablehook: an interrupt swallowed by a finaliser is signalled again."""

    def __init__(self, previous: Callable[[Any], object]):
        self.previous, self.resent = previous, 0

    def __call__(self, info: Any) -> None:
        self.previous(info)
        lost = isinstance(info.exc_value, KeyboardInterrupt) and not _stopping.is_set()
        if lost and self.resent < RESEND_LIMIT:
            self.resent += 1
            _last_raised[0] = -float("inf")  # the one raised was lost: the resend must count
            # From a timer: the finaliser we are in would swallow it again.
            timer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGTERM))
            timer.daemon = True
            timer.start()


_deferring: list[bool] = []  # open `deferred` sections (main thread only)
_deferred: list[int] = []  # signals that arrived inside one


@contextmanager
def deferred() -> Iterator[None]:
    """A store write during training (a live series' flush) that SIGTERM must not cut in two:
    an interrupt raised inside the database driver can leave a transaction open and the
    store's write lock held. A SIGTERM that arrives inside is sent again as the section ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _deferring.append(True)
    try:
        yield
    finally:
        _deferring.pop()
        if not _deferring and _deferred:
            _deferred.clear()
            os.kill(os.getpid(), signal.SIGTERM)


def is_stopping() -> bool:
    return _stopping.is_set()


def interrupted() -> bool:
    """Whether this process's handler has raised a stop (SIGTERM) interrupt. A library that
    catches the interrupt and raises another error in its place (a backend or a store client
    may, mid-call) still ends the run as stopped: see step_run."""
    return _last_raised[0] > -float("inf")


def reset() -> None:
    """For tests that interrupt in process: later SIGTERMs count again."""
    _stopping.clear()
    _interrupt_reason.clear()
    _last_raised[0] = -float("inf")
    _deferred.clear()


def interrupt_reason() -> str | None:
    return next(iter(_interrupt_reason), None)
