"""Executor: worker processes on this machine.

Each worker is a spawned process (its own TensorFlow or JAX, imported once) that runs jobs one
after another. The parent knows which job each worker holds, so a worker that dies mid-job
(SIGKILL, the OOM killer) costs only that job: the worker is replaced and the job run again,
up to MAX_ATTEMPTS. A worker never outlives the sweep: when the sweep's process dies, even by
SIGKILL, the kernel (Linux) or a watcher thread sends the worker SIGTERM, its run ends KILLED
with an `error` tag saying why, and the worker exits.
"""

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection, wait

from pipeline import jobs as jobs_module
from pipeline import processes, tracking
from pipeline.executors import MAX_ATTEMPTS, Executor
from pipeline.jobs import Context, Job, Result

STOP_GRACE_S = 60  # how long stopped workers get to close their runs before SIGKILL
SWEEP_DIED = "the sweep process that started this worker died; run it again to resume"


def _follow_parent(parent_pid: int) -> None:
    """End this worker (as SIGTERM would) as soon as `parent_pid` is gone."""

    def reason() -> str | None:
        for _ in range(20):  # the dying parent can still look alive for a moment
            if _gone(parent_pid):
                return SWEEP_DIED
            time.sleep(0.05)
        return None  # a plain SIGTERM: the sweep is stopping its workers

    tracking.install_signal_handlers(reason)
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM) == 0:
            if os.getppid() != parent_pid:  # it died before prctl: the kernel will not tell
                os.kill(os.getpid(), signal.SIGTERM)
            return  # one signal, from the kernel: a second one would cut the first's close

    def watch() -> None:  # elsewhere, or prctl failed: poll
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _gone(parent_pid: int) -> bool:
    """Whether the sweep process is dead (a zombie counts) or no longer our parent."""
    if os.getppid() != parent_pid:
        return True
    return sys.platform.startswith("linux") and not processes.alive(parent_pid)


def _worker_main(conn: Connection, ctx: Context, parent_pid: int) -> None:
    jobs_module.prepare_worker(ctx)
    _follow_parent(parent_pid)
    try:
        while True:
            try:
                job = conn.recv()
            except EOFError:
                return  # the parent is gone
            if job is None:
                return
            conn.send(jobs_module.run_job(ctx, job))
    except KeyboardInterrupt:
        tracking.stopping()
        os._exit(130)  # the run is closed; don't wait on backend threads


class _Worker:
    def __init__(self, mp: multiprocessing.context.BaseContext, ctx: Context):
        self.ctx = ctx
        self.conn, child = mp.Pipe()
        self.process = mp.Process(
            target=_worker_main, args=(child, ctx, os.getpid()), name="sweep-worker"
        )
        self.process.start()
        child.close()
        self.job: Job | None = None
        self.attempt = 0


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"killed by {signal.Signals(-exitcode).name}"
    return f"exited with code {exitcode}"


class LocalExecutor(Executor):
    def __init__(self, ctx: Context, workers: int, address: str = ""):
        super().__init__(ctx, workers, address)
        self.mp = multiprocessing.get_context("spawn")
        self.pool: list[_Worker] = []

    def describe(self) -> str:
        return f"{self.workers} local worker processes"

    def run(self, jobs: Sequence[Job]) -> Iterator[tuple[Job, Result]]:
        queue = deque((job, 1) for job in jobs)
        first = jobs[: self.workers]
        self.pool = [_Worker(self.mp, self.ctx.for_job(job)) for job in first]
        while queue or any(w.job for w in self.pool):
            for i, worker in enumerate(self.pool):
                if worker.job is None and queue:
                    job, attempt = queue.popleft()
                    if worker.ctx != self.ctx.for_job(job):  # another backend: a new process
                        self._retire(worker)
                        worker = self.pool[i] = _Worker(self.mp, self.ctx.for_job(job))
                    worker.job, worker.attempt = job, attempt
                    worker.conn.send(job)
            busy = [w for w in self.pool if w.job]
            ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
            for worker in busy:
                if worker.conn in ready or worker.process.sentinel in ready:
                    yield from self._collect(worker, queue)
        self._stop(graceful=True)

    def _collect(self, worker: _Worker, queue: deque) -> Iterator[tuple[Job, Result]]:
        job, attempt = worker.job, worker.attempt
        try:
            result = worker.conn.recv()
        except (EOFError, OSError):
            result = None  # died before it could answer
        if result is not None:
            worker.job = None
            yield job, result
            return
        worker.process.join(5)
        why = f"its worker process {_death(worker.process.exitcode)}"
        self.pool[self.pool.index(worker)] = _Worker(self.mp, worker.ctx)
        if attempt < MAX_ATTEMPTS:
            print(f"{job.name}: {why}; running it again", file=sys.stderr, flush=True)
            queue.appendleft((job, attempt + 1))
        else:
            yield job, Result(jobs_module.FAILED, 0.0, error=f"{why}, {attempt} times")

    @staticmethod
    def _retire(worker: _Worker) -> None:
        """An idle worker that is no longer needed: ask it to exit, and wait."""
        try:
            worker.conn.send(None)
        except OSError:
            pass
        worker.process.join(STOP_GRACE_S)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join(5)

    def _stop(self, graceful: bool) -> None:
        for worker in self.pool:
            if worker.process.is_alive():
                if graceful and worker.job is None:
                    try:
                        worker.conn.send(None)
                    except OSError:
                        pass
                else:
                    worker.process.terminate()  # SIGTERM: its run ends KILLED
        deadline = time.monotonic() + STOP_GRACE_S
        for worker in self.pool:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(5)
        self.pool = []

    def shutdown(self) -> None:
        self._stop(graceful=False)


ENGINE = LocalExecutor
