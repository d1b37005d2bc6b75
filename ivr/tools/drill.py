"""``ivr drill``: faults injected into the running stack, with figures (apart from the tests).

- ``ivr drill fuzz [--examples N]``: every parser of outside input (``ivr.tools.fuzz``) with N
  generated inputs each: nothing but its documented error may escape.
- ``ivr drill ari-blip [--calls N]``: starts the stack in this process, places N calls through
  the real Asterisk and drops the ARI events websocket while each one's greeting plays; a call
  passes when it goes on: the menu is heard, both its keys are taken after the drop, it is
  greeted once (not started over) and reaches the agent queue (or the callback offer when no
  agent is logged in) without an error.
- ``ivr drill all [--json]``: both, one summary.

Each drill is bounded in count and time, and sends traffic only to loopback.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import click
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


def fuzz(examples: int, echo: Any = print) -> list[dict[str, Any]]:
    from ivr.tools.fuzz import TARGETS, run_target

    out = []
    for target in TARGETS:
        r = run_target(target, examples)
        echo(f"  {r.name:12} {r.examples:6} inputs {r.seconds:6.1f} s  "
             + ("held" if not r.escaped else "ESCAPED: " + r.escaped[0]))
        out.append(asdict(r))
    return out


def _blip_summary(r: BlipReport) -> dict[str, Any]:
    rc = sorted(r.reconnect_s)
    return {"calls": r.calls, "went_on": r.went_on, "failures": r.failures,
            "reconnect_s_max": round(rc[-1], 2) if rc else None}


@click.group("drill")
def drill_group() -> None:
    """Faults injected into the stack, with figures (see ivr/tools/drill.py)."""


@drill_group.command("fuzz")
@click.option("--examples", type=int, default=2000, show_default=True)
def fuzz_cmd(examples: int) -> None:
    """Every parser of outside input with generated inputs: only its own error may escape."""
    click.echo(f"fuzz: {examples} inputs per parser")
    results = fuzz(examples, click.echo)
    sys.exit(1 if any(r["escaped"] for r in results) else 0)


def _serve_drill(settings: Settings, calls: int, *, with_fuzz: int = 0,
                 as_json: bool = False) -> int:
    from ivr.app.server import serve

    command = " ".join(shlex.quote(a) for a in ["ivr", *sys.argv[1:]])
    summary: dict[str, Any] = {"command": command}
    echo = (lambda _m: None) if as_json else click.echo

    async def run(app: web.Application) -> int:
        echo(f"ari-blip: {calls} calls, the ARI websocket dropped during each greeting")
        report = await ari_blip(app, settings, calls=calls, echo=echo)
        summary["ari-blip"] = _blip_summary(report)
        echo(f"ari-blip: {report.went_on}/{report.calls} calls went on; reconnect at most "
             f"{summary['ari-blip']['reconnect_s_max']} s")
        for failure in report.failures:
            echo(f"  {failure}")
        return 0 if report.went_on == report.calls else 1

    rc = asyncio.run(serve(settings, progress=lambda m: echo(m), then=run))
    if with_fuzz:
        summary["fuzz"] = fuzz(with_fuzz, echo)
        rc = rc or int(any(r["escaped"] for r in summary["fuzz"]))
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False, indent=2))
    return int(rc)


@drill_group.command("ari-blip")
@click.option("--calls", type=int, default=5, show_default=True)
@click.pass_obj
def ari_blip_cmd(settings: Settings, calls: int) -> None:
    """Drop the ARI websocket mid-call: every call must go on (starts the stack: stop `ivr up`
    first)."""
    sys.exit(_serve_drill(settings, calls))


@drill_group.command("all")
@click.option("--calls", type=int, default=5, show_default=True)
@click.option("--examples", type=int, default=2000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON summary on stdout.")
@click.pass_obj
def all_cmd(settings: Settings, calls: int, examples: int, as_json: bool) -> None:
    """Every drill in turn."""
    sys.exit(_serve_drill(settings, calls, with_fuzz=examples, as_json=as_json))


def register(main: click.Group) -> None:
    main.add_command(drill_group)
