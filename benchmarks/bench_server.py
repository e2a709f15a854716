"""The team server against the local SQLite store: per-run logging cost, and the analysis of a
10,000-run study read through the server (goal: under 10 s).

Starts a throwaway TeamServer (PostgreSQL + authenticated `mlflow server`) on free loopback
ports, then:
- logging: the same tiny pipeline run (`run_pipeline`, 1 epoch) `--repeats` times against each
  store, interleaved, in one process; what differs between stores is only the tracking
  traffic, so wall − fit_seconds is the per-run cost of logging (and evaluation, the same on
  both);
- analysis: fills the server's database with a synthetic study (benchmarks/bench_analysis.py's
  generator, written straight into PostgreSQL), then times `load_runs` and the whole
  `python -m analysis` through the server's REST API, as a teammate would run them.

    python benchmarks/bench_server.py --runs 10000 --repeats 3
"""

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from bench_analysis import STUDY, build_store  # noqa: E402
from servers import RunningServer, free_ports, team_server  # noqa: E402

from services.server import ADMIN_USER, TeamServer  # noqa: E402


@contextmanager
def kept_server(root: Path) -> Iterator[RunningServer]:
    """A TeamServer whose state (PostgreSQL data, ports) stays in `root` between runs."""
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o711)  # PostgreSQL runs as its own user under root: it must traverse
    ports = root / "ports.json"
    if not ports.exists():
        ports.write_text(json.dumps(free_ports(2)))
    port, pg_port = json.loads(ports.read_text())
    server = TeamServer(root, host="127.0.0.1", port=port, pg_port=pg_port, workers=2)
    started = time.monotonic()
    with redirect_stdout(io.StringIO()) as output:
        server.start()
    try:
        yield RunningServer(
            server, server.uri, ADMIN_USER, server.admin_password_file.read_text().strip(),
            root, output.getvalue(), time.monotonic() - started,
        )  # fmt: skip
    finally:
        server.stop(quiet=True)


def _use(uri: str, experiment: str) -> None:
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment)


def bench_logging(server, repeats: int) -> None:
    from pipeline import keras_backend
    from pipeline.config import PipelineConfig
    from pipeline.main import run_pipeline

    keras_backend.activate("tensorflow")
    cfg = PipelineConfig.from_strings(
        {"max_freq": "10", "samples_per_freq": "3", "test_samples_per_freq": "3", "epochs": "1"}
    )
    sqlite_dir = Path(tempfile.mkdtemp(prefix="bench-sqlite-"))
    stores = {"sqlite": f"sqlite:///{sqlite_dir / 'mlflow.db'}", "server": server.uri}
    times: dict[str, list[float]] = {name: [] for name in stores}
    for uri in stores.values():  # warm-up: imports, experiment creation, the first data run
        _use(uri, "bench-logging")
        run_pipeline(cfg)
    for _ in range(repeats):
        for name, uri in stores.items():
            _use(uri, "bench-logging")
            start = time.perf_counter()
            _, metrics = run_pipeline(cfg)
            times[name].append(time.perf_counter() - start - metrics["fit_seconds"])
    print("\nper-run cost besides model.fit (one `main` run: 4 runs, data reused, model, plots)")
    print(f"{'store':<10}{'median s':>10}{'min s':>8}{'max s':>8}{'ratio':>8}")
    base = statistics.median(times["sqlite"])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:<10}{med:>10.2f}{min(ts):>8.2f}{max(ts):>8.2f}{med / base:>8.2f}")


def bench_analysis(server, runs: int, repeats: int) -> None:
    folder = server.root / "synthetic"
    if not (folder / "complete").exists():  # a kept --root is built once
        start = time.perf_counter()
        os.environ["PGPASSWORD"] = server.server.db_password_file.read_text().strip()
        _use(server.server.db_uri("mlflow"), "Default")
        folder.mkdir(exist_ok=True)
        build_store(runs, folder)
        (folder / "complete").touch()
        elapsed = time.perf_counter() - start
        print(f"\nbuilt {runs} runs straight into PostgreSQL in {elapsed:.0f} s")
    from analysis.load import load_runs

    _use(server.uri, STUDY)
    loads, totals = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        frame = load_runs(STUDY, STUDY)
        loads.append(time.perf_counter() - start)
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "analysis", "--experiment", STUDY, "--study", STUDY,
             "--out", str(server.root / "reports")],
            cwd=ROOT, check=True, capture_output=True, env=dict(os.environ),
        )  # fmt: skip
        totals.append(time.perf_counter() - start)
    print(f"\nanalysis through the server: {len(frame)} runs")
    print(f"{'step':<44}{'median s':>10}{'min s':>8}{'max s':>8}")
    for name, ts in (("load_runs (REST)", loads), ("python -m analysis (end to end)", totals)):
        print(f"{name:<44}{statistics.median(ts):>10.2f}{min(ts):>8.2f}{max(ts):>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--parts", default="logging,analysis")
    parser.add_argument(
        "--root",
        default="",
        help="keep the server's state here (built once, reused); empty = a throwaway server",
    )
    args = parser.parse_args()
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    server_cm = kept_server(Path(args.root)) if args.root else team_server(workers=2)
    with server_cm as server:
        os.environ.update(
            MLFLOW_TRACKING_URI=server.uri,
            MLFLOW_TRACKING_USERNAME=server.admin_user,
            MLFLOW_TRACKING_PASSWORD=server.admin_password,
            MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
        )
        os.environ.pop("MLFLOW_RUN_ID", None)
        print(f"server started in {server.start_s:.1f} s")
        if "logging" in args.parts:
            bench_logging(server, args.repeats)
        if "analysis" in args.parts:
            bench_analysis(server, args.runs, args.repeats)


if __name__ == "__main__":
    main()
