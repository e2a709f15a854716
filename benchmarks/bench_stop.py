"""What stopping at a confirmed escape saves, and which verdicts it gets wrong.

The same slice of the budget study's design (max_freq × seeds, 6,000 updates, jax) is swept
twice into one throwaway store, to the full budget and with `stop_on_escape=true`, with the
same seeds and checks. Prints, per max_freq and in total, the optimizer updates and wall time
of each and their ratio, and whether every pair of runs got the same divergence verdict (the
issue's goal: the same verdicts at ≤ 40% of the updates).

    python benchmarks/bench_stop.py --max_freqs 20,30 --seeds 8

Runs already trained pair up without training anything: a full-budget study and a stopped one
on the same seeds, each from its own store (wall times are then each run's own, no sweep's):

    python benchmarks/bench_stop.py --full_store sqlite:///relapse.db --full_study relapse \
        --stopped_store sqlite:///shape.db --stopped_study shape

"same stop" checks the pairing itself: the stopped run ended at the update where the rule,
applied to its full twin's mae_ratio_train history, would have ended it (or neither stops).
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
sys.path.insert(0, str(ROOT))


def sweep(store: str, study: str, args: argparse.Namespace, stop: bool) -> float:
    """Run one sweep as a user would (python -m pipeline.sweep); its wall time in seconds."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "MLFLOW_EXPERIMENT_NAME": "bench-stop"}
    cmd = [
        sys.executable, "-m", "pipeline.sweep", "--max_freqs", args.max_freqs,
        "--seeds", str(args.seeds), "--train_steps", str(args.train_steps),
        "--backend", args.backend, "--study", study, "--workers", str(args.workers),
        "--stop_on_escape", str(stop).lower(),
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def load(store: str, study: str, experiment: str | None, stops: bool = False):
    """The FINISHED main runs of one study in one store; with `stops`, each run's stop point
    by the rule applied to its mae_ratio_train history (what the full runs are checked by)."""
    import mlflow

    from analysis import load as loading
    from analysis import store as stores
    from pipeline import progress

    mlflow.set_tracking_uri(store)
    runs = loading.load_runs(experiment, study)
    runs = runs[runs["status"] == "FINISHED"].assign(study=study)
    if not stops:
        return runs
    histories = stores.metric_series(list(runs["run_id"]), "mae_ratio_train")
    stop = []
    columns = (runs["run_id"], runs["divergence_ratio"], runs["optimizer_steps"])
    for run_id, ratio, ran in zip(*columns, strict=True):
        steps, values = histories.get(run_id, ((), ()))
        at = progress.first_confirmed(list(values), float(ratio))
        stop.append(float(steps[at]) if at is not None else float(ran))
    return runs.assign(rule_stop=stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max_freqs", default="20,30")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--train_steps", type=int, default=6000)
    parser.add_argument("--backend", default="jax")
    parser.add_argument("--workers", type=int, default=0, help="0: one per core")
    parser.add_argument("--store", default="", help="default: a throwaway SQLite store")
    for name in ("full", "stopped"):
        parser.add_argument(f"--{name}_store", default="", help=f"pair {name} runs from here")
        parser.add_argument(f"--{name}_study", default="", help=f"the {name} runs' study")
    args = parser.parse_args()
    given = [args.full_store, args.full_study, args.stopped_store, args.stopped_study]
    if any(given) and not all(given):
        parser.error("--full_store, --full_study, --stopped_store, --stopped_study go together")
    if all(given):
        full = load(args.full_store, args.full_study, None, stops=True)
        stopped = load(args.stopped_store, args.stopped_study, None)
        head = (
            f"# pairs of existing runs: full {args.full_study!r} ({args.full_store}), "
            f"stopped {args.stopped_study!r} ({args.stopped_store}); no sweep timed"
        )
    else:
        folder = tempfile.mkdtemp(prefix="bench-stop-")
        store = args.store or f"sqlite:///{folder}/mlflow.db"
        os.environ["MLFLOW_TRACKING_URI"] = store
        walls = {name: sweep(store, f"bench-{name}", args, name == "stopped")
                 for name in ("full", "stopped")}  # fmt: skip
        full = load(store, "bench-full", "bench-stop", stops=True)
        stopped = load(store, "bench-stopped", "bench-stop")
        head = (
            f"# {args.seeds} seeds × max_freq {args.max_freqs}, {args.train_steps} updates, "
            f"{args.backend}; sweeps: full {walls['full']:.0f} s, stopped "
            f"{walls['stopped']:.0f} s (ratio {walls['stopped'] / walls['full']:.2f})"
        )
    report(full, stopped, head)


def report(full, stopped, head: str) -> None:
    """One line per max_freq and one for all: the table benchmarks/README.md quotes."""
    import pandas as pd

    keys = ["max_freq", "seed"]
    cols = [*keys, "optimizer_steps", "duration_s", "diverged"]
    pairs = pd.merge(
        full[[*cols, "rule_stop"]], stopped[cols], on=keys, suffixes=("_full", "_stopped")
    )
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}")
    print(head)
    print(
        "max_freq | pairs | updates full / stopped (ratio) | median run s full / stopped "
        "(ratio) | same stop | same verdict | diverged full / stopped"
    )
    for max_freq, group in [*pairs.groupby("max_freq"), ("all", pairs)]:
        full_n, stop_n = group["optimizer_steps_full"], group["optimizer_steps_stopped"]
        secs = [statistics.median(group[f"duration_s_{n}"]) for n in ("full", "stopped")]
        verdicts = [group[f"diverged_{n}"].astype(bool) for n in ("full", "stopped")]
        same = int((verdicts[0] == verdicts[1]).sum())
        same_stop = int((group["rule_stop"] == group["optimizer_steps_stopped"]).sum())
        print(
            f"{max_freq} | {len(group)} | {full_n.sum():.0f} / {stop_n.sum():.0f} "
            f"({stop_n.sum() / full_n.sum():.2f}) | {secs[0]:.0f} / {secs[1]:.0f} "
            f"({secs[1] / secs[0]:.2f}) | {same_stop}/{len(group)} | {same}/{len(group)} | "
            f"{int(verdicts[0].sum())} / {int(verdicts[1].sum())}"
        )


if __name__ == "__main__":
    main()
