"""A caller beyond ``calls.capacity`` (the ``overload`` drill, short form): not turned away,
not left in silence, no bot and no recogniser: an announcement, then the general agent queue
with a screen pop that says why. The calls already up are untouched."""

from __future__ import annotations

import asyncio
import time

import pytest

from ivr.core.lines import queue_for
from ivr.sim.demo import listen_until_quiet
from ivr.sim.sipua import SipUserAgent
from ivr.web.keys import CALLS, REPO
from tests.conftest import ServerControl

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]


async def test_the_caller_beyond_capacity_goes_straight_to_an_agent(
        server: ServerControl, caller: SipUserAgent) -> None:
    assert server.app is not None
    calls, repo = server.app[CALLS], server.app[REPO]
    capacity, shed = calls.capacity, calls.shed_calls
    calls.capacity = 1
    try:
        first = await caller.call("956100")
        await first.wait_until_heard_seconds(1.0, 20)  # in its dialog: the greeting plays
        since = time.time()
        second = await caller.call("956100")
        heard, voiced = await listen_until_quiet(second)  # the announcement, then the queue
        assert voiced >= 1.5, f"heard {heard:.1f} s, {voiced:.1f} s voiced"
        assert calls.shed_calls == shed + 1
        await asyncio.sleep(1.0)
        await second.hangup()
        row = None
        for _ in range(50):
            rows = await repo.recent(2)
            row = next((r for r in rows if r.started_at.timestamp() >= since - 0.5
                        and r.ended_at), None)
            if row is not None:
                break
            await asyncio.sleep(0.2)
        assert row is not None
        assert row.outcome == "transferred" and row.queue == queue_for("general")
        names = [s["step"] for s in row.path]
        assert "overload" in names and "speech" not in names
        assert not first.ended  # the call already up goes on
        await first.hangup()
    finally:
        calls.capacity = capacity
