"""The README and docs/ against what they describe: links and figures exist, the API tables
match the code, every published number traces to a committed study record, and the hints
the make targets print name commands that exist."""

import dataclasses
import importlib.util
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

from pipeline.config import DataConfig, EvalConfig, TrainConfig, as_text

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RECORDS = sorted(p.parent for p in (ROOT / "docs" / "results").glob("*/manifest.json"))
LINK = re.compile(r"!?\[([^\]]*)\]\(([^)\s]+)\)")
NUMBER = re.compile(r"(?<![\w.])[−-]?\d[\d,]*(?:\.\d+)?(?:e[−-]?\d+)?")


def _links(page: Path) -> list[tuple[str, str]]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # not inside code blocks
    return LINK.findall(text)


def _anchors(page: Path) -> set[str]:
    heads = re.findall(r"^#+ (.+)$", page.read_text(), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in heads}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_and_figure_exists(page):
    for text, target in _links(page):
        if re.match(r"[a-z]+://|mailto:", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.name}: [{text}]({target}) points nowhere"
        if anchor and resolved.suffix == ".md":
            assert anchor in _anchors(resolved), f"{page.name}: no #{anchor} in {path}"


def test_every_page_is_reachable_from_the_readme():
    linked = {(ROOT / t.partition("#")[0]).resolve() for _, t in _links(ROOT / "README.md")}
    for page in PAGES[1:]:
        if page.name in ("coverage.md",):
            linked_elsewhere = any(page.name in t for p in PAGES for _, t in _links(p))
            assert linked_elsewhere, page.name
            continue
        assert page.resolve() in linked, f"{page.name} is not linked from README.md"


def test_the_readme_is_short_and_keeps_its_two_commands():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 220
    # the answer, before the quick start: at most 200 words (link targets not counted)
    answer = text[: text.index("## Quick start")]
    answer = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", answer)
    answer = re.sub(r"\]\([^)]*\)", "]", answer)
    assert len(answer.split()) <= 200, len(answer.split())
    assert "make run" in text and "make test" in text
    assert "make test" in (ROOT / ".ci" / "run").read_text()


# --- the API tables ---------------------------------------------------------------------------


def _table(page: Path, first_header: str) -> list[list[str]]:
    lines = page.read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_the_parameter_table_matches_the_configs():
    rows = {r[0].strip("`"): r for r in _table(ROOT / "docs" / "experiment.md", "parameter")}
    fields = {
        f.name: f for c in (DataConfig, TrainConfig, EvalConfig) for f in dataclasses.fields(c)
    }
    assert set(rows) == set(fields) | {"data", "train_run_id"}
    for name, f in fields.items():
        assert rows[name][1] == as_text(f.default), name


def _documented_names() -> set[str]:
    names = set()
    for page, header in (("experiment.md", "name"), ("reading-the-report.md", "name")):
        for row in _table(ROOT / "docs" / page, header):
            names |= set(re.findall(r"`([A-Za-z0-9_.*<>/\-]+)`", row[0]))
    return names


def _code_metrics() -> set[str]:
    """Every metric name the pipeline logs, from its own code paths."""
    from pipeline import evaluate, generate_data, sweep

    sets = generate_data.generate(DataConfig(max_freq=4, samples_per_freq=2))
    predictions = {s: d.freq for s, d in sets.items()}
    ev = evaluate.evaluate(EvalConfig(), sets, predictions, [1.0], history=[(0, 2.0), (5, 0.1)])
    train_source = (ROOT / "pipeline" / "train.py").read_text()
    logged = set(re.findall(r'"(\w+)": result\.', train_source))
    logged |= {"loss", "mae_ratio_train", "n_train", "n_test"}
    books = sweep.Bookkeeper(1, 0)
    books.close()
    return set(ev.metrics) | logged | set(books.counts)


def test_every_metric_the_pipeline_logs_is_documented():
    documented = _documented_names()
    for name in _code_metrics():
        assert name in documented or any(
            d.endswith("*") and name.startswith(d[:-1]) for d in documented
        ), f"{name} is not in docs/experiment.md"


def _analysis_metrics() -> set[str]:
    """The analysis run's metric names, from a synthetic study with every section."""
    from analysis import report

    rng = np.random.default_rng(0)
    rows = []
    for backend in ("tensorflow", "jax"):
        for max_freq in (10, 20, 30):
            for seed in range(12):
                diverged = rng.random() < 0.1 * max_freq / 10
                rows.append({"run_id": f"{backend}{max_freq}{seed}", "status": "FINISHED",
                             "max_freq": max_freq, "seed": seed, "backend": backend,
                             "epochs": 200, "train_steps": 0, "diverged": diverged,
                             "mae_test": 5.0 if diverged else 0.01 * max_freq * rng.lognormal(),
                             "mae_ratio_test": 1.2 if diverged else 0.1, "optimizer_steps": 200.0,
                             "steps_per_epoch": 1.0, "fit_seconds": 10.0,
                             "escape_step": np.nan if diverged else float(rng.integers(1, 200)),
                             "time_steps": 100, "grid_axes": "backend"})  # fmt: skip
    runs = pd.DataFrame(rows)
    runs["max_freq"] = runs["max_freq"].astype("Int64")
    runs["diverged"] = runs["diverged"].astype("boolean")
    names = set(report.analyse(runs, resamples=20).metrics())
    return {re.sub(r"/.*?(?=_low|_high|_low90|_high90|$)", "", n) for n in names}


def test_every_analysis_metric_is_documented():
    documented = {re.sub(r"/.*", "", d) for d in _documented_names()}
    missing = {
        name
        for name in _analysis_metrics() | {"runs", "max_freqs", "duplicate_runs"}
        if name not in documented
        and re.sub(r"_(low|high|low90|high90)$", "", name) not in documented
    }
    assert not missing, f"not in docs/reading-the-report.md: {sorted(missing)}"


# --- numbers traced to study records ----------------------------------------------------------


def _numbers(text: str) -> list[str]:
    return [n.replace("−", "-").replace(",", "") for n in NUMBER.findall(text)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_number_linked_to_a_record_is_in_it(page):
    for text, target in _links(page):
        path = target.partition("#")[0]
        resolved = (page.parent / path).resolve()
        if "docs/results/" not in str(resolved) or resolved.suffix not in (".md", ".csv", ".json"):
            continue
        source = resolved.read_text().replace("−", "-").replace(",", "")
        for number in _numbers(text):
            assert re.search(rf"(?<![\d.]){re.escape(number)}(?![\d])", source), (
                f"{page.name}: {number} in [{text}] is not in {path}"
            )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_table_taken_from_a_record_is_in_it_verbatim(page):
    lines = page.read_text().splitlines()
    for i, line in enumerate(lines):
        found = re.match(r"<!-- table from (\S+) -->", line)
        if not found:
            continue
        source = (page.parent / found.group(1)).read_text().splitlines()
        rest = [ln for ln in lines[i + 1 :]]
        while rest and not rest[0].strip():
            rest.pop(0)
        table = []
        for row in rest:
            if not row.startswith("|"):
                break
            table.append(row)
        assert table, f"{page.name}: no table after line {i + 1}"
        for row in table:
            assert row in source, f"{page.name}: a row is not in {found.group(1)}: {row[:80]}"


@pytest.mark.parametrize("record", RECORDS, ids=lambda p: p.name)
def test_every_record_is_complete(record):
    manifest = json.loads((record / "manifest.json").read_text())
    for key in ("command", "commit", "machine", "first_run", "runs", "wall_time_s"):
        assert manifest[key] not in (None, ""), f"{record.name}: {key}"
    runs = pd.read_csv(record / "runs.csv")
    assert len(runs) == manifest["runs"]
    assert (record / "report.md").read_text().startswith("# ")
    for figure in re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", (record / "report.md").read_text()):
        assert (record / figure).exists(), figure
    assert sum(p.stat().st_size for p in record.iterdir()) < 3 * 2**20  # small enough to commit


# --- the make targets' hints -------------------------------------------------------------------


def test_the_hints_make_targets_print_name_commands_that_exist():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, flags=re.M))
    printed = " ".join(re.findall(r"@echo \"([^\"]*)\"", makefile))
    from pipeline import sweep

    printed += " " + " ".join(
        re.findall(r'f"([^"]*report: python -m [^"]*)"', Path(sweep.__file__).read_text())
    )
    for target in re.findall(r"make ([a-z][\w-]*)", printed):
        assert target in targets, f"a hint names make {target}, which does not exist"
    for module in re.findall(r"python -m ([\w.]+)", printed):
        assert importlib.util.find_spec(module) is not None, module
    shown = subprocess.run(
        ["make", "--no-print-directory", "help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert {ln.split()[1] for ln in shown.stdout.splitlines()} == targets - {"$(BIN)/.installed"}


def test_every_method_a_report_links_is_explained_in_reading_the_report():
    """A report's sentences link their methods (METHODS#anchor, written as a path to
    docs/reading-the-report.md): each anchor is there."""
    code = "".join(p.read_text() for p in (ROOT / "analysis").glob("*.py"))
    anchors = set(re.findall(r"METHODS#([a-z0-9-]+)", code))
    assert {"firth", "newcombe", "seeds", "shape-tests", "the-summary-table"} <= anchors
    page = (ROOT / "docs" / "reading-the-report.md").read_text()
    slugs = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
             for h in re.findall(r"^#+ (.+)$", page, re.M)}  # fmt: skip
    ids = set(re.findall(r'<a id="([a-z0-9-]+)"></a>', page))
    assert anchors <= slugs | ids, anchors - slugs - ids
