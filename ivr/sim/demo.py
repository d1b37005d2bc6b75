"""A demo call through the real Asterisk with the project's SIP user agent.

The caller listens until each prompt ends (silence after speech), presses the next key, and
finally reports what it heard and pressed, and what the server recorded for the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from ivr.core.config import Settings
from ivr.sim.desk import DeskLoginError, dev_desk_headers
from ivr.sim.sipua import SipCall, SipError, SipUserAgent, voiced_seconds
from ivr.sim.sipua.rtp import RtpReceiver

# the demo call: self-service by keys (oil line, balance, the demo card and its PIN)
DEMO_KEYS = ["1", "1", "9001010000012345678#", "123456#"]

FRAME = 320  # 20 ms of 8 kHz s16le
# frames this close to now may still fill in: a packet up to RtpReceiver.REBASE_S late is put
# where its timestamp says, over what heard() padded as silence
SETTLE_FRAMES = int((RtpReceiver.REBASE_S + RtpReceiver.JITTER_S) / 0.02) + 1


@dataclass
class Heard:
    after: str  # "answer" or the key pressed before it
    seconds: float
    voiced_seconds: float


@dataclass
class DemoReport:
    ok: bool = False
    setup_ms: float = 0.0
    heard: list[Heard] = field(default_factory=list)
    pressed: list[str] = field(default_factory=list)
    ended_by: str = ""
    server_path: list[dict[str, object]] = field(default_factory=list)
    outcome: str = ""
    queue: str | None = None
    error: str = ""
    saved: Path | None = None


def _frame_voiced(frame: bytes, threshold: float = 300.0) -> bool:
    import numpy as np

    samples = np.frombuffer(frame, dtype="<i2").astype(np.float32)
    return bool(samples.size) and float(np.sqrt(np.mean(samples * samples))) > threshold


async def listen_until_quiet(
    call: SipCall, *, quiet_s: float = 1.2, max_s: float = 30.0, min_voiced_s: float = 0.3
) -> tuple[float, float]:
    """Wait until the caller has heard speech followed by ``quiet_s`` of silence.

    Returns (seconds heard in this window, voiced seconds in it)."""
    start = len(call.heard())
    deadline = time.monotonic() + max_s
    voiced: list[bool] = []  # per 20 ms frame since start; each settled frame judged once
    tail = int(quiet_s / 0.02)
    while time.monotonic() < deadline and not call.ended:
        await asyncio.sleep(0.1)
        pcm = call.heard(start + len(voiced) * FRAME)
        settled = len(pcm) // FRAME - SETTLE_FRAMES
        voiced += [_frame_voiced(pcm[i * FRAME : (i + 1) * FRAME]) for i in range(settled)]
        if sum(voiced) * 0.02 < min_voiced_s:
            continue
        if len(voiced) > tail and not any(voiced[-tail:]):
            break
    pcm = call.heard(start)
    return len(pcm) / 16000, voiced_seconds(pcm)


DEMO_RECORD_USER = "ops1"  # reads /api/calls (role ops)


async def fetch_server_record(settings: Settings) -> dict[str, object] | None:
    """The last call as the server recorded it (``/api/calls``, read as the ops user of the
    development settings; None when there is none or no development password)."""
    url = f"http://{settings.web.host}:{settings.web.port}/api/calls?limit=1"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(10)) as http:
            auth = await dev_desk_headers(http, settings, DEMO_RECORD_USER)
            async with http.get(url, headers=auth) as r:
                rows = await r.json()
    except (aiohttp.ClientError, TimeoutError, ValueError, DeskLoginError):
        return None
    return rows[0] if rows else None


async def demo_call(
    settings: Settings,
    *,
    number: str = "956100",
    keys: list[str],
    save: Path | None = None,
    linger_s: float = 4.0,
) -> DemoReport:
    a = settings.asterisk
    report = DemoReport()
    ua = SipUserAgent(
        server_host=a.bind_host,
        server_port=a.sip_port,
        username="caller",
        password=a.caller_password.get_secret_value(),
    )
    await ua.start()
    try:
        t = time.monotonic()
        call = await ua.call(number)
        report.setup_ms = (time.monotonic() - t) * 1000
        seconds, voiced = await listen_until_quiet(call)
        report.heard.append(Heard("answer", seconds, voiced))
        for key in keys:
            if call.ended:
                break
            await call.send_dtmf(key)
            report.pressed.append(key)
            # after the last key the caller may be in a queue (music never goes quiet), or
            # hear a reply rendered on demand (on a first run behind the bots' prompts still
            # rendering in the background), then the goodbye and the IVR's hang-up
            seconds, voiced = await listen_until_quiet(call, max_s=20.0, quiet_s=2.5)
            report.heard.append(Heard(key, seconds, voiced))
        if not call.ended:
            # the IVR may be saying goodbye; in a queue (music on hold) or still in a menu:
            # listen a little, then leave
            with contextlib.suppress(TimeoutError):
                await call.wait_hangup(timeout=linger_s)
        if not call.ended:
            report.ended_by = "caller"
            await call.hangup()
        else:
            report.ended_by = "ivr" if call.ended_by_remote else "caller"
        if save is not None:
            call.save_heard(save)
            report.saved = save
        report.ok = True
    except (SipError, OSError, TimeoutError) as exc:
        report.error = f"{type(exc).__name__}: {exc}"
    finally:
        await ua.close()
    await asyncio.sleep(0.5)  # let the server close the call record
    record = await fetch_server_record(settings)
    if record is not None:
        report.server_path = list(record.get("path") or [])  # type: ignore[call-overload]
        report.outcome = str(record.get("outcome", ""))
        report.queue = record.get("queue")  # type: ignore[assignment]
    return report


def print_report(report: DemoReport, echo: Callable[[str], object]) -> None:
    if report.error:
        echo(f"demo call failed: {report.error}")
        return
    echo(f"demo call to 956100: answered in {report.setup_ms:.0f} ms")
    for h in report.heard:
        key = h.after if len(h.after) <= 2 else f"<{len(h.after.rstrip('#'))} digits>#"
        label = "after answer" if h.after == "answer" else f"after pressing {key}"
        echo(f"  heard {h.seconds:4.1f} s of audio ({h.voiced_seconds:4.1f} s of speech) {label}")
    said = [s for s in report.server_path if s.get("step") == "say"]
    if said:
        echo("  prompts the IVR played:")
        for s in said:
            detail = s.get("detail") or {}
            text = detail.get("text", "") if isinstance(detail, dict) else ""
            echo(f"    「{text}」")
    pressed = [k if len(k) <= 2 else f"<{len(k.rstrip('#'))} digits>#" for k in report.pressed]
    echo(f"  pressed: {' '.join(pressed) or '(nothing)'}")
    echo(
        f"  server outcome: {report.outcome or '?'}"
        + (f", queue {report.queue}" if report.queue else "")
        + f"; call ended by {report.ended_by}"
    )
    if report.saved:
        echo(f"  what the caller heard: {report.saved}")
