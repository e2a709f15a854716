"""Shared fixtures: a throwaway tracking store per test and a way to call `mlflow run`."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# Tiny but real settings: the reference network on a handful of series for two epochs.
TINY = {"max_freq": "4", "samples_per_freq": "3", "test_samples_per_freq": "2", "epochs": "2"}


class Store:
    """A SQLite tracking store and artifact folder under a temporary directory."""

    def __init__(self, root: Path):
        import mlflow

        self.root = root
        self.started: list[subprocess.Popen] = []
        self.uri = f"sqlite:///{root / 'mlflow.db'}"
        self.experiment = "tests"
        mlflow.set_tracking_uri(self.uri)
        self.experiment_id = mlflow.create_experiment(
            self.experiment, artifact_location=(root / "artifacts").as_uri()
        )
        mlflow.set_experiment(self.experiment)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("MLFLOW_EXPERIMENT_NAME", None)
        # Importing TensorFlow in this process sets TF_CPP_MIN_LOG_LEVEL=1 here: children get
        # the pipeline's own default, as a user's commands do.
        env.pop("TF_CPP_MIN_LOG_LEVEL", None)
        env.update(
            MLFLOW_TRACKING_URI=self.uri,
            MLFLOW_EXPERIMENT_ID=self.experiment_id,
            PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        )
        return env

    def mlflow_run(self, entry: str = "main", **params: str) -> subprocess.CompletedProcess:
        cmd = [str(BIN / "mlflow"), "run", str(ROOT), "-e", entry, "--env-manager", "local"]
        for key, value in params.items():
            cmd += ["-P", f"{key}={value}"]
        return subprocess.run(
            cmd, env=self.env(), cwd=self.root, capture_output=True, text=True, timeout=600
        )

    def start(self, module: str, *args: str) -> subprocess.Popen:
        """`python -m module args…` against this store, in the background; whatever is still
        running when the test ends is killed with its process group."""
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            # A shell that started the suite in the background makes SIGINT ignored, and the
            # child would inherit that: give it the default (Ctrl-C ends the run).
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self.started.append(proc)
        return proc

    @staticmethod
    def finish(proc: subprocess.Popen, timeout_s: float) -> tuple[str, str]:
        """Its output once it exits (pipes drained meanwhile); past `timeout_s` it is killed
        and the test fails saying so."""
        try:
            return proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            _, err = proc.communicate()
            raise AssertionError(
                f"still running after {timeout_s} s; stderr:\n{err[-3000:]}"
            ) from None

    def wait_for(self, count: int, timeout_s: float = 180, **tags: str) -> None:
        """Until `count` runs with `tags` exist, then 2 s more (to be well inside fit())."""
        deadline = time.monotonic() + timeout_s
        while len(self.runs(**tags)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"fewer than {count} runs with {tags} after {timeout_s} s")
            time.sleep(0.5)
        time.sleep(2)

    def runs(self, **tags: str) -> list:
        from mlflow.tracking import MlflowClient

        query = " and ".join(f"tags.{k} = '{v}'" for k, v in tags.items())
        return MlflowClient().search_runs(
            [self.experiment_id], filter_string=query, order_by=["attributes.start_time ASC"]
        )


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # it and the workers it started
    except (ProcessLookupError, PermissionError):
        pass


@pytest.fixture(autouse=True)
def clean_mlflow(monkeypatch):
    """Every test starts from a clean MLflow state: no store, experiment or run of another
    test, in the environment or in this process."""
    import mlflow

    for name in ("MLFLOW_RUN_ID", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID",
                 "MLFLOW_EXPERIMENT_NAME"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    yield
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(None)  # back to "unset": the next test sees no leftover store
    from pipeline.tracking import signals

    signals.reset()  # an in-process interrupt must not silence later SIGTERMs
    mlflow.tracking.fluent._active_experiment_id = None


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    s = Store(tmp_path)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", s.experiment_id)
    yield s
    for proc in s.started:
        if proc.poll() is None:
            _kill_group(proc)
            proc.communicate()
