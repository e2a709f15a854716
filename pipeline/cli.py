"""Thin command-line edge shared by the stage entry points.

Flags are built from the config dataclasses, so `--help` shows each knob's default and meaning
and no default is written twice. Every value arrives as a string (as MLflow passes it) and is
parsed and validated by the configs. A user mistake prints one line, `error: …`, records a
FAILED run saying the same, and exits 2; Ctrl-C or SIGTERM exits 130 with the run KILLED.
"""

import argparse
import dataclasses
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline import tracking
from pipeline.config import UserError, as_text


def build_parser(
    prog: str,
    description: str,
    configs: Sequence[type],
    extra: Sequence[tuple[str, str]] = (),
    exclude: Sequence[str] = (),
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    seen = set(exclude)
    for config in configs:
        for f in dataclasses.fields(config):
            if f.name not in seen:
                seen.add(f.name)
                help_text = f"{f.metadata['help']}; {f.metadata['allowed']}"
                parser.add_argument(f"--{f.name}", default=as_text(f.default), help=help_text)
    for name, help_text in extra:
        parser.add_argument(f"--{name}", default="", help=help_text)
    return parser


def activate_backend(name: str) -> None:
    """Choose the Keras backend and import it now, before any run is open: the import takes
    seconds, and an interrupt that lands inside it can leave the process unable to exit."""
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != name:
            raise UserError(
                f"backend={name!r} is not allowed: Keras is already running on "
                f"{keras.backend.backend()!r} in this process"
            )
    os.environ["KERAS_BACKEND"] = name
    # TensorFlow's C++ log level after start-up: on a machine without a GPU its error-level
    # lines are version notices (NodeDef attributes) and CUDA probes, not errors of the run;
    # with a GPU, errors stay visible. A value the user set is kept.
    no_gpu = not Path("/dev/nvidia0").exists() and "CUDA_VISIBLE_DEVICES" not in os.environ
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3" if no_gpu else "2")
    if name == "jax":
        use_jax_compilation_cache()
    with native_noise_filtered():
        import keras

        if name == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices()  # CUDA's probe, and its complaint, happen here
        elif importlib.util.find_spec("tensorflow"):
            import tensorflow  # noqa: F401  Keras's data adapters load it on any backend


JAX_CACHE_MAX_BYTES = 512 * 2**20


def jax_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sine-lstm" / "jax"


def use_jax_compilation_cache() -> None:
    """jax compiles every run's training step afresh, about 3 s of each run; the runs of a
    study share their shapes, so jax's persistent compilation cache on disk turns most of
    those compiles into reads of the same executable (same results, bit for bit). Size-bounded
    (least recently used entries go), with a file lock for parallel workers. Set before jax is
    imported; a user's own JAX_COMPILATION_CACHE_* settings are kept."""
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(jax_cache_dir()))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.1")
    os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(JAX_CACHE_MAX_BYTES))


# TensorFlow's C++ start-up lines on a machine without a GPU: written to file descriptor 2
# before its log level applies, so TF_CPP_MIN_LOG_LEVEL cannot hide them.
NATIVE_NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IWE]\d{4} [\d:.]+ +\d+ (port|cudart_stub|cuda_platform|cuda_executor|cuda_diagnostics"
    r"|node_def_util)\.cc:\d+\]"
)


@contextmanager
def native_noise_filtered() -> Iterator[None]:
    """Capture what native code writes to stderr meanwhile, and pass on every line but the
    known start-up noise (NATIVE_NOISE): the oneDNN notice, "Could not find cuda drivers",
    "failed call to cuInit". On a GPU machine those lines do not appear and everything TF says
    about its devices is passed on."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode(errors="replace").splitlines(keepends=True):
                if not NATIVE_NOISE.match(line):
                    sys.stderr.write(line)
            sys.stderr.flush()


def run(
    step: str,
    doc: str | None,
    build: Callable[[dict[str, Any]], Any],
    execute: Callable[[Any, dict[str, Any]], Any],
    configs: Sequence[type],
    argv: Sequence[str] | None,
    extra: Sequence[tuple[str, str]] = (),
    exclude: Sequence[str] = (),
) -> None:
    """Parse argv, validate with `build(raw)`, then `execute(cfg, raw)`; never a bare traceback
    for a user mistake."""
    summary = (doc or "").split("\n\n")[0]
    parser = build_parser(f"python -m pipeline.{step}", summary, configs, extra, exclude)
    raw = vars(parser.parse_args(argv))
    tracking.install_signal_handlers()
    tracking.configure_client()
    tracking.default_experiment()
    try:
        tracking.check_store()  # seconds, not minutes, when the server is away
        try:
            cfg = build(raw)
        except UserError as exc:
            tracking.record_failure(step, raw, str(exc))
            raise
        execute(cfg, raw)
    except UserError as exc:
        fail(exc)
    except KeyboardInterrupt:
        tracking.stopping()
        print(f"{step}: interrupted; the run was marked KILLED", file=sys.stderr, flush=True)
        sys.stdout.flush()
        # The runs are closed; don't wait on backend worker threads that may never finish.
        os._exit(130)
    except Exception as exc:
        lost_store()
        fault = tracking.describe_fault(exc)  # a full disk, a locked or corrupt store
        if fault:
            fail(UserError(fault))
        raise


def fail(exc: UserError) -> None:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)


def lost_store() -> None:
    """After an unexpected error: if the tracking store went away mid-run, say that in one
    line (exit 2) rather than with the traceback of whichever write failed first."""
    if not tracking.is_shared_store(tracking.tracking_uri()):
        return
    try:
        tracking.check_store()
    except tracking.StoreError as exc:
        fail(
            tracking.StoreError(
                f"{exc} (lost during the run; a run left open is marked KILLED as stale by "
                "the next sweep of its study, or by python -m pipeline.reap)"
            )
        )
