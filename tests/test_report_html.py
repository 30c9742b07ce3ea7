"""report.html is one self-contained page: it renders in headless chromium from the file
alone (figures decoded, tables shown, nothing fetched), and a screenshot of it is not blank.
Slow: a browser (pytest -m slow)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, free_port, recorded_sweep, stop_server, wait_until_answering
from scratchnet.report import build_report

pytestmark = pytest.mark.slow

AXES = {"data.noise": [0.03, 0.06], "model.hidden_size": [4, 8], "train.lr": [0.05, 0.1],
        "seed": [1, 2, 3]}


@pytest.fixture(scope="module")
def reported(tmp_path_factory, new_store):
    """A recorded 2 noise x 2 hidden sizes x 2 lrs x 3 seeds grid and its report."""
    folder = tmp_path_factory.mktemp("report-html")
    sweep = recorded_sweep(new_store(folder / "store"), AXES, ["train.epochs=100"])
    report = build_report(sweep.client, sweep.exp_id, sweep.parent_id, folder / "reports")
    return sweep, report


def test_report_html_renders_alone_in_chromium(reported, tmp_path, browser):
    from PIL import Image
    from selenium.webdriver.common.by import By

    _, report = reported
    alone = tmp_path / "alone"  # the page by itself: no figure file beside it to fall back on
    alone.mkdir()
    shutil.copy(report.folder / "report.html", alone / "report.html")
    browser.get((alone / "report.html").as_uri())

    images = browser.find_elements(By.TAG_NAME, "img")
    assert len(images) == len(report.figures) >= 4
    sizes = [browser.execute_script("return [arguments[0].complete, arguments[0].naturalWidth]",
                                    image) for image in images]
    assert all(complete and width > 0 for complete, width in sizes), sizes
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert not [name for name in fetched if not name.startswith("data:")], fetched

    rows = browser.find_elements(By.CSS_SELECTOR, "tbody tr")
    settings = browser.find_elements(By.CSS_SELECTOR, "h3 + table tbody tr")
    assert len(settings) == len(report.summary) == 8 and len(rows) > len(settings)
    best = browser.find_elements(By.CSS_SELECTOR, "tr.best")
    assert len(best) == 2 and all(row.is_displayed() for row in best)  # one per noise level
    assert all(row.size["height"] > 5 for row in settings)
    assert "What to try next" in browser.find_element(By.TAG_NAME, "body").text

    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1400, min(height + 100, 8000))
    shot = tmp_path / "report_html.png"
    browser.save_screenshot(str(shot))
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 20  # text, tables and figures, not a blank page
    assert len(np.unique(pixels)) > 50
    print(f"screenshot: {shot}")


def test_report_html_opens_in_the_mlflow_ui_artifact_view(reported, tmp_path, browser):
    """The parent run's report/report.html in the UI's artifact view (an iframe): its
    figures decode there too."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    sweep, report = reported
    port = free_port()
    env = {**os.environ, "MLFLOW_UI_PORT": str(port),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    server = subprocess.Popen(["bash", str(ROOT / "scripts" / "mlflow-ui.sh"), sweep.uri],
                              env=env, cwd=tmp_path, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_answering(f"http://127.0.0.1:{port}/health", server)
        browser.get(f"http://127.0.0.1:{port}/#/experiments/{sweep.exp_id}/runs/"
                    f"{sweep.parent_id}/artifacts/report/report.html"
                    "?workflowType=machine_learning")
        frame = WebDriverWait(browser, 120).until(
            lambda b: b.find_elements(By.CSS_SELECTOR, "iframe"))[0]
        browser.switch_to.frame(frame)

        def decoded(b):
            images = b.find_elements(By.TAG_NAME, "img")
            widths = [b.execute_script("return arguments[0].naturalWidth", i) for i in images]
            return len(images) == len(report.figures) and all(widths) and widths

        assert WebDriverWait(browser, 60).until(decoded)
        assert len(browser.find_elements(By.CSS_SELECTOR, "tr.best")) == 2
        browser.switch_to.default_content()
        browser.save_screenshot(str(tmp_path / "report_in_mlflow_ui.png"))
    finally:
        browser.get("about:blank")  # the page's connections close before the server stops
        stop_server(server)
