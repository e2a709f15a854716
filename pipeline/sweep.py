"""Stage 4, sweep: every (max_freq, seed) pair as a full `main` run, on local processes or Ray.

Reads: a SweepConfig (max_freqs, seeds, first_seed, workers, study, executor, ray_address,
stale_after_min) and every other experiment parameter, passed through unchanged. Writes: one
`sweep` run (tag `study`) whose children are `main` runs named `max_freq=… seed=…`, each
tagged `study` and `run_key` (a hash of its parameters and the pipeline's code).

Three parts, each unaware of the others' insides: `plan` (typed jobs, validated once), an
executor (pipeline/executors/: runs jobs, yields results as they finish) and `Bookkeeper`
(progress, counts). Running the same sweep again first marks RUNNING runs of the study whose
heartbeat is older than stale_after_min as KILLED (their process died), then skips pairs that
already have a FINISHED run with the same `run_key` and runs the rest. Ctrl-C or SIGTERM ends
every open run as KILLED.

    mlflow run . -e sweep -P max_freqs=10,20,30 -P seeds=5 --env-manager local
"""

import hashlib
import itertools
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from pipeline import keys, names, resources, tracking
from pipeline.config import (
    PASSED_THROUGH,
    DataConfig,
    EvalConfig,
    PipelineConfig,
    SweepConfig,
    TrainConfig,
)
from pipeline.executors import open_executor
from pipeline.jobs import FINISHED, SKIPPED, Context, Job, Result
from pipeline.names import ConfigError, UserError

# Set by pipeline.study when the sweep runs a study file; logged on the sweep run.
STUDY_FILE_FLAGS = (
    ("study_file", "the study file the values came from (pipeline.study sets it)"),
    ("study_file_sha256", "its SHA-256"),
    ("report_sections", "the report sections it names, comma-separated"),
)
STUDY_FILE_KEYS = tuple(name for name, _ in STUDY_FILE_FLAGS)
PROJECT = Path(__file__).resolve().parent.parent


CONFIGS = (SweepConfig, DataConfig, TrainConfig, EvalConfig)


def parse_args(argv: list[str]) -> dict[str, Any]:
    """The sweep's command line as `main` reads it: every value a string, defaults filled."""
    from pipeline import command

    parser = command.build_parser("", "", CONFIGS, STUDY_FILE_FLAGS, ("max_freq", "seed"))
    return vars(parser.parse_args(argv))


def check_study_file(raw: dict[str, Any]) -> None:
    """The study-file flags pipeline.study sets: an existing file, its SHA-256 as it is now,
    and known report sections (each empty when the sweep runs without a file)."""
    path, digest = raw.get("study_file") or "", raw.get("study_file_sha256") or ""
    if path:
        file = PROJECT / path
        try:
            found = file.is_file()
        except OSError:  # a name too long for the file system, say
            found = False
        if not found:
            raise ConfigError("study_file", path, "an existing study file (studies/<name>.toml)")
        actual = hashlib.sha256(file.read_bytes()).hexdigest()
        if digest != actual:
            raise ConfigError(
                "study_file_sha256", digest, f"the file's SHA-256 as it is now ({actual})"
            )
    elif digest:
        raise ConfigError("study_file_sha256", digest, "empty without a study_file")
    sections = [s for s in (raw.get("report_sections") or "").split(",") if s]
    if not set(sections) <= set(names.REPORT_SECTIONS):
        raise ConfigError(
            "report_sections", raw["report_sections"],
            f"empty, or some of {', '.join(names.REPORT_SECTIONS)} separated by commas",
        )  # fmt: skip


def run_key(params: dict[str, Any]) -> str:
    """What resume and the one-attempt-per-pair rule match on: parameters and the code."""
    return keys.params_key(params, keys.code_version())


def grid_axes(raw: dict[str, Any]) -> dict[str, list[str]]:
    """The experiment parameters given as comma-separated lists (`-P samples_per_freq=1,10`):
    each is an axis of the grid, crossed with max_freqs and seeds."""
    axes = {}
    for name in PASSED_THROUGH:
        text = raw.get(name)
        if not isinstance(text, str) or "," not in text:
            continue
        values = [v.strip() for v in text.split(",")]
        typed = [PipelineConfig.parse(name, v) for v in values if v]
        if len(typed) != len(values) or len(set(typed)) != len(typed):
            raise ConfigError(name, text, "one value, or distinct values separated by commas")
        axes[name] = values
    return axes


def first_setting(raw: dict[str, Any]) -> dict[str, Any]:
    """`raw` with every grid axis at its first value: the sweep's shared parameters."""
    return {**raw, **{name: values[0] for name, values in grid_axes(raw).items()}}


def study_name(sweep: SweepConfig, raw: dict[str, Any]) -> str:
    """The given study name, or one that says the grid: max_freqs, seeds, the budget (epochs,
    or train_steps updates), every other axis with its values, and a digest of the remaining
    parameters."""
    if sweep.study:
        return sweep.study
    axes = grid_axes(raw)
    base = PipelineConfig.from_strings(first_setting(raw))
    shared = {k: v for k, v in base.as_params().items() if k not in ("max_freq", "seed")}
    shared.update(axes)
    digest = keys.digest(shared, 6)
    varied = "".join(f"_{name}{'-'.join(values)}" for name, values in axes.items())
    budget = f"_e{base.train.epochs}"
    if "train_steps" in axes:
        budget = ""  # the axis says it
    elif base.train.train_steps:
        budget = f"_t{base.train.train_steps}"
    seeds = f"{sweep.seeds}" if not sweep.first_seed else f"{sweep.first_seed}-{sweep.seeds}"
    name = f"mf{sweep.max_freqs.replace(',', '-')}_s{seeds}{budget}{varied}"
    return f"{name}_{digest}".replace(".", "p")


def grid_size(sweep: SweepConfig, raw: dict[str, Any]) -> tuple[int, str]:
    """How many runs the grid holds, and its factors in words ('3 max_freqs × 5 seeds')."""
    factors = [(len(sweep.max_freq_values), "max_freqs"), (sweep.seeds, "seeds")]
    factors += [(len(values), name) for name, values in grid_axes(raw).items()]
    size = math.prod(n for n, _ in factors)
    return size, " × ".join(f"{n:,} {what}" for n, what in factors)


def refuse_a_huge_grid(sweep: SweepConfig, raw: dict[str, Any]) -> None:
    """Before a single pair is validated: a grid above max_runs is refused with its size and
    what it would take (at the reference run's one minute or so on 2 cores, README)."""
    size, factors = grid_size(sweep, raw)
    if sweep.max_runs and size > sweep.max_runs:
        minutes = size / max(1, sweep.workers or os.cpu_count() or 1)
        took = f"{minutes / 60:,.0f} hours" if minutes < 60 * 24 * 365 else (
            f"{minutes / (60 * 24 * 365):,.0f} years")  # fmt: skip
        raise ConfigError(
            "max_runs", sweep.max_runs,
            f"at least the grid's {size:,} runs ({factors}) to run it: at about a minute a run "
            f"that is some {took} on this machine; lower max_freqs or seeds, or pass "
            f"max_runs={size} if it is meant",
        )  # fmt: skip


def plan(sweep: SweepConfig, raw: dict[str, Any]) -> list[Job]:
    """Every job of the grid (max_freqs × seeds × every axis of `grid_axes`), validated before
    anything runs. Grouped by backend (a worker process runs one), then longest (largest
    max_freq) first, so that parallel workers finish together."""
    axes = grid_axes(raw)
    jobs = []
    for values in itertools.product(*axes.values()):
        setting = dict(zip(axes, values, strict=True))
        for max_freq in sweep.max_freq_values:
            for seed in sweep.seed_values:
                cfg = PipelineConfig.from_strings(
                    {**raw, **setting, "max_freq": max_freq, "seed": seed}
                )
                params = cfg.as_params()
                jobs.append(Job(params, run_key(params), tuple(axes)))
    return sorted(jobs, key=lambda j: (j.params["backend"], -j.params["max_freq"]))


@dataclass
class Bookkeeper:
    """Counts, the progress bar and one line per finished job."""

    total: int
    skipped: int
    counts: dict[str, int] = field(default_factory=dict)
    taken: int = 0  # pairs another sweep claimed first

    def __post_init__(self) -> None:
        self.counts = {
            "runs_total": self.total,
            "runs_skipped": self.skipped,
            "runs_finished": 0,
            "runs_failed": 0,
            "runs_diverged": 0,
        }
        todo = self.total - self.skipped
        self.bar = tqdm(total=todo, unit="run", desc="sweep", file=sys.stderr, smoothing=0)

    def book(self, job: Job, result: Result) -> None:
        if result.status == FINISHED:
            self.counts["runs_finished"] += 1
            self.counts["runs_diverged"] += int(result.metrics["diverged"])
            line = (
                f"{job.name:<22} mae_test={result.metrics['mae_test']:8.3f}  "
                f"diverged={int(result.metrics['diverged'])}  {result.seconds:6.1f} s"
            )
        elif result.status == SKIPPED:  # another sweep claimed it first
            self.counts["runs_skipped"] += 1
            self.taken += 1
            line = f"{job.name:<22} skipped: {result.error}"
        else:
            self.counts["runs_failed"] += 1
            line = f"{job.name:<22} {result.status}  {result.error}"
        self.bar.write(line)
        self.bar.update()

    def close(self) -> None:
        self.bar.close()


SHARED_STORES = (
    "a tracking server (http://, https://) or a PostgreSQL server (postgresql://) that every "
    "machine reaches"
)


def cluster_refusal(others: list[str], tracking_uri: str, artifact_location: str | None) -> str:
    """Why runs on `others` (machines besides this one) cannot write to this store and these
    artifacts ('' when they can): whatever engine runs them."""
    if not others:
        return ""
    where = f"the executor runs jobs on {len(others)} other machine(s) ({', '.join(others)})"
    if not tracking.is_shared_store(tracking_uri):
        shown = tracking_uri.partition("?")[0]  # without the sweep's ?timeout=…
        return f"tracking_uri={shown!r} is not allowed: {where}; expected {SHARED_STORES}"
    if artifact_location is not None and tracking.local_folder(artifact_location) is not None:
        return (
            f"artifact_location={artifact_location!r} is not allowed: {where}; expected a "
            "location every machine reaches (mlflow-artifacts:/ through the tracking server, "
            "s3://, gs://, …): create the experiment with one"
        )
    return ""


def run_sweep(sweep: SweepConfig, raw: dict[str, Any]) -> dict[str, int]:
    tracking.set_tracking_uri(tracking.patient(tracking.tracking_uri()))
    base = PipelineConfig.from_strings(first_setting(raw))
    axes = grid_axes(raw)
    jobs = plan(sweep, raw)
    study = study_name(sweep, raw)
    workers = sweep.workers or os.cpu_count() or 1
    params = {
        **sweep.as_params(),
        "study": study,
        "workers": workers,
        **{k: v for k, v in base.as_params().items() if k not in ("max_freq", "seed")},
        **{name: ",".join(values) for name, values in axes.items()},
        "grid_axes": ",".join(["max_freq", "seed", *axes]),
        **{k: raw[k] for k in STUDY_FILE_KEYS if raw.get(k)},
    }
    stale_after_s = names.seconds(sweep.stale_after_min)
    with tracking.step_run(
        "sweep", params, tags={"study": study}, run_name=f"sweep {study}"
    ) as run:
        if raw.get("study_file"):  # the file itself, so the study can be rerun as it ran
            tracking.log_files([PROJECT / raw["study_file"]])  # absolute stays absolute
        ctx = Context(
            tracking.tracking_uri(),
            run.info.experiment_id,
            run.info.run_id,
            study,
            base.train.backend,
            stale_after_s,
        )
        tracking.save_study_view(ctx.experiment_id, study, list(axes))  # what `make ui` opens
        reaped = tracking.reap_stale([ctx.experiment_id], study, stale_after_s)
        done = {
            r.data.tags.get("run_key")
            for r in tracking.runs_with_tags(
                [ctx.experiment_id], {"study": study, "step": "main"}, ("FINISHED",)
            )
        }
        elsewhere = tracking.live_claims(ctx.experiment_id, study, stale_after_s, run.info.run_id)
        todo = [j for j in jobs if j.run_key not in done | elsewhere]
        held = sum(j.run_key in elsewhere and j.run_key not in done for j in jobs)
        books = Bookkeeper(len(jobs), len(jobs) - len(todo))

        def announce(where: str) -> None:
            print(
                f"study {study!r}: {len(jobs)} runs, {len(jobs) - len(todo) - held} already "
                f"finished, "
                + (f"{held} running in another sweep, " if held else "")
                + f"{len(todo)} to run{where}"
                + (f"; {len(reaped)} stale RUNNING runs marked KILLED" if reaped else ""),
                flush=True,
            )

        try:
            if not todo:  # a finished study starts no workers (nor a Ray instance)
                announce("")
            else:
                with open_executor(sweep.executor, ctx, workers, sweep.ray_address) as engine:
                    others = engine.other_machines()
                    location = tracking.artifact_location(ctx.experiment_id) if others else None
                    why = cluster_refusal(others, ctx.tracking_uri, location)
                    if why:
                        raise UserError(why)
                    announce(f" on {engine.describe()}")
                    for job, result in engine.run(todo):
                        books.book(job, result)
        finally:
            books.close()
        tracking.log_metrics(books.counts)
        c = books.counts
        print(
            f"study {study!r}: {c['runs_finished']} finished, {c['runs_failed']} failed, "
            f"{c['runs_diverged']} diverged"
            + (f", {books.taken} left to another sweep" if books.taken else "")
            + f"; report: python -m analysis --study {study}",
            flush=True,
        )
        return c


def main(argv: list[str] | None = None) -> None:
    from pipeline import command

    def build(raw: dict[str, Any]) -> tuple[SweepConfig, dict[str, Any]]:
        check_study_file(raw)
        sweep = SweepConfig.from_strings(raw)
        refuse_a_huge_grid(sweep, raw)  # in seconds, before validating every pair
        jobs = plan(sweep, raw)  # validates every experiment parameter before any run starts
        # Every pair must fit, as many at once as there are workers.
        at_once = min(sweep.workers or os.cpu_count() or 1, len(jobs))
        configs = [PipelineConfig.from_strings(job.params) for job in jobs]
        resources.check(resources.largest(configs), copies=at_once)
        return sweep, raw

    def execute(cfg: tuple[SweepConfig, dict[str, Any]], raw: dict[str, Any]) -> None:
        run_sweep(*cfg)

    command.run(
        "sweep",
        __doc__,
        build,
        execute,
        CONFIGS,
        argv,
        extra=STUDY_FILE_FLAGS,
        exclude=("max_freq", "seed"),
    )


if __name__ == "__main__":
    main(sys.argv[1:])
