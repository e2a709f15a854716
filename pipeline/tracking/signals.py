"""Signals: SIGTERM ends open runs KILLED (as Ctrl-C does), and an interrupt that a finaliser
swallowed is sent again."""

import os
import signal
import sys
import threading
from collections.abc import Callable
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
        if _stopping.is_set():
            return
        why = reason()
        raise Interrupted(why) if why else KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _terminate)
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
            # From a timer: the finaliser we are in would swallow it again.
            timer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGTERM))
            timer.daemon = True
            timer.start()


def is_stopping() -> bool:
    return _stopping.is_set()


def reset() -> None:
    """For tests that interrupt in process: later SIGTERMs count again."""
    _stopping.clear()
    _interrupt_reason.clear()


def interrupt_reason() -> str | None:
    return next(iter(_interrupt_reason), None)
