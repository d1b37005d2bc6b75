"""The ARI events websocket drops mid-call (the ``ari-blip`` drill, short form): the caller
never notices. The prompt playing during the drop still ends (asked over REST), the call goes
on after the reconnect, the next key is taken, and the call reaches its queue as one call."""

from __future__ import annotations

import asyncio
import time

import pytest

from ivr.sim.demo import listen_until_quiet
from ivr.sim.sipua import SipUserAgent
from ivr.web.keys import ARI, CALLS
from tests.conftest import ServerControl
from tests.e2e.test_call_flow import last_call, steps

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]


async def test_a_websocket_drop_mid_prompt_is_not_noticed(
        server: ServerControl, caller: SipUserAgent) -> None:
    assert server.app is not None
    ari, calls = server.app[ARI], server.app[CALLS]
    reconnects, kept = ari.reconnects, calls.ari_blips["calls_kept"]
    since = time.time()
    call = await caller.call("956100")
    await asyncio.sleep(1.5)  # the greeting is playing
    assert await ari.drop_events()
    heard, voiced = await listen_until_quiet(call)  # the greeting and the menu, to their end
    assert voiced >= 2.0, f"heard {heard:.1f} s, {voiced:.1f} s voiced"
    await asyncio.wait_for(ari.connected.wait(), 10)
    assert ari.reconnects == reconnects + 1
    await call.send_dtmf("1")  # the oil line: taken after the reconnect
    _, voiced_oil = await listen_until_quiet(call)
    assert voiced_oil >= 1.5
    await call.send_dtmf("0")  # an agent
    await listen_until_quiet(call)  # 正在为您转接…, then the queue
    await asyncio.sleep(1.0)
    await call.hangup()
    row = await last_call(server, since)
    assert calls.ari_blips["calls_kept"] >= kept + 1
    assert row.outcome == "transferred" and row.queue == "hotline-oil", "\n".join(
        str(s) for s in row.path)
    assert [s["detail"]["digits"] for s in steps(row, "dtmf")][:2] == ["1", "0"]
    greetings = [s for s in steps(row, "say") if s["detail"].get("prompt") == "greeting"]
    assert len(greetings) == 1  # went on where it was: not resumed from the start


async def test_a_call_handed_back_is_resumed_by_the_next_holder(
        server: ServerControl, caller: SipUserAgent) -> None:
    """A worker that loses its box's lease lets its calls go (``CallManager.hand_back``,
    ``ivr.calls.failover``); whoever serves the box next resumes each at its question from
    Redis, as one call: here the same manager adopts it again."""
    assert server.app is not None
    calls = server.app[CALLS]
    since = time.time()
    call = await caller.call("956100")
    await listen_until_quiet(call, max_s=12)  # the greeting and the menu
    await call.send_dtmf("1")  # the oil menu: saved in Redis as the call's question
    await asyncio.sleep(1.5)
    assert await calls.hand_back() == 1 and calls.active == 0
    assert await calls.adopt_orphans() == 1
    _, voiced = await listen_until_quiet(call, max_s=8)  # the apology, then the oil menu
    assert voiced >= 1.0 and not call.ended
    await call.hangup()
    row = await last_call(server, since)
    names = [s["step"] for s in row.path]
    assert names.count("handed_back") == 1 and names.count("resumed") == 1, names
    assert names.index("handed_back") < names.index("resumed")
    menus = [s["detail"].get("choice") for s in steps(row, "menu")]
    assert menus == ["oil"], names  # resumed at the oil menu, not from the start
    assert len([s for s in steps(row, "say") if s["detail"].get("prompt") == "greeting"]) == 1
