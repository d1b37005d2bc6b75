"""Prompt audio preview on the operations console, on the whole server (its TTS and prompt
cache): the published bots' prompts listed, one heard as callers will hear it (a WAV from the
same cache a call plays), a changed wording rendered before publishing, and the limits (empty
or long text, agents refused). In headless Chromium: the 提示音试听 tab plays a prompt."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from dialog.prompts import P
from ivr.core.config import Settings
from ivr.sim.desk import dev_desk_headers
from tests.browser import browser, wait
from tests.conftest import ServerControl

__all__ = ["browser"]  # the fixture, used by name

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]


async def test_prompts_are_listed_and_heard(server: ServerControl, settings: Settings) -> None:
    web = f"http://{settings.web.host}:{settings.web.port}"
    async with aiohttp.ClientSession() as http:
        ops = await dev_desk_headers(http, settings, "ops1")
        async with http.get(f"{web}/api/ops/prompts", headers=ops) as r:
            listed = (await r.json())["prompts"]
        assert {"id": "greeting", "text": P["greeting"]} in listed
        assert len(listed) > 100  # every bot text without a placeholder too
        q = {"text": P["greeting"], "id": "greeting"}
        async with http.get(f"{web}/api/ops/prompts/preview", params=q, headers=ops) as r:
            assert r.status == 200 and r.content_type == "audio/wav"
            assert (await r.read())[:4] == b"RIFF"
        changed = {"text": "您好，这里是九五六一零零，请问有什么可以帮您？"}
        async with http.get(f"{web}/api/ops/prompts/preview", params=changed,
                            headers=ops) as r:
            assert r.status == 200 and len(await r.read()) > 8000
        for bad in ("", "长" * 301):
            async with http.get(f"{web}/api/ops/prompts/preview", params={"text": bad},
                                headers=ops) as r:
                assert r.status == 400 and "试听文本" in (await r.json())["error"]
        agent = await dev_desk_headers(http, settings, "agent1")
        async with http.get(f"{web}/api/ops/prompts/preview", params=q, headers=agent) as r:
            assert r.status == 403


async def test_prompt_preview_tab_in_chromium(server: ServerControl, settings: Settings,
                                              browser: Any) -> None:
    from selenium.webdriver.common.by import By

    web = f"http://{settings.web.host}:{settings.web.port}"

    def hear_the_greeting() -> None:
        browser.delete_all_cookies()
        browser.get(f"{web}/ops")
        browser.find_element(By.ID, "agent").send_keys("ops1")
        browser.find_element(By.ID, "password").send_keys("ops1-desk-dev-secret")
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait(lambda: browser.find_elements(By.ID, "tab-prompts"))[0].click()
        wait(lambda: browser.find_element(By.ID, "prompts-view").is_displayed(), what="the tab")
        box = wait(lambda: browser.find_element(By.ID, "pr-filter"), what="the filter")
        box.send_keys("欢迎致电")
        wait(lambda: [e for e in browser.find_elements(By.CSS_SELECTOR, "#pr-list > *")
                      if e.is_displayed() and "欢迎致电" in e.text], 15,
             what="the greeting in the list")[0].click()
        assert "欢迎致电" in browser.find_element(By.ID, "pr-text").get_attribute("value")
        browser.find_element(By.ID, "pr-play").click()
        wait(lambda: browser.execute_script(
            "const a = document.getElementById('pr-audio'); return a.readyState >= 1 "
            "&& a.duration > 1;"), 30, what="the rendered prompt")

    await asyncio.to_thread(hear_the_greeting)
