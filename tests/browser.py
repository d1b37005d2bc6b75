"""A real headless Chromium for the web page tests (Debian's ``chromium`` + ``chromium-driver``,
installed by scripts/bootstrap.sh), driven by Selenium.

``chrome()`` starts one at 1366x768 with a fresh profile; selenium-manager never runs (the
chromedriver path is given) and the browser is told not to reach out to the network.
``browser`` is a module-scoped fixture around it (skips when Chromium is not installed).
Selenium calls block: tests run them with ``asyncio.to_thread`` so the aiohttp server on the
test loop keeps serving. ``wait(cond)`` polls a condition in that thread.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--window-size=1366,768",
         "--lang=zh-CN")


def chrome() -> Any:
    """A new headless Chromium (``driver.quit()`` it); skips the test when not installed."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    if not (Path(CHROMEDRIVER).exists() and Path(CHROMIUM).exists()):
        pytest.skip("chromium / chromium-driver not installed (scripts/bootstrap.sh)")
    profile = tempfile.mkdtemp(prefix="ivr-chromium-")
    options = webdriver.ChromeOptions()
    for arg in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    original_quit = driver.quit

    def quit_and_clean() -> None:
        try:
            original_quit()
        finally:
            shutil.rmtree(profile, ignore_errors=True)

    driver.quit = quit_and_clean
    return driver


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    driver = chrome()
    yield driver
    driver.quit()


def wait(cond: Callable[[], Any], timeout: float = 10.0, what: str = "the page") -> Any:
    from selenium.common.exceptions import WebDriverException

    deadline = time.monotonic() + timeout
    last: WebDriverException | None = None
    while True:
        try:  # while the page navigates or renders, its elements may not exist yet
            value = cond()
        except WebDriverException as exc:
            value, last = None, exc
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} in the browser"
                                 + (f" (last error: {last.msg})" if last else ""))
        time.sleep(0.1)
