"""``ivr bench chat``: the web chat (the online channel) with N customers at once over websockets.

The server is ``ivr up --chat-only`` as a child process (its own CPU and memory, read from
/proc), on a home of its own (``<home>/bench-chat``: its embedded PostgreSQL and Redis unless the
settings name a DATABASE_URL / REDIS_URL, its pid file, its log ``server.log``; the bots'
question vectors are shared with the settings' ``nlu.cache_dir``). Its settings are the user's
with what a bench from one address needs: ``chat.new_chats_burst`` / ``new_chats_per_minute``
and ``chat.capacity`` at least the sessions (every customer comes from 127.0.0.1), the no-input
timer longer than the ramp (customers hold at the menu until all are in) and the daily purge
off (it would run 60 s after the start, in the middle of the load). Everything else is as
served: the privacy notice, the bots, the journal, the rate limits per connection.

1. One warm-up chat (the same flow), then the server's RSS: **idle**.
2. ``--sessions`` customers connect, spread over ``--ramp-s`` seconds, and wait at the first
   question (greeting and menu). With all of them there, the RSS again: **memory per session**
   = (RSS with all - RSS idle) / sessions. Refusals (``busy``, ``too_fast``) are counted: none
   are expected.
3. Every customer then goes through self-service at once: key 1 (加油卡业务), key 1 (余额),
   the card number, the PIN (a demo card with status normal, round-robin), then the balance,
   the rating question and ``ended``; before each message the time a person takes
   (``THINK_S``: 1-3 s to read a menu and click, 4-10 s to type a 19-digit card number, 2-5 s
   for a PIN), so the load is 500 customers at once, not a tight loop. **Reply time**: the
   message sent -> the first message of the bot's reply arriving (a bot ``msg``, an ``input``
   or ``rate``). A session **completed** when it ended ``completed`` with a bot message
   containing 余额 after the PIN.
4. The server's CPU seconds over that phase (/proc) and its event-loop lag (``/metrics``,
   ``ivr_event_loop_lag_seconds``: p95 and max over its last 10 s, read every second; the worst
   window is reported).

Passes (exit status 0) when every session completed and the **bot turns'** reply p95 (the
turns the bot answers alone) is at most ``P95_LIMIT_MS``; the PIN turn waits on the business
back end (the demo's PBKDF2 PIN check, about 14 ms of CPU each, and two queries; the billing
system in production) and is reported apart. The customers run in this process, on the same
machine: on a small box they take CPU from the server, and their own event loop adds to the
reply times they measure (this process's CPU over the flow is printed beside the server's).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shlex
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import click

from ivr.core.config import Settings
from ivr.tools.benchvoice import percentile, process_cpu_s, rss_kib
from ivr.tools.drillrestart import ServerProcess, settings_file

P95_LIMIT_MS = 100.0
MESSAGE_TIMEOUT_S = 60.0  # a bot reply (or the greeting) not there after this: the session failed
TURNS = ("menu: key 1 (fuel card)", "fuel menu: key 1 (balance)", "card number",
         "PIN -> the balance")
# seconds a customer takes before each message: reading a menu and clicking, typing a 19-digit
# card number, typing a 6-digit PIN
THINK_S = ((1.0, 3.0), (1.0, 3.0), (4.0, 10.0), (2.0, 5.0))
# the turns that call the business back end (the PIN's verification and the balance: PBKDF2 and
# PostgreSQL in the demo back end, the billing system in production); the others are the bot's
BACKEND_TURNS = frozenset({3})
Msg = dict[str, Any]


@dataclass
class ChatBench:
    sessions: int = 0
    ramp_s: float = 0.0
    port: int = 0
    startup_s: float = 0.0
    connected: int = 0  # at the first question before the flow started
    refused: Counter[str] = field(default_factory=Counter)  # error code (or exception) -> n
    completed: int = 0
    failures: Counter[str] = field(default_factory=Counter)  # why a session did not complete
    open_ms: list[float] = field(default_factory=list)  # connect -> the menu's input
    reply_ms: list[list[float]] = field(default_factory=lambda: [[] for _ in TURNS])
    rss_idle_kib: int | None = None
    rss_all_kib: int | None = None
    flow_s: float = 0.0
    server_cpu_s: float | None = None
    client_cpu_s: float = 0.0
    loop_lag_p95_ms: float | None = None
    loop_lag_max_ms: float | None = None
    log: str = ""
    error: str = ""  # the bench could not run (the server did not start, the warm-up failed)

    @property
    def replies(self) -> list[float]:
        return [v for turn in self.reply_ms for v in turn]

    @property
    def bot_replies(self) -> list[float]:
        """The turns the bot answers alone (no business back end)."""
        return [v for i, turn in enumerate(self.reply_ms) if i not in BACKEND_TURNS
                for v in turn]

    @property
    def kib_per_session(self) -> float | None:
        if self.rss_idle_kib is None or self.rss_all_kib is None or not self.connected:
            return None
        return (self.rss_all_kib - self.rss_idle_kib) / self.connected

    def verdict(self) -> list[str]:
        """Why it failed (empty: passed)."""
        why = [self.error] if self.error else []
        if not self.error and self.completed < self.sessions:
            why.append(f"{self.sessions - self.completed} of {self.sessions} sessions did not "
                       f"complete")
        replies = self.bot_replies
        if replies and percentile(replies, 95) > P95_LIMIT_MS:
            why.append(f"bot reply p95 {percentile(replies, 95):.0f} ms > "
                       f"{P95_LIMIT_MS:.0f} ms")
        elif not replies and not self.error:
            why.append("no bot reply was measured")
        return why

    def summary(self) -> dict[str, Any]:
        def ms(values: list[float]) -> dict[str, Any]:
            if not values:
                return {"n": 0}
            return {"n": len(values), "p50": round(percentile(values, 50), 1),
                    "p95": round(percentile(values, 95), 1), "max": round(max(values), 1)}

        kib = self.kib_per_session
        return {
            "sessions": self.sessions, "ramp_s": self.ramp_s, "port": self.port,
            "startup_s": round(self.startup_s, 1), "connected": self.connected,
            "refused": dict(self.refused), "completed": self.completed,
            "failures": dict(self.failures), "open_ms": ms(self.open_ms),
            "reply_ms": ms(self.replies), "bot_reply_ms": ms(self.bot_replies),
            "reply_ms_by_turn": {t: ms(v) for t, v in zip(TURNS, self.reply_ms, strict=True)},
            "rss_idle_kib": self.rss_idle_kib, "rss_all_kib": self.rss_all_kib,
            "kib_per_session": None if kib is None else round(kib, 1),
            "flow_s": round(self.flow_s, 2),
            "server_cpu_s": None if self.server_cpu_s is None else round(self.server_cpu_s, 2),
            "client_cpu_s": round(self.client_cpu_s, 2),
            "loop_lag_p95_ms": self.loop_lag_p95_ms, "loop_lag_max_ms": self.loop_lag_max_ms,
            "log": self.log, "passed": not self.verdict(), "why": self.verdict(),
        }


def bench_settings(settings: Settings, *, home: Path, port: int, sessions: int,
                   ramp_s: float) -> Settings:
    """The child server's settings: the user's, moved to ``home`` (every directory that was
    under the user's home; the question vectors' cache stays shared), on 127.0.0.1:``port``,
    with room for ``sessions`` new chats from one address at once."""
    s = settings.model_copy(deep=True)
    s.home = home
    for section in (s.asterisk, s.kamailio, s.database, s.redis, s.tts, s.asr):
        for name, value in list(section.__dict__.items()):
            if isinstance(value, Path) and value.is_relative_to(settings.home):
                setattr(section, name, home / value.relative_to(settings.home))
    s.web.host, s.web.port = "127.0.0.1", port
    c = s.chat
    c.enabled = True
    c.capacity = max(c.capacity, sessions + 10)  # + the warm-up chat, with room to spare
    c.new_chats_burst = max(c.new_chats_burst, sessions + 10)
    c.new_chats_per_minute = max(c.new_chats_per_minute, sessions + 10)
    c.no_input_s = max(c.no_input_s, ramp_s + 120)  # the first ones hold until all are in
    s.retention.enabled = False
    return s


class ChatServer(ServerProcess):
    """``ivr up --chat-only`` as a child process, on its settings' own home and storage."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.config = settings_file(settings, settings.home / "bench-chat.yaml")
        self.log_path = settings.home / "server.log"
        # the file holds the effective settings (the user's environment included): no IVR_*
        # or DATABASE_URL of this process may override it in the child
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("IVR_") and k not in ("DATABASE_URL", "REDIS_URL")}
        self.env["IVR_CONFIG"] = str(self.config)
        self.proc: asyncio.subprocess.Process | None = None
        self.up_args = ("--chat-only",)
        self.log_path.unlink(missing_ok=True)  # this run's log only


def _port_taken(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


class ChatFailed(Exception):
    """The server said or did something a completed self-service chat does not."""


class Customer:
    """One browser: its websocket, read all the time by a task of its own (which also answers
    the server's heartbeat pings while the customer holds), each message stamped on arrival."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.inbox: asyncio.Queue[tuple[float, Msg] | None] = asyncio.Queue()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            async for msg in self.ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self.inbox.put_nowait((loop.time(), json.loads(msg.data)))
        finally:
            self.inbox.put_nowait(None)

    async def next(self) -> tuple[float, Msg]:
        item = await asyncio.wait_for(self.inbox.get(), MESSAGE_TIMEOUT_S)
        if item is None:
            self.inbox.put_nowait(None)
            raise ConnectionError("the server closed the websocket")
        return item

    async def send(self, message: Msg) -> float:
        sent = asyncio.get_running_loop().time()
        await self.ws.send_str(json.dumps(message))
        return sent

    async def close(self) -> None:
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            await self.ws.close()
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def open_chat(http: aiohttp.ClientSession, url: str, report: ChatBench,
                    delay: float = 0.0) -> Customer | None:
    """A new chat, up to its first question (greeting, privacy notice, menu); None when the
    server refused it (counted in ``report.refused``)."""
    await asyncio.sleep(delay)
    t0 = asyncio.get_running_loop().time()
    try:
        ws = await http.ws_connect(url)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        report.refused[f"connect: {type(exc).__name__}"] += 1
        return None
    c = Customer(ws)
    try:
        while True:
            at, m = await c.next()
            if m.get("type") == "error":
                report.refused[str(m.get("code"))] += 1
                break
            if m.get("type") == "input":
                report.open_ms.append((at - t0) * 1000)
                return c
    except (TimeoutError, ConnectionError) as exc:
        report.refused[f"before the menu: {type(exc).__name__}"] += 1
    await c.close()
    return None


def _is_reply(m: Msg) -> bool:
    kind = m.get("type")
    return kind in ("input", "rate") or (kind == "msg" and m.get("from") == "bot")


async def self_service(c: Customer, card: dict[str, str], rng: random.Random,
                       replies: list[list[float]]) -> bool:
    """Balance by card and PIN from the main menu; each bot reply time into ``replies[turn]``.
    True when the chat ended ``completed`` and the bot said the balance (余额)."""
    steps: list[Msg] = [{"type": "key", "key": "1"}, {"type": "key", "key": "1"},
                        {"type": "digits", "digits": card["card_no"]},
                        {"type": "digits", "digits": card["pin"]}]
    last = len(steps) - 1
    for turn, message in enumerate(steps):
        await asyncio.sleep(rng.uniform(*THINK_S[turn]))
        sent = await c.send(message)
        said: list[str] = []  # the bot's messages of this turn
        replied = False
        while True:
            at, m = await c.next()
            kind = m.get("type")
            if not replied and _is_reply(m):
                replied = True
                replies[turn].append((at - sent) * 1000)
            if kind == "msg" and m.get("from") == "bot":
                said.append(str(m.get("text", "")))
            elif kind in ("error", "queued"):
                what = f"error {m.get('code')}" if kind == "error" else "handed to an agent"
                bot = f" (the bot: {said[-1][:30]})" if said else ""
                raise ChatFailed(f"{what} at {TURNS[turn]}{bot}")
            elif kind == "ended":
                if turn != last:
                    raise ChatFailed(f"ended ({m.get('reason')}) at {TURNS[turn]}")
                return m.get("reason") == "completed" and any("余额" in t for t in said)
            elif kind == "input" and turn != last:
                break
    return False


async def _loop_lag(http: aiohttp.ClientSession, url: str, token: str,
                    stop: asyncio.Event) -> tuple[float | None, float | None]:
    """The server's event-loop lag from its /metrics every second until ``stop`` (and once
    more then): the worst p95 and max, in ms (None: /metrics not readable)."""
    from ivr.tools.drillclusterload import LAG_RE

    worst: dict[str, float] = {}
    auth = {"Authorization": f"Bearer {token}"}
    while True:
        done = stop.is_set()
        try:
            async with http.get(url, headers=auth) as r:
                text = await r.text() if r.status == 200 else ""
        except (aiohttp.ClientError, TimeoutError):
            text = ""
        for q, v in LAG_RE.findall(text):
            worst[q] = max(worst.get(q, 0.0), round(float(v) * 1000, 1))
        if done:
            return worst.get("0.95"), worst.get("1")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


def _cards() -> list[dict[str, str]]:
    from dialog.backends.seed import demo_credentials

    return [c for c in demo_credentials()["fuel"].values() if c["status"] == "normal"]


async def bench_chat(settings: Settings, *, sessions: int, ramp_s: float, port: int,
                     echo: Callable[[str], object] = print) -> ChatBench:
    report = ChatBench(sessions=sessions, ramp_s=ramp_s, port=port)
    if _port_taken(port):
        report.error = f"something already listens on 127.0.0.1:{port} (--port)"
        return report
    child = bench_settings(settings, home=settings.home / "bench-chat", port=port,
                           sessions=sessions, ramp_s=ramp_s)
    server = ChatServer(child)
    report.log = str(server.log_path)
    cards = _cards()
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/chat/ws"
    try:
        echo(f"starting ivr up --chat-only on 127.0.0.1:{port} (home {child.home})")
        try:
            report.startup_s = await server.start()
        except RuntimeError as exc:
            report.error = str(exc)
            return report
        assert server.proc is not None
        pid = server.proc.pid
        echo(f"  server up in {report.startup_s:.1f} s (pid {pid})")
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=None, connect=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            warm = await open_chat(http, url, report)
            if warm is None:
                report.error = f"the warm-up chat was refused: {dict(report.refused)}"
                return report
            try:
                ok = await self_service(warm, cards[0], random.Random(0),
                                        [[] for _ in TURNS])
            except (ChatFailed, TimeoutError, ConnectionError, aiohttp.ClientError) as exc:
                ok, report.error = False, f"the warm-up chat failed: {exc!r}"
            finally:
                await warm.close()
            if not ok:
                report.error = report.error or "the warm-up chat did not complete"
                return report
            report.open_ms.clear()
            await asyncio.sleep(0.5)
            report.rss_idle_kib = rss_kib(pid)

            echo(f"  warm-up chat completed; opening {sessions} chats over {ramp_s:g} s")
            opened = await asyncio.gather(*(open_chat(http, url, report, ramp_s * i / sessions)
                                            for i in range(sessions)))
            customers = [c for c in opened if c is not None]
            report.connected = len(customers)
            await asyncio.sleep(0.5)
            report.rss_all_kib = rss_kib(pid)
            echo(f"  {len(customers)} chats at the menu ({sum(report.refused.values())} "
                 f"refused); self-service in all of them at once")

            stop = asyncio.Event()
            lag = asyncio.create_task(_loop_lag(
                http, f"{base}/metrics", child.web.metrics_token.get_secret_value(), stop))
            cpu0, mine0, t0 = process_cpu_s(pid), time.process_time(), time.monotonic()
            results = await asyncio.gather(
                *(self_service(c, cards[i % len(cards)], random.Random(i + 1), report.reply_ms)
                  for i, c in enumerate(customers)), return_exceptions=True)
            report.flow_s = time.monotonic() - t0
            cpu1 = process_cpu_s(pid)
            report.client_cpu_s = time.process_time() - mine0
            report.server_cpu_s = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
            stop.set()
            report.loop_lag_p95_ms, report.loop_lag_max_ms = await lag
            for r in results:
                if r is True:
                    report.completed += 1
                elif r is False:
                    report.failures["ended without the balance"] += 1
                elif isinstance(r, ChatFailed):
                    report.failures[str(r)] += 1
                elif isinstance(r, TimeoutError):
                    report.failures[f"nothing from the server in {MESSAGE_TIMEOUT_S:.0f} s"] += 1
                else:
                    report.failures[f"{type(r).__name__}: {r}"] += 1
            await asyncio.gather(*(c.close() for c in customers))
    finally:
        await server.stop()
        server.close()
    return report


def _ms(values: list[float]) -> str:
    if not values:
        return "-"
    return (f"{percentile(values, 50):.1f} / {percentile(values, 95):.1f} / "
            f"{max(values):.1f} ms")


def print_chat_bench(r: ChatBench, command: str, echo: Callable[[str], object] = print) -> None:
    log = f"; its log {r.log}" if r.log else ""
    echo(f"chat bench: {r.sessions} customers over websockets, opened over {r.ramp_s:g} s "
         f"(ivr up --chat-only, a child process{log})")
    if r.error:  # the server did not start, or the warm-up chat failed: no figures
        echo(f"  could not run: {r.error}")
        echo(f"  command: {command}")
        echo("FAILED")
        return
    rows: list[tuple[str, str]] = [
        ("sessions", f"{r.sessions} ({r.connected} at the menu at once)"),
        ("refused", f"{sum(r.refused.values())}"
                    + (f" {dict(r.refused)}" if r.refused else "")),
        ("completed (balance shown)", f"{r.completed}"
                                      + (f"; failed: {dict(r.failures)}" if r.failures else "")),
        ("bot turns p50 / p95 / max", f"{_ms(r.bot_replies)} ({len(r.bot_replies)} replies; "
                                       f"no back end)"),
    ]
    rows += [(f"  {t}", _ms(v)) for t, v in zip(TURNS, r.reply_ms, strict=True)]
    rows.append(("open -> menu p50 / p95 / max", _ms(r.open_ms)))
    kib = r.kib_per_session
    if kib is not None and r.rss_idle_kib is not None and r.rss_all_kib is not None:
        rows.append(("memory per session", f"{kib:.0f} KiB (server RSS "
                     f"{r.rss_idle_kib / 1024:.1f} MiB idle -> {r.rss_all_kib / 1024:.1f} MiB "
                     f"with {r.connected} chats)"))
    if r.flow_s:
        cpu = ("-" if r.server_cpu_s is None else
               f"{r.server_cpu_s:.1f} s = {100 * r.server_cpu_s / r.flow_s:.0f}% of one core")
        rows.append(("server CPU, self-service", f"{cpu} over {r.flow_s:.1f} s; the "
                     f"customers (this process) {r.client_cpu_s:.1f} s"))
    if r.loop_lag_p95_ms is not None:
        rows.append(("event-loop lag p95 / max", f"{r.loop_lag_p95_ms:.1f} / "
                     f"{r.loop_lag_max_ms or 0.0:.1f} ms (server's /metrics, worst 10 s "
                     f"window during the self-service)"))
    elif r.flow_s:
        rows.append(("event-loop lag", "not read (/metrics refused the metrics token?)"))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        echo(f"  {k:<{width}}  {v}")
    echo(f"  command: {command}")
    why = r.verdict()
    echo("passed" if not why else "FAILED: " + "; ".join(why))


@click.command("chat")
@click.option("--sessions", type=click.IntRange(1, 20000), default=500, show_default=True,
              help="Chats at once.")
@click.option("--ramp-s", type=click.FloatRange(0, 600), default=10.0, show_default=True,
              help="Seconds over which the chats are opened.")
@click.option("--port", type=int, default=18797, show_default=True,
              help="The bench server's web port.")
@click.option("--json", "as_json", is_flag=True, help="One JSON summary on stdout.")
@click.pass_obj
def chat_cmd(settings: Settings, sessions: int, ramp_s: float, port: int,
             as_json: bool) -> None:
    """The web chat under N customers at once over websockets: bot reply time p50/p95,
    memory per session, server CPU and event-loop lag. Starts `ivr up --chat-only` as a child
    on its own home and port (an `ivr up` of yours may keep running)."""
    command = " ".join(shlex.quote(a) for a in ["ivr", *sys.argv[1:]])
    echo: Callable[[str], object] = (lambda _m: None) if as_json else click.echo
    report = asyncio.run(bench_chat(settings, sessions=sessions, ramp_s=ramp_s, port=port,
                                    echo=echo))
    if as_json:
        click.echo(json.dumps({**report.summary(), "command": command}, ensure_ascii=False))
    else:
        print_chat_bench(report, command, click.echo)
    sys.exit(1 if report.verdict() else 0)
