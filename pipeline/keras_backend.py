"""The Keras backend of this process: chosen and imported before any run is open, with jax's
compilation cache and TensorFlow's start-up noise dealt with. Keras runs one backend per
process, so a worker that runs jobs of one backend calls `activate` once.
"""

import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.names import UserError


def activate(name: str) -> None:
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
