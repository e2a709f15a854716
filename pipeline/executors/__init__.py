"""Executors: hand over sweep jobs, get results back as they finish.

The sweep plans jobs and books results; an executor only runs them. Each engine is one file
with one `Executor` subclass, registered in ENGINES by name and imported only when chosen
(so Ray is never imported by a local sweep):

    with open_executor("local", ctx, workers=2) as engine:
        for job, result in engine.run(jobs):
            ...

Contract for an implementation: `check()` refuses, with a UserError, a setting that cannot
work (before any job runs); `run(jobs)` yields every job exactly once with its `Result`, in
the order they finish, running each in a worker through `pipeline.jobs.run_job`, and retries
a job whose worker died; `shutdown()` (also on Ctrl-C, SIGTERM or any error) stops what is
still running so that its runs end KILLED, and returns within a bounded time.
"""

import importlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence

from pipeline import tracking
from pipeline.jobs import Context, Job, Result

ENGINES = {
    "local": "pipeline.executors.local_pool:LocalExecutor",
    "ray": "pipeline.executors.ray_cluster:RayExecutor",
}
MAX_ATTEMPTS = 3  # a job whose worker dies is run again, at most this many times in all


class Executor(ABC):
    def __init__(self, ctx: Context, workers: int, address: str = ""):
        self.ctx, self.workers, self.address = ctx, workers, address

    def check(self) -> None:  # noqa: B027 (optional hook)
        """Refuse a setting this engine cannot run, before any job starts."""

    @abstractmethod
    def run(self, jobs: Sequence[Job]) -> Iterator[tuple[Job, Result]]: ...

    @abstractmethod
    def shutdown(self) -> None: ...

    def describe(self) -> str:
        return f"{self.workers} local workers"

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, kind: type | None, *exc: object) -> None:
        if kind is not None and issubclass(kind, KeyboardInterrupt):
            tracking.stopping()  # no second SIGTERM may cut the workers' shutdown short
        self.shutdown()


def open_executor(name: str, ctx: Context, workers: int, address: str = "") -> Executor:
    module, _, cls = ENGINES[name].partition(":")
    engine = getattr(importlib.import_module(module), cls)(ctx, workers, address)
    try:
        engine.check()
    except BaseException:
        engine.shutdown()
        raise
    return engine
