"""Executor: one Ray task per job, on a Ray instance started here or on a cluster joined by
address (`ray_address`: empty = start Ray here with `workers` CPUs; 'auto' or host:port =
join a running cluster).

Each task takes one CPU and runs `pipeline.jobs.run_job` in a fresh worker process (so the
memory TensorFlow or JAX hold is given back after every run). The `pipeline` package travels
with the job as a runtime_env py_module, so nodes need the same environment installed but not
this checkout; MLFLOW_TRACKING_URI/USERNAME/PASSWORD/TOKEN, when set, travel as runtime_env
env_vars, which Ray shows to anyone who can see the cluster's jobs (its dashboard and job
APIs): give the sweep credentials meant for the cluster. A task whose worker or node dies is
run again by Ray, up to MAX_ATTEMPTS in all; the retry first closes the dead attempt's runs as
KILLED. Runs write to the store from the nodes: `other_machines()` tells the sweep which
nodes are elsewhere, and the sweep refuses a store they could not reach.

Stopping (Ctrl-C, SIGTERM, an error) cancels the tasks: a running one gets KeyboardInterrupt,
so its run ends KILLED; one still running after CANCEL_GRACE_S is killed. If the sweep
process itself dies (SIGKILL), Ray 2.60 was seen to do this: on a Ray started here, the raylet
dies with the sweep and its workers exit within ~2 s; on a joined cluster, the raylet sends the
job's workers SIGTERM and force-exits them milliseconds later. Either way no task outlives the
sweep, but its runs (and the sweep run) were left RUNNING every time: they stop beating, and
the next sweep of the study marks them KILLED as stale (stale_after_min) and runs them again.

    python -m pipeline.sweep --max_freqs 10,20 --seeds 3 --executor ray --ray_address auto
"""

import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import ray
import ray.exceptions as rex
from tqdm import tqdm

import pipeline
from pipeline import jobs as jobs_module
from pipeline import tracking
from pipeline.executors import MAX_ATTEMPTS, Executor
from pipeline.jobs import Context, Job, Result
from pipeline.names import UserError

TASK_OPTIONS = {
    "num_cpus": 1,
    "max_calls": 1,  # a fresh process per run: TensorFlow/JAX memory does not pile up
    "max_retries": MAX_ATTEMPTS - 1,  # when its worker or node dies
    "retry_exceptions": False,  # run_job returns a FAILED Result rather than raising
}
CONNECT_TIMEOUT_S = 5.0  # an address that does not answer within this is refused
CANCEL_GRACE_S = 30.0  # how long cancelled tasks get to close their runs before a force-kill
WAIT_STEP_S = 1.0  # ray.wait in short steps, so Ctrl-C and SIGTERM are handled promptly
FORWARDED_ENV = tuple(f"MLFLOW_TRACKING_{k}" for k in ("URI", "USERNAME", "PASSWORD", "TOKEN"))
AUTH_ENV = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
RAY_MESSAGE_CHARS = 200  # Ray's cluster messages (node lost, task retried), cut to one line


# --- which machines run the tasks (pure, tested with fake nodes) -----------------------------


def other_machines(nodes: Iterable[Mapping[str, Any]], local_ips: Iterable[str]) -> list[str]:
    """IPs of the alive nodes that are not on this machine (ray.nodes() dicts)."""
    here = set(local_ips)
    return sorted(
        {
            n["NodeManagerAddress"]
            for n in nodes
            if n.get("Alive", n.get("alive")) and n["NodeManagerAddress"] not in here
        }
    )


# --- the task -------------------------------------------------------------------------------


def _backend_env(job: Job) -> dict[str, Any]:
    """Merged by Ray into the job's runtime_env: the task's process starts on its backend."""
    return {"env_vars": {"KERAS_BACKEND": job.params["backend"]}}


def _runtime_env() -> dict[str, Any]:
    env = {k: os.environ[k] for k in FORWARDED_ENV if os.environ.get(k)}
    package = str(Path(pipeline.__file__).resolve().parent)
    return {"py_modules": [package], "excludes": ["__pycache__/"], "env_vars": env}


def _first_line(text: str) -> str:
    return next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")


def _failure(exc: BaseException) -> str:
    """One line for a task that Ray gave up on."""
    if isinstance(exc, rex.TaskCancelledError):
        return "its Ray task was cancelled"
    if isinstance(exc, rex.NodeDiedError | rex.LocalRayletDiedError):
        return f"its Ray worker process died, {MAX_ATTEMPTS} times (the last time with its node)"
    if isinstance(exc, rex.WorkerCrashedError):
        return f"its Ray worker process died, {MAX_ATTEMPTS} times"
    if isinstance(exc, rex.OutOfMemoryError):
        return "Ray killed its worker: the node ran out of memory"
    if isinstance(exc, rex.RuntimeEnvSetupError):
        return f"Ray could not set up the worker's environment: {_first_line(exc)}"
    if isinstance(exc, rex.RayTaskError) and exc.cause is not None:
        return tracking.one_line(exc.cause)
    return f"{type(exc).__name__}: {_first_line(exc)}"


# --- the executor ---------------------------------------------------------------------------


class RayExecutor(Executor):
    def __init__(self, ctx: Context, workers: int, address: str = ""):
        super().__init__(ctx, workers, address)
        self.pending: dict[ray.ObjectRef, Job] = {}
        self.owns_ray = False  # this executor called ray.init: it must call ray.shutdown
        self.started_here = False
        self.saved_env: dict[str, str | None] = {}
        self.summary = ""
        self.print_messages: Callable | None = None
        self.others: list[str] = []

    # connecting

    def check(self) -> None:
        if ray.is_initialized():
            raise RuntimeError(
                "this process is already connected to Ray: leave that to the executor"
            )
        if self.address:
            self._join()
        else:
            self._start()
        nodes = [n for n in ray.nodes() if n["Alive"]]
        cpus = ray.cluster_resources().get("CPU", 0)
        where = "started here at" if self.started_here else "at"
        self.summary = (
            f"Ray {where} {ray.get_runtime_context().gcs_address} "
            f"({len(nodes)} node{'s' * (len(nodes) != 1)}, {cpus:g} CPUs)"
        )
        self.others = other_machines(nodes, self._local_ips(nodes))

    def other_machines(self) -> list[str]:
        return self.others

    def _start(self) -> None:
        """A private Ray instance. Ray 2.60 turns token authentication on for it and, unless a
        token is configured, writes one to ~/.ray/auth_token; a fresh token in this process's
        environment (inherited by Ray's processes, gone with them) avoids that file."""
        self.saved_env = {k: os.environ.get(k) for k in AUTH_ENV}
        if not any(self.saved_env.values()) and not (Path.home() / ".ray/auth_token").exists():
            os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
            _reload_auth()
        # "local": a new instance even where RAY_ADDRESS names a cluster
        self._init(address="local", num_cpus=self.workers, include_dashboard=False)
        self.started_here = True

    def _join(self) -> None:
        bootstrap = self._probe(self.address)
        try:
            self._init(address=self.address)
        except Exception as exc:
            raise UserError(
                f"ray_address={self.address!r} is not allowed: the Ray cluster at {bootstrap} "
                f"refused this driver: {_first_line(exc)}"
            ) from None

    def _init(self, **kwargs: Any) -> None:
        # ray.init replaces SIGTERM's handler with sys.exit: keep ours (SIGTERM ends runs KILLED)
        handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
        self.owns_ray = True  # even if ray.init is interrupted: it may have started processes
        try:
            ray.init(
                log_to_driver=False,  # worker output (TensorFlow's chatter) stays in Ray's logs
                logging_level=logging.ERROR,
                runtime_env=_runtime_env(),
                **kwargs,
            )
            self.print_messages = _condense_ray_messages()
        finally:
            if threading.current_thread() is threading.main_thread():
                for sig, handler in handlers.items():
                    if handler is not None:
                        signal.signal(sig, handler)

    def _probe(self, address: str) -> str:
        """host:port of the cluster's head, which must answer within CONNECT_TIMEOUT_S
        (ray.init would retry an address that does not answer for minutes)."""
        from ray._private import services

        allowed = "expected 'auto', host:port of a running Ray head, or empty to start Ray here"
        bootstrap = address.removeprefix("ray://")
        try:
            if not address.startswith("ray://"):
                bootstrap = services.canonicalize_bootstrap_address_or_die(address)
            host, _, port = bootstrap.rpartition(":")
            with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
                pass
        except (OSError, ValueError) as exc:
            if isinstance(exc, TimeoutError | socket.timeout):
                why = f"no answer from {bootstrap} within {CONNECT_TIMEOUT_S:g} s"
            elif isinstance(exc, ConnectionRefusedError):
                why = f"nothing listens at {bootstrap} (connection refused)"
            elif address == "auto" and isinstance(exc, ConnectionError):
                why = "no running Ray cluster found on this machine, and RAY_ADDRESS is not set"
            else:
                why = f"{bootstrap}: {getattr(exc, 'strerror', None) or _first_line(exc)}"
            raise UserError(f"ray_address={address!r} is not allowed: {why}; {allowed}") from None
        return bootstrap

    def _local_ips(self, nodes: Sequence[Mapping[str, Any]]) -> set[str]:
        """The IP(s) by which the cluster knows this machine."""
        if ray.util.client.ray.is_connected():  # ray://: this machine may not be a node
            host, _, port = self.address.removeprefix("ray://").rpartition(":")
            with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S) as s:
                ips = {s.getsockname()[0]}
            if host in ("localhost", "127.0.0.1", "::1"):
                ips |= {
                    n["NodeManagerAddress"]
                    for n in nodes
                    if n.get("Resources", {}).get("node:__internal_head__")
                }
            return ips
        me = ray.get_runtime_context().get_node_id()
        return {n["NodeManagerAddress"] for n in nodes if n["NodeID"] == me}

    def describe(self) -> str:
        return self.summary or "Ray"

    # running

    def run(self, jobs: Sequence[Job]) -> Iterator[tuple[Job, Result]]:
        task = ray.remote(**TASK_OPTIONS)(jobs_module.run_job)
        self.pending = {
            task.options(name=job.name, runtime_env=_backend_env(job)).remote(
                self.ctx.for_job(job), job
            ): job
            for job in jobs
        }
        while self.pending:
            ready, _ = ray.wait(list(self.pending), num_returns=1, timeout=WAIT_STEP_S)
            for ref in ready:
                job = self.pending.pop(ref)
                try:
                    result = ray.get(ref)
                except rex.RayError as exc:
                    result = Result(jobs_module.FAILED, 0.0, error=_failure(exc))
                yield job, result

    # stopping

    def shutdown(self) -> None:
        try:
            if self.owns_ray and self.pending and ray.is_initialized():
                self._cancel(list(self.pending))
        except rex.RayError:
            pass  # Ray itself is gone (its head died): nothing is left to cancel
        finally:
            self.pending = {}
            if self.owns_ray:
                self.owns_ray = False
                ray.shutdown()
            if self.print_messages:
                ray._private.worker.print_to_stdstream = self.print_messages
                self.print_messages = None
            if self.saved_env:
                for key, value in self.saved_env.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
                self.saved_env = {}
                _reload_auth()

    @staticmethod
    def _cancel(refs: list) -> None:
        """KeyboardInterrupt in each running task (its run ends KILLED); queued ones are
        dropped; after CANCEL_GRACE_S, whatever still runs is killed."""
        for ref in refs:
            _quietly(ray.cancel, ref)
        deadline = time.monotonic() + CANCEL_GRACE_S
        while refs and time.monotonic() < deadline:
            _, refs = ray.wait(refs, num_returns=len(refs), timeout=WAIT_STEP_S)
        for ref in refs:
            _quietly(ray.cancel, ref, force=True)
        if refs:
            ray.wait(refs, num_returns=len(refs), timeout=5.0)


def _quietly(call, *args: Any, **kwargs: Any) -> None:
    try:
        call(*args, **kwargs)
    except Exception:
        pass  # already finished, or Ray is already gone


def _condense_ray_messages() -> Callable | None:
    """The driver prints Ray's cluster messages (a node died, a task will be retried) on
    stdout, some with 20 lines of raylet log: keep their first line, on stderr. Returns what
    to restore (None where this Ray prints them some other way)."""
    from ray._private import worker as ray_worker

    original = getattr(ray_worker, "print_to_stdstream", None)
    if original is None:
        return None

    def condensed(data: dict, ignore_prefix: bool) -> None:
        if data.get("pid") != "raylet":
            original(data, ignore_prefix)
            return
        for message in data.get("lines", []):
            line = _first_line(message)
            if len(line) > RAY_MESSAGE_CHARS:
                line = line[: RAY_MESSAGE_CHARS - 1] + "…"
            tqdm.write(f"ray: {line}", file=sys.stderr)

    ray_worker.print_to_stdstream = condensed
    return original


def _reload_auth() -> None:
    """Ray reads its authentication mode and token from the environment once per process;
    after changing them, make it read them again."""
    try:
        from ray._raylet import AuthenticationTokenLoader, Config

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()
    except Exception:
        pass


ENGINE = RayExecutor
