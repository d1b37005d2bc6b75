"""VAD and endpointer on real Mandarin recordings (8 kHz, as on a phone line)."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from asr.audio import Upsampler2x, read_wav
from asr.base import ASRUnavailable, AudioError
from asr.endpoint import (
    Endpointer,
    EndpointEvent,
    EndpointSettings,
    MaxLength,
    NoInput,
    SpeechEnded,
    SpeechStarted,
)
from asr.vad import EnergyVad, SileroVad, make_vad
from ivr.core.config import Settings
from tests.paths import SPEECH
from tts.cache import PromptCache
from tts.factory import build_synthesizer

SPEECH = SPEECH
RATE = 8000
FRAME = RATE * 20 // 1000 * 2  # 20 ms of 16-bit PCM, as from RTP


def silero_or_skip() -> None:
    try:
        SileroVad(RATE)
    except ASRUnavailable as exc:
        pytest.skip(f"Silero VAD unavailable ({exc}); CI installs the [whisper] extra")


def recording(name: str) -> bytes:
    path = SPEECH / f"{name}_8k.wav"
    if not path.is_file():
        pytest.skip(f"test recordings not found at {SPEECH}")
    pcm, rate = read_wav(path)
    assert rate == RATE
    return pcm


def line_noise(seconds: float, seed: int = 0) -> bytes:
    """A quiet telephone line: white noise at about -60 dBFS (not digital silence)."""
    n = int(seconds * RATE)
    return np.random.default_rng(seed).normal(0, 30, n).astype("<i2").tobytes()


def speech_span(pcm: bytes) -> tuple[float, float]:
    """Where speech starts and ends in a recording: 20 ms frames within 20 dB of the
    loudest frame."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    n = x.size // 160
    db = 10 * np.log10(np.mean(x[: n * 160].reshape(n, 160) ** 2, axis=1) + 1e-9)
    loud = np.flatnonzero(db > db.max() - 20)
    return loud[0] * 0.02, (loud[-1] + 1) * 0.02


def feed(ep: Endpointer, pcm: bytes) -> list[EndpointEvent]:
    events: list[EndpointEvent] = []
    for i in range(0, len(pcm), FRAME):
        events += ep.feed(pcm[i : i + FRAME])
    return events


@pytest.mark.parametrize("name", ["aishell_BAC009S0724W0121", "funasr_asr_example"])
def test_speech_start_and_end_found_on_real_recordings(name: str) -> None:
    silero_or_skip()
    speech = recording(name)
    begin, end = speech_span(speech)
    lead = 1.0
    events = feed(Endpointer(), line_noise(lead) + speech + line_noise(2.0, 1))
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded], events
    started, ended = events
    assert isinstance(started, SpeechStarted) and isinstance(ended, SpeechEnded)
    # start: confirmed after start_ms (200) of speech, well before half a second passes
    assert lead + begin + 0.15 <= started.at_s <= lead + begin + 0.6
    # end: 700 ms of silence after the last syllable (plus a VAD window or two)
    assert 0.6 <= ended.at_s - (lead + end) <= 1.1
    assert not ended.truncated
    # the utterance holds all the speech (lead-in included), and not the whole tail
    assert ended.audio_s >= end - begin
    assert ended.start_s <= lead + begin
    assert ended.audio_s <= end - begin + 0.3 + 0.35 + 0.1


def test_energy_fallback_also_finds_speech() -> None:
    speech = recording("funasr_asr_example")
    ep = Endpointer(EndpointSettings(vad="energy"), RATE, EnergyVad(RATE))
    events = feed(ep, line_noise(1.0) + speech + line_noise(2.0, 1))
    kinds = [type(e) for e in events]
    assert kinds[0] is SpeechStarted and SpeechEnded in kinds


@pytest.mark.parametrize("kind", ["silero", "energy"])
def test_silence_gives_no_input_once(kind: str) -> None:
    if kind == "silero":
        silero_or_skip()
    ep = Endpointer(EndpointSettings(vad=kind, no_input_s=5.0))
    events = feed(ep, line_noise(7.0))
    assert [type(e) for e in events] == [NoInput]
    assert 5.0 <= events[0].at_s <= 5.1
    ep.reset()  # listening again re-arms it
    assert [type(e) for e in feed(ep, line_noise(5.2, 2))] == [NoInput]


async def test_speech_starts_on_time_after_long_silence(settings: Settings) -> None:
    """A customer answering after 20 s of digital silence (a survey call: prompts play on the
    other direction): Silero's state had drifted, and for half the window phases 不要再打了
    started 0.9 s late, so the preroll held only 再打了 and the do-not-call was missed. Its
    state now starts afresh in long quiet (asr.vad.SILERO_QUIET_RESET_S)."""
    silero_or_skip()
    synth = await asyncio.to_thread(build_synthesizer, settings.tts)
    try:
        pcm, rate = read_wav(await PromptCache(synth, settings.tts).get("不要再打了。"))
    finally:
        await synth.close()
    assert rate == RATE
    late = []
    for k in range(8):  # every phase of the 32 ms windows against 20 ms frames
        lead = 20 * RATE + 160 * k
        ep = Endpointer(EndpointSettings(vad="silero", no_input_s=60.0))
        events = feed(ep, bytes(2 * lead) + pcm + bytes(RATE))
        starts = [e.at_s - lead / RATE for e in events if isinstance(e, SpeechStarted)]
        assert len(starts) == 1, events
        late.append(round(starts[0], 2))
    assert max(late) < 0.45, late  # 0.28-0.30 s: within the 0.3 s preroll of the onset


def test_short_sounds_do_not_start_speech() -> None:
    silero_or_skip()
    rng = np.random.default_rng(3)
    click = rng.normal(0, 8000, 800).astype("<i2").tobytes()  # 100 ms noise burst
    # the loudest 100 ms of real speech: a syllable cut short, like a cough or "uh"
    speech = np.frombuffer(recording("funasr_sample"), dtype="<i2")
    energy = np.convolve(speech.astype(np.float64) ** 2, np.ones(800), "valid")
    at = int(np.argmax(energy))
    syllable = speech[at : at + 800].tobytes()
    for burst in (click, syllable):
        ep = Endpointer(EndpointSettings(no_input_s=30.0))
        events = feed(ep, line_noise(1.0) + burst + line_noise(2.0, 1))
        assert events == [], events
        assert not ep.speaking


def test_max_length_cuts_a_long_utterance() -> None:
    silero_or_skip()
    speech = recording("long") + recording("funasr_asr_example")
    ep = Endpointer(EndpointSettings(max_utterance_s=5.0))
    events = feed(ep, line_noise(0.5) + speech)
    cut = [e for e in events if isinstance(e, MaxLength)]
    assert cut, events
    assert cut[0].truncated and cut[0].kind == "max_length"
    assert isinstance(cut[0], SpeechEnded)  # a listener handling SpeechEnded gets it too
    assert 4.9 <= cut[0].audio_s <= 5.05


def test_endpointer_rejects_broken_frames() -> None:
    ep = Endpointer(EndpointSettings(vad="energy"))
    with pytest.raises(AudioError, match="odd"):
        ep.feed(b"\x00\x01\x02")
    assert ep.feed(b"") == []
    with pytest.raises(AudioError, match="sample rate"):
        Endpointer(EndpointSettings(vad="energy"), 44100)


def test_vad_cost_per_frame_is_small() -> None:
    silero_or_skip()
    pcm = recording("funasr_asr_example")
    ep = Endpointer()
    t = time.perf_counter()
    feed(ep, pcm)
    per_frame = (time.perf_counter() - t) / (len(pcm) // FRAME)
    assert per_frame < 0.002  # measured ~0.1 ms per 20 ms frame on the 2-core machine


def test_make_vad_and_windows() -> None:
    vad = make_vad("energy", 16000)
    assert vad.window == 512 and vad.sample_rate == 16000
    with pytest.raises(ValueError, match="unknown VAD"):
        make_vad("webrtc", 8000)
    up = Upsampler2x()
    tone = np.sin(2 * np.pi * 440 * np.arange(256) / 8000).astype(np.float32)
    out = np.concatenate([up(tone), up(tone)])
    assert out.size == 1024 and 0.8 < float(np.abs(out[64:]).max()) < 1.2


def test_endpointer_at_16k() -> None:
    silero_or_skip()
    path = SPEECH / "aishell_BAC009S0724W0121.wav"
    if not path.is_file():
        pytest.skip(f"test recordings not found at {SPEECH}")
    pcm, rate = read_wav(path)
    assert rate == 16000
    ep = Endpointer(sample_rate=16000)
    assert ep.window == 512
    audio = bytes(32000) + pcm + bytes(64000)  # 1 s of silence before, 2 s after
    events: list[EndpointEvent] = []
    for i in range(0, len(audio), 640):  # 20 ms at 16 kHz
        events += ep.feed(audio[i : i + 640])
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]
    ended = events[1]
    assert isinstance(ended, SpeechEnded) and ended.sample_rate == 16000 and ended.audio_s > 3.0
