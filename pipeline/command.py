"""The entry points' command line: flags built from the config dataclasses, so `--help` shows
each knob's default and meaning and no default is written twice. Every value arrives as a
string (as MLflow passes it) and is parsed and validated by the configs. A user mistake prints
one line, `error: …`, records a FAILED run saying the same, and exits 2; Ctrl-C or SIGTERM
exits 130 with the run KILLED.
"""

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from pipeline import tracking
from pipeline.config import as_text
from pipeline.names import UserError


def build_parser(
    prog: str,
    description: str,
    configs: Sequence[type],
    extra: Sequence[tuple[str, str]] = (),
    exclude: Sequence[str] = (),
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    seen = set(exclude)
    for config in configs:
        for f in dataclasses.fields(config):
            if f.name not in seen:
                seen.add(f.name)
                help_text = f"{f.metadata['help']}; {f.metadata['allowed']}"
                parser.add_argument(f"--{f.name}", default=as_text(f.default), help=help_text)
    for name, help_text in extra:
        parser.add_argument(f"--{name}", default="", help=help_text)
    return parser


def run(
    step: str,
    doc: str | None,
    build: Callable[[dict[str, Any]], Any],
    execute: Callable[[Any, dict[str, Any]], Any],
    configs: Sequence[type],
    argv: Sequence[str] | None,
    extra: Sequence[tuple[str, str]] = (),
    exclude: Sequence[str] = (),
) -> None:
    """Parse argv, validate with `build(raw)`, then `execute(cfg, raw)`; never a bare traceback
    for a user mistake."""
    summary = (doc or "").split("\n\n")[0]
    parser = build_parser(f"python -m pipeline.{step}", summary, configs, extra, exclude)
    raw = vars(parser.parse_args(argv))
    tracking.install_signal_handlers()
    tracking.configure_client()
    tracking.default_experiment()
    try:
        tracking.check_store()  # seconds, not minutes, when the server is away
        try:
            cfg = build(raw)
        except UserError as exc:
            tracking.record_failure(step, raw, str(exc))
            raise
        execute(cfg, raw)
    except UserError as exc:
        fail(exc)
    except KeyboardInterrupt:
        tracking.stopping()
        print(f"{step}: interrupted; the run was marked KILLED", file=sys.stderr, flush=True)
        sys.stdout.flush()
        # The runs are closed; don't wait on backend worker threads that may never finish.
        os._exit(130)
    except Exception as exc:
        lost_store()
        fault = tracking.describe_fault(exc)  # a full disk, a locked or corrupt store
        if fault:
            fail(UserError(fault))
        raise


def fail(exc: UserError) -> None:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)


def lost_store() -> None:
    """After an unexpected error: if the tracking store went away mid-run, say that in one
    line (exit 2) rather than with the traceback of whichever write failed first."""
    if not tracking.is_shared_store(tracking.tracking_uri()):
        return
    try:
        tracking.check_store()
    except tracking.StoreError as exc:
        fail(
            tracking.StoreError(
                f"{exc} (lost during the run; a run left open is marked KILLED as stale by "
                "the next sweep of its study, or by python -m pipeline.reap)"
            )
        )
