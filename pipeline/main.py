"""The whole experiment as one MLflow run: generate_data → train → evaluate.

Reads: a PipelineConfig (every parameter of the three stages). Writes: one parent `main` run
carrying all parameters, the loss curve, the headline metrics (the same names evaluate logs,
plus `fit_seconds`, `optimizer_steps`, `steps_per_epoch` and, for a run the stopping rule
ended, `stop_step`; `mae_ratio_train` as its history over optimizer updates, whose last point
is the run's figure) and the tags `diverged_reason`, `failure_mode` and `stopped_on_escape`,
with the steps as child runs. A FINISHED generate_data run with
identical data parameters (tag `data_key`) in the same experiment is reused, not regenerated.
The steps run in this one process, so TensorFlow is imported once, not three times.

    mlflow run . -P max_freq=20 --env-manager local
"""

import sys
from concurrent.futures import ThreadPoolExecutor

from pipeline import evaluate, generate_data, names, plots, tracking, train
from pipeline.config import DataConfig, EvalConfig, PipelineConfig, TrainConfig
from pipeline.names import UserError
from pipeline.references import reference_metrics


def data_for(cfg: DataConfig) -> tuple[str, dict[str, generate_data.Dataset], bool]:
    """(run id, datasets, reused?) for the data `cfg` describes, generating only if needed."""
    experiment_id = tracking.active_experiment_id()
    key = generate_data.data_key(cfg)
    reused = tracking.find_finished_run(
        experiment_id, {names.STEP_TAG: "generate_data", "data_key": key}
    )
    if reused:
        try:
            return reused, generate_data.load(tracking.download(f"runs:/{reused}/data")), True
        except UserError:  # its artifacts were deleted or damaged: make the data again
            pass
    run_id = generate_data.run_step(cfg)
    return run_id, generate_data.generate(cfg), False


def _references_and_imports(datasets: dict[str, generate_data.Dataset]) -> dict[str, float]:
    plots.pyplot()
    return reference_metrics(datasets)


def run_pipeline(
    cfg: PipelineConfig,
    parent_run_id: str | None = None,
    tags: dict[str, str] | None = None,
    run_name: str | None = None,
    claim: tuple[str, str, float] | None = None,
) -> tuple[str, dict]:
    """Run the three steps under one `main` run; returns its run id and headline metrics.
    `claim` (study, run_key, stale_after_s): the run is a sweep's claim on a pair, and raises
    tracking.PairTaken, leaving no run, if another attempt holds the pair."""
    with tracking.step_run("main", cfg.as_params(), parent_run_id, tags, run_name) as run:
        if claim is not None:
            tracking.claim_pair(run, *claim)
        generate_data.flag_aliasing(cfg.data)
        data_run_id, datasets, reused = data_for(cfg.data)
        tracking.set_tags({"data_run_id": data_run_id, "data_reused": str(reused).lower()})
        # The reference estimators need only the data: fit them (and import scikit-learn and
        # matplotlib) on a side thread while the LSTM trains, instead of after it.
        with ThreadPoolExecutor(1) as side:
            references = side.submit(_references_and_imports, datasets)
            train_run_id, trained = train.run_step(cfg.train, data_run_id, datasets)
            eval_run_id, result = evaluate.run_step(
                cfg.eval,
                train_run_id,
                trained.model,
                datasets,
                trained.loss,
                references=references.result(),
                known_predictions={"train": trained.train_prediction},
                history=trained.progress,
            )
        headline = {
            **result.metrics,
            "fit_seconds": trained.fit_seconds,
            "optimizer_steps": trained.steps,
            "steps_per_epoch": trained.steps_per_epoch,
            **({"stop_step": trained.steps} if trained.stopped_on_escape else {}),
        }
        tracking.log_series("loss", trained.loss)
        # mae_ratio_train as its history over updates: the last point is the headline figure.
        steps, ratios = zip(*trained.progress, strict=True)
        tracking.log_series("mae_ratio_train", (*ratios[:-1], headline["mae_ratio_train"]), steps)
        tracking.log_metrics({k: v for k, v in headline.items() if k != "mae_ratio_train"})
        tracking.set_tags(
            {
                "train_run_id": train_run_id,
                "eval_run_id": eval_run_id,
                "diverged_reason": result.diverged_reason,
                "stopped_on_escape": str(trained.stopped_on_escape).lower(),
                **({"failure_mode": result.failure_mode} if result.failure_mode else {}),
            }
        )
        return run.info.run_id, headline


def main(argv: list[str] | None = None) -> None:
    from pipeline import command, keras_backend, resources

    def execute(cfg: PipelineConfig, raw: dict[str, str]) -> None:
        keras_backend.activate(cfg.train.backend)
        run_id, m = run_pipeline(cfg, run_name=names.run_name(cfg.as_params()))
        verdict = "diverged" if m["diverged"] else "trained"
        if "stop_step" in m:
            verdict += f" (stopped at update {m['stop_step']:.0f}: off the plateau)"
        print(
            f"main run {run_id}: max_freq={cfg.data.max_freq} seed={cfg.data.seed} {verdict}; "
            f"mae_train={m['mae_train']:.3f} mae_test={m['mae_test']:.3f} "
            f"(constant baseline {m['baseline_mae_train']:.3f}), fit {m['fit_seconds']:.1f} s"
        )

    def build(raw: dict[str, str]) -> PipelineConfig:
        cfg = PipelineConfig.from_strings(raw)
        resources.check(cfg)  # what cannot fit is refused before any work
        return cfg

    command.run(
        "main",
        __doc__,
        build,
        execute,
        [DataConfig, TrainConfig, EvalConfig],
        argv,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
