"""``ivr bench voice``: the caller's wait, measured through the real Asterisk.

The stack runs in this process (as ``ivr up`` runs it); the project's SIP user agent calls
956100 and speaks, over RTP, utterances rendered by the server's own TTS. Per turn:

* **reply latency**: from the end of the caller's speech (the last loud 20 ms frame of the
  utterance leaving the caller's RTP sender) to the first loud RTP packet of the IVR's reply
  arriving at the caller. Whatever the reply is (the next question, a clarification, a
  reprompt) counts: that is the silence the caller hears.
* what the server recorded for the turn (call journal): the end-of-speech wait of the endpointer
  is ``asr.end_silence_ms`` (or less: a turn judged complete at an ``asr.pause_ms`` pause);
  ``asr_s`` the recognition time, which overlaps that wait when the decode started at the
  pause (``turn_end``); the rest is dialog, prompt and playback start.

Also: the ASR real-time factor (recognition seconds / seconds of speech recognised), and CPU
per call (this process: server and caller; Asterisk separately, from /proc).

Turns cycle through a bot request, 再说一遍 and 主菜单, so a call goes on without ending in an
agent queue; a call that is transferred (music) or ends is replaced by a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import statistics
import sys
import time
import wave
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import click
import numpy as np
from aiohttp import web

from ivr.core.config import Settings
from ivr.sim.sipua import SipCall, SipError, SipUserAgent
from ivr.web.keys import ASTERISK, PROMPT_CACHE, REPO

UTTERANCES = ("查一下我的加油卡还有多少钱。", "再说一遍。", "主菜单。",
              "我家燃气表坏了。", "再说一遍。", "返回主菜单。")
FRAME = 320  # bytes: 20 ms of 8 kHz s16le
LOUD_RMS = 300.0
QUIET_S = 2.0  # the IVR has finished speaking when nothing loud came for this long
REPLY_TIMEOUT_S = 10.0
TURNS_PER_CALL = 6


@dataclass
class Turn:
    text: str
    latency_s: float | None  # None: no reply within REPLY_TIMEOUT_S


@dataclass
class VoiceBench:
    turns: list[Turn] = field(default_factory=list)
    calls: int = 0
    failed_calls: int = 0
    server_steps: list[dict[str, object]] = field(default_factory=list)  # "speech" steps
    cpu_process_s: float = 0.0
    cpu_asterisk_s: float | None = None
    call_seconds: float = 0.0


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def speech_end_offset(pcm: bytes) -> float:
    """Seconds from the start of ``pcm`` to the end of its last loud frame."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    n = samples.size // (FRAME // 2)
    frames = samples[: n * (FRAME // 2)].reshape(n, FRAME // 2)
    loud = np.flatnonzero(np.sqrt((frames ** 2).mean(axis=1)) > LOUD_RMS)
    return float((loud[-1] + 1) * 0.02) if loud.size else 0.0


async def wait_quiet(call: SipCall, quiet_s: float = QUIET_S, max_s: float = 20.0) -> bool:
    """Until nothing loud has arrived for ``quiet_s`` (True), or ``max_s`` passed / the call
    ended (False). Asterisk sends no RTP while nothing plays, so silence is absence."""
    deadline = time.monotonic() + max_s
    while time.monotonic() < deadline and not call.ended:
        arrivals = call.receiver.loud_arrivals
        last = arrivals[-1] if arrivals else 0.0
        if arrivals and time.monotonic() - last >= quiet_s:
            return True
        await asyncio.sleep(0.05)
    return False


async def first_loud_after(call: SipCall, t: float, timeout: float) -> float | None:
    deadline = t + timeout
    while time.monotonic() < deadline and not call.ended:
        first = None
        for arrived in reversed(call.receiver.loud_arrivals):  # newest first: few to scan
            if arrived <= t:
                break
            first = arrived
        if first is not None:
            return first
        await asyncio.sleep(0.005)
    return None


async def turns_of_one_call(ua: SipUserAgent, audio: list[tuple[str, bytes, float]],
                            start: int, wanted: int, report: VoiceBench, *,
                            prompt_max_s: float = 20.0) -> int:
    """One call; returns how many turns it measured. Each prompt (the greeting and menu
    first) is heard to its end, if it ends within ``prompt_max_s``; else (music on hold, say)
    the call is over."""
    call = await ua.call("956100")
    report.calls += 1
    began = time.monotonic()
    done = 0
    try:
        if not await wait_quiet(call, max_s=prompt_max_s):
            report.failed_calls += 1
            return 0
        while done < wanted and not call.ended:
            text, pcm, end_offset = audio[(start + done) % len(audio)]
            sent = time.monotonic()
            await call.play(pcm)  # resolves when the last frame has left
            finished = time.monotonic()
            spoke_until = finished - (len(pcm) / 16000 - end_offset)
            heard = await first_loud_after(call, max(spoke_until, sent), REPLY_TIMEOUT_S)
            report.turns.append(Turn(text, None if heard is None else heard - spoke_until))
            done += 1
            if not await wait_quiet(call, max_s=prompt_max_s):  # music on hold, a hang-up
                break
    finally:
        report.call_seconds += time.monotonic() - began
        if not call.ended:
            with contextlib.suppress(SipError, OSError, TimeoutError):
                await call.hangup()
    return done


def process_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) a process has used so far, from /proc; None when gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int | None:
    """A process's resident memory (VmRSS) in KiB, from /proc; None when gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def asterisk_cpu_s(app: web.Application) -> float | None:
    proc = getattr(app.get(ASTERISK), "proc", None)
    return None if proc is None else process_cpu_s(proc.pid)


async def bench_voice(app: web.Application, settings: Settings, *, turns: int = 30,
                      echo: Callable[[str], object] = print) -> VoiceBench:
    report = VoiceBench()
    audio: list[tuple[str, bytes, float]] = []
    for text in UTTERANCES:
        path = await app[PROMPT_CACHE].get(text)
        with wave.open(str(path)) as w:
            pcm = w.readframes(w.getnframes())
        audio.append((text, pcm, speech_end_offset(pcm)))
    a = settings.asterisk
    ua = SipUserAgent(server_host=a.bind_host, server_port=a.sip_port, username="caller",
                      password=a.caller_password.get_secret_value())
    await ua.start()
    since = time.time()
    cpu0, ast0 = time.process_time(), asterisk_cpu_s(app)
    try:
        while len(report.turns) < turns and report.failed_calls < 3:
            got = await turns_of_one_call(ua, audio, len(report.turns),
                                           min(TURNS_PER_CALL, turns - len(report.turns)),
                                           report)
            echo(f"  call {report.calls}: {got} turns")
            await asyncio.sleep(0.5)
    finally:
        await ua.close()
    report.cpu_process_s = time.process_time() - cpu0
    ast1 = asterisk_cpu_s(app)
    report.cpu_asterisk_s = None if ast0 is None or ast1 is None else ast1 - ast0
    await asyncio.sleep(1.0)  # the last call's record is written
    rows = sorted(await app[REPO].recent(report.calls + 5), key=lambda row: row.started_at)
    for row in rows:  # in call order, as the turns were measured
        if row.started_at.timestamp() >= since - 1:
            report.server_steps += [s["detail"] for s in row.path if s["step"] == "speech"]
    return report


def print_voice_bench(r: VoiceBench, settings: Settings, command: str,
                      echo: Callable[[str], object] = print) -> None:
    lat = [t.latency_s * 1000 for t in r.turns if t.latency_s is not None]
    echo(f"voice bench: {len(r.turns)} turns in {r.calls} calls "
         f"({len(r.turns) - len(lat)} without a reply in {REPLY_TIMEOUT_S:.0f} s)")
    if lat:
        echo(f"  end of caller speech -> first reply audio: p50 {percentile(lat, 50):.0f} ms, "
             f"p95 {percentile(lat, 95):.0f} ms, min {min(lat):.0f}, max {max(lat):.0f} "
             f"(target p50 <= 800, p95 <= 1200)")
    steps = r.server_steps
    asr = [float(str(s.get("asr_s", 0))) for s in steps]
    speech = [float(str(s.get("speech_s", 0))) for s in steps]
    if asr:
        echo(f"  server: endpointer end-of-speech wait {settings.asr.end_silence_ms} ms; "
             f"recognition p50 {statistics.median(asr) * 1000:.0f} ms, "
             f"p95 {percentile(asr, 95) * 1000:.0f} ms over {len(asr)} utterances")
    kinds = [str(s.get("turn_end", "silence")) for s in steps]
    ends = Counter(kinds)
    if steps:
        echo(f"  turn ends: {ends['early']} judged complete at a {settings.asr.pause_ms} ms pause, "
             f"{ends['pause']} after the silence with the decode started at the pause, "
             f"{ends['silence']} decoded after the silence")
    if len(kinds) == len(r.turns):  # each turn's reply latency by how it ended
        by: dict[str, list[float]] = {}
        for kind, turn in zip(kinds, r.turns, strict=True):
            if turn.latency_s is not None:
                by.setdefault(kind, []).append(turn.latency_s * 1000)
        echo("  reply p50 by turn end: " + ", ".join(
            f"{k} {statistics.median(v):.0f} ms ({len(v)})" for k, v in sorted(by.items())))
    if sum(speech) > 0:
        echo(f"  ASR real-time factor: {sum(asr) / sum(speech):.2f} "
             f"({settings.asr.backend}, {sum(asr):.1f} s to recognise {sum(speech):.1f} s)")
    if r.calls and r.call_seconds:
        per_min = 60 / r.call_seconds
        ast = (f"; Asterisk {r.cpu_asterisk_s * per_min:.1f} CPU s per call-minute"
               if r.cpu_asterisk_s is not None else "")
        echo(f"  CPU: IVR process (server + test caller) {r.cpu_process_s * per_min:.1f} CPU s "
             f"per call-minute{ast}; {os.cpu_count()} cores")
    heard = Counter(str(s.get("text", "")) for s in steps)
    echo("  what the IVR heard: " + "，".join(f"{k or '（无）'}×{v}" for k, v in heard.items()))
    echo(f"  command: {command}")


@click.command("voice")
@click.option("--turns", type=int, default=30, show_default=True, help="Turns to measure.")
@click.pass_obj
def voice_cmd(settings: Settings, turns: int) -> None:
    """End of caller speech -> first reply audio through the real Asterisk (p50/p95), the ASR
    real-time factor and CPU per call. Starts the whole stack in this process (stop `ivr up`
    first: they share the ports)."""
    from ivr.app.server import serve

    command = " ".join(shlex.quote(a) for a in ["ivr", *sys.argv[1:]])

    async def run(app: web.Application) -> int:
        click.echo(f"placing calls until {turns} turns are measured")
        report = await bench_voice(app, settings, turns=turns, echo=click.echo)
        print_voice_bench(report, settings, command, click.echo)
        return 0 if report.turns else 1

    def progress(msg: str) -> None:
        click.echo(msg, err=True)

    sys.exit(asyncio.run(serve(settings, progress=progress, then=run)))
