"""The two restarts: ``ivr drill server-kill`` and ``ivr drill asterisk-restart``.

``server-kill``: the server killed with calls up, restarted, every caller resumed. The server
runs as its own process (``ivr up`` with ``asterisk.managed`` off, on the PostgreSQL, Redis and
Asterisk this drill holds), so the kill is a real ``kill -9``: no clean-up runs, the callers stay
parked in the Stasis application and their Redis snapshots stay. The drill places N calls, takes
each to the oil line's menu (key 1), kills the server, starts it again at once and follows every
caller: held (music on hold, ``ivr.calls.orphans``) while it starts, resumed with an apology at
the menu they were at, then key 0 to an agent. A call passes when it was never hung up, was
resumed (not started over: no second greeting) and both keys are in its record.

Figures: the restart (kill to the new process connected to ARI), the longest silence each
caller heard from the kill until the resumed prompt (the hold music fills the restart), and how
many went on.

``asterisk-restart``: Asterisk restarted under a running server; the server reconnects by itself
and a new call is greeted. Figures: Asterisk back, ARI reconnected, the first call greeted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr

from ivr.core.config import Settings
from ivr.core.storage.calls import CallRepository
from ivr.telephony.ari.client import AriClient

READY_TIMEOUT_S = 180.0


def settings_file(settings: Settings, path: Path) -> Path:
    """The settings as a YAML file another process loads the same (secrets included: the
    file is written 0600 and removed by the caller)."""
    def plain(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        if isinstance(value, BaseModel):
            return {k: plain(v) for k, v in value.__dict__.items()}
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        return value

    data = {k: v for k, v in plain(settings).items() if k not in ("database_url", "redis_url")}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        yaml.safe_dump(data, f, allow_unicode=True)
    return path


class ServerProcess:
    """``ivr up`` as a child process on storage and an Asterisk someone else runs."""

    def __init__(self, settings: Settings, pg_url: str, redis_url: str, *,
                 name: str = "server") -> None:
        self.settings = settings
        self.config = settings_file(settings, settings.home / "drill" / f"{name}.yaml")
        self.log_path = settings.home / "drill" / f"{name}.log"
        self.env = {**os.environ, "DATABASE_URL": pg_url, "REDIS_URL": redis_url,
                    "IVR_ASTERISK__MANAGED": "false", "IVR_CONFIG": str(self.config)}
        self.proc: asyncio.subprocess.Process | None = None
        self.up_args: tuple[str, ...] = ()  # e.g. ("--chat-only",)

    async def start(self) -> float:
        """Start it; returns the seconds until it is ready (``/healthz``: ARI connected)."""
        started = time.monotonic()
        log = self.log_path.open("ab")  # the child writes it from here on
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", "from ivr.tools.cli import main; main()", "up",
                *self.up_args, env=self.env, stdout=log, stderr=log, start_new_session=True)
        finally:
            log.close()
        w = self.settings.web
        url = f"http://{'127.0.0.1' if w.host in ('0.0.0.0', '') else w.host}:{w.port}/healthz"
        while not await _ok(url):
            if self.proc.returncode is not None:
                raise RuntimeError(f"the server exited ({self.proc.returncode}); see "
                                   f"{self.log_path}")
            if time.monotonic() - started > READY_TIMEOUT_S:
                raise RuntimeError(f"the server was not up in {READY_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.1)
        return time.monotonic() - started

    async def kill(self) -> None:
        """kill -9: no clean-up of any kind."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        else:
            await proc.wait()

    def close(self) -> None:
        self.config.unlink(missing_ok=True)


async def _ok(url: str) -> bool:
    import aiohttp

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http, \
                http.get(url) as resp:
            return resp.status == 200
    except (aiohttp.ClientError, TimeoutError, OSError):
        return False


@contextlib.asynccontextmanager
async def drill_stack(settings: Settings) -> Any:
    """Asterisk (when managed), PostgreSQL migrated and Redis held by the drill process, for a
    server it runs as a child: yields (pg_url, redis_url, repository)."""
    from asterisk.runner import ManagedAsterisk
    from ivr.core.storage.db import create_engine, session_factory
    from ivr.core.storage.migrate import upgrade
    from ivr.core.storage.postgres import EmbeddedPostgres, database_url
    from ivr.core.storage.redis_server import EmbeddedRedis

    async with contextlib.AsyncExitStack() as stack:
        if settings.asterisk.managed:
            ast = ManagedAsterisk(settings)
            await ast.start()
            stack.push_async_callback(ast.stop)
        pg_url = database_url(settings)
        if pg_url is None:
            pg = EmbeddedPostgres(settings.database)
            pg_url = await asyncio.to_thread(pg.start)
            stack.callback(pg.stop)
        await upgrade(pg_url)
        if settings.redis.url is None:
            redis = EmbeddedRedis(settings.redis)
            redis_url = await redis.start()
            stack.push_async_callback(redis.stop)
        else:
            redis_url = settings.redis.url.get_secret_value()
        engine = create_engine(pg_url)
        stack.push_async_callback(engine.dispose)
        yield pg_url, redis_url, CallRepository(session_factory(engine))


@dataclass
class KillReport:
    calls: int = 0
    went_on: int = 0  # resumed at its question, both keys taken, never hung up
    silent_hangups: int = 0
    restart_s: float = 0.0  # kill -> the new process connected to ARI
    # per call: its longest dead line from the kill to the resumed prompt
    silence_s: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    surveys: dict[str, Any] | None = None  # survey calls cut by the kill (drillsurveykill)

    def summary(self) -> dict[str, Any]:
        s = sorted(self.silence_s)
        return {"calls": self.calls, "went_on": self.went_on, "surveys": self.surveys,
                "silent_hangups": self.silent_hangups, "restart_s": round(self.restart_s, 1),
                "silence_s_max": round(s[-1], 1) if s else None,
                "silence_s_p50": round(s[len(s) // 2], 1) if s else None,
                "failures": self.failures}


async def server_kill(settings: Settings, *, pg_url: str, redis_url: str, repo: CallRepository,
                      calls: int, surveys: int = 0, echo: Any = print) -> KillReport:
    """The drill, on a running Asterisk, PostgreSQL and Redis (no server may hold the ARI
    application). ``surveys``: survey calls answering by keys at the kill, by the server's
    own dialer (``ivr.tools.drillsurveykill``)."""
    from ivr.sim.demo import listen_until_quiet
    from ivr.sim.sipua import SipCall, SipUserAgent
    from ivr.tools.drillsurveykill import SurveyCut, with_dialer

    a = settings.asterisk
    report = KillReport(calls=calls)
    ari = AriClient(a)
    server = ServerProcess(with_dialer(settings) if surveys else settings, pg_url, redis_url)
    cut = SurveyCut(settings, pg_url, surveys) if surveys else None
    ua = SipUserAgent(server_host=a.bind_host, server_port=a.sip_port, username="caller",
                      password=a.caller_password.get_secret_value())
    await ua.start()
    since = time.time()
    placed: list[SipCall] = []
    try:
        if await ari.app_registered():
            raise RuntimeError(f"a server already holds the ARI application '{a.ari_app}': "
                               "stop it first (`ivr down`)")
        echo(f"  server up in {await server.start():.1f} s")

        async def to_menu(i: int) -> SipCall:
            await asyncio.sleep(0.4 * i)  # callers arrive over a few seconds
            call = await ua.call("956100")
            placed.append(call)
            await listen_until_quiet(call, max_s=60)
            await call.send_dtmf("1")  # the oil line
            await listen_until_quiet(call, max_s=60)
            return call

        if cut is not None:
            await cut.start()
        up = await asyncio.gather(*(to_menu(i) for i in range(calls)), return_exceptions=True)
        if cut is not None:  # every customer has answered once: the moment to kill
            await cut.answering()
        ready = [c for c in up if not isinstance(c, BaseException)]
        for i, c in enumerate(up):
            if isinstance(c, BaseException):
                report.failures.append(f"call {i + 1} before the kill: {c!r}")
        echo(f"  {len(ready)} calls at the oil menu; kill -9 the server")
        killed = time.monotonic()
        await server.kill()
        await server.start()
        back = time.monotonic()
        report.restart_s = back - killed
        echo(f"  server back (ARI connected) {report.restart_s:.1f} s after the kill")

        resumed = await _resumed(repo, since, len(ready))
        echo(f"  {resumed} calls resumed by the new process")

        async def carry_on(call: SipCall) -> None:
            await listen_until_quiet(call, max_s=90)  # the apology and the menu again
            report.silence_s.append(longest_quiet(call.receiver.loud_arrivals, killed, back))
            await call.send_dtmf("0")
            await listen_until_quiet(call, max_s=30)
            if call.ended:
                report.silent_hangups += 1
                raise RuntimeError("hung up")
            await call.hangup()

        done = await asyncio.gather(*(carry_on(c) for c in ready), return_exceptions=True)
        for c, r in zip(ready, done, strict=True):
            if isinstance(r, BaseException):
                report.failures.append(f"call {c.call_id[:8]} after the kill: {r!r}")
        await asyncio.sleep(1.0)
        report.went_on = await _judge(repo, since, report)
        if cut is not None:
            await cut.judge()
            report.surveys = cut.report.summary()
            report.failures += cut.report.failures
    finally:
        if cut is not None:
            await cut.close()
        for call in placed:
            with contextlib.suppress(Exception):
                await call.hangup()
        await ua.close()
        await server.stop()
        server.close()
        await ari.close()
    return report


async def _resumed(repo: CallRepository, since: float, want: int, wait_s: float = 30.0) -> int:
    """How many of the drill's calls the new process has resumed (their records say so),
    waiting up to ``wait_s`` for ``want``: a key pressed before that is pressed into hold music."""
    n = 0
    for _ in range(int(wait_s / 0.2)):
        rows = await repo.started_since(since, want + 20)
        n = sum(1 for r in rows if any(s.get("step") == "resumed" for s in r.path))
        if n >= want:
            break
        await asyncio.sleep(0.2)
    return n


def longest_quiet(loud: Any, start: float, end: float) -> float:
    """The longest stretch without a loud packet from ``start`` until the first loud packet
    after ``end`` (the server back: its apology): what the caller heard as a dead line."""
    times = sorted(t for t in loud if t > start)
    longest, last = 0.0, start
    for t in times:
        longest = max(longest, t - last)
        last = t
        if t > end:
            return longest
    return max(longest, time.monotonic() - last)


async def _judge(repo: CallRepository, since: float, report: KillReport) -> int:
    """Calls whose record shows them resumed, greeted once and both keys taken."""
    rows = [r for r in await repo.all_closed_since(since, report.calls)
            if r.direction == "inbound"]  # not the survey calls of --surveys
    went_on = 0
    for row in rows:
        steps = [(s.get("step"), s.get("detail") or {}) for s in row.path]
        greeted = sum(1 for step, d in steps if step == "say" and d.get("prompt") == "greeting")
        keys = [d.get("digits") for step, d in steps if step == "dtmf"]
        resumed = any(step == "resumed" for step, _ in steps)
        if resumed and greeted == 1 and keys[:2] == ["1", "0"]:
            went_on += 1
        else:
            report.failures.append(f"call {str(row.id)[:8]}: resumed {resumed}, greeted "
                                   f"{greeted}x, keys {keys}, outcome {row.outcome}")
    return went_on


@dataclass
class AsteriskRestartReport:
    restart_s: float = 0.0  # `core restart now` until Asterisk answers its CLI again
    reconnect_s: float = 0.0  # ... until our ARI events websocket is connected again
    first_call_s: float = 0.0  # ... until a new call is answered and its greeting heard
    tries: int = 0  # calls placed until one was greeted
    failures: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {k: round(v, 1) if isinstance(v, float) else v for k, v in self.__dict__.items()}


async def asterisk_restart(app: Any, settings: Settings, *, echo: Any = print,
                           deadline_s: float = 60.0) -> AsteriskRestartReport:
    """Restart the managed Asterisk under the running server: the server reconnects by itself
    and a new call is greeted; how long each step took. (Calls up at that moment are lost with
    Asterisk: this drill is about the ones after.)"""
    from ivr.sim.sipua import SipError, SipUserAgent
    from ivr.web.keys import ARI, ASTERISK

    a = settings.asterisk
    report = AsteriskRestartReport()
    if ASTERISK not in app:
        report.failures.append("Asterisk is not managed by this server: nothing to restart")
        return report
    ast, ari = app[ASTERISK], app[ARI]
    epoch = ari.epoch
    t0 = time.monotonic()
    await ast.restart()
    report.restart_s = time.monotonic() - t0
    while ari.epoch == epoch or not ari.connected.is_set():
        if time.monotonic() - t0 > deadline_s:
            report.failures.append(f"ARI not back within {deadline_s:.0f} s")
            return report
        await asyncio.sleep(0.05)
    report.reconnect_s = time.monotonic() - t0
    echo(f"  Asterisk back in {report.restart_s:.1f} s; ARI reconnected at "
         f"{report.reconnect_s:.1f} s")
    ua = SipUserAgent(server_host=a.bind_host, server_port=a.sip_port, username="caller",
                      password=a.caller_password.get_secret_value())
    await ua.start()
    try:
        while time.monotonic() - t0 < deadline_s:
            report.tries += 1
            try:
                call = await ua.call("956100", timeout=5.0)
            except (SipError, TimeoutError) as exc:
                report.failures.append(f"try {report.tries}: {exc}")
                await asyncio.sleep(0.5)
                continue
            try:  # greeted: the first loud packet of the greeting
                await call.wait_until_heard_seconds(0.5, timeout=10)
                for _ in range(100):
                    if call.receiver.loud_arrivals:
                        break
                    await asyncio.sleep(0.05)
            except TimeoutError:
                pass
            greeted = call.receiver.loud_arrivals[0] if call.receiver.loud_arrivals else None
            await call.hangup()
            if greeted is not None:
                report.first_call_s = greeted - t0
                report.failures.clear()  # the earlier tries were the wait, not a failure
                break
            report.failures.append(f"try {report.tries}: answered, not greeted")
    finally:
        await ua.close()
    return report
