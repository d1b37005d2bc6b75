"""The agent desktop in a real headless Chromium, with a real call through the real Asterisk:
agent1 logs in, a caller is transferred to the oil queue, agent1's phone (the project's SIP
user agent) rings, the pop appears on agent1's page, agent1 edits and submits the ticket and
the ticket row is linked to the call. agent2 gets no pop and is refused the ticket (403)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from asterisk.runner import ManagedAsterisk
from handoff.ticket_tables import TicketRow
from ivr.core.config import Settings
from ivr.core.storage.db import session_factory
from ivr.sim.desk import dev_desk_headers
from ivr.sim.sipua import SipPhone, SipUserAgent
from tests.browser import browser, wait  # noqa: F401  (the fixture)
from tests.conftest import ServerControl

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]

SHOTS = Path("/tmp/ivr-agent-screens")


@pytest.fixture
async def agent1_phone(settings: Settings, asterisk: ManagedAsterisk) -> AsyncIterator[SipPhone]:
    a = settings.asterisk
    phone = SipPhone(server_host=a.bind_host, server_port=a.sip_port, username="agent1",
                     password=a.agent_password.get_secret_value(), display_name="Agent 1")
    await phone.start()
    assert await phone.register(120) > 0
    yield phone
    await phone.close()


def js(browser: Any, expr: str) -> Any:  # noqa: F811
    return browser.execute_script(f"return {expr};")


async def test_pop_and_ticket_in_chromium(
    server: ServerControl, settings: Settings, caller: SipUserAgent, agent1_phone: SipPhone,
    browser: Any, pg_engine: AsyncEngine,  # noqa: F811
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    web = f"http://{settings.web.host}:{settings.web.port}"
    pw = {a: s.get_secret_value() for a, s in settings.handoff.agent_passwords.items()}

    def login() -> None:
        browser.get(f"{web}/agent")
        browser.find_element(By.ID, "agent").send_keys("agent1")
        browser.find_element(By.ID, "password").send_keys(pw["agent1"])
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait(lambda: js(browser, "document.getElementById('conn').textContent") == "已连接",
             what="the desktop's websocket")
        assert js(browser, "document.getElementById('agent').textContent") == "agent1"
        browser.find_element(By.ID, "cb-toggle").click()  # the callback tasks panel
        wait(lambda: js(browser, "document.getElementById('cb-rows').rows.length") > 0,
             what="the callback tasks list")
        assert not js(browser, "document.getElementById('cb-panel').hidden")
        assert js(browser, "document.getElementById('cb-count').textContent").isdigit()
        assert not js(browser, "document.getElementById('cb-result').textContent")
        browser.find_element(By.ID, "cb-toggle").click()

    await asyncio.to_thread(login)
    async with aiohttp.ClientSession() as http:
        auth2 = await dev_desk_headers(http, settings, "agent2")
        other = await http.ws_connect(f"{web}/agent/ws?agent=agent2", headers=auth2)
        assert json.loads((await other.receive(2)).data)["type"] == "hello"
        seen: list[dict[str, Any]] = []

        async def read_other() -> None:  # reading also answers the server's heartbeat pings
            async for msg in other:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    seen.append(json.loads(msg.data))

        reader = asyncio.create_task(read_other())
        call = await caller.call("956100")
        await call.wait_until_heard_seconds(1.0, 20)  # the greeting has begun: barge in
        await call.send_dtmf("1")  # the oil line
        await asyncio.sleep(2.0)  # into the oil menu: barge in again
        await call.send_dtmf("0")  # an agent, please
        ringing = await agent1_phone.next_call(timeout=30)

        def pop_shown() -> str:
            wait(lambda: js(browser, "document.getElementById('caller').textContent")
                 == "138****8000", what="the screen pop")  # masked in the pop
            return str(js(browser, "current.handoff_id"))

        hid = await asyncio.to_thread(pop_shown)
        await ringing.answer()

        def edit_and_submit() -> str:
            Select(browser.find_element(By.ID, "t-type")).select_by_value("card_loss")
            problem = browser.find_element(By.ID, "t-problem")
            problem.clear()
            problem.send_keys("加油卡丢失，来电人要求挂失补卡")
            Select(browser.find_element(By.ID, "t-priority")).select_by_value("urgent")
            SHOTS.mkdir(exist_ok=True)
            browser.save_screenshot(str(SHOTS / "agent-pop.png"))
            browser.find_element(By.ID, "t-submit").click()
            result = wait(lambda: "工单已提交" in (t := browser.find_element(
                By.ID, "ticket-result").text) and t, what="the ticket number")
            assert js(browser, "document.documentElement.scrollWidth") <= 1366
            browser.save_screenshot(str(SHOTS / "agent-ticket.png"))
            return str(result)

        shown = await asyncio.to_thread(edit_and_submit)
        assert "TK" in shown and "派单号 GD" in shown
        # agent2: no pop on their desktop, and the ticket is not theirs to read or submit
        await asyncio.sleep(0.5)
        assert not [m for m in seen if m.get("type") in ("pop", "suggestions")], seen
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await other.close()
        async with http.get(f"{web}/agent/api/tickets/{hid}", headers=auth2) as r:
            assert r.status == 403
        async with http.post(f"{web}/agent/api/tickets", headers=auth2, json={
                "handoff_id": hid, "line": "oil", "type": "card_loss", "problem": "x"}) as r:
            assert r.status == 403
        await call.hangup()
        await ringing.wait_hangup(5)
    async with session_factory(pg_engine)() as s:
        row = (await s.execute(select(TicketRow).where(TicketRow.handoff_id == hid))).scalar_one()
    assert row.agent == "agent1" and row.type == "card_loss" and row.priority == "urgent"
    assert row.problem == "加油卡丢失，来电人要求挂失补卡" and row.contact == "13800138000"
    assert row.ticket_no in shown and row.work_order_no is not None
    assert row.work_order_no in shown
    assert server.app is not None
    from ivr.web.keys import REPO
    recent = await server.app[REPO].recent(5)
    assert row.call_id in {c.id for c in recent}  # linked to the call's row
