"""The report's family of tests and Holm's adjustment over it: which p-values the report
prints (every verdict that carries one), adjusted together. A decision of the analysis, not a
sentence: analysis/wording.py writes the words (`tests_text`, `caveat`) from it.
"""

import math
from dataclasses import dataclass, field

from statsmodels.stats.multitest import multipletests

from analysis import backends, escape, factors, trends
from analysis.settings import label

ALPHA = 0.05


@dataclass
class Family:
    """The report's tests: key → raw two-sided p; Holm-adjusted together."""

    raw: dict[tuple, float] = field(default_factory=dict)
    adjusted: dict[tuple, float] = field(default_factory=dict)

    def add(self, key: tuple, p: float) -> None:
        if p is not None and not math.isnan(p):
            self.raw[key] = float(p)

    def adjust(self) -> "Family":
        if self.raw:
            keys = list(self.raw)
            holm = multipletests([self.raw[k] for k in keys], method="holm")[1]
            self.adjusted = dict(zip(keys, map(float, holm), strict=True))
        return self

    def holm(self, key: tuple) -> float:
        return self.adjusted.get(key, math.nan)

    def number(self, key: tuple) -> int:
        """The test's number in the report's table of tests (1-based, in the order added)."""
        return list(self.raw).index(key) + 1


WHAT = {
    "divergence": "{o}: one trend per +10 max_freq (odds ratio)",
    "divergence_shape": "{o}: one trend, against a level per max_freq",
    "rise_fall": "{o}: a rise then a fall (one-sided)",
    "divergence_step": "{o}: the step to max_freq {0}",
    "error": "error of the learned runs: a power of max_freq",
    "escape_shape": "leaving the plateau: one rate against a level per max_freq",
    "escape_trend": "leaving the plateau: one rate per +10 max_freq",
    "escape_step": "leaving the plateau: the step to max_freq {0}",
    "budget": "on the plateau at the common budget: trend per +10 max_freq",
    "reference_trend": "not learned at 200 epochs: trend over max_freq 10–30",
    "reference_shape": "not learned at 200 epochs: one trend against a level per max_freq",
    "reference_rise_fall": "not learned at 200 epochs: a rise then a fall",
    "additivity": "{name}: the factors add up (no interaction)",
    "factor_or": "factor {name}: odds of diverging",
    "factor_median": "factor {name}: median mae_ratio_test",
    "backend_mwu": "backends: error (Mann–Whitney)",
    "backend_fisher": "backends: divergence (Fisher)",
}
BY_NAME = ("additivity", "factor_or", "factor_median")


def what(key: tuple, outcome: str = "divergence") -> tuple[str, str]:
    """A test's key in words: (what it tests, the setting it is about, '' for all runs)."""
    kind, name, *rest = key
    text = WHAT.get(kind, kind).format(*rest, o=outcome, name=name)
    setting = "" if kind in BY_NAME or name == "all runs" else str(name)
    if kind.startswith("backend_"):  # 'max_freq_10' or 'dropout_0.1_max_freq_10'
        setting = str(name).replace("max_freq_", "max_freq ")
    return text, setting


def family_of(
    fits: list[trends.Trends],
    effects: factors.FactorEffects | None,
    comparison: backends.BackendComparison | None,
    escapes: list[escape.Escape],
) -> Family:
    f = Family()
    for t in fits:
        name = label(t.setting)
        if t.shape is None or not t.shape.p < ALPHA:
            f.add(("divergence", name), t.divergence.p)
        if t.shape is not None:
            f.add(("divergence_shape", name), t.shape.p)
            f.add(("rise_fall", name), t.shape.rise_fall_p)
            for row in t.shape.steps.itertuples(index=False):
                f.add(("divergence_step", name, row.max_freq), row.p)
        f.add(("error", name), t.error.p)
    for e in escapes:
        name = label(e.setting)
        f.add(("escape_shape", name), e.model.shape_p)
        if e.model.one_rate:
            f.add(("escape_trend", name), e.model.or10_p)
        for row in e.model.steps.itertuples(index=False):
            f.add(("escape_step", name, row.max_freq), row.p)
        f.add(("budget", name), e.at_budget.p)
        if (r := e.reference) is not None:
            f.add(("reference_trend", name), r.trend.p)
            if r.shape is not None:
                f.add(("reference_shape", name), r.shape.p)
                f.add(("reference_rise_fall", name), r.shape.rise_fall_p)
    if effects is not None:
        for name, test in effects.additivity.items():
            f.add(("additivity", name), test.p)
        for row in effects.table.itertuples(index=False):
            if not effects.cells_instead("divergence"):
                f.add(("factor_or", row.key), row.or_p)
            if not effects.cells_instead("mae_ratio"):
                f.add(("factor_median", row.key), row.median_p)
    if comparison is not None:
        params = backends.setting_columns(comparison.table)
        for _, row in comparison.table.iterrows():
            where = backends.where(row, params)
            f.add(("backend_mwu", where), row["mwu_p"])
            f.add(("backend_fisher", where), row["divergence_p"])
    return f.adjust()
