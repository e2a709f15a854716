"""Study records built from earlier records: a study re-read by today's analysis without its
store, or grown over sessions and machines, each run counted once."""

import json
import shutil

import pandas as pd
import pytest
from conftest import ROOT

from analysis import load, record

BUDGET = ROOT / "docs" / "results" / "budget"


@pytest.fixture
def budget_copy(tmp_path):
    folder = tmp_path / "budget"
    shutil.copytree(BUDGET, folder)
    return folder


def test_a_record_is_reanalysed_from_its_runs_without_the_store(budget_copy):
    before = json.loads((budget_copy / "manifest.json").read_text())
    curves = (budget_copy / "learning_curves.png").read_bytes()
    record.record(["budget"], budget_copy, "make budget", "abc1234", sources=[budget_copy],
                  use_store=False, note="re-read")  # fmt: skip
    info = json.loads((budget_copy / "manifest.json").read_text())
    assert info["runs"] == 96 and info["commit"] == before["commit"]  # what ran, unchanged
    assert info["reanalysed"] == {
        "commit": "abc1234",
        "date": info["generated"],
        "note": "re-read",
    }
    assert info["wall_time_s"] == before["wall_time_s"] and info["sources"][0]["runs"] == 96
    assert "--no_store" in info["regenerate"]
    # the figures that need the store are kept, the others redrawn from the runs
    assert (budget_copy / "learning_curves.png").read_bytes() == curves
    md = (budget_copy / "report.md").read_text()
    assert "![learning_curves.png](learning_curves.png)" in md
    assert "no single rate fits" in md and "≤ 147 [" in md
    # the question's own figure first, before any word of the findings
    assert md.splitlines()[2] == (
        "![Error of the runs that learned, and divergence, against max_freq]"
        "(error_and_divergence.png)"
    )
    assert (budget_copy / "error_and_divergence.png").stat().st_size > 10_000


def test_a_re_read_record_keeps_the_lines_only_the_store_can_write(tmp_path):
    """The relapse record's stopping-rule check reads the runs' histories: re-read from its
    runs.csv alone, the record keeps that line from its earlier report, once, saying so."""
    folder = tmp_path / "relapse"
    shutil.copytree(ROOT / "docs" / "results" / "relapse", folder)
    line = next(ln for ln in (folder / "report.md").read_text().splitlines()
                if ln.startswith("- **The stopping rule, checked"))  # fmt: skip
    for _ in range(2):
        record.record(["relapse"], folder, "make relapse", "abc1234", sources=[folder],
                      use_store=False)  # fmt: skip
    md = (folder / "report.md").read_text()
    kept = [ln for ln in md.splitlines() if ln.startswith("- **The stopping rule, checked")]
    assert len(kept) == 1 and kept[0].endswith(record.KEPT_NOTE)
    assert kept[0].startswith(line.removesuffix(record.KEPT_NOTE))
    assert "4 of those ended diverged (4/67" in kept[0]
    # it stays in its section, after the reading at 200 epochs
    section = md[md.index("## Leaving the plateau") :]
    assert section.index("**At the reference 200 epochs**") < section.index(kept[0])


def test_a_study_grown_from_two_records_counts_each_pair_once(tmp_path, budget_copy):
    runs = load.read_csv(budget_copy / "runs.csv")
    # a second session: seeds 0–3 trained again at another commit, and four new seeds
    again = runs[runs["seed"] < 4].assign(run_key="other", code_version="newer",
                                          run_id=lambda r: r["run_id"] + "x",
                                          start_time=lambda r: r["start_time"]
                                          + pd.Timedelta(days=1))  # fmt: skip
    new = runs[runs["seed"] < 4].assign(seed=lambda r: r["seed"] + 16, run_key="new",
                                        run_id=lambda r: r["run_id"] + "y")  # fmt: skip
    later = tmp_path / "later"
    later.mkdir()
    pd.concat([again, new]).to_csv(later / "runs.csv", index=False)
    out = tmp_path / "grown"
    record.record(["budget"], out, "make budget", "abc1234", sources=[budget_copy, later],
                  use_store=False)  # fmt: skip
    info = json.loads((out / "manifest.json").read_text())
    assert info["runs"] == 96 + 24 and info["duplicates_left_out"] == 24
    assert [s["runs"] for s in info["sources"]] == [96, 48]
    grown = pd.read_csv(out / "runs.csv")
    assert grown.groupby("max_freq")["seed"].nunique().eq(20).all()
    assert not grown["run_id"].str.endswith("x").any()  # the first copy of a pair is kept


def test_reading_only_records_needs_one(capsys):
    with pytest.raises(SystemExit) as exit_:
        record.main(["--study", "budget", "--command", "x", "--commit", "y", "--no_store"])
    assert exit_.value.code == 2
    assert "no_store is not allowed without --from" in capsys.readouterr().err


def test_a_folder_without_the_study_is_refused(tmp_path, budget_copy, capsys):
    with pytest.raises(SystemExit):
        record.main(["--study", "shape", "--command", "x", "--commit", "y", "--no_store",
                     "--from", str(budget_copy), "--out", str(tmp_path / "o")])  # fmt: skip
    assert "holds no runs of study 'shape'" in capsys.readouterr().err


RECORDS = sorted(p.name for p in (ROOT / "docs" / "results").iterdir() if p.is_dir())


@pytest.mark.parametrize(
    "name", [n if n == "default" else pytest.param(n, marks=pytest.mark.slow) for n in RECORDS]
)
def test_a_committed_record_regenerates_with_its_numbers_unchanged(name, tmp_path):
    """Re-read from its runs.csv by today's analysis, every record gives the summary it
    commits (to float rounding), the same runs, and the same manifest facts."""
    import shutil

    import pandas as pd

    committed = ROOT / "docs" / "results" / name
    folder = tmp_path / "docs" / "results" / name  # the same depth: the same relative links
    shutil.copytree(committed, folder)
    manifest = json.loads((committed / "manifest.json").read_text())
    record.main([
        "--study", ",".join(manifest["studies"]), "--command", manifest["command"],
        "--commit", "test", "--from", str(folder), "--no_store", "--out", str(folder),
    ])  # fmt: skip
    old = pd.read_csv(committed / "summary.csv")
    new = pd.read_csv(folder / "summary.csv")
    assert list(new.columns) == list(old.columns) and len(new) == len(old)
    pd.testing.assert_frame_equal(new, old, check_exact=False, rtol=1e-9)
    again = json.loads((folder / "manifest.json").read_text())
    for key in ("runs", "runs_by_status", "command", "commit", "study_files", "report_sections"):
        assert again.get(key) == manifest.get(key), key
    if name == "default":  # the default study's findings fit one screen, figure first
        lines = (folder / "report.md").read_text().splitlines()
        first_table = next(i for i, line in enumerate(lines) if line.startswith("|"))
        assert first_table <= 25
        assert next(ln for ln in lines if ln.startswith("![")).endswith(
            "(error_and_divergence.png)"
        )
    if name == "backends":  # half its 18,469 bytes before the report was cut to the glance
        import os

        from analysis import report

        text = (folder / "report.md").read_text()
        here = os.path.relpath(report.METHODS_DOC, folder.resolve())  # from /tmp, not docs/
        text = text.replace(here, "../../reading-the-report.md")  # as in docs/results/
        assert len(text.encode()) <= 9 * 1024
