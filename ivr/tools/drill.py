"""``ivr drill``: faults injected into the running stack, with figures (apart from the tests).

- ``fuzz [--examples N]``: every parser of outside input (``ivr.tools.fuzz``) with N generated
  inputs each: nothing but its documented error may escape.
- ``ari-blip [--calls N]``: the ARI events websocket dropped during each call's greeting
  (``ivr.tools.drillblip``).
- ``asterisk-restart``: Asterisk restarted under the server; how long until a new call is
  greeted (``ivr.tools.drillrestart``).
- ``server-kill [--calls N] [--surveys M]``: ``kill -9`` of a server process with N calls up
  (and M survey calls answering, ``ivr.tools.drillsurveykill``), then a restart:
  every caller resumed at their question (``ivr.tools.drillrestart``).
- ``load [--calls N]``: N keys callers from SIPp at once (``ivr.tools.drillload``).
- ``long-call [--turns N]``: one call of N spoken turns, latency by turn index;
  ``speech-load``: speaking callers at once until p95 passes 1.2 s (``ivr.tools.drillvoice``).
- ``remote-asterisk``: Asterisk in a network namespace of its own, a speech call over ARI and a
  keys call over FastAGI with every address from settings (``ivr.tools.drillremote``).
- ``postgres|redis|llm|asr [--calls N] [--delay S]``, ``deps`` (all four): the dependency down,
  then slow, under live callers; they must go on with at most 3 s of silence and nothing may be
  lost once it is back (``ivr.tools.drilldeps``).
- ``all [--json]``: each in turn (load and server-kill in short forms unless asked), one summary.

The drills that need the stack start it in this process (stop ``ivr up`` first); server-kill
runs the server as a child process on the Asterisk, PostgreSQL and Redis it holds. Each drill
is bounded in count and time, and sends traffic only to loopback.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

import click
from aiohttp import web

from ivr.core.config import Settings

Echo = Callable[[str], None]
# one drill inside the running stack: (summary, passed, its one-line result)
StackDrill = Callable[[web.Application, Echo], Awaitable[tuple[dict[str, Any], bool, str]]]


def fuzz(examples: int, echo: Any = print) -> list[dict[str, Any]]:
    from ivr.tools.fuzz import TARGETS, run_target

    out = []
    for target in TARGETS:
        r = run_target(target, examples)
        echo(f"  {r.name:12} {r.examples:6} inputs {r.seconds:6.1f} s  "
             + ("held" if not r.escaped else "ESCAPED: " + r.escaped[0]))
        out.append(asdict(r))
    return out


def blip_drill(settings: Settings, calls: int) -> StackDrill:
    async def run(app: web.Application, echo: Echo) -> tuple[dict[str, Any], bool, str]:
        from ivr.tools.drillblip import ari_blip, blip_summary

        echo(f"ari-blip: {calls} calls, the ARI websocket dropped during each greeting")
        report = await ari_blip(app, settings, calls=calls, echo=echo)
        s = blip_summary(report)
        return s, report.went_on == report.calls, (
            f"ari-blip: {report.went_on}/{report.calls} calls went on; reconnect at most "
            f"{s['reconnect_s_max']} s")
    return run


def asterisk_drill(settings: Settings) -> StackDrill:
    async def run(app: web.Application, echo: Echo) -> tuple[dict[str, Any], bool, str]:
        from ivr.tools.drillrestart import asterisk_restart

        echo("asterisk-restart: Asterisk restarted under the server")
        s = (await asterisk_restart(app, settings, echo=echo)).summary()
        return s, not s["failures"], (
            f"asterisk-restart: Asterisk back in {s['restart_s']} s, ARI reconnected at "
            f"{s['reconnect_s']} s, a new call greeted at {s['first_call_s']} s "
            f"({s['tries']} tries)")
    return run


def load_drill(settings: Settings, calls: int, rate: float, listen_s: float,
               hold_s: float) -> StackDrill:
    async def run(app: web.Application, echo: Echo) -> tuple[dict[str, Any], bool, str]:
        from ivr.tools.drillload import load

        echo(f"load: {calls} keys callers from SIPp")
        report = await load(app, settings, calls=calls, rate=rate, listen_s=listen_s,
                            hold_s=hold_s, echo=echo)
        o = report.summary()
        return o, report.failed == 0, (
            f"load: {o['passed']}/{o['calls']} passed ({o['shed']} of them shed to the queue "
            f"at capacity); {o['sip_most_at_once']} calls up at once, {o['most_at_once']} of "
            f"them in the bots; setup p50 {o['setup_ms_p50']} ms, p95 {o['setup_ms_p95']} ms; "
            f"outcomes {o['outcomes']}; SIPp {o['sipp_ok']} ok / {o['sipp_failed']} failed; "
            f"server CPU {o['cpu_share']} cores (peak {o['cpu_share_peak']}), RSS "
            f"{o['rss_mb_start']} -> {o['rss_mb_peak']} MB; Asterisk CPU "
            f"{o['asterisk_cpu_share']} cores; loop lag p95 {o['loop_lag_ms_p95']} ms, max "
            f"{o['loop_lag_ms_max']} ms" + "".join(f"\n  {n}" for n in o["notes"]))
    return run


def long_call_drill(settings: Settings, turns: int) -> StackDrill:
    async def run(app: web.Application, echo: Echo) -> tuple[dict[str, Any], bool, str]:
        from ivr.tools.drillvoice import long_call

        echo(f"long-call: one call of {turns} spoken turns")
        s = (await long_call(app, settings, turns=turns, echo=echo)).summary()
        return s, not s["failures"], (
            f"long-call: {s['answered']}/{s['turns']} turns answered; reply p50 first five "
            f"{s['first5_p50_ms']} ms, last five {s['last5_p50_ms']} ms (drift {s['drift']})")
    return run


def speech_load_drill(settings: Settings, ladder: tuple[int, ...]) -> StackDrill:
    async def run(app: web.Application, echo: Echo) -> tuple[dict[str, Any], bool, str]:
        from ivr.tools.drillvoice import speech_load

        echo(f"speech-load: speaking callers at once, {'/'.join(map(str, ladder))}")
        s = (await speech_load(app, settings, ladder=ladder, echo=echo)).summary()
        return s, s["ceiling"] > 0, (
            f"speech-load: p95 reply within {s['p95_limit_ms']:.0f} ms up to {s['ceiling']} "
            "speaking callers at once")
    return run


def remote_drill(settings: Settings) -> StackDrill:
    async def run(app: web.Application, echo: Echo) -> tuple[dict[str, Any], bool, str]:
        from ivr.tools.drillremote import remote_calls

        a = settings.asterisk
        echo(f"remote-asterisk: Asterisk at {a.bind_host} in namespace {a.netns}, this server "
             f"at {a.media_host}")
        s = (await remote_calls(app, settings, echo=echo)).summary()
        return s, not s["failures"], (
            f"remote-asterisk: speech call over ARI {'ok' if s['speech_call'] else 'FAILED'} "
            f"(heard {s['heard']!r}), keys call over FastAGI "
            f"{'ok' if s['agi_call'] else 'FAILED'}")
    return run


def in_stack(settings: Settings, drills: dict[str, StackDrill], summary: dict[str, Any],
             echo: Echo) -> int:
    """Start the stack in this process and run ``drills`` in order; their summaries go into
    ``summary``; returns 0 when every one passed."""
    from ivr.app.server import serve

    async def run(app: web.Application) -> int:
        rc = 0
        for name, drill in drills.items():
            result, ok, line = await drill(app, echo)
            summary[name] = result
            echo(line)
            for failure in result.get("failures", []):
                echo(f"  {failure}")
            rc = rc or int(not ok)
        return rc

    return int(asyncio.run(serve(settings, progress=echo, then=run)))


def server_kill(settings: Settings, calls: int, summary: dict[str, Any], echo: Echo, *,
                surveys: int = 0) -> int:
    from ivr.tools.drillrestart import drill_stack
    from ivr.tools.drillrestart import server_kill as drill

    async def run() -> dict[str, Any]:
        async with drill_stack(settings) as (pg_url, redis_url, repo):
            echo(f"server-kill: {calls} calls at a menu"
                 f"{f' and {surveys} survey calls answering' if surveys else ''}, then kill -9 "
                 f"and a restart")
            report = await drill(settings, pg_url=pg_url, redis_url=redis_url, repo=repo,
                                 calls=calls, surveys=surveys, echo=echo)
        return report.summary()

    s = summary["server-kill"] = asyncio.run(run())
    echo(f"server-kill: {s['went_on']}/{s['calls']} calls resumed and went on; "
         f"{s['silent_hangups']} silent hang-ups; restart {s['restart_s']} s; longest silence "
         f"after the kill p50 {s['silence_s_p50']} s, max {s['silence_s_max']} s")
    if (cut := s.get("surveys")) is not None:
        echo(f"server-kill: {cut['surveys']} survey calls cut: {cut['answers_before']} answers "
             f"before the kill, {cut['answers_after']} after; {cut['settled']} attempts "
             f"settled, {cut['told']} customers told and hung up on, contacts {cut['statuses']}")
    for failure in s["failures"]:
        echo(f"  {failure}")
    return 0 if s["went_on"] == s["calls"] and not s["failures"] else 1


def deps(settings: Settings, phases: list[tuple[str, Any]], calls: int, delay_s: float,
         summary: dict[str, Any], echo: Echo) -> int:
    """The dependency drills (``ivr.tools.drilldeps``) on PostgreSQL and Redis held here."""
    from ivr.tools.drilldeps import dependency_drill
    from ivr.tools.drillrestart import drill_stack

    held = settings.model_copy(deep=True)
    held.asterisk.managed = False  # the drill's server starts its own

    async def run() -> list[Any]:
        async with drill_stack(held) as (pg_url, redis_url, repo):
            return await dependency_drill(settings, pg_url=pg_url, redis_url=redis_url,
                                          repo=repo, phases=phases, calls=calls,
                                          delay_s=delay_s, echo=echo)

    done = asyncio.run(run())
    for phase in done:
        summary[f"{phase.dependency}-{phase.mode}"] = phase.summary()
    for phase in done:
        echo(phase.line())
        for failure in phase.failures:
            echo(f"  {failure}")
    return 0 if done and all(p.passed for p in done) else 1


def _finish(rc: int, summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        command = " ".join(shlex.quote(a) for a in ["ivr", *sys.argv[1:]])
        click.echo(json.dumps({"command": command, **summary}, ensure_ascii=False, indent=2))
    sys.exit(rc)


def _echo(as_json: bool) -> Echo:
    return (lambda _m: None) if as_json else click.echo


def _one(settings: Settings, name: str, drill: StackDrill, as_json: bool) -> None:
    """A command of one drill in the stack: run it, print its summary, exit with its verdict."""
    summary: dict[str, Any] = {}
    _finish(in_stack(settings, {name: drill}, summary, _echo(as_json)), summary, as_json)


json_option = click.option("--json", "as_json", is_flag=True, help="One JSON summary on stdout.")


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


@drill_group.command("ari-blip")
@click.option("--calls", type=int, default=5, show_default=True)
@json_option
@click.pass_obj
def ari_blip_cmd(settings: Settings, calls: int, as_json: bool) -> None:
    """Drop the ARI websocket mid-call: every call must go on."""
    _one(settings, "ari-blip", blip_drill(settings, calls), as_json)


@drill_group.command("asterisk-restart")
@json_option
@click.pass_obj
def asterisk_restart_cmd(settings: Settings, as_json: bool) -> None:
    """Restart Asterisk under the server: it reconnects and a new call is greeted."""
    _one(settings, "asterisk-restart", asterisk_drill(settings), as_json)


@drill_group.command("server-kill")
@click.option("--calls", type=int, default=20, show_default=True)
@click.option("--surveys", type=click.IntRange(0, 20), default=0, show_default=True,
              help="Survey calls answering by keys when the server is killed: the answers "
                   "given must be kept.")
@json_option
@click.pass_obj
def server_kill_cmd(settings: Settings, calls: int, surveys: int, as_json: bool) -> None:
    """kill -9 the server with calls up and start it again: every caller must be resumed at
    their question (and every survey's answers kept)."""
    summary: dict[str, Any] = {}
    _finish(server_kill(settings, calls, summary, _echo(as_json), surveys=surveys), summary,
            as_json)


@drill_group.command("remote-asterisk")
@json_option
@click.pass_obj
def remote_asterisk_cmd(settings: Settings, as_json: bool) -> None:
    """Asterisk in a network namespace of its own (another host on a private link): a speech
    call over ARI and a keys call over FastAGI (needs root: ip netns)."""
    from ivr.tools.drillremote import remote_link, remote_settings

    with remote_link() as (netns, host_ip, ast_ip):
        remote = remote_settings(settings, netns, host_ip, ast_ip)
        summary: dict[str, Any] = {}
        rc = in_stack(remote, {"remote-asterisk": remote_drill(remote)}, summary,
                      _echo(as_json))
    _finish(rc, summary, as_json)


@drill_group.command("long-call")
@click.option("--turns", type=int, default=20, show_default=True)
@json_option
@click.pass_obj
def long_call_cmd(settings: Settings, turns: int, as_json: bool) -> None:
    """One call of many spoken turns: replies must not slow down turn after turn."""
    _one(settings, "long-call", long_call_drill(settings, turns), as_json)


@drill_group.command("speech-load")
@click.option("--ladder", default="1,2,4,6,8", show_default=True,
              help="Speaking callers at once, level by level.")
@json_option
@click.pass_obj
def speech_load_cmd(settings: Settings, ladder: str, as_json: bool) -> None:
    """Speaking callers at once, more each level: the most whose p95 reply stays <= 1.2 s."""
    try:
        levels = tuple(int(x) for x in ladder.split(",") if x.strip())
    except ValueError as exc:
        raise click.BadParameter("a list of numbers, like 1,2,4,6,8") from exc
    _one(settings, "speech-load", speech_load_drill(settings, levels), as_json)


load_options = [
    click.option("--rate", type=float, default=5.0, show_default=True,
                 help="New calls a second."),
    click.option("--listen", "listen_s", type=float, default=14.0, show_default=True,
                 help="Seconds of prompts before the caller presses 0."),
    click.option("--hold", "hold_s", type=float, default=45.0, show_default=True,
                 help="Seconds in the queue before hanging up."),
]


@drill_group.command("load")
@click.option("--calls", type=int, default=200, show_default=True)
@load_options[0]
@load_options[1]
@load_options[2]
@json_option
@click.pass_obj
def load_cmd(settings: Settings, calls: int, rate: float, listen_s: float, hold_s: float,
             as_json: bool) -> None:
    """Many keys callers at once from SIPp (raise calls.capacity to keep them all in the
    bots: IVR_CALLS__CAPACITY=250)."""
    _one(settings, "load", load_drill(settings, calls, rate, listen_s, hold_s), as_json)


def _deps_command(name: str) -> None:
    which = ("postgres", "redis", "llm", "asr") if name == "deps" else (name,)

    @drill_group.command(name, help=(
        "PostgreSQL, Redis, the LLM endpoint and the recogniser in turn" if name == "deps"
        else {"postgres": "PostgreSQL", "redis": "Redis", "llm": "The LLM endpoint",
              "asr": "The recogniser"}[name])
        + " down, then slow, under live callers: they must go on (keys, a queue) with at "
        "most 3 s of silence, and nothing may be lost once it is back.")
    @click.option("--calls", type=int, default=3, show_default=True,
                  help="Callers in each phase.")
    @click.option("--delay", "delay_s", type=float, default=10.0, show_default=True,
                  help="Seconds each answer is held when slow.")
    @click.option("--modes", default="down,slow", show_default=True)
    @json_option
    @click.pass_obj
    def command(settings: Settings, calls: int, delay_s: float, modes: str,
                as_json: bool) -> None:
        chosen = [m.strip() for m in modes.split(",") if m.strip()]
        if not chosen or any(m not in ("down", "slow") for m in chosen):
            raise click.BadParameter("down, slow or down,slow", param_hint="--modes")
        summary: dict[str, Any] = {}
        phases = [(d, m) for d in which for m in chosen]
        _finish(deps(settings, phases, calls, delay_s, summary, _echo(as_json)), summary,
                as_json)


for _name in ("postgres", "redis", "llm", "asr", "deps"):
    _deps_command(_name)


@drill_group.command("all")
@click.option("--calls", type=int, default=5, show_default=True, help="ari-blip's calls.")
@click.option("--load-calls", type=int, default=20, show_default=True)
@click.option("--kill-calls", type=int, default=5, show_default=True)
@click.option("--examples", type=int, default=2000, show_default=True)
@json_option
@click.pass_obj
def all_cmd(settings: Settings, calls: int, load_calls: int, kill_calls: int, examples: int,
            as_json: bool) -> None:
    """Every drill in turn (short forms of load and server-kill by default)."""
    echo = _echo(as_json)
    summary: dict[str, Any] = {}
    rc = in_stack(settings, {
        "ari-blip": blip_drill(settings, calls),
        "load": load_drill(settings, load_calls, 10.0, 8.0, 10.0),
        "asterisk-restart": asterisk_drill(settings),
    }, summary, echo)
    rc = server_kill(settings, kill_calls, summary, echo) or rc
    rc = deps(settings, [(d, m) for d in ("postgres", "redis", "llm", "asr")
                         for m in ("down", "slow")], 2, 10.0, summary, echo) or rc
    echo(f"fuzz: {examples} inputs per parser")
    summary["fuzz"] = fuzz(examples, echo)
    rc = rc or int(any(r["escaped"] for r in summary["fuzz"]))
    _finish(rc, summary, as_json)


def register(main: click.Group) -> None:
    main.add_command(drill_group)
