"""The operations page in a real headless Chromium: an ops user logs in, creates a campaign from
a CSV, starts it, watches the progress change and sees the charts drawn.

Selenium drives /usr/bin/chromedriver (never selenium-manager downloads). The browser calls run
in a thread so the aiohttp server on the session loop keeps serving."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.core.config import Settings
from ivr.core.storage.db import session_factory
from ivr.web import ops
from ivr.web.keys import SESSIONS, SETTINGS
from tests.browser import browser, wait
from tests.ops_data import add_survey_results

__all__ = ["browser"]  # the fixture, used by name

pytestmark = pytest.mark.asyncio(loop_scope="session")

SHOTS = Path("/tmp/ivr-ops-screens")


@pytest.fixture(scope="module")
async def page_server(pg_engine: AsyncEngine) -> AsyncIterator[TestServer]:
    app = web.Application()
    app[SETTINGS] = Settings()
    app[SESSIONS] = session_factory(pg_engine)
    ops.setup(app)
    server = TestServer(app)
    await server.start_server()
    yield server
    await server.close()


async def test_ops_page_in_chromium(browser: Any, page_server: TestServer, pg_engine: AsyncEngine,
                                    tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    base = str(page_server.make_url("/ops"))
    csv_file = tmp_path / "名单.csv"
    csv_file.write_text("phone,name\n13900139000,王五\n13900139001,赵六\nabc,坏行\n",
                        encoding="utf-8")
    await asyncio.to_thread(SHOTS.mkdir, exist_ok=True)

    def login_and_create() -> int:
        browser.get(base)
        browser.find_element(By.ID, "agent").send_keys("ops1")
        browser.find_element(By.ID, "password").send_keys("ops1-desk-dev-secret")
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait(lambda: browser.find_elements(By.ID, "create"))
        form = browser.find_element(By.ID, "create")
        form.find_element(By.NAME, "name").send_keys("浏览器测试回访")
        form.find_element(By.NAME, "file").send_keys(str(csv_file))
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        msg = wait(lambda: "已创建任务" in browser.find_element(By.ID, "msg").text
                    and browser.find_element(By.ID, "msg").text)
        assert "导入 2 个号码" in msg and "第4行" in msg, msg
        return int(msg.split("已创建任务 ")[1].split("：")[0])

    cid = await asyncio.to_thread(login_and_create)

    def js_text(selector: str) -> str:
        # the list is redrawn every 2 s: read and click through JS, never via stale handles
        return str(browser.execute_script(
            "const e=document.querySelector(arguments[0]);return e?e.textContent:'';", selector))

    row = f'tr[data-id="{cid}"]'

    def start() -> None:
        wait(lambda: js_text(f'{row} button[data-action="start"]'))
        browser.execute_script("document.querySelector(arguments[0]).click()",
                               f'{row} button[data-action="start"]')
        wait(lambda: "进行中" in js_text(row))
        assert js_text(f"{row} td.done") == "0/2"

    await asyncio.to_thread(start)
    await add_survey_results(session_factory(pg_engine), cid)  # the dialer's work, as data

    def progress_and_charts() -> None:
        wait(lambda: js_text(f"{row} td.done") == "2/2", timeout=8)
        wait(lambda: browser.find_element(By.ID, "dist").get_attribute("data-points") == "2")
        wait(lambda: browser.find_element(By.ID, "trend").get_attribute("data-points") == "1")
        assert "希望能直接转人工" in browser.find_element(By.ID, "suggestions").text
        # the bar chart really has pixels drawn
        painted = browser.execute_script(
            "const c=document.getElementById('dist');const d=c.getContext('2d')"
            ".getImageData(0,0,c.width,c.height).data;let n=0;"
            "for(let i=3;i<d.length;i+=4){if(d[i])n++;}return n;")
        assert painted > 500
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 1366
        browser.save_screenshot(str(SHOTS / "ops.png"))

    await asyncio.to_thread(progress_and_charts)
