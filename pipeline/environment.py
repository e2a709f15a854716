"""Is this Python the project's? `python -m pipeline.…` (or `mlflow run`, which starts whatever
`python` is first on PATH) with a Python that lacks the project's packages stops here with one
line that says how to fix it, instead of a ModuleNotFoundError deep in an import."""

import importlib.util
import sys

# Import names of the pinned requirements (requirements.txt) that every entry point needs.
REQUIRED = ("mlflow", "numpy", "pandas", "keras", "sklearn", "scipy", "matplotlib", "tqdm",
            "filelock", "statsmodels")  # fmt: skip


def missing() -> list[str]:
    return [name for name in REQUIRED if importlib.util.find_spec(name) is None]


def require() -> None:
    """Exit 2 with one line when a required package is not importable."""
    if absent := missing():
        print(
            f"error: this Python ({sys.executable}) lacks the project's packages (no module "
            f"{', '.join(repr(n) for n in absent)}): activate the project's environment first "
            "(source .venv/bin/activate, after make venv) or use the make targets (make run, "
            "make study)",
            file=sys.stderr,
        )
        sys.exit(2)
