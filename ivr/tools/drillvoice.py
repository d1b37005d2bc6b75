"""Speech under time and under load: ``ivr drill long-call`` and ``ivr drill speech-load``.

Both speak to the IVR over RTP through the real Asterisk, with utterances rendered by the
server's own TTS, and measure each turn's reply latency the way ``ivr bench voice`` does (end of
the caller's speech to the first loud packet of the reply; ``ivr.tools.benchvoice``).

- ``long-call``: one call of N turns (default 20). Replies that slow down turn after turn are
  the most common complaint about voice agents; the figure is the p50 of the last five turns
  against the first five (passes within 10 %), and the latency by turn index.
- ``speech-load``: K speaking callers at once, for K in a ladder (1, 2, 4, 6, 8); each level's
  p95 reply latency; the ceiling is the largest K whose p95 stays within 1.2 s (each level is
  reported: with six turns a caller, one slow turn decides a small level's p95).

Which words the recogniser heard is not judged here (synthetic audio under load); a turn with no
reply within ten seconds counts as a failure.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from ivr.core.config import Settings
from ivr.tools.benchvoice import (
    VoiceBench,
    percentile,
    speech_end_offset,
    turns_of_one_call,
)

# a conversation that can go on for ever without reaching an agent: a request, then back
LONG_UTTERANCES = ("查一下我的加油卡还有多少钱。", "返回主菜单。", "我家燃气表坏了。",
                   "返回主菜单。", "加油站在哪里。", "再说一遍。", "返回主菜单。")
P95_CEILING_MS = 1200.0


async def rendered(app: web.Application, texts: tuple[str, ...]) -> list[tuple[str, bytes, float]]:
    from ivr.web.keys import PROMPT_CACHE

    out = []
    for text in texts:
        path = await app[PROMPT_CACHE].get(text)
        with wave.open(str(path)) as w:
            pcm = w.readframes(w.getnframes())
        out.append((text, pcm, speech_end_offset(pcm)))
    return out


async def synthesized(settings: Settings, text: str) -> Path:
    """``text`` rendered by the configured TTS loaded here, for a drill with no stack in this
    process (its prompt cache: 8 kHz WAV)."""
    from tts.cache import PromptCache
    from tts.factory import build_synthesizer

    synth = await asyncio.to_thread(build_synthesizer, settings.tts, settings.llm, None)
    try:
        return await PromptCache(synth, settings.tts).get(text)
    finally:
        await synth.close()


def caller_ua(settings: Settings) -> Any:
    """The test caller's SIP user agent (endpoint ``caller``) on the stack's Asterisk."""
    from ivr.sim.sipua import SipUserAgent

    a = settings.asterisk
    return SipUserAgent(server_host=a.bind_host, server_port=a.sip_port, username="caller",
                        password=a.caller_password.get_secret_value())


@dataclass
class LongCallReport:
    turns: int = 0
    answered: int = 0
    latency_ms: list[float | None] = field(default_factory=list)  # by turn index
    first5_p50_ms: float | None = None
    last5_p50_ms: float | None = None
    drift: float | None = None  # last five's p50 / first five's, minus one
    failures: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["latency_ms"] = [None if v is None else round(v) for v in self.latency_ms]
        for k in ("first5_p50_ms", "last5_p50_ms"):
            out[k] = None if out[k] is None else round(out[k])
        out["drift"] = None if self.drift is None else round(self.drift, 3)
        return out


async def long_call(app: web.Application, settings: Settings, *, turns: int = 20,
                    echo: Any = print) -> LongCallReport:
    audio = await rendered(app, LONG_UTTERANCES)
    report = LongCallReport(turns=turns)
    bench = VoiceBench()
    ua = caller_ua(settings)
    await ua.start()
    try:
        done = await turns_of_one_call(ua, audio, 0, turns, bench, prompt_max_s=45)
    finally:
        await ua.close()
    report.latency_ms = [None if t.latency_s is None else t.latency_s * 1000 for t in bench.turns]
    report.answered = sum(1 for v in report.latency_ms if v is not None)
    if done < turns:
        report.failures.append(f"the call ended after {done} of {turns} turns")
    if report.answered < len(report.latency_ms):
        report.failures.append(f"{len(report.latency_ms) - report.answered} turns had no reply")
    first = [v for v in report.latency_ms[:5] if v is not None]
    last = [v for v in report.latency_ms[-5:] if v is not None]
    if first and last and len(report.latency_ms) >= 10:
        report.first5_p50_ms = statistics.median(first)
        report.last5_p50_ms = statistics.median(last)
        report.drift = report.last5_p50_ms / report.first5_p50_ms - 1
        if report.drift > 0.10:
            report.failures.append(f"the last five turns are {report.drift:.0%} slower")
    echo("  latency by turn (ms): " + " ".join(
        "-" if v is None else f"{v:.0f}" for v in report.latency_ms))
    return report


@dataclass
class SpeechLevel:
    callers: int
    turns: int = 0
    no_reply: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    seconds: float = 0.0


@dataclass
class SpeechLoadReport:
    levels: list[SpeechLevel] = field(default_factory=list)
    ceiling: int = 0  # the most callers at once with p95 within P95_CEILING_MS
    failures: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"ceiling": self.ceiling, "p95_limit_ms": P95_CEILING_MS,
                "levels": [{k: (round(v) if isinstance(v, float) else v)
                            for k, v in lv.__dict__.items()} for lv in self.levels],
                "failures": self.failures}


async def speech_load(app: web.Application, settings: Settings, *,
                      ladder: tuple[int, ...] = (1, 2, 4, 6, 8), turns_per_call: int = 6,
                      echo: Any = print) -> SpeechLoadReport:
    """Each level: K calls placed together, each speaking ``turns_per_call`` turns; every
    level is run (a p95 over a few turns is noisy: one level over the limit is reported, not
    taken as the end). The ceiling is the largest level within the limit."""
    audio = await rendered(app, LONG_UTTERANCES)
    report = SpeechLoadReport()
    for k in ladder:
        bench = VoiceBench()
        ua = caller_ua(settings)
        await ua.start()
        t0 = time.monotonic()
        try:
            await asyncio.gather(*(turns_of_one_call(ua, audio, i, turns_per_call, bench,
                                                     prompt_max_s=45)
                                   for i in range(k)), return_exceptions=True)
        finally:
            await ua.close()
        lat = [t.latency_s * 1000 for t in bench.turns if t.latency_s is not None]
        level = SpeechLevel(callers=k, turns=len(bench.turns),
                            no_reply=len(bench.turns) - len(lat),
                            seconds=time.monotonic() - t0)
        if lat:
            level.p50_ms, level.p95_ms = percentile(lat, 50), percentile(lat, 95)
        report.levels.append(level)
        echo(f"  {k} callers at once: {level.turns} turns, p50 {level.p50_ms or 0:.0f} ms, "
             f"p95 {level.p95_ms or 0:.0f} ms, {level.no_reply} without a reply")
        within = (level.p95_ms is not None and level.p95_ms <= P95_CEILING_MS
                  and not level.no_reply)
        if within:
            report.ceiling = max(report.ceiling, k)
        if level.p95_ms is None:  # nothing answered at all: no point in more callers
            break
        await asyncio.sleep(1.0)
    return report
