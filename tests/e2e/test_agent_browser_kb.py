"""The desktop's knowledge side in a real headless Chromium (no Asterisk needed): agent1's pop
carries a suggestion, agent1 marks it useful and proposes a correction from the page; agent3
(reviewer) opens the inbox page, sees the proposal next to the current version and approves it
with a reason; the new version is then the approved one."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from handoff.knowledge.repository import EntryDraft
from handoff.knowledge.tables import KbFeedbackRow
from handoff.service import HandoffService
from handoff.store import current_key
from ivr.core.config import HandoffSettings, KnowledgeSettings, LLMSettings, Settings
from ivr.core.storage.db import session_factory
from ivr.core.storage.redis_server import connect_redis
from ivr.web import agent as agent_web
from ivr.web import knowledge as knowledge_web
from ivr.web import tickets as tickets_web
from ivr.web.keys import HANDOFF, SESSIONS, SETTINGS
from tests.browser import browser, wait  # noqa: F401  (the fixture)
from tests.integration.test_handoff_service import context, queue_event

SHOTS = Path("/tmp/ivr-agent-screens")


@pytest.fixture
async def desk(redis_url: str, pg_engine: AsyncEngine) -> AsyncIterator[
        tuple[HandoffService, TestServer, web.Application]]:
    redis: aioredis.Redis = await connect_redis(redis_url)
    await redis.delete(current_key("agent1"))
    service = HandoffService(redis, HandoffSettings(), LLMSettings())
    await service.start()
    app = web.Application()
    app[SETTINGS] = Settings(knowledge=KnowledgeSettings(embedder="none"))
    app[HANDOFF] = service
    app[SESSIONS] = session_factory(pg_engine)
    agent_web.setup(app)
    knowledge_web.setup(app)
    tickets_web.setup(app)
    server = TestServer(app)
    await server.start_server()
    yield service, server, app
    await server.close()
    await service.close()
    await redis.aclose()


def js(driver: Any, expr: str) -> Any:
    return driver.execute_script(f"return {expr};")


def login(driver: Any, base: str, agent: str, password: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/agent")
    driver.find_element(By.ID, "agent").send_keys(agent)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(lambda: js(driver, "document.getElementById('agent').textContent") == agent)


async def test_suggestion_feedback_proposal_and_review_in_chromium(
    desk: tuple[HandoffService, TestServer, web.Application], browser: Any,  # noqa: F811
    pg_engine: AsyncEngine,
) -> None:
    from selenium.webdriver.common.by import By

    service, server, app = desk
    kb = app[knowledge_web.KNOWLEDGE]
    first = await kb.propose(EntryDraft(line="oil", title=f"加油卡挂失{uuid.uuid4().hex[:4]}",
                                        body="持卡人携带身份证到网点办理挂失。"), "agent1")
    entry_id = first.entry_id
    await kb.approve(first.id, "agent3", "首版")
    ctx = context()
    await service.handoff(ctx)
    await service.wait_suggestions(5)  # the live suggester's own answer comes first
    pop = await service.find_pop(ctx.handoff_id)
    assert pop is not None
    pop.suggestions = [{"entry_id": entry_id, "version": 1, "title": first.title,
                        "line": "oil", "passage": "持卡人携带身份证到网点办理挂失。",
                        "score": 0.83, "why": "关键词：挂失"}]
    await service.on_queue_event(queue_event("AgentCalled", ctx.channel_id))
    base = str(server.make_url("")).rstrip("/")
    pw = {a: s.get_secret_value() for a, s in app[SETTINGS].handoff.agent_passwords.items()}

    def agent_side() -> None:
        browser.delete_all_cookies()
        login(browser, base, "agent1", pw["agent1"])
        assert js(browser, "document.getElementById('review-link').hidden") is True
        # the first suggestions of a server load the embedding model: slow on a cold machine
        wait(lambda: first.title in browser.find_element(By.ID, "suggestions").text, 40,
             "the suggestions")
        browser.find_element(By.CSS_SELECTOR, "#suggestions button[data-verdict=useful]").click()
        wait(lambda: "已标记有用" in browser.find_element(By.ID, "suggestions").text)
        fix = [b for b in browser.find_elements(By.CSS_SELECTOR, "#suggestions button")
               if b.text == "纠正"]
        fix[0].click()
        body = browser.find_element(By.ID, "kb-body")
        body.clear()
        body.send_keys("持卡人可电话挂失，7日内携带身份证到网点办理补卡。")
        SHOTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(SHOTS / "agent-suggestions.png"))
        browser.find_element(By.CSS_SELECTOR, "#kb-form button[type=submit]").click()
        wait(lambda: "已提交审核" in browser.find_element(By.ID, "kb-result").text)

    await asyncio.to_thread(agent_side)

    def reviewer_side() -> None:
        browser.delete_all_cookies()
        login(browser, base, "agent3", pw["agent3"])
        wait(lambda: js(browser, "document.getElementById('review-link').hidden") is False)
        browser.find_element(By.ID, "review-link").click()
        card = "#items .card[data-id]"
        wait(lambda: any("7日内" in c.text for c in browser.find_elements(By.CSS_SELECTOR, card)))
        mine = next(c for c in browser.find_elements(By.CSS_SELECTOR, card)
                    if entry_id in c.text)
        assert "网点办理挂失" in mine.text  # the current version, for comparison
        mine.find_element(By.CSS_SELECTOR, ".actions input").send_keys("内容准确")
        browser.save_screenshot(str(SHOTS / "review.png"))
        mine.find_element(By.CSS_SELECTOR, "button.approve").click()
        wait(lambda: "已通过" in browser.find_element(By.ID, "notice").text)

    await asyncio.to_thread(reviewer_side)
    current = await kb.approved(entry_id)
    assert current is not None and current.version == 2 and current.reviewer == "agent3"
    assert "7日内" in current.body and current.reason == "内容准确"
    async with session_factory(pg_engine)() as s:
        marks = (await s.execute(select(KbFeedbackRow).where(
            KbFeedbackRow.entry_id == entry_id))).scalars().all()
    assert [(m.agent, m.verdict, m.handoff_id) for m in marks] == [
        ("agent1", "useful", ctx.handoff_id)]
