"""``ivr drill cluster``: the screen pop across workers (a call handled by worker 1 pops on an
agent desktop connected to worker 2), and a spoken request on each box.

agent1's phone registers with box 1 (its queues are box 1's app_queue); agent1's desktop
websocket is open on worker 2's web server. A caller reaches box 1 through Kamailio (calls that
land on box 2 are hung up at once; at most five rounds of four), presses 1 (the oil line) and
0 (an agent). Box 1 rings agent1's phone; worker 1 builds the pop on AMI's AgentCalled and
publishes it on Redis; worker 2's desktop must receive it. Figures: whether it arrived, and
the ring-to-pop time (negative: the pop came first).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from ivr.sim.desk import dev_desk_headers
from ivr.sim.sipua import SipCall, SipError, SipPhone
from ivr.tools.cluster import HOST_IP, Cluster
from ivr.tools.drillcluster import KEY_S, _held, _ua
from ivr.tools.drillvoice import synthesized


@dataclass
class PopReport:
    arrived: bool = False
    ring_to_pop_ms: float | None = None
    failures: list[str] = field(default_factory=list)


async def _offered(ws: aiohttp.ClientWebSocketResponse, got: asyncio.Future[float]) -> None:
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.TEXT:
            data: dict[str, Any] = json.loads(msg.data)
            if data.get("event") == "offered" and not got.done():
                got.set_result(time.monotonic())


async def pop_across(cl: Cluster) -> PopReport:
    report = PopReport()
    box1, worker2 = cl.boxes[0], cl.boxes[1]
    a = box1.asterisk
    phone = SipPhone(server_host=a.bind_host, server_port=a.sip_port, username="agent1",
                     password=a.agent_password.get_secret_value(), local_host=HOST_IP,
                     display_name="Agent 1")
    ua = _ua(cl)
    await phone.start()
    await ua.start()
    reader: asyncio.Task[None] | None = None
    try:
        await phone.register(120)
        async with aiohttp.ClientSession() as http:
            auth = await dev_desk_headers(http, worker2, "agent1")
            url = f"http://{worker2.web.host}:{worker2.web.port}/agent/ws?agent=agent1"
            async with http.ws_connect(url, headers=auth, heartbeat=20) as ws:
                got: asyncio.Future[float] = asyncio.get_running_loop().create_future()
                reader = asyncio.create_task(_offered(ws, got), name="desktop-on-worker2")
                held = await _held(cl, ua, {1})  # at the oil menu on box 1
                if 1 not in held:
                    report.failures.append("pop: no call reached box 1")
                    return report
                call = held[1]
                await call.send_dtmf("0")  # an agent, please
                ringing = await phone.next_call(timeout=30)
                pop_at = await asyncio.wait_for(got, 15)
                report.arrived = True
                report.ring_to_pop_ms = round((pop_at - ringing.offered_at) * 1000, 1)
                await ringing.answer()
                await asyncio.sleep(KEY_S)
                await call.hangup()
                with contextlib.suppress(TimeoutError):
                    await ringing.wait_hangup(5)
    except (SipError, OSError, TimeoutError, aiohttp.ClientError) as exc:
        report.failures.append(f"pop across workers: {type(exc).__name__}: {exc}")
    finally:
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        await ua.close()
        await phone.close()
    return report


SPOKEN = "查一下我的加油卡还有多少钱。"  # a request the recogniser hears well (drillvoice)


async def speech_on_each_box(cl: Cluster) -> tuple[int, list[str]]:
    """A spoken request on each box (rendered by the configured TTS, played over RTP from the
    caller): returns how many records have a recognised ``speech`` step, and the failures."""
    import wave

    from ivr.sim.demo import listen_until_quiet

    path = await synthesized(cl.boxes[0], SPOKEN)
    with wave.open(str(path)) as w:
        pcm = w.readframes(w.getnframes())
    failures: list[str] = []
    since = time.time()
    ua = _ua(cl)
    await ua.start()
    try:
        held = await _held(cl, ua, {1, 2}, key=None, listen_s=30)

        async def speak(call: SipCall) -> None:
            await call.play(pcm)
            await listen_until_quiet(call, max_s=15)  # the reply
            await call.hangup()

        await asyncio.gather(*(speak(c) for c in held.values()))
    finally:
        await ua.close()
    rows = await cl.repo.all_closed_since(since, len(held))
    heard = sum(1 for r in rows if any(
        st["step"] == "speech" and st["detail"].get("text") for st in r.path))
    if len(held) < len(cl.boxes) or heard < len(held):
        failures.append(f"speech: {len(held)} boxes reached, {heard} requests recognised")
    return heard, failures
