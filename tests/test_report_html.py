"""report.html is one self-contained page: it renders in headless chromium from the file
alone (figures decoded, tables shown, nothing fetched), and a screenshot of it is not blank.
Slow: a browser (pytest -m slow)."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import recorded_sweep
from scratchnet.report import build_report

pytestmark = pytest.mark.slow

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
AXES = {"data.noise": [0.03, 0.06], "model.hidden_size": [4, 8], "train.lr": [0.05, 0.1],
        "seed": [1, 2, 3]}


@pytest.fixture
def browser(tmp_path):
    """Headless Debian chromium, no network of its own (as tests/test_server.py drives it)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        message = "needs Debian's chromium and chromium-driver (apt-get install, as .ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--window-size=1400,1000",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_report_html_renders_alone_in_chromium(tmp_path, new_store, browser):
    from PIL import Image
    from selenium.webdriver.common.by import By

    sweep = recorded_sweep(new_store(tmp_path / "store"), AXES, ["train.epochs=100"])
    report = build_report(sweep.client, sweep.exp_id, sweep.parent_id, tmp_path / "reports")
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
