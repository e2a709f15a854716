"""What a person meets in the MLflow UI: the experiment's description, run names, and the link
`make ui` prints, which opens the newest study's main runs with the columns that answer the
question; the last checked in a real headless browser (slow)."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import mlflow
import pytest
from conftest import BIN, ROOT
from mlflow.tracking import MlflowClient

from pipeline.tracking import views

DOCUMENTED = re.findall(
    r"^\| `([^|]+)` \| metric", (ROOT / "docs" / "experiment.md").read_text(), re.M
)


def test_the_description_names_every_metric_and_the_step_axis():
    metrics = {m.strip(" `") for row in DOCUMENTED for m in row.split(",")}
    assert {"mae_test", "diverged", "escape_step", "ref_fft_mae_test", "loss"} <= metrics
    for metric in metrics:
        stem = re.sub(r"_(train|test)$", "_*", metric.removesuffix("` (history)"))
        assert metric in views.DESCRIPTION or stem in views.DESCRIPTION, metric
    assert "step = epoch" in views.DESCRIPTION and "step = optimizer updates" in views.DESCRIPTION


def test_a_run_writes_the_description_and_keeps_a_users_own(store):
    with mlflow.start_run():
        pass
    from pipeline.tracking import records

    records.mark_experiment(store.experiment_id)
    tags = MlflowClient().get_experiment(store.experiment_id).tags
    assert tags[views.DESCRIPTION_TAG] == views.DESCRIPTION
    MlflowClient().set_experiment_tag(store.experiment_id, views.DESCRIPTION_TAG, "mine")
    views.describe_experiment(store.experiment_id)
    assert MlflowClient().get_experiment(store.experiment_id).tags[views.DESCRIPTION_TAG] == "mine"


def test_a_studys_view_is_its_main_runs_with_the_questions_columns(store):
    key = views.save_study_view(store.experiment_id, "shape", ["target_scale"])
    tag = MlflowClient().get_experiment(store.experiment_id).tags[views.VIEW_TAG + key]
    state = json.loads(tag)
    assert state["searchFilter"] == "tags.step = 'main' and tags.study = 'shape'"
    assert state["selectedColumns"][:3] == [
        "params.`max_freq`", "params.`seed`", "params.`target_scale`"
    ]  # fmt: skip
    assert {"metrics.`mae_test`", "metrics.`diverged`", "metrics.`escape_step`"} <= set(
        state["selectedColumns"]
    )
    assert [c["yaxis"]["key"] for c in state["compareRunCharts"]] == ["mae_test", "diverged"]
    assert {c["xaxis"]["key"] for c in state["compareRunCharts"]} == {"max_freq"}


def test_the_link_names_the_newest_studys_view(store):
    assert views.ui_link("http://h:1/", "nope") == "http://h:1/#/experiments?" + (
        views.TRAINING_VIEW
    )
    link = views.ui_link("http://h:1", store.experiment)
    assert link.endswith(f"/runs?viewStateShareKey=all-main-runs&{views.TRAINING_VIEW}")
    for study in ("old", "new"):
        with mlflow.start_run(tags={"step": "sweep", "study": study}):
            mlflow.log_param("grid_axes", "max_freq,seed,backend")
        time.sleep(0.01)
    link = views.ui_link("http://h:1", store.experiment)
    assert link == (
        f"http://h:1/#/experiments/{store.experiment_id}/runs?viewStateShareKey=study-new&"
        f"{views.TRAINING_VIEW}"
    )
    state = json.loads(
        MlflowClient().get_experiment(store.experiment_id).tags[views.VIEW_TAG + "study-new"]
    )
    assert "params.`backend`" in state["selectedColumns"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make ui-test-deps)"
)
def test_the_printed_link_shows_the_studys_runs_in_a_headless_browser(store, tmp_path):
    from playwright.sync_api import sync_playwright

    done = subprocess.run(
        [sys.executable, "-m", "pipeline.study", "default", "--smoke",
         "--set", "workers=2 max_freqs=5,10,20"],
        cwd=ROOT, env=store.env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    mae = {r.info.run_name: r.data.metrics["mae_test"] for r in store.runs(step="main")}
    env = {**store.env(), "MLFLOW_EXPERIMENT_NAME": store.experiment}
    port = _free_port()
    printed = subprocess.run(
        [sys.executable, "-m", "pipeline.tracking", "--ui_link", f"http://127.0.0.1:{port}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert printed.returncode == 0, printed.stderr
    (link,) = re.findall(r"^open (\S+)$", printed.stdout, re.M)
    assert "until Ctrl-C" in printed.stdout and "answers about 30 s" in printed.stdout
    ui = subprocess.Popen(
        [str(BIN / "mlflow"), "ui", "--backend-store-uri", store.uri, "--host", "127.0.0.1",
         "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, "the UI did not answer in 120 s"
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(link)
                for name in mae:  # every main run of the study, and no other run
                    page.get_by_text(name, exact=True).first.wait_for(timeout=60_000)
                text = page.inner_text("body")
            finally:
                browser.close()
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=30)
    assert "sweep default-smoke" not in text and "train max_freq" not in text
    for name, value in mae.items():
        assert name in text and repr(value)[:6] in text, (name, value)
    assert f"{len(mae)} matching runs" in text
    assert "Sort: mae_test" in text


def test_the_documented_pandas_example_rebuilds_the_records_table(capsys, monkeypatch):
    import pandas as pd

    doc = (ROOT / "docs" / "reading-the-report.md").read_text()
    block = doc.split("## With pandas", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(ROOT)
    scope: dict = {}
    exec(block, scope)  # the documented code, as written
    table = scope["table"].reset_index()
    summary = pd.read_csv(ROOT / "docs" / "results" / "scale" / "summary.csv")
    merged = table.merge(summary, on=["target_scale", "max_freq"], suffixes=("", "_record"))
    assert len(merged) == len(summary) == 10
    assert (merged["runs"] == merged["finished"]).all()
    assert (merged["diverged"] == merged["diverged_record"]).all()
    assert merged["mae_test_learned_median"].equals(merged["mae_test_learned_median_record"])
    assert "mae_test_learned_median" in capsys.readouterr().out
