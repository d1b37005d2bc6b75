"""The web chat's pieces without a server: menu buttons from prompts, what is kept of a
customer's entries, the rate limiter, and the agent desk's assignment rules."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from dialog.actions import Collect
from dialog.prompts import P, chat_text, line_menu_text
from handoff.chatdesk import ChatDesk
from ivr.calls.chat import SECRET_ECHO, ChatRoom, masked_entry, menu_buttons
from ivr.web.ratelimit import Buckets, TokenBucket


def test_menu_buttons_come_from_the_prompts_own_options() -> None:
    assert menu_buttons([P["route_menu"]]) == [
        {"key": "1", "label": "加油卡业务"}, {"key": "2", "label": "天然气业务"},
        {"key": "0", "label": "人工服务"}]
    yes_no = menu_buttons(["请问您是要办理加油卡挂失吗？是请按1，不是请按2。"])
    assert yes_no == [{"key": "1", "label": "是"}, {"key": "2", "label": "不是"}]
    star = menu_buttons(["人工服务请按0，返回上一级请按星号键。"])
    assert {"key": "*", "label": "返回上一级"} in star


def test_every_line_menu_gives_a_button_per_bot() -> None:
    from dialog.catalog import Catalog

    catalog = Catalog.load()
    for line in ("oil", "gas"):
        keys = {b["key"] for b in menu_buttons([line_menu_text(catalog, line)])}
        assert {b.menu_key for b in catalog.menu(line)} | {"0", "*"} <= keys


def test_phone_words_are_said_the_chat_way() -> None:
    assert "井号" not in chat_text("请输入您的加油卡卡号，以井号键结束。")
    assert chat_text(P["goodbye"]) == "感谢您的咨询，再见。"
    assert "956100" in chat_text(P["greeting"])


@given(st.text(alphabet="0123456789", min_size=1, max_size=24))
def test_a_secret_entry_is_never_kept_and_a_number_keeps_four_digits(digits: str) -> None:
    assert masked_entry(digits, "secret") == SECRET_ECHO
    shown = masked_entry(digits, "digits")
    assert shown.endswith(digits[-4:]) and shown.count("*") == max(0, len(digits) - 4)


def _room() -> ChatRoom:
    return ChatRoom(resume_s=60.0, max_message_chars=500)


async def test_a_pin_typed_anywhere_is_not_in_the_history() -> None:
    room = _room()
    sent: list[dict[str, Any]] = []
    room.attach(lambda m: sent.append(m) is None, 0)
    room.ask(Collect(max_digits=7, entry="secret"))
    assert room.receive({"type": "digits", "digits": "123456"}) is None
    assert room.receive({"type": "text", "text": "654321"}) is None  # in the text box
    kept = str(list(room.history)) + str(sent)
    assert "123456" not in kept and "654321" not in kept
    assert room.receive({"type": "text", "text": "x" * 501}) == "too_long"
    assert room.receive({"type": "key", "key": "<b>"}) == "bad_message"
    assert room.receive({"type": "digits", "digits": "12a"}) == "bad_message"


async def test_a_full_inbox_refuses_and_the_end_always_gets_through() -> None:
    room = _room()
    codes = [room.receive({"type": "text", "text": "你好"}) for _ in range(20)]
    assert codes.count("too_fast") == 4
    room.customer_ends("customer")
    assert room.inbox.qsize() == 1 and room.inbox.get_nowait()["type"] == "end"


def test_token_bucket_burst_then_rate() -> None:
    b = TokenBucket(burst=3, per_minute=60)
    t = b.updated
    assert [b.take(t) for _ in range(4)] == [True, True, True, False]
    assert b.take(t + 1.01)  # one a second
    buckets = Buckets(burst=1, per_minute=1, max_keys=2)
    assert buckets.take("a", 0) and not buckets.take("a", 0)
    buckets.take("b", 0)
    buckets.take("c", 0)  # "a" falls out of the bounded table and starts full again
    assert buckets.take("a", 0) and buckets.refused == 1


class _Room(ChatRoom):
    def __init__(self, line: str = "oil") -> None:
        super().__init__(resume_s=60.0, max_message_chars=500)
        self.call_id = uuid.uuid4()
        self.line = line


def _agent(desk: ChatDesk, name: str) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    desk.connect(name, lambda m: got.append(m) is None)
    desk.set_ready(name, True)
    return got


async def test_desk_offers_to_the_longest_idle_agent_and_passes_on_a_missed_offer() -> None:
    events: list[str] = []

    async def on_event(e: Any) -> None:
        events.append(f"{e.kind}:{e.member}")

    desk = ChatDesk(on_event, offer_timeout_s=5.0, queue_timeout_s=60.0)
    desk.start()
    try:
        a1 = _agent(desk, "agent1")
        await asyncio.sleep(0.01)
        a2 = _agent(desk, "agent2")
        room = _Room()
        assert desk.enqueue(room, "oil", "h1") == "hotline-oil"
        assert [m["type"] for m in a1] == ["offer"] and not a2  # agent1 idle longer
        desk.expire(desk._waiting[room.chat_id].offered_at + 6.0)  # agent1 did not take it
        assert a1[-1]["type"] == "withdrawn" and a2[-1]["type"] == "offer"
        assert desk.accept("agent1", room.chat_id) is not None  # no longer theirs
        assert desk.accept("agent2", room.chat_id) is None
        assert room.state == "agent" and room.agent == "agent2"
        assert desk.send("agent2", room.chat_id, "您好") is None
        assert desk.close_chat("agent2", room.chat_id) is None
        assert room.state == "ended" and room.rating_asked is False  # no rating sink here
        await asyncio.sleep(0.05)
        assert events == ["AgentCalled:CHAT/agent1", "AgentRingNoAnswer:CHAT/agent1",
                          "AgentCalled:CHAT/agent2", "AgentConnect:CHAT/agent2",
                          "AgentComplete:CHAT/agent2"]
    finally:
        await desk.close()


async def test_priority_chats_first_and_a_long_wait_ends_with_an_apology() -> None:
    desk = ChatDesk(None, offer_timeout_s=5.0, queue_timeout_s=30.0)
    early, urgent = _Room("oil"), _Room("priority")
    desk.enqueue(early, "oil", "h1")
    desk.enqueue(urgent, "priority", "h2")
    got = _agent(desk, "agent1")
    assert got[-1]["chat"] == urgent.chat_id
    desk.expire(desk._waiting[early.chat_id].since + 31.0)
    assert early.state == "ended" and early.end_reason == "queue_timeout"
    assert any(m.get("text") == P["chat_queue_timeout"] for m in early.history)
