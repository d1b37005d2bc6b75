"""Dependencies failing under live calls: ``ivr drill postgres|redis|llm|asr`` (``deps``: all).

Each dependency is taken ``down`` (connections refused, open ones cut) and made ``slow`` (every
answer held ``delay_s``, past every deadline the server keeps) while callers are in the IVR,
then brought back. PostgreSQL, Redis and the LLM endpoint are reached through fault proxies on
loopback (``ivr.sim.faults.FaultProxy``: the server is given the proxies' addresses); the
recogniser, which runs in the server process, is wrapped (``FaultyRecognizer``).

What the callers do while the fault is on, by dependency, and what they must get:

- ``postgres``: the balance by keys (1, 1, card number, PIN). The verification is the business
  back end's: 系统暂时繁忙 and an agent, within its deadline (``dialog.action_deadline_s``).

Every flow ends at an agent's queue; where a callback is offered first (no agent logged in)
the caller declines it (2) and waits.
- ``redis``: 1, 0 (an agent). Every turn saves the call's state to Redis; the screen pop goes
  to Redis. The caller must not wait on either.
- ``llm``: 1, 0 (an agent). The pop is made at once with the rule summary; the LLM's never comes.
- ``asr``: a spoken request (rendered by the server's own TTS): 抱歉，语音识别暂时不可用，请您按键
  操作。, then 1, 0 by keys.

Figures per phase: calls that went on (never hung up by the server, ended at a queue or with
keys where speech failed), each call's longest wait (from an input, or the answer, to the first
loud packet after it: what the caller hears as a dead line; at most ``WAIT_LIMIT_S``), and the
check that nothing was lost once the dependency was back: every call's record complete
(journal writes kept and retried), the pops in Redis, the pops' rule summaries with the LLM's
failure recorded, the keys after the failed recognition in the record.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, cast

from aiohttp import web
from pydantic import SecretStr

from asr.base import Recognizer
from ivr.core.config import Settings
from ivr.core.storage.calls import Call, CallRepository
from ivr.sim.faults import FaultProxy, FaultyRecognizer, Mode, upstream_of_url, url_through

DEPENDENCIES = ("postgres", "redis", "llm", "asr")
MODES: tuple[Mode, ...] = ("down", "slow")
WAIT_LIMIT_S = 3.0
ANSWER_S = 10.0  # an input with nothing heard this long after it: the caller gave up
CARD, PIN = "9001010000012345678", "123456"  # the demo main card (dialog.backends.seed)
KEYS = {"postgres": ("1", "1", CARD + "#", PIN + "#"), "redis": ("1", "0"),
        "llm": ("1", "0"), "asr": ("1", "0")}
UTTERANCE = "查一下我的加油卡还有多少钱。"
NO_LLM = "http://127.0.0.1:9/v1"  # the discard port: nothing answers (no LLM configured)


@dataclass
class Phase:
    dependency: str
    mode: str
    delay_s: float = 0.0
    calls: int = 0
    went_on: int = 0
    kept: int = 0  # calls whose record (and pop) was complete once the dependency was back
    waits_s: list[float] = field(default_factory=list)  # per call: its longest wait
    degraded_to: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return (self.went_on == self.calls == self.kept and not self.failures
                and bool(self.waits_s) and max(self.waits_s) <= WAIT_LIMIT_S)

    def summary(self) -> dict[str, Any]:
        return {"dependency": self.dependency, "mode": self.mode, "delay_s": self.delay_s,
                "calls": self.calls, "went_on": self.went_on, "kept": self.kept,
                "longest_wait_s": round(max(self.waits_s), 2) if self.waits_s else None,
                "waits_s": [round(w, 2) for w in self.waits_s],
                "degraded_to": dict(self.degraded_to), "passed": self.passed,
                "failures": self.failures}

    def line(self) -> str:
        s = self.summary()
        slow = f" {self.delay_s:g} s" if self.mode == "slow" else ""
        to = ", ".join(f"{k} {v}" for k, v in s["degraded_to"].items()) or "-"
        return (f"{self.dependency} {self.mode}{slow}: {self.went_on}/{self.calls} went on "
                f"({to}); longest wait {s['longest_wait_s']} s; nothing lost "
                f"{self.kept}/{self.calls}{'' if self.passed else '  FAILED'}")


class Faults:
    """The switches: a proxy per networked dependency, the recogniser's wrapper."""

    def __init__(self, pg_url: str, redis_url: str, llm_url: str | None) -> None:
        self.llm_configured = llm_url is not None
        self.urls = {"postgres": pg_url, "redis": redis_url, "llm": llm_url or NO_LLM}
        ports = {"postgres": 5432, "redis": 6379, "llm": 80}
        self.proxies = {name: FaultProxy(name, upstream_of_url(url, default_port=ports[name]))
                        for name, url in self.urls.items()}
        self.recognizer: FaultyRecognizer | None = None

    async def start(self, settings: Settings) -> Settings:
        """Listen; the settings of a server that reaches everything through the proxies."""
        s = settings.model_copy(deep=True)
        through = {n: url_through(self.urls[n], await p.start()) for n, p in self.proxies.items()}
        s.database.url = SecretStr(through["postgres"])
        s.redis.url = SecretStr(through["redis"])
        s.llm.base_url = through["llm"]
        return s

    async def set(self, dependency: str, mode: Mode, delay_s: float = 0.0) -> None:
        if dependency == "asr":
            if self.recognizer is not None:
                self.recognizer.set(mode, delay_s)
        else:
            await self.proxies[dependency].set(mode, delay_s)

    async def close(self) -> None:
        for proxy in self.proxies.values():
            await proxy.close()

    def part(self) -> Callable[[web.Application], AsyncIterator[None]]:
        """A cleanup context after the recogniser's: wraps it (calls take it per call)."""
        from ivr.web.keys import RECOGNIZER

        async def part(app: web.Application) -> AsyncIterator[None]:
            inner = cast(Recognizer | None, app.get(RECOGNIZER))
            if inner is not None:
                self.recognizer = FaultyRecognizer(inner)
                app[RECOGNIZER] = self.recognizer
            yield
        return part


async def _caller(ua: Any, dependency: str, delay: float, audio: tuple[bytes, float] | None
                  ) -> list[float]:
    """One caller's flow; the waits after each input (the answer first)."""
    from ivr.sim.demo import listen_until_quiet
    from ivr.tools.benchvoice import first_loud_after

    await asyncio.sleep(delay)
    call = await ua.call("956100")
    waits: list[float] = []

    async def heard_after(t: float, what: str) -> None:
        at = await first_loud_after(call, t, ANSWER_S)
        if at is None:
            raise RuntimeError(f"nothing heard within {ANSWER_S:.0f} s after {what}"
                               + (" (hung up)" if call.ended else ""))
        waits.append(at - t)

    try:
        await heard_after(time.monotonic(), "the answer")
        await listen_until_quiet(call, max_s=60)
        if audio is not None:
            pcm, end_offset = audio
            await call.play(pcm)
            spoke_until = time.monotonic() - (len(pcm) / 16000 - end_offset)
            await heard_after(spoke_until, "the spoken request")
            await listen_until_quiet(call, max_s=30)
        keys = KEYS[dependency]
        for i, digits in enumerate(keys):
            await call.send_dtmf(digits)
            await heard_after(time.monotonic(), f"key {digits[:1]}{'…' if len(digits) > 1 else ''}")
            # the last: the transfer (and a callback offer), then the queue's music
            await listen_until_quiet(call, max_s=10 if i == len(keys) - 1 else 60)
        # with no agent logged in a callback is offered before the queue: 2, wait for one
        # (in the queue, if there was no offer, the key is nothing)
        await call.send_dtmf("2")
        await listen_until_quiet(call, max_s=5)
        if call.ended:
            raise RuntimeError("hung up by the server")
        return waits
    finally:
        with contextlib.suppress(Exception):
            await call.hangup()


async def run_phase(app: web.Application, settings: Settings, faults: Faults,
                    repo: CallRepository, redis_url: str, dependency: str, mode: Mode, *,
                    calls: int, delay_s: float, echo: Any = print) -> Phase:
    from ivr.tools.drillvoice import caller_ua, rendered

    phase = Phase(dependency, mode, delay_s if mode == "slow" else 0.0, calls=calls)
    audio = None
    if dependency == "asr":
        if faults.recognizer is None:
            phase.failures.append("no recogniser loaded (asr.backend none?): nothing to drill")
            return phase
        (_, pcm, end), = await rendered(app, (UTTERANCE,))
        audio = (pcm, end)
    since = time.time()
    await faults.set(dependency, mode, delay_s)
    ua = caller_ua(settings)
    await ua.start()
    try:
        got = await asyncio.gather(*(_caller(ua, dependency, 0.7 * i, audio)
                                     for i in range(calls)), return_exceptions=True)
    finally:
        await ua.close()
        await faults.set(dependency, "up")
    for i, r in enumerate(got):
        if isinstance(r, BaseException):
            phase.failures.append(f"caller {i + 1}: {r}")
        else:
            phase.waits_s.append(max(r))
    rows = await repo.all_closed_since(since, calls, wait_s=45.0)
    for row in rows[:calls]:
        await _judge(app, row, phase, redis_url)
    if len(rows) < calls:
        phase.failures.append(f"{calls - len(rows)} call records missing after the fault")
    echo(f"  {phase.line()}")
    return phase


async def _judge(app: web.Application, row: Call, phase: Phase, redis_url: str) -> None:
    steps = [(s.get("step"), s.get("detail") or {}) for s in row.path]
    names = [step for step, _ in steps]
    transfer = next((d for step, d in steps if step == "transfer"), None)
    keys_after_asr = "asr_unavailable" in names and [
        d.get("digits") for step, d in steps[names.index("asr_unavailable"):]
        if step == "dtmf"][:2] == ["1", "0"]
    went_on = transfer is not None and (phase.dependency != "asr" or keys_after_asr)
    if phase.dependency == "postgres":
        went_on = went_on and "backend_unavailable" in names
    if went_on:
        phase.went_on += 1
        phase.degraded_to["keys" if keys_after_asr else "queue"] += 1
        if "callback_offer" in names:
            phase.degraded_to["callback offer"] += 1
    else:
        phase.failures.append(f"call {str(row.id)[:8]}: outcome {row.outcome}, path "
                              f"{' '.join(str(n) for n in names)}")
        return
    assert transfer is not None
    lost = await _lost(app, phase, str(transfer.get("handoff") or ""), redis_url, row)
    if lost:
        phase.failures.append(f"call {str(row.id)[:8]}: {lost}")
    else:
        phase.kept += 1


async def _lost(app: web.Application, phase: Phase, handoff_id: str, redis_url: str,
                row: Call) -> str:
    """What did not survive the fault ('' when nothing)."""
    from handoff.store import pop_key
    from ivr.core.storage.redis_server import connect_redis
    from ivr.web.keys import HANDOFF

    if row.ended_at is None or row.outcome in (None, "in_progress"):
        return "its record was not closed"
    if phase.dependency == "redis":
        redis = await connect_redis(redis_url)
        try:
            for _ in range(100):  # the subscriber notices Redis is back within 5 s
                if await redis.exists(pop_key(handoff_id)):
                    return ""
                await asyncio.sleep(0.1)
        finally:
            await redis.aclose()
        return "its screen pop never reached Redis"
    if phase.dependency == "llm":
        pop = await app[HANDOFF].find_pop(handoff_id)
        for _ in range(200):
            if pop is None or pop.llm_status != "pending":
                break
            await asyncio.sleep(0.1)
        if pop is None or not pop.summary.get("text"):
            return "no pop with the rule summary"
        if pop.llm_status not in ("error", "timeout", "skipped"):
            return f"the LLM summary is {pop.llm_status!r} with the LLM {phase.mode}"
    return ""


async def dependency_drill(settings: Settings, *, pg_url: str, redis_url: str,
                           repo: CallRepository, phases: list[tuple[str, Mode]], calls: int,
                           delay_s: float, echo: Any = print,
                           start_asterisk: bool | None = None) -> list[Phase]:
    """The drill on PostgreSQL and Redis someone else runs (``drill_stack``); the server runs
    in this process (with its own Asterisk unless ``start_asterisk`` is False), reaching them
    (and the LLM) through the fault proxies."""
    from ivr.app.build import build_app
    from ivr.app.server import serve

    faults = Faults(pg_url, redis_url, settings.llm.base_url)
    done: list[Phase] = []
    try:
        server_settings = await faults.start(settings)
        if not faults.llm_configured and any(d == "llm" for d, _ in phases):
            echo("  no LLM configured (llm.base_url): the proxy has nothing behind it; down "
                 "and slow are still what the server meets")
        app = build_app(server_settings, progress=lambda _m: None,
                        start_asterisk=start_asterisk)
        app.cleanup_ctx.append(faults.part())

        async def run(app: web.Application) -> int:
            for dependency, mode in phases:
                echo(f"{dependency} {mode}: {calls} callers")
                done.append(await run_phase(app, server_settings, faults, repo, redis_url,
                                            dependency, mode, calls=calls, delay_s=delay_s,
                                            echo=echo))
            return 0

        await serve(server_settings, progress=lambda _m: None, then=run, app=app, listen=False)
    finally:
        await faults.close()
    return done
