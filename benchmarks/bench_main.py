"""Wall time of the pipeline against a bare Keras script doing the same experiment.

Runs, interleaved and `--repeats` times each, with the same settings and backend:
  bare       python benchmarks/bare_keras.py            (data + fit + predict, nothing else)
  main       python -m pipeline.main                    (three tracked steps, artifacts, model)
  mlflow-run mlflow run . --env-manager local           (the same, plus MLflow's launcher)
against a temporary SQLite store created beforehand, and prints medians and ratios to bare.

    python benchmarks/bench_main.py --max_freq 10 --epochs 200 --repeats 3
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def commands(args: argparse.Namespace) -> dict[str, list[str]]:
    common = ["--max_freq", str(args.max_freq), "--epochs", str(args.epochs)]
    mlflow_params = ["-P", f"max_freq={args.max_freq}", "-P", f"epochs={args.epochs}"]
    return {
        "bare": [sys.executable, "benchmarks/bare_keras.py", *common],
        "main": [sys.executable, "-m", "pipeline.main", *common, "--backend", args.backend],
        "mlflow-run": [
            str(BIN / "mlflow"),
            "run",
            ".",
            "--env-manager",
            "local",
            *mlflow_params,
            "-P",
            f"backend={args.backend}",
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max_freq", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--backend", default="tensorflow", choices=["tensorflow", "jax"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--modes", default="bare,main,mlflow-run")
    args = parser.parse_args()
    modes = args.modes.split(",")

    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ)
        env.update(
            MLFLOW_TRACKING_URI=f"sqlite:///{tmp}/mlflow.db",
            KERAS_BACKEND=args.backend,
            TF_CPP_MIN_LOG_LEVEL="2",
            PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        )
        env.pop("MLFLOW_RUN_ID", None)
        # Create the store (schema migrations take seconds) outside the timings.
        subprocess.run(
            [sys.executable, "-c", "import mlflow; mlflow.search_experiments()"],
            env=env,
            cwd=tmp,
            check=True,
            capture_output=True,
        )
        # Artifacts of the default experiment go under the store's folder, not the repo.
        env["MLFLOW_EXPERIMENT_ID"] = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import mlflow; print(mlflow.create_experiment('bench', "
                f"artifact_location='{Path(tmp, 'artifacts').as_uri()}'))",
            ],
            env=env,
            cwd=tmp,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        times: dict[str, list[float]] = {m: [] for m in modes}
        cmds = commands(args)
        for rep in range(args.repeats):
            for mode in modes:
                start = time.perf_counter()
                subprocess.run(cmds[mode], env=env, cwd=ROOT, check=True, capture_output=True)
                times[mode].append(time.perf_counter() - start)
                print(f"  rep {rep + 1} {mode:<10} {times[mode][-1]:7.2f} s", flush=True)

    base = statistics.median(times["bare"]) if "bare" in times else None
    print(
        f"\nmax_freq={args.max_freq} epochs={args.epochs} backend={args.backend} "
        f"repeats={args.repeats} on {platform.machine()} with {os.cpu_count()} CPUs"
    )
    print(f"{'mode':<12}{'median s':>10}{'min s':>9}{'max s':>9}{'ratio to bare':>15}")
    for mode, ts in times.items():
        med = statistics.median(ts)
        ratio = f"{med / base:.3f}" if base else "-"
        print(f"{mode:<12}{med:>10.2f}{min(ts):>9.2f}{max(ts):>9.2f}{ratio:>15}")


if __name__ == "__main__":
    main()
