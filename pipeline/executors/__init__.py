"""Executors: hand over sweep jobs, get results back as they finish.

The sweep plans jobs, decides what may run where, and books results; an executor only runs
them. Each engine is one module of this package, named after the engine (`local.py`,
`ray.py`) and exporting `ENGINE`, its `Executor` subclass; `names()` lists them without
importing any (so Ray is never imported by a local sweep), and a third engine is one new file:

    with open_executor("local", ctx, workers=2) as engine:
        for job, result in engine.run(jobs):
            ...

Contract for an implementation: `check()` refuses, with a UserError, a setting that cannot
work (before any job runs); `other_machines()` names the machines besides this one that will
run jobs (the sweep refuses a local store for them); `run(jobs)` yields every job exactly once
with its `Result`, in the order they finish, running each in a worker through
`pipeline.jobs.run_job`, and retries a job whose worker died; `shutdown()` (also on Ctrl-C,
SIGTERM or any error) stops what is still running so that its runs end KILLED, and returns
within a bounded time.
"""

import importlib
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.jobs import Context, Job, Result

MAX_ATTEMPTS = 3  # a job whose worker dies is run again, at most this many times in all


def names() -> tuple[str, ...]:
    """The engines: this package's modules, found without importing them."""
    return tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.ispkg))


class Executor(ABC):
    def __init__(self, ctx: "Context", workers: int, address: str = ""):
        self.ctx, self.workers, self.address = ctx, workers, address

    def check(self) -> None:  # noqa: B027 (optional hook)
        """Refuse a setting this engine cannot run, before any job starts."""

    def other_machines(self) -> list[str]:
        """Machines other than this one that will run jobs (after check())."""
        return []

    @abstractmethod
    def run(self, jobs: Sequence["Job"]) -> Iterator[tuple["Job", "Result"]]: ...

    @abstractmethod
    def shutdown(self) -> None: ...

    def describe(self) -> str:
        return f"{self.workers} local workers"

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, kind: type | None, *exc: object) -> None:
        if kind is not None and issubclass(kind, KeyboardInterrupt):
            from pipeline import tracking

            tracking.stopping()  # no second SIGTERM may cut the workers' shutdown short
        self.shutdown()


def open_executor(name: str, ctx: "Context", workers: int, address: str = "") -> Executor:
    engine = importlib.import_module(f"{__name__}.{name}").ENGINE(ctx, workers, address)
    try:
        engine.check()
    except BaseException:
        engine.shutdown()
        raise
    return engine
