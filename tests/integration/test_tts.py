"""TTS back ends (one contract suite for every back end available here) and the prompt cache."""

from __future__ import annotations

import asyncio
import importlib.util
import io
import logging
import os
import re
import shutil
import time
import wave
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web
from pydantic import SecretStr

from ivr.core.config import LLMSettings, TTSSettings, load_settings
from tts import audio, kokoro_model
from tts.base import Synthesizer, TTSError, TTSUnavailable
from tts.cache import PromptCache
from tts.factory import build_synthesizer
from tts.text import cardinal, normalize, split_sentences

GREETING = "您好，欢迎致电956100。"
TWO_SENTENCES = "您好，欢迎致电956100。请问有什么可以帮您？"

HAVE_ESPEAK = shutil.which("espeak-ng") is not None
KOKORO_MODULES = ("onnxruntime", "misaki", "jieba", kokoro_model.DATA_PACKAGE)
HAVE_KOKORO = all(
    importlib.util.find_spec(m) is not None for m in (*KOKORO_MODULES, *kokoro_model.PART_PACKAGES)
)


def _openai_llm() -> LLMSettings | None:
    """The project's LLM settings when they point at an OpenAI-compatible server."""
    try:
        llm = load_settings().llm
    except Exception:
        return None
    return llm if (llm.base_url or llm.api_key.get_secret_value()) else None


OPENAI_LLM = _openai_llm()

BACKENDS = [
    pytest.param("espeak", marks=pytest.mark.skipif(not HAVE_ESPEAK, reason="no espeak-ng")),
    pytest.param(
        "kokoro", marks=pytest.mark.skipif(not HAVE_KOKORO, reason="pip install '.[kokoro]'")
    ),
    pytest.param(
        "openai", marks=pytest.mark.skipif(OPENAI_LLM is None, reason="no LLM/OpenAI configured")
    ),
]


def _seconds(pcm: bytes) -> float:
    return len(pcm) / (audio.SAMPLE_RATE * audio.SAMPLE_WIDTH)


def _rms(pcm: bytes) -> float:
    x = audio.pcm16_to_float(pcm)
    return float(np.sqrt(np.mean(x**2))) if len(x) else 0.0


# --- back ends: one contract ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def kokoro_synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesizer]:
    """Kokoro loads once per test session (assembly + onnxruntime session + warm-up)."""
    from tts.kokoro import KokoroSynthesizer

    lines: list[str] = []
    synth = KokoroSynthesizer(
        TTSSettings(model_dir=tmp_path_factory.mktemp("models")), progress=lines.append
    )
    assert any("assembling" in line for line in lines)  # progress told about the slow step
    yield synth
    asyncio.run(synth.close())


@pytest.fixture(params=BACKENDS)
async def synth(request: pytest.FixtureRequest) -> AsyncIterator[Synthesizer]:
    if request.param == "kokoro":
        yield request.getfixturevalue("kokoro_synth")
        return
    if request.param == "espeak":
        from tts.espeak import EspeakSynthesizer

        s: Synthesizer = EspeakSynthesizer(TTSSettings())
    else:
        from tts.openai_tts import OpenAISynthesizer

        s = OpenAISynthesizer(TTSSettings(), OPENAI_LLM)
    yield s
    await s.close()


async def test_contract_synthesize(synth: Synthesizer) -> None:
    assert isinstance(synth, Synthesizer)
    assert synth.name and synth.voice
    pcm = await synth.synthesize(GREETING)
    assert isinstance(pcm, bytes) and len(pcm) % 2 == 0
    assert 1.0 <= _seconds(pcm) <= 8.0, _seconds(pcm)  # plausible at 8 kHz, 16-bit
    assert _rms(pcm) > 0.01  # not silent
    # band-limited for 8 kHz: next to no energy right below Nyquist (no aliasing mess)
    spectrum = np.abs(np.fft.rfft(audio.pcm16_to_float(pcm))) ** 2
    freqs = np.fft.rfftfreq(len(pcm) // 2, 1 / audio.SAMPLE_RATE)
    assert spectrum[freqs > 3800].sum() / spectrum.sum() < 0.02


async def test_contract_stream(synth: Synthesizer) -> None:
    chunks = [c async for c in synth.stream(TWO_SENTENCES)]
    assert len(chunks) >= 2
    for c in chunks:
        assert len(c) % 2 == 0 and _rms(c) > 0.005
    assert 2.0 <= sum(_seconds(c) for c in chunks) <= 12.0


async def test_contract_stream_can_stop_early(synth: Synthesizer) -> None:
    stream = synth.stream(TWO_SENTENCES + "感谢您的来电，再见。")
    first = await anext(stream)
    assert _rms(first) > 0.005
    await stream.aclose()  # type: ignore[attr-defined]  # the caller hung up: nothing lingers
    assert await synth.synthesize("再见。")


async def test_contract_empty_text(synth: Synthesizer) -> None:
    for text in ("", "   \n"):
        with pytest.raises(TTSError, match="empty text"):
            await synth.synthesize(text)
        with pytest.raises(TTSError, match="empty text"):
            async for _ in synth.stream(text):
                pass
    with pytest.raises(TTSError, match="nothing speakable"):
        await synth.synthesize("。。。！")


async def test_contract_does_not_block_the_event_loop(synth: Synthesizer) -> None:
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.gather(synth.synthesize(GREETING), synth.synthesize("请稍候。"))
    stop.set()
    await task
    assert max(gaps) < 0.3, max(gaps)


@pytest.mark.skipif(not HAVE_ESPEAK, reason="no espeak-ng")
async def test_closed_backend_refuses_work() -> None:
    from tts.espeak import EspeakSynthesizer

    synth = EspeakSynthesizer(TTSSettings())
    await synth.close()
    with pytest.raises(TTSError, match="closed"):
        await synth.synthesize(GREETING)


# --- Kokoro specifics -----------------------------------------------------------------------------


@pytest.mark.skipif(not HAVE_KOKORO, reason="pip install '.[kokoro]'")
def test_kokoro_model_assembled_once(kokoro_synth: Synthesizer) -> None:
    model_dir = kokoro_synth.model_path.parent.parent  # type: ignore[attr-defined]
    path = kokoro_model.ensure_model(model_dir)
    assert path == kokoro_model.model_path(model_dir) and path.is_file()
    mtime = path.stat().st_mtime_ns
    lines: list[str] = []
    assert kokoro_model.ensure_model(model_dir, lines.append) == path
    assert path.stat().st_mtime_ns == mtime and lines == []  # stamp trusted, nothing rewritten
    assert not list(path.parent.glob("*.part"))
    assert "jm_kumo" in kokoro_model.available_voices()


@pytest.mark.skipif(not HAVE_KOKORO, reason="pip install '.[kokoro]'")
def test_kokoro_checksum_mismatch_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kokoro_model, "expected_sha256", lambda: "0" * 64)
    with pytest.raises(kokoro_model.KokoroModelError, match="checksum mismatch"):
        kokoro_model.ensure_model(tmp_path)
    kdir = tmp_path / "kokoro"
    assert not list(kdir.iterdir())  # no model, no temporary file left


@pytest.mark.skipif(not HAVE_KOKORO, reason="pip install '.[kokoro]'")
def test_kokoro_unknown_voice() -> None:
    with pytest.raises(TTSUnavailable, match="jm_kumo"):
        kokoro_model.load_voice("zz_nobody")


# --- factory ------------------------------------------------------------------------------------


@pytest.mark.skipif(not HAVE_ESPEAK, reason="no espeak-ng")
async def test_factory_falls_back_to_espeak_when_kokoro_packages_are_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(
        kokoro_model, "PART_PACKAGES", (*kokoro_model.PART_PACKAGES[:3], "kokoro_missing_part_9")
    )
    lines: list[str] = []
    with caplog.at_level(logging.WARNING, logger="ivr.tts"):
        synth = build_synthesizer(TTSSettings(model_dir=tmp_path), progress=lines.append)
    try:
        assert synth.name == "espeak"
        assert "falling back to espeak" in caplog.text and "kokoro-missing-part-9" in caplog.text
        assert any("WARNING" in line for line in lines)
    finally:
        await synth.close()
    with pytest.raises(TTSUnavailable, match="not installed"):
        build_synthesizer(TTSSettings(model_dir=tmp_path, fallback="none"))


@pytest.mark.skipif(not (HAVE_ESPEAK and HAVE_KOKORO), reason="needs espeak-ng and Kokoro")
async def test_factory_falls_back_on_checksum_mismatch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(kokoro_model, "expected_sha256", lambda: "f" * 64)
    with caplog.at_level(logging.WARNING, logger="ivr.tts"):
        synth = build_synthesizer(TTSSettings(model_dir=tmp_path))
    assert synth.name == "espeak" and "checksum mismatch" in caplog.text
    await synth.close()


@pytest.mark.skipif(not HAVE_ESPEAK, reason="no espeak-ng")
async def test_factory_backends() -> None:
    synth = build_synthesizer(TTSSettings(backend="espeak"))
    assert synth.name == "espeak" and synth.voice == "cmn-latn-pinyin"
    await synth.close()
    # openai without a server/key configured: not silently "working"
    with pytest.raises(TTSUnavailable, match="not configured"):
        build_synthesizer(TTSSettings(backend="openai", fallback="none"), LLMSettings())
    synth = build_synthesizer(TTSSettings(backend="openai"), LLMSettings())
    assert synth.name == "espeak"
    await synth.close()
    with pytest.raises(TTSUnavailable, match="no voice"):
        build_synthesizer(TTSSettings(backend="espeak", espeak_voice="xx-nonexistent"))


# --- OpenAI-compatible back end against a local fake server -------------------------------------


def _tone(seconds: float, rate: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


async def test_openai_backend_with_fake_server() -> None:
    from tts.openai_tts import OpenAISynthesizer

    requests: list[dict[str, object]] = []

    async def speech(request: web.Request) -> web.Response:
        body = await request.json()
        requests.append(body)
        assert request.headers["Authorization"] == "Bearer sk-test"
        samples = _tone(0.25 * len(str(body["input"])), 24000)
        pcm = audio.to_pcm16(samples)
        if body.get("response_format") == "pcm":
            return web.Response(body=pcm, content_type="audio/pcm")
        # a streamed WAV: placeholder sizes, as some servers send
        header = bytearray(audio.wav_header(len(pcm), 24000))
        header[4:8] = header[40:44] = b"\xff\xff\xff\xff"
        return web.Response(body=bytes(header) + pcm, content_type="audio/wav")

    app = web.Application()
    app.router.add_post("/v1/audio/speech", speech)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    llm = LLMSettings(base_url=f"http://127.0.0.1:{port}/v1", api_key=SecretStr("sk-test"))
    try:
        for fmt in ("wav", "pcm"):
            synth = OpenAISynthesizer(
                TTSSettings(openai_voice="nova", speed=1.25), llm, response_format=fmt
            )
            assert synth.name == "openai" and synth.voice == "nova"
            pcm = await synth.synthesize(GREETING)
            assert 1.0 <= _seconds(pcm) <= 8.0 and _rms(pcm) > 0.05
            chunks = [c async for c in synth.stream(TWO_SENTENCES)]
            assert len(chunks) >= 2
            await synth.close()
        first = requests[0]
        assert first["model"] == "tts-1" and first["voice"] == "nova" and first["speed"] == 1.25
        assert "九五六一零零" in str(first["input"])  # digits read in Chinese
    finally:
        await runner.cleanup()


async def test_openai_backend_errors_are_tts_errors() -> None:
    from tts.openai_tts import OpenAISynthesizer

    llm = LLMSettings(base_url="http://127.0.0.1:9/v1", api_key=SecretStr("sk-test"), timeout_s=1)
    synth = OpenAISynthesizer(TTSSettings(), llm)
    synth._client = synth._client.with_options(max_retries=0, timeout=2)
    with pytest.raises(TTSError, match="openai TTS"):
        await synth.synthesize(GREETING)
    await synth.close()


# --- the prompt cache ---------------------------------------------------------------------------


class FakeSynth:
    """Counts renders; speech is a tone of 0.2 s per character."""

    name = "fake"
    voice = "v1"
    speed = 1.0

    def __init__(self, *, delay: float = 0.0, pcm: bytes | None = None) -> None:
        self.calls: list[str] = []
        self.delay = delay
        self.pcm = pcm

    async def synthesize(self, text: str) -> bytes:
        self.calls.append(text)
        await asyncio.sleep(self.delay)
        if self.pcm is not None:
            return self.pcm
        return audio.to_pcm16(_tone(0.2 * len(text), audio.SAMPLE_RATE))

    async def stream(self, text: str) -> AsyncIterator[bytes]:
        yield await self.synthesize(text)

    async def close(self) -> None:
        pass


def _settings(tmp_path: Path, **kw: Any) -> TTSSettings:
    return TTSSettings(cache_dir=tmp_path / "prompts", **kw)


def _read_wav(path: Path) -> tuple[int, int, int, bytes]:
    with wave.open(str(path), "rb") as w:
        return w.getframerate(), w.getnchannels(), w.getsampwidth(), w.readframes(w.getnframes())


async def test_cache_same_text_same_file_rendered_once(tmp_path: Path) -> None:
    synth = FakeSynth()
    cache = PromptCache(synth, _settings(tmp_path))
    first = await cache.get(GREETING)
    second = await cache.get(GREETING)
    assert first == second and synth.calls == [GREETING]
    assert first.parent == tmp_path / "prompts" and first.suffix == ".wav"
    assert first.stem == cache.name_for(GREETING)
    rate, channels, width, frames = _read_wav(first)
    assert (rate, channels, width) == (8000, 1, 2) and len(frames) > 0
    assert oct(first.stat().st_mode & 0o777) == oct(0o644)  # readable by Asterisk
    # a new cache over the same directory finds the file (e.g. after a restart)
    again = PromptCache(synth, _settings(tmp_path))
    assert await again.get(GREETING) == first and len(synth.calls) == 1
    other = await cache.get("请稍候。")
    assert other != first and len(synth.calls) == 2


def test_cache_key_covers_backend_voice_speed_text(tmp_path: Path) -> None:
    a = FakeSynth()
    b = FakeSynth()
    b.voice = "v2"
    c = FakeSynth()
    c.speed = 1.1
    d = FakeSynth()
    d.name = "other"
    names = {PromptCache(s, _settings(tmp_path)).name_for(GREETING) for s in (a, b, c, d)}
    assert len(names) == 4
    cache = PromptCache(a, _settings(tmp_path))
    assert cache.name_for(GREETING) == cache.name_for(f"  {GREETING}\n")
    assert cache.name_for(GREETING) != cache.name_for("请稍候。")
    assert re.fullmatch(r"[0-9a-f]{16,}", cache.name_for(GREETING))  # a hex digest, not empty


async def test_cache_concurrent_gets_render_once(tmp_path: Path) -> None:
    synth = FakeSynth(delay=0.05)
    cache = PromptCache(synth, _settings(tmp_path))
    paths = await asyncio.gather(*(cache.get(GREETING) for _ in range(8)))
    assert len(set(paths)) == 1 and synth.calls == [GREETING]
    assert cache.renders == 1


async def test_cache_a_cancelled_caller_does_not_cancel_the_render(tmp_path: Path) -> None:
    synth = FakeSynth(delay=0.05)
    cache = PromptCache(synth, _settings(tmp_path))
    impatient = asyncio.create_task(cache.get(GREETING))
    patient = asyncio.create_task(cache.get(GREETING))
    await asyncio.sleep(0.01)
    impatient.cancel()
    path = await patient
    assert path.is_file() and synth.calls == [GREETING]


async def test_cache_broken_synthesis_writes_nothing(tmp_path: Path) -> None:
    for pcm, message in ((b"", "too short"), (bytes(16000), "silent"), (b"\x01\x02\x03", "odd")):
        cache = PromptCache(FakeSynth(pcm=pcm), _settings(tmp_path))
        with pytest.raises(TTSError, match=message):
            await cache.get(GREETING)
    assert not (tmp_path / "prompts").exists() or not list((tmp_path / "prompts").iterdir())

    class Failing(FakeSynth):
        async def synthesize(self, text: str) -> bytes:
            self.calls.append(text)
            raise TTSError("boom")

    failing = Failing()
    cache = PromptCache(failing, _settings(tmp_path))
    for _ in range(2):  # a failure is not cached: the next request tries again
        with pytest.raises(TTSError, match="boom"):
            await cache.get(GREETING)
    assert len(failing.calls) == 2
    with pytest.raises(TTSError, match="empty"):
        await cache.get("  ")


def _write_recording(path: Path, rate: int, channels: int, seconds: float = 1.0) -> None:
    samples = _tone(seconds, rate, 300.0)
    frames = np.repeat(samples[:, None], channels, axis=1).ravel()
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(audio.to_pcm16(frames))


async def test_cache_recording_overrides_synthesis(tmp_path: Path) -> None:
    synth = FakeSynth()
    cache = PromptCache(synth, _settings(tmp_path))
    recording = tmp_path / "recordings" / "greeting.wav"  # default: beside the cache dir
    _write_recording(recording, 16000, 2, seconds=1.0)
    path = await cache.get(GREETING, "greeting")
    assert synth.calls == [] and path.parent == tmp_path / "prompts"
    assert path.stem.startswith("rec-greeting-")
    rate, channels, width, frames = _read_wav(path)
    assert (rate, channels, width) == (8000, 1, 2)
    assert abs(len(frames) / 16000 - 1.0) < 0.01
    assert await cache.get(GREETING, "greeting") == path  # converted once
    # a new take replaces the old one
    _write_recording(recording, 8000, 1, seconds=2.0)
    os.utime(recording, ns=(time.time_ns(), time.time_ns() + 10**9))
    newer = await cache.get(GREETING, "greeting")
    assert newer != path and not path.exists()
    assert abs(len(_read_wav(newer)[3]) / 16000 - 2.0) < 0.01
    # no recording for that id, an odd id, or no id: synthesised
    assert (await cache.get("请稍候。", "transfer")).stem == cache.name_for("请稍候。")
    odd = await cache.get("请稍候。", "../recordings/greeting")
    assert odd.stem == cache.name_for("请稍候。")
    assert (await cache.get(GREETING)).stem == cache.name_for(GREETING)


async def test_cache_configured_recordings_dir_and_broken_recording(tmp_path: Path) -> None:
    synth = FakeSynth()
    cache = PromptCache(synth, _settings(tmp_path, recordings_dir=tmp_path / "ops"))
    (tmp_path / "ops").mkdir()
    (tmp_path / "ops" / "goodbye.wav").write_bytes(b"not a wav at all")
    path = await cache.get("再见。", "goodbye")  # unusable recording: synthesis instead
    assert path.stem == cache.name_for("再见。") and synth.calls == ["再见。"]
    _write_recording(tmp_path / "ops" / "goodbye.wav", 44100, 1)
    assert (await cache.get("再见。", "goodbye")).stem.startswith("rec-goodbye-")


async def test_cache_prerender(tmp_path: Path) -> None:
    synth = FakeSynth()
    cache = PromptCache(synth, _settings(tmp_path))
    lines: list[str] = []
    texts = ["您好。", "请稍候。", "您好。"]
    done = await cache.prerender(texts, progress=lines.append)
    assert set(done) == {"您好。", "请稍候。"} and len(lines) == 3 and len(synth.calls) == 2
    _write_recording(tmp_path / "recordings" / "bye.wav", 8000, 1)
    by_id = await cache.prerender({"hello": "您好。", "bye": "再见。"})
    assert by_id["hello"] == done["您好。"] and by_id["bye"].stem.startswith("rec-bye-")
    assert len(synth.calls) == 2


@pytest.mark.skipif(not HAVE_ESPEAK, reason="no espeak-ng")
async def test_cache_with_a_real_backend(tmp_path: Path) -> None:
    synth = build_synthesizer(TTSSettings(backend="espeak"))
    cache = PromptCache(synth, _settings(tmp_path))
    path = await cache.get(GREETING)
    rate, channels, width, frames = _read_wav(path)
    assert (rate, channels, width) == (8000, 1, 2) and 1.0 < len(frames) / 16000 < 8.0
    assert not list(path.parent.glob(".*"))  # no temporary files left behind
    await synth.close()


# --- text and audio helpers ---------------------------------------------------------------------


def test_normalize_reads_digits_symbols_letters() -> None:
    assert normalize("欢迎致电956100。") == "欢迎致电九五六一零零。"
    assert normalize("人工服务请按0，返回请按*号键，结束请按#号键") == (
        "人工服务请按零，返回请按星号键，结束请按井号键"
    )
    assert normalize("费用100元，共2个，12月，3.5度，5%") == (
        "费用一百元，共两个，十二月，三点五度，百分之五"
    )
    assert normalize("2024年 8:30 400-800-1234") == "二零二四年 八点三十分 四零零 八零零 一二三四"
    assert normalize("ＶＩＰ客户，ok!") == "维艾批客户，欧开！"
    assert normalize("“引号”（括号）😀") == "引号 括号"
    assert [cardinal(n) for n in (10, 15, 101, 1010, 10086, 100000)] == [
        "十", "十五", "一百零一", "一千零一十", "一万零八十六", "十万",
    ]  # fmt: skip


def test_split_sentences() -> None:
    text = normalize(TWO_SENTENCES)
    assert split_sentences(text, 48, 48) == ["您好，欢迎致电九五六一零零。", "请问有什么可以帮您？"]
    stream = split_sentences(text)
    assert stream[0] == "您好，" and len(stream) >= 3  # a short first chunk for streaming
    long = "很" * 60 + "。"
    assert all(len(c) <= 24 for c in split_sentences(long))
    assert "".join(split_sentences(long)) == long
    assert split_sentences("。。") == []


def test_decode_wav_formats() -> None:
    tone = _tone(0.5, 16000)
    pcm = audio.to_pcm16(tone)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm)
    samples, rate = audio.decode_wav(buf.getvalue())
    assert rate == 16000 and np.allclose(samples, tone, atol=1e-4)
    streamed = bytearray(buf.getvalue())
    streamed[4:8] = streamed[40:44] = b"\xff\xff\xff\x7f"  # espeak-ng --stdout style
    assert len(audio.decode_wav(bytes(streamed))[0]) == len(tone)
    with pytest.raises(audio.AudioFormatError):
        audio.decode_wav(b"RIFF....WAVEjunk")
    with pytest.raises(audio.AudioFormatError):
        audio.decode_wav(b"\x00" * 100)


def test_resample_is_band_limited() -> None:
    inband = audio.resample(_tone(1.0, 24000, 1000.0), 24000, 8000)
    assert len(inband) == 8000 and 0.18 < np.sqrt(np.mean(inband**2)) < 0.24
    alias = audio.resample(_tone(1.0, 24000, 5000.0), 24000, 8000)  # above 4 kHz: must vanish
    assert np.sqrt(np.mean(alias**2)) < 0.01
    assert len(audio.resample(_tone(1.0, 22050), 22050, 8000)) == 8000


def test_wav_bytes_header() -> None:
    pcm = audio.to_pcm16(_tone(0.1, 8000))
    data = audio.wav_bytes(pcm)
    with wave.open(io.BytesIO(data), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert w.readframes(w.getnframes()) == pcm
    assert len(data) == 44 + len(pcm)


def test_money_is_read_in_yuan_jiao_fen() -> None:
    from tts.text import normalize

    assert normalize("金额¥128.50") == "金额一百二十八元五角"
    assert normalize("余额为1280.50元。") == "余额为一千二百八十元五角。"
    assert normalize("退款300.00元") == "退款三百元"
    assert normalize("12.07元") == "十二元零七分"
