"""The training budget in optimizer updates, and the plateau: whether and when a run leaves it.

Budget. An epoch is ceil(n_train / batch_size) updates, so with a fixed number of epochs the
number of updates grows with max_freq and samples_per_freq. `train_steps` > 0 fixes the
number of updates instead (the last epoch is then usually partial).

The plateau. A network that has not learned predicts about the same value for every series;
the best such constant, the median training frequency, scores mae_ratio_train = 1. A run is
**on the plateau** at a moment of training when its mae_ratio_train, measured by a forward
pass over the whole training set in inference mode (so dropout plays no part), is at or above
divergence_ratio, or is not finite. This is the end-of-run divergence rule (evaluate.py)
applied during training: a run diverged exactly when it is on the plateau after its last
update. Training is checked at update 0, at about CHECKPOINTS evenly spaced updates, and after
the last one (whose value is the run's own mae_ratio_train). A run **left the plateau for
good** at the first checkpoint after which every checkpoint, the last included, is off it;
that update is its `escape_step`. A run that ends on the plateau never escaped. Between two
checkpoints nothing is seen: the escape is known to the checkpoint spacing.

Pure functions of numbers; no Keras and no tracking store here. The divergence verdict at
the end of a run (`divergence_reason`) is the same rule, so it lives here too.
"""

import math
from collections.abc import Sequence

import numpy as np

from pipeline.names import MAE_RATIO, NONE, NONFINITE

CHECKPOINTS = 40  # checks between update 0 and the last update (exclusive of both)
CONFIRM = 2  # checks in a row off the plateau that decide a run escaped (stop_on_escape)


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Optimizer updates in one full pass over `n_train` series: ceil(n / batch)."""
    return max(1, math.ceil(n_train / batch_size))


def budget(epochs: int, train_steps: int, n_train: int, batch_size: int) -> tuple[int, int]:
    """(epochs to start, updates to make): `epochs` full epochs when train_steps is 0, else
    exactly `train_steps` updates (the last epoch cut short)."""
    per_epoch = steps_per_epoch(n_train, batch_size)
    if train_steps == 0:
        return epochs, epochs * per_epoch
    return math.ceil(train_steps / per_epoch), train_steps


def checkpoints(total: int, points: int | None = None, every: int = 0) -> list[int]:
    """Updates strictly between 0 and `total` at which training is checked: every `every`
    updates when it is > 0, else `points` (default CHECKPOINTS) evenly spaced ones, or every
    update when there are fewer. A fixed `every` puts the checks of runs with different
    budgets on one grid (a run of 24,000 updates is checked where one of 6,000 is)."""
    if every <= 0:
        points = CHECKPOINTS if points is None else points
        every = max(1, math.ceil(total / (points + 1)))
    return list(range(every, total, every))


def baseline_mae(freq: np.ndarray, centre: float | None = None) -> float:
    """MAE of always answering `centre`, by default the median of `freq`: the best constant
    under absolute error."""
    freq = np.asarray(freq, dtype=np.float64)
    centre = float(np.median(freq)) if centre is None else centre
    return float(np.mean(np.abs(freq - centre)))


def mae(true: np.ndarray, pred: np.ndarray) -> float:
    """Mean absolute error; NaN when any prediction is not finite."""
    pred = np.asarray(pred, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(pred)):
        return math.nan
    return float(np.mean(np.abs(pred - np.asarray(true, dtype=np.float64))))


def on_plateau(ratio: float, threshold: float) -> bool:
    """The one rule: mae_ratio at or above the threshold, or not finite."""
    return not math.isfinite(ratio) or ratio >= threshold


def divergence_reason(loss: Sequence[float], mae_ratio_train: float, threshold: float) -> str:
    """The end-of-run verdict (pipeline/names.py names it): a non-finite loss or ratio, else
    on the plateau after the last update, else none."""
    if not np.all(np.isfinite(loss)) or not math.isfinite(mae_ratio_train):
        return NONFINITE
    return MAE_RATIO if on_plateau(mae_ratio_train, threshold) else NONE


def confirmed_escape(ratios: Sequence[float], threshold: float, confirm: int = CONFIRM) -> bool:
    """The stopping rule: the last `confirm` checks (of a run's checks so far, in order) are
    all off the plateau."""
    recent = list(ratios)[-confirm:]
    return len(recent) == confirm and not any(on_plateau(float(r), threshold) for r in recent)


def first_confirmed(
    ratios: Sequence[float], threshold: float, confirm: int = CONFIRM
) -> int | None:
    """Where the stopping rule would end training on this history: the index of the first
    check at which `confirmed_escape` holds, or None."""
    for i in range(len(ratios)):
        if i + 1 >= confirm and confirmed_escape(ratios[: i + 1], threshold, confirm):
            return i
    return None


def escape_step(steps: Sequence[int], ratios: Sequence[float], threshold: float) -> int | None:
    """The first checkpoint from which the run stays off the plateau to the end (the last
    point is the end of training); None when the last point is on the plateau."""
    if len(steps) != len(ratios):
        raise ValueError(f"{len(steps)} steps but {len(ratios)} values")
    escaped = None
    for step, ratio in zip(steps, ratios, strict=True):
        if on_plateau(float(ratio), threshold):
            escaped = None
        elif escaped is None:
            escaped = int(step)
    return escaped
