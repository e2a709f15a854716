"""The MLflow edge: every tracking call of the pipeline and the analysis goes through here,
and this facade names everything the rest of the code uses. One module per responsibility:

- store.py: which store, whether it answers, whether it is ours to write (`check_store`);
- lifecycle.py: a run's life (`step_run`), never left RUNNING while its process lives, its
  artifacts logged only if it succeeds;
- liveness.py: heartbeats, reaping runs whose process died, one live attempt per pair;
- records.py: logging metrics, series, tags, artifacts and models; experiments; queries;
- faults.py: a machine's faults (full disk, locked store) in one line;
- signals.py: SIGTERM ends runs KILLED, like Ctrl-C;
- views.py: what the UI shows: the experiment's description, a saved view per study.

Tag names and the heartbeat clock are the bottom floor's (pipeline/names.py), not this one's.
"""

from pipeline.tracking.faults import StoreError, describe_fault, one_line, redacted
from pipeline.tracking.lifecycle import (
    claim_pair,
    code_version,
    environment_tags,
    record_failure,
    step_run,
)
from pipeline.tracking.liveness import (
    MIN_STALE_AFTER_S,
    PairTaken,
    end_previous_attempts,
    end_run_as,
    heartbeat,
    last_sign_of_life,
    live_claims,
    reap_stale,
)
from pipeline.tracking.records import (
    DEFAULT_EXPERIMENT,
    EXPERIMENT_KIND,
    SeriesLogger,
    active_experiment_id,
    active_run_id,
    artifact_location,
    artifact_uri,
    default_experiment,
    download,
    experiment_ids,
    find_finished_run,
    get_run,
    load_keras_model,
    log_files,
    log_keras_model,
    log_metrics,
    log_params,
    log_series,
    metric_history,
    name_run,
    parallel,
    runs_with_tags,
    search_frame,
    set_tags,
    staged_artifacts,
    use_experiment,
)
from pipeline.tracking.signals import install_signal_handlers, is_stopping, stopping
from pipeline.tracking.store import (
    check_store,
    configure_client,
    is_shared_store,
    local_folder,
    patient,
    scheme,
    set_tracking_uri,
    sqlite_file,
    tracking_uri,
)
from pipeline.tracking.views import save_study_view, ui_link

__all__ = [
    "DEFAULT_EXPERIMENT", "EXPERIMENT_KIND", "MIN_STALE_AFTER_S", "PairTaken", "SeriesLogger",
    "StoreError", "active_experiment_id", "active_run_id", "artifact_location", "artifact_uri",
    "check_store", "claim_pair", "code_version", "configure_client", "default_experiment",
    "describe_fault", "download", "end_previous_attempts", "end_run_as", "environment_tags",
    "experiment_ids", "find_finished_run", "get_run", "heartbeat", "install_signal_handlers",
    "is_shared_store", "is_stopping", "last_sign_of_life", "live_claims", "load_keras_model",
    "local_folder", "log_files", "log_keras_model", "log_metrics", "log_params", "log_series",
    "metric_history", "name_run", "one_line", "parallel", "patient", "reap_stale",
    "record_failure", "redacted", "runs_with_tags", "save_study_view", "scheme", "search_frame",
    "set_tags", "set_tracking_uri", "sqlite_file", "staged_artifacts", "step_run", "stopping",
    "tracking_uri", "ui_link", "use_experiment",
]  # fmt: skip
