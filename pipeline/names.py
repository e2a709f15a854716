"""The bottom floor: what every part of the project names the same way, and nothing of the
project itself (a contract in `make lint` keeps it so: docs/architecture.md).

- the errors a user's mistake raises (one line, exit 2);
- the tag names and values that the pipeline writes and the analysis, the reaper and the team
  read, and the divergence verdicts and failure modes;
- the execution engines (one module each in pipeline/executors/; a test keeps the two equal);
- the heartbeat clock: how a beat is written and read, and minutes as seconds.
"""

import time
from typing import Any

# --- errors ----------------------------------------------------------------------------------


class UserError(Exception):
    """A mistake in what the user asked for (not a bug): reported as one line, exit code 2."""


class ConfigError(UserError):
    """A parameter's value is not allowed: the message names the parameter, the value given
    and what is allowed."""

    def __init__(self, name: str, value: Any, allowed: str):
        super().__init__(f"{name}={value!r} is not allowed: expected {allowed}")
        self.name = name


# --- tags --------------------------------------------------------------------------------------

STEP_TAG = "step"  # generate_data, train, evaluate, main, sweep, analysis
ERROR_TAG = "error"  # the one-line reason of a FAILED (or reasoned KILLED) run
HEARTBEAT_TAG = "heartbeat"  # unix seconds of the run's process' last sign of life
STUDY_TAG = "study"
RUN_KEY_TAG = "run_key"  # hash of a pair's parameters and code: what resume matches on
GRID_AXES_TAG = "grid_axes"  # on each main run of a grid: the parameters the sweep varied
STOPPED_TAG = "stopped_on_escape"  # 'true' where the stopping rule ended training early

# Why a run diverged (tag diverged_reason) and how it failed (tag failure_mode).
NONFINITE, MAE_RATIO, NONE = "nonfinite_loss", "mae_ratio", "none"
DEAD, CONSTANT, PARTIAL = "dead_output", "constant", "partial"
FAILURE_MODES = (NONFINITE, DEAD, CONSTANT, PARTIAL)


# What a report can hold, by section (analysis/); a study file names the ones it wants.
REPORT_SECTIONS = ("trend", "escape", "factors", "backends")


def run_name(params: dict[str, Any], axes: tuple[str, ...] = ()) -> str:
    """A main run's name, `max_freq=20 seed=3` and each other varied parameter: what a chart's
    legend shows (child runs prefix their step)."""
    varied = "".join(f" {axis}={params[axis]}" for axis in axes)
    return f"max_freq={params['max_freq']} seed={params['seed']}{varied}"


# --- engines -----------------------------------------------------------------------------------

ENGINES = ("local", "ray")

# --- the heartbeat clock ---------------------------------------------------------------------

HEARTBEAT_EVERY_S = 30.0  # every open run refreshes its heartbeat tag this often
# A run is taken for dead only after four missed beats: a live run's last beat is at most one
# interval old, so no window shorter than this can be trusted.
MIN_STALE_AFTER_MIN = 4 * HEARTBEAT_EVERY_S / 60


def seconds(minutes: float) -> float:
    """A window given in minutes (stale_after_min), in the clock's unit."""
    return minutes * 60


def beat(now: float | None = None) -> str:
    """A heartbeat as written to the tag: whole unix seconds, now (or at `now`)."""
    return str(int(time.time() if now is None else now))


def last_beat(tag: str | None, start_time_ms: int) -> float:
    """Unix seconds of a run's last sign of life: its heartbeat tag, or for a run that never
    beat (made before heartbeats), its start, which MLflow keeps in milliseconds."""
    tag = tag or ""
    return float(tag) if tag.isdigit() else start_time_ms / 1000
