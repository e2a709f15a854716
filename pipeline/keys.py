"""Keys that say two things are the same: a hash of source files (the code that made a
result) and a hash of parameters with that code. `data_key` (a generate_data run) and
`run_key` (a sweep's pair) are both `params_key`; data runs are reused, and pairs skipped,
only when the key matches, so new code never reuses what old code made."""

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parent


def source_digest(files: Iterable[Path], root: Path = PACKAGE) -> str:
    """12 hex digits of the files' paths (relative to `root`) and contents, in path order."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


@functools.cache
def code_version() -> str:
    """The pipeline's code: every Python file of the package."""
    return source_digest(PACKAGE.rglob("*.py"))


def digest(payload: Mapping[str, Any], length: int = 16) -> str:
    """`length` hex digits of a JSON-able mapping (any key order)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:length]


def params_key(params: Mapping[str, Any], code: str) -> str:
    """16 hex digits of the parameters (any order) and the code version."""
    return digest({"code": code, **params})
