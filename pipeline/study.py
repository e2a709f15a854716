"""Stage 5, study: one study file (studies/<name>.toml) run as a sweep, then reported.

Reads: a TOML file with the study's grid (`[grid]`: max_freqs, seeds, first_seed and any
experiment parameter given as a list, which becomes a grid axis), its fixed parameters
(`[fixed]`), the report sections it wants (`sections`) and a one-line `question`; then
`--set key=value` overrides, which win over the file (`--set seeds=4 --set max_freqs=10,20`).
Writes: the sweep's runs (pipeline/sweep.py) under study <name> (`--set study=…` renames it),
and on the sweep run the file's path, its SHA-256 and the file itself (an artifact),
so a record can be rerun as it ran.

`--smoke` runs the real study cut to its first two max_freqs × 1 seed × SMOKE_STEPS updates
(every other axis kept), as study `<name>-smoke`: how a test runs every study file.

    python -m pipeline.study studies/shape.toml --set seeds=4
    mlflow run . -e study -P file=studies/shape.toml -P set="seeds=4" --env-manager local
    mlflow run . -e study -P file=studies/shape.toml -P smoke=true --env-manager local
"""

import argparse
import hashlib
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import names
from pipeline.config import PASSED_THROUGH, SweepConfig, as_text
from pipeline.names import UserError

STUDIES = Path(__file__).resolve().parent.parent / "studies"
SECTIONS = names.REPORT_SECTIONS
GRID_KNOBS = ("max_freqs", "seeds", "first_seed")  # besides any axis of PASSED_THROUGH
RUN_KNOBS = tuple(f for f in SweepConfig.__dataclass_fields__ if f not in GRID_KNOBS)
SMOKE_STEPS = 3  # updates per smoke run: the whole path runs, nothing is learned
TOP_LEVEL = ("question", "sections", "grid", "fixed")


class StudyFileError(UserError):
    """A study file that cannot be read or names what does not exist: one line, with its path."""

    def __init__(self, path: Path | str, problem: str):
        super().__init__(f"study file {str(path)!r}: {problem}")


@dataclass(frozen=True)
class StudyFile:
    """One study file, read and checked: its values as the sweep's strings."""

    path: Path
    name: str
    question: str
    sections: tuple[str, ...]
    values: dict[str, str]  # sweep and experiment parameters, as the CLI writes them
    sha256: str = field(repr=False)
    text: str = field(repr=False)

    @property
    def shown_path(self) -> str:
        """The path relative to the project when inside it (what a record names)."""
        try:
            return str(self.path.relative_to(STUDIES.parent))
        except ValueError:
            return str(self.path)


def find(name_or_path: str) -> Path:
    """`shape` or `studies/shape.toml` or any path to a .toml file."""
    path = Path(name_or_path)
    if path.suffix != ".toml" and not path.exists():
        path = STUDIES / f"{name_or_path}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in STUDIES.glob("*.toml")))
        raise StudyFileError(name_or_path, f"no such file; the project's studies: {known}")
    return path.resolve()


def _text(key: str, value: Any, path: Path) -> str:
    """One TOML value as the CLI writes it: a list joined by commas (a grid axis)."""
    if isinstance(value, list):
        if not value or any(isinstance(v, list | dict) for v in value):
            raise StudyFileError(path, f"{key} = {value!r}: expected a non-empty list of values")
        return ",".join(as_text(v) for v in value)
    if isinstance(value, dict):
        raise StudyFileError(path, f"{key} is a table: expected a value or a list of values")
    return as_text(value)


def read(name_or_path: str) -> StudyFile:
    path = find(name_or_path)
    raw_bytes = path.read_bytes()
    try:
        data = tomllib.loads(raw_bytes.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise StudyFileError(path, f"not valid TOML ({exc})") from None
    if unknown := sorted(set(data) - set(TOP_LEVEL)):
        raise StudyFileError(path, f"unknown key {unknown[0]!r}; expected {', '.join(TOP_LEVEL)}")
    grid, fixed = data.get("grid", {}), data.get("fixed", {})
    values: dict[str, str] = {}
    for key, value in grid.items():
        if key not in GRID_KNOBS + PASSED_THROUGH:
            raise StudyFileError(
                path, f"[grid] {key!r} is not a grid parameter; expected one of "
                f"{', '.join(GRID_KNOBS)} or an experiment parameter ({', '.join(PASSED_THROUGH)})"
            )  # fmt: skip
        if key in ("seeds", "first_seed") and isinstance(value, list):
            raise StudyFileError(path, f"[grid] {key} = {value!r}: expected one integer")
        if key in PASSED_THROUGH and not isinstance(value, list):
            problem = "an axis is a list; a single value goes in [fixed]"
            raise StudyFileError(path, f"[grid] {key} = {value!r}: {problem}")
        values[key] = _text(key, value, path)
    for key, value in fixed.items():
        if key not in PASSED_THROUGH:
            raise StudyFileError(
                path, f"[fixed] {key!r} is not an experiment parameter; expected one of "
                f"{', '.join(PASSED_THROUGH)}"
            )  # fmt: skip
        if key in grid:
            raise StudyFileError(path, f"{key!r} is in both [grid] and [fixed]")
        if isinstance(value, list):
            raise StudyFileError(path, f"[fixed] {key} = {value!r}: a list is an axis: [grid]")
        values[key] = _text(key, value, path)
    sections = data.get("sections", list(SECTIONS))
    if not isinstance(sections, list) or not set(sections) <= set(SECTIONS):
        raise StudyFileError(path, f"sections = {sections!r}: expected a list of {SECTIONS}")
    return StudyFile(
        path=path,
        name=path.stem,
        question=str(data.get("question", "")),
        sections=tuple(sections),
        values=values,
        sha256=hashlib.sha256(raw_bytes).hexdigest(),
        text=raw_bytes.decode(),
    )


def parse_overrides(items: list[str]) -> dict[str, str]:
    """`--set key=value` (repeated, or several separated by spaces in one) as a dict."""
    out = {}
    for item in (part for text in items for part in text.split()):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise UserError(f"set={item!r} is not allowed: expected key=value")
        if key not in GRID_KNOBS + RUN_KNOBS + PASSED_THROUGH:
            raise UserError(
                f"set={item!r} is not allowed: {key!r} is not a sweep or experiment parameter"
            )
        out[key] = value
    return out


def smoke(values: dict[str, str]) -> dict[str, str]:
    """The study cut to its first two max_freqs × 1 seed × SMOKE_STEPS updates, every other
    axis and fixed value kept (a progress check every update when the study checks)."""
    max_freqs = values.get("max_freqs", as_text(SweepConfig().max_freqs)).split(",")[:2]
    cut = {**values, "max_freqs": ",".join(max_freqs), "seeds": "1", "first_seed": "0"}
    cut["train_steps"] = str(SMOKE_STEPS)
    if values.get("check_every", "0") != "0":
        cut["check_every"] = "1"
    return cut


def sweep_argv(study: StudyFile, overrides: dict[str, str], smoke_mode: bool = False) -> list[str]:
    """The `python -m pipeline.sweep` arguments that run the study."""
    values = smoke(study.values) if smoke_mode else dict(study.values)
    values["study"] = study.name + ("-smoke" if smoke_mode else "")
    values.update(overrides)
    argv = [arg for key, value in values.items() for arg in (f"--{key}", value)]
    return [
        *argv,
        "--study_file", study.shown_path,
        "--study_file_sha256", study.sha256,
        "--report_sections", ",".join(study.sections),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    summary = (__doc__ or "").split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m pipeline.study", description=summary)
    parser.add_argument("file", help="a study file, or the name of one in studies/")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a value"
    )
    parser.add_argument(
        "--smoke", nargs="?", const="true", default="false", choices=("true", "false"),
        help="true: 2 max_freqs × 1 seed × a few updates",
    )  # fmt: skip
    parser.add_argument(
        "--name", action="store_true", help="print the study's name and exit (what to report on)"
    )
    args = parser.parse_args(argv)
    try:
        study = read(args.file)
        overrides = parse_overrides(args.set)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    argv = sweep_argv(study, overrides, args.smoke == "true")
    if args.name:
        print(argv[argv.index("--study") + 1])
        return
    from pipeline import sweep

    sweep.main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
