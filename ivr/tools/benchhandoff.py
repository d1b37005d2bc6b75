"""``ivr bench handoff``: ring -> screen pop on the agent's desktop, through the real Asterisk.

The stack runs in this process (as ``ivr up`` runs it). agent1's SIP phone (the project's user
agent) registers, agent1's desktop websocket connects, and the test caller places calls that
ask for an agent (1 then 0: the oil line, 转人工). Per call:

* **ring -> pop**: the INVITE arriving at agent1's phone -> the ``offered`` pop arriving on
  agent1's websocket. Negative means the pop was there before the phone rang.
* **key -> ring**: the caller's 0 -> the INVITE at the phone (queue and dial time).

The agent answers, the caller hangs up, the next call starts. Knowledge retrieval at 100,000
entries is measured by ``ivr bench kb``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import click
import numpy as np
from aiohttp import web

from ivr.core.config import Settings
from ivr.sim.desk import dev_desk_headers
from ivr.sim.sipua import SipError, SipPhone, SipUserAgent
from ivr.tools.benchvoice import wait_quiet


@dataclass
class HandoffBench:
    ring_to_pop_ms: list[float] = field(default_factory=list)
    key_to_ring_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


class DesktopReader:
    """Reads agent1's desktop websocket all the time (which also answers the server's heartbeat
    pings) and keeps the arrival time of each ``offered`` pop."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.offered: asyncio.Queue[float] = asyncio.Queue(maxsize=100)  # one per call
        self.task = asyncio.create_task(self._read(), name="desktop-reader")

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data: dict[str, Any] = json.loads(msg.data)
            if data.get("event") == "offered" and not self.offered.full():
                self.offered.put_nowait(time.monotonic())

    async def next_pop(self, timeout: float) -> float:
        if self.task.done():
            raise ConnectionError("the desktop websocket closed")
        return await asyncio.wait_for(self.offered.get(), timeout)

    def drain(self) -> None:
        while not self.offered.empty():
            self.offered.get_nowait()


async def _one_call(caller: SipUserAgent, phone: SipPhone, desk: DesktopReader,
                    report: HandoffBench) -> None:
    call = await caller.call("956100")
    try:
        await wait_quiet(call)
        await call.send_dtmf("1")  # the oil line
        await wait_quiet(call)
        desk.drain()
        pressed = time.monotonic()
        await call.send_dtmf("0")  # an agent, please
        ringing = await phone.next_call(timeout=30)
        pop_at = await desk.next_pop(30)
        report.key_to_ring_ms.append((ringing.offered_at - pressed) * 1000)
        report.ring_to_pop_ms.append((pop_at - ringing.offered_at) * 1000)
        await ringing.answer()
        await asyncio.sleep(0.3)
        await call.hangup()
        with contextlib.suppress(TimeoutError):
            await ringing.wait_hangup(5)
    finally:
        if not call.ended:
            with contextlib.suppress(SipError, OSError, TimeoutError):
                await call.hangup()


async def bench_handoff(settings: Settings, *, calls: int,
                        echo: Callable[[str], object] = print) -> HandoffBench:
    a = settings.asterisk
    report = HandoffBench()
    phone = SipPhone(server_host=a.bind_host, server_port=a.sip_port, username="agent1",
                     password=a.agent_password.get_secret_value(), display_name="Agent 1")
    caller = SipUserAgent(server_host=a.bind_host, server_port=a.sip_port, username="caller",
                          password=a.caller_password.get_secret_value())
    await phone.start()
    await caller.start()
    web_url = f"http://{settings.web.host}:{settings.web.port}"
    try:
        await phone.register(120)
        async with aiohttp.ClientSession() as http:
            auth = await dev_desk_headers(http, settings, "agent1")
            async with http.ws_connect(f"{web_url}/agent/ws?agent=agent1", headers=auth,
                                       heartbeat=20) as ws:
                desk = DesktopReader(ws)
                for i in range(calls):
                    try:
                        await _one_call(caller, phone, desk, report)
                    except (SipError, OSError, TimeoutError, ConnectionError) as exc:
                        report.failures.append(f"call {i + 1}: {type(exc).__name__}: {exc}")
                        if len(report.failures) >= 3:
                            break
                    if (i + 1) % 5 == 0:
                        echo(f"  {i + 1} calls")
                    await asyncio.sleep(0.5)
                desk.task.cancel()
                await asyncio.gather(desk.task, return_exceptions=True)
    finally:
        await caller.close()
        await phone.close()
    return report


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def print_handoff_bench(r: HandoffBench, command: str,
                        echo: Callable[[str], object] = print) -> None:
    n = len(r.ring_to_pop_ms)
    echo(f"handoff bench: {n} calls transferred to agent1 ({len(r.failures)} failed)")
    for f in r.failures:
        echo(f"  failed: {f}")
    if n:
        v = r.ring_to_pop_ms
        echo(f"  agent's phone rings -> pop on the desktop: p50 {_p(v, 50):.1f} ms, "
             f"p95 {_p(v, 95):.1f} ms, max {max(v):.1f} ms "
             f"(negative: the pop came first); pops before the ring: "
             f"{sum(x <= 0 for x in v)}/{n}")
        k = r.key_to_ring_ms
        echo(f"  caller presses 0 -> agent's phone rings: p50 {_p(k, 50):.0f} ms, "
             f"p95 {_p(k, 95):.0f} ms")
    echo("  knowledge retrieval at 100,000 entries: `ivr bench kb --entries 100000`")
    echo(f"  command: {command}")


@click.command("handoff")
@click.option("--calls", type=int, default=30, show_default=True)
@click.pass_obj
def handoff_cmd(settings: Settings, calls: int) -> None:
    """Ring -> screen pop on the agent desktop over real calls (p50/p95). Starts the whole
    stack in this process (stop `ivr up` first: they share the ports)."""
    from ivr.app.server import serve

    command = " ".join(shlex.quote(a) for a in ["ivr", *sys.argv[1:]])

    async def run(_app: web.Application) -> int:
        click.echo(f"placing {calls} calls that ask for an agent")
        report = await bench_handoff(settings, calls=calls, echo=click.echo)
        print_handoff_bench(report, command, click.echo)
        return 0 if report.ring_to_pop_ms else 1

    def progress(msg: str) -> None:
        click.echo(msg, err=True)

    sys.exit(asyncio.run(serve(settings, progress=progress, then=run)))
