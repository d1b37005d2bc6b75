"""``ivr drill ari-blip``: the ARI events websocket dropped while each call's greeting plays.

The drill places N calls through the real Asterisk in the running stack; a call passes when it
goes on: the menu is heard, both its keys are taken after the drop, it is greeted once (not
started over) and reaches the agent queue (or the callback offer when no agent is logged in)
without an error. Figures: calls that went on, the reconnect time.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ivr.core.config import Settings


@dataclass
class BlipReport:
    calls: int = 0
    went_on: int = 0  # reached the queue as one call after the drop
    failures: list[str] = field(default_factory=list)
    reconnect_s: list[float] = field(default_factory=list)  # drop -> events connected again


async def ari_blip(app: web.Application, settings: Settings, *, calls: int,
                   echo: Any = print) -> BlipReport:
    from ivr.sim.demo import listen_until_quiet
    from ivr.sim.sipua import SipUserAgent
    from ivr.web.keys import ARI, REPO

    a = settings.asterisk
    ari, repo = app[ARI], app[REPO]
    report = BlipReport()
    ua = SipUserAgent(server_host=a.bind_host, server_port=a.sip_port, username="caller",
                      password=a.caller_password.get_secret_value())
    await ua.start()
    try:
        for i in range(calls):
            report.calls += 1
            since = time.time()
            try:
                call = await ua.call("956100")
                await asyncio.sleep(1.5)  # the greeting plays
                dropped = time.perf_counter()
                if not await ari.drop_events():
                    raise RuntimeError("no ARI websocket to drop")
                await asyncio.sleep(0.05)
                await asyncio.wait_for(ari.connected.wait(), 15)
                report.reconnect_s.append(time.perf_counter() - dropped)
                _, voiced = await listen_until_quiet(call)
                await call.send_dtmf("1")
                _, voiced_menu = await listen_until_quiet(call)
                await call.send_dtmf("0")
                await listen_until_quiet(call)  # the transfer prompt, then the queue
                await asyncio.sleep(1.0)
                await call.hangup()
                row = await repo.closed_since(since)
                if row is None:
                    raise RuntimeError("the call was not recorded")
                steps = [(s.get("step"), s.get("detail") or {}) for s in row.path]
                greeted = sum(1 for step, d in steps if step == "say"
                              and d.get("prompt") == "greeting")
                keys = [d.get("digits") for step, d in steps if step == "dtmf"]
                # went on: both keys taken after the drop, greeted once (not started over),
                # and no error; then the queue or the callback offer (no agent logged in)
                if keys[:2] != ["1", "0"] or greeted != 1 or any(
                        step in ("error", "failover") for step, _ in steps):
                    raise RuntimeError(f"keys {keys}, greeted {greeted}x, outcome "
                                       f"{row.outcome}, {voiced:.1f}/{voiced_menu:.1f} s voiced")
                report.went_on += 1
            except (RuntimeError, TimeoutError, OSError) as exc:
                report.failures.append(f"call {i + 1}: {exc}")
            echo(f"  call {i + 1}: {'went on' if len(report.failures) < i + 1 else 'FAILED'}")
    finally:
        await ua.close()
    return report


def blip_summary(r: BlipReport) -> dict[str, Any]:
    rc = sorted(r.reconnect_s)
    return {"calls": r.calls, "went_on": r.went_on, "failures": r.failures,
            "reconnect_s_max": round(rc[-1], 2) if rc else None}
