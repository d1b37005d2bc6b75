"""The caller's audio reaches the server: ARI externalMedia through the real Asterisk."""

from __future__ import annotations

import asyncio
import time
import wave

import numpy as np
import pytest

from ivr.sim.demo import listen_until_quiet
from ivr.sim.sipua import SipUserAgent, voiced_seconds
from ivr.telephony.media.external import MediaTap
from ivr.web.keys import ARI, CALLS
from tests.conftest import ServerControl
from tests.paths import SPEECH

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]

SPEECH = SPEECH


def read_wav_8k(name: str) -> bytes:
    path = SPEECH / name
    if not path.exists():
        pytest.skip(f"test recordings not found at {SPEECH}")
    with wave.open(str(path)) as w:
        assert w.getframerate() == 8000 and w.getsampwidth() == 2 and w.getnchannels() == 1
        return w.readframes(w.getnframes())




async def test_caller_audio_arrives_through_external_media(
    server: ServerControl, caller: SipUserAgent
) -> None:
    speech = read_wav_8k("funasr_sample_8k.wav")
    assert server.app is not None
    call = await caller.call("956100")
    await listen_until_quiet(call)  # the greeting and menu are played while bridged, too
    manager = server.app[CALLS]
    channel_id = next(iter(manager.channels))
    tap = MediaTap(server.app[ARI], channel_id)
    audio = await tap.open()
    try:
        await asyncio.sleep(0.3)
        started = time.monotonic()
        await call.play(speech)
        got = bytearray()
        while time.monotonic() - started < len(speech) / 16000 + 1.5:
            try:
                frame = await asyncio.wait_for(audio.frame(), 0.5)
            except TimeoutError:
                continue
            if frame is None:
                break
            got += frame
    finally:
        await tap.close()
        await call.hangup()
    sent_voiced = voiced_seconds(speech)
    got_voiced = voiced_seconds(bytes(got))
    assert abs(got_voiced - sent_voiced) < 0.5, (sent_voiced, got_voiced, audio.stats)
    # the same signal (μ-law twice): the envelopes line up
    a = np.abs(np.frombuffer(speech, np.int16).astype(float))
    b = np.abs(np.frombuffer(bytes(got), np.int16).astype(float))
    env_a = a[: len(a) // 160 * 160].reshape(-1, 160).mean(axis=1)
    env_b = b[: len(b) // 160 * 160].reshape(-1, 160).mean(axis=1)
    mode = "valid" if len(env_b) >= len(env_a) else "full"
    corr = np.correlate(env_b - env_b.mean(), env_a - env_a.mean(), mode)
    norm = np.linalg.norm(env_a - env_a.mean()) * np.linalg.norm(env_b - env_b.mean())
    assert corr.max() / norm > 0.8
    assert audio.stats.lost <= 2 and audio.stats.bad == 0
