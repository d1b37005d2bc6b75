"""The bot workspace in headless Chromium, on the whole server: an author edits a bot's wording
in the form, runs its conversation tests and submits it; the team lead approves the wording,
the business expert the facts; the configurer publishes it; then a real SIP call through
Asterisk hears the new wording (the journal's say step). The published text is rolled back
afterwards, so the other tests of the session meet the shipped bot."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from asterisk.runner import ManagedAsterisk
from ivr.core.config import Settings
from ivr.sim.desk import dev_desk_headers
from ivr.sim.sipua import SipCall, SipUserAgent, voiced_seconds
from ivr.web.keys import BOT_STORE, REPO
from tests.browser import browser, wait
from tests.conftest import ServerControl

__all__ = ["browser"]  # the fixture, used by name

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]

BOT = "stove_no_ignite"  # gas menu key 3: its first step says how to check the battery
OLD = "可以换一节新电池"
NEW = "可以换两节新的五号电池"


async def voiced(call: SipCall, seconds: float, max_s: float = 30.0) -> None:
    """Wait until the caller has heard ``seconds`` of speech from now."""
    start, deadline = len(call.heard()), time.monotonic() + max_s
    while voiced_seconds(call.heard(start)) < seconds:
        assert time.monotonic() < deadline and not call.ended, "no speech heard"
        await asyncio.sleep(0.1)


async def test_edited_reviewed_published_then_a_call_hears_it(
        server: ServerControl, settings: Settings, asterisk: ManagedAsterisk,
        caller: SipUserAgent, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    assert server.app is not None
    store = server.app[BOT_STORE]
    before = store.versions[BOT]
    web = f"http://{settings.web.host}:{settings.web.port}"

    def msg(expect: str, timeout: float = 20) -> str:
        def seen() -> str | None:
            text = browser.find_element(By.ID, "msg").text
            return text if expect in text else None
        return str(wait(seen, timeout, what=f"「{expect}」 in #msg"))

    def open_as(user: str) -> None:
        browser.delete_all_cookies()
        browser.get(f"{web}/ops/bots")
        browser.find_element(By.ID, "agent").send_keys(user)
        browser.find_element(By.ID, "password").send_keys(f"{user}-desk-dev-secret")
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait(lambda: browser.find_elements(By.CSS_SELECTOR, f"tr[data-bot={BOT}]"),
             what="the bot list")[0].click()
        wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#versions tr.sel"),
             what="the newest version selected")

    def author_edits_and_submits() -> int:
        open_as("author1")
        box = wait(lambda: browser.find_element(
            By.CSS_SELECTOR, "textarea[data-step='0'][data-field='say']"), what="the form")
        text = box.get_attribute("value")
        assert OLD in text
        box.clear()
        box.send_keys(text.replace(OLD, NEW))
        wait(lambda: NEW in browser.find_element(By.ID, "yaml").get_attribute("value"),
             what="the form's YAML")
        wait(lambda: "ok" in browser.find_element(By.ID, "check").get_attribute("class"),
             what="the YAML checked")
        browser.find_element(By.ID, "note").send_keys("电池说明更具体")
        browser.find_element(By.ID, "save").click()
        version = int(msg("已保存为草稿 v").rsplit("v", 1)[1])
        browser.find_element(By.ID, "run-tests").click()
        msg("对话测试完成", 90)
        assert "通过" in browser.find_element(By.ID, "test-out").text
        assert "未通过" not in browser.find_element(By.ID, "test-out").text
        browser.find_element(By.ID, "submit").click()
        wait(lambda: "待班组长审核话术" in browser.find_element(
            By.CSS_SELECTOR, "#versions tr.sel td.review").text, what="submitted")
        return version

    def review(user: str, button: str, state: str) -> None:
        open_as(user)
        assert not browser.find_element(By.ID, "publish").is_displayed()
        browser.find_element(By.ID, button).click()
        wait(lambda: state in browser.find_element(
            By.CSS_SELECTOR, "#versions tr.sel td.review").text, what=state)

    def configurer_publishes() -> str:
        open_as("config1")
        browser.find_element(By.ID, "publish").click()
        msg("已发布")
        return str(browser.find_element(By.ID, "trail").text)

    async with aiohttp.ClientSession() as http:
        config = await dev_desk_headers(http, settings, "config1")
        try:
            version = await asyncio.to_thread(author_edits_and_submits)
            await asyncio.to_thread(review, "lead1", "approve-wording", "待业务专家审核内容")
            await asyncio.to_thread(review, "expert1", "approve-facts", "审核通过")
            trail = await asyncio.to_thread(configurer_publishes)
            assert store.versions[BOT] == version  # this server serves it now
            for who in ("author1", "lead1", "expert1", "config1"):
                assert who in trail

            since = time.time()
            call = await caller.call("956100")
            await voiced(call, 1.0)  # the greeting: keys may cut in
            await call.send_dtmf("2")  # gas: the key stops the greeting at once
            await voiced(call, 2.0)  # the gas menu
            await call.send_dtmf("3")  # the stove does not light
            await voiced(call, 2.5)  # its first step is playing (so journaled); ~5 s long
            await call.hangup()
            row = await server.app[REPO].closed_since(since)
            assert row is not None, "the call row was not closed"
            said = [s["detail"].get("text", "") for s in row.path if s["step"] == "say"]
            assert any(NEW in t for t in said), said
            assert not any(OLD in t for t in said)
        finally:
            async with http.post(f"{web}/api/ops/bots/{BOT}/rollback", json={"to": before},
                                 headers=config) as r:
                assert r.status in (200, 409), await r.text()
    assert store.versions[BOT] == before
