"""The online channel in two real headless Chromium browsers on the whole server: a customer's
chat page and an agent's desktop.

1. Self-service to the end: menu buttons, the card number in the number field, the PIN in the
   masked field (never shown back), the balance, the rating.
2. A handoff: the customer asks for a person; agent1 (「接收在线会话」 on) is offered the chat,
   takes it, sees the screen pop and the chat so far, answers, the customer sees "agent
   joined", the agent's typing and reply; the agent files a ticket from the pop and closes the
   chat; the customer rates it. The ticket row is linked to the chat's call row.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from handoff.ticket_tables import TicketRow
from ivr.core.config import Settings
from ivr.core.storage.db import session_factory
from ivr.core.storage.models import Call
from tests.browser import chrome, wait
from tests.conftest import ServerControl
from tests.demo_data import FUEL

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]

SHOTS = Path("/tmp/ivr-chat-screens")
CARD = list(FUEL.values())[1]


def js(driver: Any, expr: str) -> Any:
    return driver.execute_script(f"return {expr};")


def log_texts(driver: Any, cls: str) -> list[str]:
    return list(js(driver, f"Array.from(document.querySelectorAll('#log .msg.{cls}'))"
                           ".map(e => e.textContent)"))


@pytest.fixture
def customer_browser() -> Any:
    driver = chrome()
    yield driver
    driver.quit()


@pytest.fixture
def agent_browser() -> Any:
    driver = chrome()
    yield driver
    driver.quit()


def _click_button(driver: Any, key: str) -> None:
    from selenium.webdriver.common.by import By

    def enabled() -> Any:
        for b in driver.find_elements(By.CSS_SELECTOR, f"#buttons button[data-key='{key}']"):
            if b.is_enabled():
                return b
        return None
    wait(enabled, 15, what=f"the menu button {key}").click()


def _type_digits(driver: Any, digits: str, *, secret: bool) -> None:
    from selenium.webdriver.common.by import By

    field = wait(lambda: (f := driver.find_element(By.ID, "digits")).is_displayed()
                 and f.is_enabled() and (f.get_attribute("type") == "password") == secret
                 and f, 15, what="the number field")
    field.send_keys(digits)
    driver.find_element(By.ID, "digits-ok").click()


async def test_self_service_balance_in_the_browser(
        server: ServerControl, settings: Settings, customer_browser: Any) -> None:
    from selenium.webdriver.common.by import By

    web = f"http://{settings.web.host}:{settings.web.port}"
    b = customer_browser

    def chat() -> None:
        b.get(f"{web}/chat")
        wait(lambda: js(b, "document.getElementById('status').textContent") == "已连接",
             15, what="the chat socket")
        _click_button(b, "1")  # 加油卡业务
        _click_button(b, "1")  # 加油卡余额查询
        _type_digits(b, CARD["card_no"], secret=False)
        _type_digits(b, CARD["pin"], secret=True)
        wait(lambda: any("余额" in t and "元" in t for t in log_texts(b, "bot")), 15,
             what="the balance")
        mine = " ".join(log_texts(b, "me"))
        assert CARD["pin"] not in js(b, "document.body.innerText")
        assert CARD["card_no"] not in mine and CARD["card_no"][-4:] in mine
        wait(lambda: b.find_elements(By.CSS_SELECTOR, "#rate button[data-score='5']"), 10,
             what="the rating")[0].click()
        wait(lambda: "感谢您的评价" in b.find_element(By.ID, "rate").text, 10, what="thanks")
        wait(lambda: js(b, "document.getElementById('status').textContent") == "已结束", 10,
             what="the end")
        SHOTS.mkdir(exist_ok=True)
        b.save_screenshot(str(SHOTS / "chat-self-service.png"))

    await asyncio.to_thread(chat)


async def test_handoff_to_an_agent_with_a_ticket(
        server: ServerControl, settings: Settings, customer_browser: Any, agent_browser: Any,
        pg_engine: AsyncEngine) -> None:
    from selenium.webdriver.common.by import By

    web = f"http://{settings.web.host}:{settings.web.port}"
    pw = settings.handoff.agent_passwords["agent1"].get_secret_value()
    a, c = agent_browser, customer_browser

    def agent_ready() -> None:
        a.get(f"{web}/agent")
        a.find_element(By.ID, "agent").send_keys("agent1")
        a.find_element(By.ID, "password").send_keys(pw)
        a.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait(lambda: js(a, "document.getElementById('conn').textContent") == "已连接",
             what="the desktop's websocket")
        ready = wait(lambda: a.find_element(By.ID, "chat-ready"), what="the chat toggle")
        if not ready.is_selected():
            ready.click()

    def customer_asks_for_a_person() -> None:
        c.get(f"{web}/chat")
        wait(lambda: js(c, "document.getElementById('status').textContent") == "已连接",
             15, what="the chat socket")
        wait(lambda: c.find_elements(By.CSS_SELECTOR, "#buttons button"), 15,
             what="the first question")
        c.find_element(By.ID, "text").send_keys("我的加油卡被锁了，我要转人工")
        c.find_element(By.ID, "send").click()

    def agent_takes_it() -> str:
        wait(lambda: (e := a.find_element(By.ID, "chat-accept")).is_displayed() and e, 20,
             what="the chat offer").click()
        wait(lambda: any("转人工" in t for t in js(
            a, "Array.from(document.querySelectorAll('#chat-log .msg.customer'))"
               ".map(e => e.textContent)")), 10, what="the chat so far")
        wait(lambda: not js(a, "document.getElementById('pop').hidden"), 10,
             what="the screen pop")
        box = a.find_element(By.ID, "chat-text")
        box.send_keys("您好，我是客服，马上为您处理。")
        a.find_element(By.ID, "chat-send").click()
        return str(js(a, "current.handoff_id"))

    def customer_sees_the_agent() -> None:
        wait(lambda: any("客服" in t and "接入" in t for t in log_texts(c, "system")), 15,
             what="agent joined")
        wait(lambda: "马上为您处理" in " ".join(log_texts(c, "agent")), 15,
             what="the agent's reply")
        c.find_element(By.ID, "text").send_keys("好的，谢谢")
        c.find_element(By.ID, "send").click()

    def agent_files_a_ticket_and_closes() -> str:
        from selenium.webdriver.support.ui import Select

        wait(lambda: "谢谢" in " ".join(js(
            a, "Array.from(document.querySelectorAll('#chat-log .msg.customer'))"
               ".map(e => e.textContent)")), 10, what="the customer's answer")
        Select(a.find_element(By.ID, "t-type")).select_by_index(0)  # the line's first type
        problem = a.find_element(By.ID, "t-problem")
        problem.clear()
        problem.send_keys("在线客户反映加油卡被锁，已远程处理")
        a.find_element(By.ID, "t-submit").click()
        result = wait(lambda: "工单已提交" in (t := a.find_element(By.ID, "ticket-result").text)
                      and t, 10, what="the ticket number")
        SHOTS.mkdir(exist_ok=True)
        a.save_screenshot(str(SHOTS / "chat-agent.png"))
        a.find_element(By.ID, "chat-close").click()
        return str(result)

    def customer_rates() -> None:
        wait(lambda: c.find_elements(By.CSS_SELECTOR, "#rate button[data-score='4']"), 15,
             what="the rating")[0].click()
        wait(lambda: "感谢您的评价" in c.find_element(By.ID, "rate").text, 10, what="thanks")
        c.save_screenshot(str(SHOTS / "chat-customer.png"))

    await asyncio.to_thread(agent_ready)
    await asyncio.to_thread(customer_asks_for_a_person)
    hid = await asyncio.to_thread(agent_takes_it)
    await asyncio.to_thread(customer_sees_the_agent)
    shown = await asyncio.to_thread(agent_files_a_ticket_and_closes)
    await asyncio.to_thread(customer_rates)
    assert "TK" in shown
    async with session_factory(pg_engine)() as s:
        ticket = (await s.execute(select(TicketRow).where(TicketRow.handoff_id == hid))
                  ).scalar_one()
        call = (await s.execute(select(Call).where(Call.id == ticket.call_id))).scalar_one()
    assert ticket.agent == "agent1" and ticket.problem == "在线客户反映加油卡被锁，已远程处理"
    assert call.transport == "chat" and call.outcome == "transferred"
