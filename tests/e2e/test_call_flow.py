"""End to end through the real Asterisk: a real SIP caller dials 956100 over SIP/RTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from asterisk.runner import ManagedAsterisk
from ivr.core.config import Settings
from ivr.sim.demo import listen_until_quiet
from ivr.sim.sipua import SipCall, SipUserAgent, voiced_seconds
from ivr.telephony.ami import AmiClient, QueueEvent
from ivr.web.keys import AGI, ARI, CALLS, REPO
from tests.conftest import ServerControl

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]


@pytest.fixture(scope="module")
async def ami(settings: Settings, asterisk: ManagedAsterisk) -> AsyncIterator[AmiClient]:
    client = AmiClient(settings.asterisk)
    await client.connect()
    yield client
    client.close()




async def wait_queue_join(
    events: asyncio.Queue[QueueEvent], queue: str, timeout: float = 20.0
) -> QueueEvent:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        event = await asyncio.wait_for(events.get(), left)
        if event.kind == "QueueCallerJoin" and event.queue == queue:
            return event
    raise TimeoutError(f"no QueueCallerJoin for {queue}")


async def last_call(server: ServerControl, since: float) -> Any:
    """The newest call row started after ``since`` (epoch seconds), once it is closed."""
    assert server.app is not None
    row = await server.app[REPO].closed_since(since)
    assert row is not None, "the call row was not closed"
    return row


def steps(row: Any, name: str) -> list[dict[str, Any]]:
    return [s for s in row.path if s["step"] == name]


async def test_greeting_menu_gas_then_agent_reaches_gas_queue(
    server: ServerControl, caller: SipUserAgent, ami: AmiClient
) -> None:
    events = ami.subscribe()
    since = time.time()
    call: SipCall = await caller.call("956100")
    heard, voiced = await listen_until_quiet(call)
    # greeting + main menu: several seconds of speech, not silence
    assert voiced >= 3.0, f"heard {heard:.1f} s with {voiced:.1f} s voiced"
    await call.send_dtmf("2")
    _, voiced_gas = await listen_until_quiet(call)
    assert voiced_gas >= 2.0  # the spoken confirmation and the gas menu
    await call.send_dtmf("0")
    joined = await wait_queue_join(events, "hotline-gas")
    assert joined.queue == "hotline-gas"
    await asyncio.sleep(1.0)  # music on hold, not silence
    await call.hangup()
    ami.unsubscribe(events)

    row = await last_call(server, since)
    assert row.outcome == "transferred"
    assert row.queue == "hotline-gas"
    assert row.caller_number == "13800138000"
    choices = [s["detail"].get("choice") for s in steps(row, "menu")]
    assert choices == ["gas", "agent"]
    assert steps(row, "transfer")[0]["detail"]["line"] == "gas"


async def test_failsafe_lands_in_queue_when_server_is_down(
    server: ServerControl, caller: SipUserAgent, ami: AmiClient
) -> None:
    events = ami.subscribe()
    await server.stop()
    try:
        call = await caller.call("956100")
        answered = time.monotonic()
        joined = await wait_queue_join(events, "hotline-general")
        # first told so (the words the server published when it last started), then queued
        told = voiced_seconds(call.heard())
        assert time.monotonic() - answered > 4.0 and told >= 3.0, \
            f"the failsafe announcement: {told:.1f} s voiced before the queue"
        assert joined.variables.get("IVR_FAILSAFE", "1") == "1"
        heard = len(call.heard())
        await asyncio.sleep(3.0)  # the music fades in over about a second
        assert voiced_seconds(call.heard(heard)) > 0.3, \
            "the caller must hear music on hold, not silence"
        await call.hangup()
    finally:
        ami.unsubscribe(events)
        await server.start()


async def test_asterisk_restart_then_next_call_works(
    server: ServerControl, asterisk: ManagedAsterisk, caller: SipUserAgent, ami: AmiClient
) -> None:
    assert server.app is not None
    ari = server.app[ARI]
    reconnects = ari.reconnects
    await asterisk.restart()
    await asyncio.wait_for(ari.connected.wait(), 20)
    assert ari.reconnects == reconnects + 1
    await ami.wait_connected(15)  # panoramisk logs in again by itself
    events = ami.subscribe()
    call = await caller.call("956100")
    _, voiced = await listen_until_quiet(call)
    assert voiced >= 3.0
    await call.send_dtmf("0")
    await wait_queue_join(events, "hotline-general")
    await call.hangup()
    ami.unsubscribe(events)


async def test_unknown_keys_are_reprompted_then_sent_to_an_agent(
    server: ServerControl, caller: SipUserAgent
) -> None:
    since = time.time()
    call = await caller.call("956100")
    await listen_until_quiet(call)
    for key in ("5", "9", "7"):
        await call.send_dtmf(key)
        await listen_until_quiet(call)
    row = await _hangup_and_row(call, server, since)
    invalid = [s["detail"] for s in steps(row, "no_match")]
    assert [(d["why"], d["key"]) for d in invalid] == [("invalid_key", "5"), ("invalid_key", "9")]
    assert steps(row, "failure_limit")
    assert row.outcome == "transferred" and row.queue == "hotline-general"


async def test_silence_gets_reprompts_then_a_polite_hangup(
    server: ServerControl, caller: SipUserAgent
) -> None:
    since = time.time()
    call = await caller.call("956100")
    await call.wait_hangup(timeout=90)
    assert call.ended_by_remote
    row = await last_call(server, since)
    assert row.outcome == "no_input"
    assert len(steps(row, "input_timeout")) == 3
    assert len(steps(row, "no_input")) == 2  # two reprompts, then the polite goodbye
    assert steps(row, "no_input_limit")


async def test_caller_hangs_up_mid_prompt(server: ServerControl, caller: SipUserAgent) -> None:
    since = time.time()
    call = await caller.call("956100")
    await asyncio.sleep(1.0)  # in the middle of the greeting
    await call.hangup()
    row = await last_call(server, since)
    assert row.outcome == "caller_hangup"
    assert server.app is not None and server.app[CALLS].active == 0


async def test_fastagi_call_resumes_at_its_question_after_the_server_lets_go(
    server: ServerControl, caller: SipUserAgent
) -> None:
    """The server lets go of a FastAGI call mid-call (``AgiServer.hand_back``: its Redis snapshot
    is kept, as a server that dies leaves it). The dialplan runs the AGI again and the server
    resumes the call from Redis at its question (the oil menu), without the greeting; the
    caller goes on to the balance in the same call record."""
    assert server.app is not None
    agi = server.app[AGI]
    resumed_before = agi.resumed_calls
    call = await caller.call("956101")
    await listen_until_quiet(call)
    await call.send_dtmf("1")  # the oil line's menu
    await listen_until_quiet(call)
    assert agi.hand_back() == 1
    _, voiced = await listen_until_quiet(call)  # the apology and the oil menu again
    assert voiced >= 2.0, "the resumed call must speak again"
    assert agi.resumed_calls == resumed_before + 1
    for keys in ("1", "9001010000012345678#", "123456#"):
        await call.send_dtmf(keys)
        await listen_until_quiet(call)
    await call.wait_hangup(timeout=60)
    repo = server.app[REPO]
    for _ in range(50):
        (row,) = await repo.recent(1)
        if row.outcome != "in_progress":
            break
        await asyncio.sleep(0.2)
    assert row.transport == "agi" and row.outcome == "completed", row.outcome
    assert [s["step"] for s in row.path].count("handed_back") == 1
    assert len(steps(row, "resumed")) == 1
    said = [s["detail"].get("text", "") for s in steps(row, "say")]
    assert sum("欢迎致电" in text for text in said) == 1, "greeted once, not again on resume"
    assert "1280.50元" in "".join(said)


async def _hangup_and_row(call: SipCall, server: ServerControl, since: float) -> Any:
    if not call.ended:
        await asyncio.sleep(1.0)
        await call.hangup()
    return await last_call(server, since)


async def test_dtmf_self_service_balance_reads_the_demo_back_end(
    server: ServerControl, caller: SipUserAgent
) -> None:
    """Oil line -> balance bot -> card number and PIN by DTMF -> the balance is spoken, and
    neither the card number nor the PIN is stored in clear."""
    since = time.time()
    call = await caller.call("956100")
    await listen_until_quiet(call)
    for keys in ("1", "1", "9001010000012345678#", "123456#"):
        await call.send_dtmf(keys)
        await listen_until_quiet(call)
    await call.wait_hangup(timeout=60)
    assert call.ended_by_remote
    row = await last_call(server, since)
    assert row.outcome == "completed"
    assert [s["detail"]["bot"] for s in steps(row, "bot")] == ["fuel_balance"]
    assert steps(row, "verified")
    spoken = "".join(s["detail"].get("text", "") for s in steps(row, "say"))
    assert "1280.50元" in spoken
    details = [repr(s["detail"]) for s in row.path]
    assert not [d for d in details if "9001010000012345678" in d or "123456" in d]


async def test_call_resumes_from_redis_after_the_server_dies_mid_call(
    server: ServerControl, caller: SipUserAgent, ami: AmiClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A crash leaves the caller parked in Stasis; the next server process picks the call up
    from its Redis snapshot: apology, the same menu again, and the caller carries on."""
    from ivr.calls.journal import CallJournal
    from ivr.calls.session import CallSession
    from ivr.calls.state import CallStateStore

    since = time.time()
    call = await caller.call("956100")
    await listen_until_quiet(call)
    await call.send_dtmf("1")  # the oil line menu
    await listen_until_quiet(call)
    # a crash: sessions vanish without moving the caller and without clearing their state
    async def nothing(*_a: object, **_k: object) -> bool:
        return True

    with monkeypatch.context() as m:
        m.setattr(CallSession, "_safe_failover", nothing)
        m.setattr(CallStateStore, "delete", nothing)
        m.setattr(CallJournal, "finish", lambda *_a, **_k: None)
        await server.stop()
    events = ami.subscribe()
    try:
        await server.start()
        _, voiced = await listen_until_quiet(call)
        assert voiced >= 2.0, "the resumed call must apologise and repeat the menu"
        await call.send_dtmf("0")  # agent, in the line chosen before the crash
        joined = await wait_queue_join(events, "hotline-oil")
        assert joined.queue == "hotline-oil"
    finally:
        ami.unsubscribe(events)
    row = await _hangup_and_row(call, server, since)
    assert steps(row, "resumed")
    assert [s["detail"].get("choice") for s in steps(row, "menu")] == ["oil", "agent"]
    assert row.outcome == "transferred" and row.queue == "hotline-oil"


async def test_fastagi_runs_the_same_bots(
    server: ServerControl, caller: SipUserAgent, ami: AmiClient
) -> None:
    """956101 goes through AGI(agi://.../hotline) instead of Stasis: the same self-service
    balance by DTMF, then a second call to the oil agent queue through the dialplan."""
    since = time.time()
    call = await caller.call("956101")
    _, voiced = await listen_until_quiet(call)
    assert voiced >= 3.0
    for keys in ("1", "1", "9001010000012345678#", "123456#"):
        await call.send_dtmf(keys)
        await listen_until_quiet(call)
    await call.wait_hangup(timeout=60)
    row = await last_call(server, since)
    assert row.transport == "agi" and row.outcome == "completed"
    assert "1280.50元" in "".join(s["detail"].get("text", "") for s in steps(row, "say"))

    events = ami.subscribe()
    try:
        since = time.time()
        call = await caller.call("956101")
        await listen_until_quiet(call)
        await call.send_dtmf("1")
        await listen_until_quiet(call)
        await call.send_dtmf("0")
        joined = await wait_queue_join(events, "hotline-oil")
        assert joined.variables.get("IVR_HANDOFF_ID", "x") != ""
    finally:
        ami.unsubscribe(events)
    row = await _hangup_and_row(call, server, since)
    assert row.transport == "agi" and row.outcome == "transferred" and row.queue == "hotline-oil"
