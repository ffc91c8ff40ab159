"""A sweep's report.html opened in headless Chromium: the page title is right, every image
loads and the console shows no error. A screenshot is saved under the test's output folder.

The set-up installs the Debian packages ``chromium`` and ``chromium-driver`` when
/usr/bin/chromium or /usr/bin/chromedriver is missing; it skips only when apt-get itself is not
available (not a Debian-like machine)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from analysis.report import write_report

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PACKAGES = ("chromium", "chromium-driver")
APT_TIMEOUT_S = 900


@pytest.fixture(scope="session")
def chromium() -> Path:
    """/usr/bin/chromedriver, installing Chromium and its driver with apt-get when missing."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return CHROMEDRIVER
    apt = shutil.which("apt-get")
    if apt is None:
        pytest.skip(
            f"{CHROMIUM} or {CHROMEDRIVER} is missing and apt-get is not available to install "
            f"the Debian packages {' '.join(PACKAGES)}; install Chromium and chromedriver there"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    for command in (
        [*sudo, apt, "update"],
        [*sudo, apt, "install", "-y", "--no-install-recommends", *PACKAGES],
    ):
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=APT_TIMEOUT_S, check=False
        )
        if done.returncode != 0:
            pytest.fail(
                f"{' '.join(command)} failed with exit code {done.returncode}:\n"
                f"{done.stderr[-2000:]}\ninstall {' '.join(PACKAGES)} by hand and re-run"
            )
    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), (
        f"apt-get installed {' '.join(PACKAGES)} but {CHROMIUM} or {CHROMEDRIVER} is still missing"
    )
    return CHROMEDRIVER


@pytest.fixture
def driver(chromium: Path, tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,2400",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(str(chromium)), options=options)
    try:
        yield browser
    finally:
        browser.quit()


def test_the_sweep_report_loads_in_chromium_without_errors(
    sweep_dir: Path, driver: Any, tmp_path: Path
) -> None:
    results = shutil.copytree(sweep_dir, tmp_path / "sweep")  # its own copy to write into
    html_path, _ = write_report(results, slo_s=0.3)
    driver.get(html_path.resolve().as_uri())
    assert driver.title == "Sweep report: tiny-sweep"
    state = driver.execute_script(
        "return Array.from(document.images).map("
        "i => [i.alt, i.complete, i.naturalWidth, i.src.slice(0, 22)]);"
    )
    assert len(state) >= 6, f"expected the sweep's figures, found {len(state)} images"
    broken = [alt for alt, complete, width, _ in state if not complete or width <= 0]
    assert broken == [], f"images that did not load: {broken}"
    assert {src for *_, src in state} == {"data:image/png;base64,"}
    headings = driver.execute_script(
        "return Array.from(document.querySelectorAll('h2')).map(h => h.textContent);"
    )
    assert {"Points", "Scaling", "Capacity at the SLO", "Resolved scenario"} <= set(headings)
    severe = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    assert severe == [], f"console errors: {severe}"
    shot = tmp_path / "report.png"
    driver.set_window_size(1280, driver.execute_script("return document.body.scrollHeight;"))
    assert driver.save_screenshot(str(shot)), "chromium did not save a screenshot"
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")
