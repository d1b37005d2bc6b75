"""The voice path through the real Asterisk: the caller speaks, the IVR understands.

The test caller plays speech into the call over RTP; Asterisk's snoop + externalMedia bring it
to the server, where the endpointer and Whisper base turn it into text for the dialog engine.
The utterances are rendered by the project's own TTS (Kokoro), as a caller's voice stand-in that
the embedded model recognises reliably.
"""

from __future__ import annotations

import asyncio
import csv
import time
import wave
from typing import Any

import pytest

from ivr.sim.demo import listen_until_quiet
from ivr.sim.sipua import SipCall, SipUserAgent
from ivr.web.keys import PROMPT_CACHE, RECOGNIZER, REPO
from tests.conftest import ServerControl
from tests.paths import SPEECH

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]




async def spoken(server: ServerControl, text: str) -> bytes:
    """``text`` as 8 kHz 16-bit PCM, rendered by the server's TTS (cached)."""
    assert server.app is not None
    path = await server.app[PROMPT_CACHE].get(text)
    with wave.open(str(path)) as w:
        assert w.getframerate() == 8000
        return w.readframes(w.getnframes())


async def closed_row(server: ServerControl, since: float) -> Any:
    assert server.app is not None
    for _ in range(100):
        rows = await server.app[REPO].recent(1)
        if rows and rows[0].started_at.timestamp() >= since - 1 and rows[0].ended_at:
            return rows[0]
        await asyncio.sleep(0.2)
    raise AssertionError("the call row was not closed")





def recording(name: str) -> tuple[str, bytes]:
    """(transcript, 8 kHz PCM) of one of the shared human recordings."""
    manifest = SPEECH / "manifest.tsv"
    if not manifest.exists():
        pytest.skip(f"test recordings not found at {SPEECH}")
    with manifest.open(encoding="utf-8") as f:
        rows = {r["name"]: r for r in csv.DictReader(f, delimiter="\t")}
    with wave.open(str(SPEECH / f"{name}_8k.wav")) as w:
        return rows[name]["transcript"], w.readframes(w.getnframes())


def steps(row: Any, name: str) -> list[dict[str, Any]]:
    return [s["detail"] for s in row.path if s["step"] == name]


async def say_and_listen(call: SipCall, pcm: bytes) -> None:
    await call.play(pcm)
    await listen_until_quiet(call)


async def spoken_balance_call(server: ServerControl, caller: SipUserAgent, number: str) -> Any:
    """A balance request by voice, then the card and PIN by keys; the call's closed row."""
    # Kokoro's Japanese voices say 余额 so that Whisper base hears 鱼了/音乐 (measured); the
    # issue asks for an utterance the embedded models recognise reliably, and this one is.
    request = await spoken(server, "查一下我的加油卡还有多少钱。")
    since = time.time()
    call = await caller.call(number)
    await listen_until_quiet(call)
    await say_and_listen(call, request)
    for keys in ("9001010000012345678#", "123456#"):
        await call.send_dtmf(keys)
        await listen_until_quiet(call)
    await call.wait_hangup(timeout=60)
    row = await closed_row(server, since)
    heard = steps(row, "speech")
    assert heard, "the caller's speech never reached the dialog"
    assert heard[0]["text"], heard  # the path, not the words: the right bot below
    assert [d["bot"] for d in steps(row, "bot")] == ["fuel_balance"]
    assert "1280.50元" in "".join(d.get("text", "") for d in steps(row, "say"))
    assert row.outcome == "completed"
    return row


async def test_spoken_balance_request_then_keys(server: ServerControl,
                                                caller: SipUserAgent) -> None:
    assert server.app is not None
    if RECOGNIZER not in server.app:
        pytest.skip("no recogniser loaded (the whisper extra is not installed)")
    row = await spoken_balance_call(server, caller, "956100")
    assert row.transport == "ari"
    assert steps(row, "speech")[0]["latency_s"] < 3.0  # end of speech -> text on this CPU


async def test_speech_interrupts_the_greeting(server: ServerControl,
                                             caller: SipUserAgent) -> None:
    assert server.app is not None
    if RECOGNIZER not in server.app:
        pytest.skip("no recogniser loaded (the whisper extra is not installed)")
    request = await spoken(server, "我要转人工服务。")
    since = time.time()
    call = await caller.call("956100")
    await asyncio.sleep(1.5)  # in the middle of the greeting
    await call.play(request)
    await listen_until_quiet(call, max_s=8.0)
    await asyncio.sleep(1.0)
    await call.hangup()
    row = await closed_row(server, since)
    assert any(d.get("by") == "speech" for d in steps(row, "barge_in")), row.path
    assert row.outcome == "transferred"


async def test_real_recording_reaches_the_dialog_as_text(server: ServerControl,
                                                         caller: SipUserAgent) -> None:
    """A real human recording (8 kHz) played into the call arrives at the dialog engine as
    text close to its transcript: the whole path, RTP -> snoop -> endpointer -> Whisper."""
    from asr.metrics import cer

    assert server.app is not None
    if RECOGNIZER not in server.app:
        pytest.skip("no recogniser loaded (the whisper extra is not installed)")
    name = "funasr_asr_example"  # one continuous sentence (no long pause inside)
    transcript, pcm = recording(name)
    since = time.time()
    call = await caller.call("956100")
    await listen_until_quiet(call)
    await say_and_listen(call, pcm)
    await asyncio.sleep(0.5)
    await call.hangup()
    row = await closed_row(server, since)
    heard = steps(row, "speech")
    assert heard, "the recording never reached the dialog"
    # measured 0.11 through the call (0.05 on the file itself); bound with margin
    assert cer(transcript, heard[0]["text"]) <= 0.35, heard[0]["text"]


async def test_speech_over_fastagi(server: ServerControl, caller: SipUserAgent) -> None:
    """956101 (AGI instead of Stasis): the caller's audio is tapped through ARI by the channel's
    unique id, so a spoken request reaches the same bots; keys keep working beside it."""
    assert server.app is not None
    if RECOGNIZER not in server.app:
        pytest.skip("no recogniser loaded (the whisper extra is not installed)")
    row = await spoken_balance_call(server, caller, "956101")
    assert row.transport == "agi"
