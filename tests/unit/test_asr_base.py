"""The whole-utterance recogniser base (asr/buffered.py): a back end implements only ``_decode``;
the base class's streams, ``transcribe``, pool, failures and transcripts drive it.

The back end here is a test double of a decoder (a fixed text, no model): it stands for the one
method a real back end implements, so what is tested is the base class's side of the contract.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from asr.audio import FloatArray
from asr.base import ASRError, AudioError, Recognizer, Transcript
from asr.buffered import MIN_AUDIO_S, BufferedRecognizer, Decoded
from ivr.core.config import ASRSettings

FRAME = bytes(320)  # 20 ms of silence at 8 kHz


class FixedDecoder(BufferedRecognizer):
    """Answers "聽到" (Traditional) and the number of samples it was given."""

    name = "fixed"
    label = "Fixed"
    failures = (RuntimeError,)

    def __init__(self, settings: ASRSettings, *, confidence: float | None = None) -> None:
        super().__init__(settings)
        self.confidence = confidence
        self.calls: list[tuple[int, int, str | None, str]] = []
        self.fail: Exception | None = None

    def bias(self, hints: str | None) -> str | None:
        return f"<{hints}>" if hints else None

    def _decode(self, samples: FloatArray, sample_rate: int, bias: str | None) -> Decoded:
        self.calls.append((samples.size, sample_rate, bias, threading.current_thread().name))
        if self.fail is not None:
            raise self.fail
        return f"聽到{samples.size}", self.confidence


def settings(*, partial_interval_s: float = 0.0, max_utterance_s: float = 13.0) -> ASRSettings:
    return ASRSettings(workers=1, partial_interval_s=partial_interval_s,
                       max_utterance_s=max_utterance_s)


async def test_transcribe_runs_the_decode_in_the_pool() -> None:
    rec = FixedDecoder(settings())
    assert isinstance(rec, Recognizer) and rec.load_s == 0.0 and rec.pool.workers == 1
    t = await rec.transcribe(bytes(16000), 8000, hints="余额")
    assert t == Transcript("听到8000", 1.0, 1.0, t.elapsed_s, "聽到8000", True)
    assert t.elapsed_s >= 0.0
    size, rate, bias, thread = rec.calls[-1]
    assert (size, rate, bias) == (8000, 8000, "<余额>")
    assert thread.startswith("fixed") and thread != threading.current_thread().name
    scored = FixedDecoder(settings(), confidence=0.4)
    assert (await scored.transcribe(bytes(3200), 16000)).confidence == 0.4
    await rec.close()
    await scored.close()


async def test_short_or_broken_audio_is_not_decoded() -> None:
    rec = FixedDecoder(settings())
    short = await rec.transcribe(bytes(int(MIN_AUDIO_S * 8000) * 2 - 2), 8000)
    assert short.text == "" and short.confidence == 0.0 and short.elapsed_s == 0.0
    with pytest.raises(AudioError, match="sample rate"):
        await rec.transcribe(bytes(3200), 44100)
    with pytest.raises(AudioError, match="odd"):
        await rec.transcribe(b"\x00\x01\x02", 8000)
    with pytest.raises(AudioError, match="sample rate"):
        rec.open_stream(22050)
    assert rec.calls == []
    await rec.close()


async def test_a_stream_gives_partials_then_decodes_the_whole_utterance() -> None:
    rec = FixedDecoder(settings(partial_interval_s=0.5, max_utterance_s=2.0))
    partials: list[Transcript] = []
    stream = rec.open_stream(8000, hints="挂失", on_partial=partials.append)
    for _ in range(25):  # 0.5 s: a partial is due
        await stream.feed(FRAME)
    for _ in range(100):
        if partials:
            break
        await asyncio.sleep(0.01)
    assert partials and partials[0] == Transcript(
        "听到4000", 1.0, 0.5, partials[0].elapsed_s, "聽到4000", False
    )
    assert stream.partial is partials[-1]
    for _ in range(150):  # 3 s more: past max_utterance_s, the rest is dropped
        await stream.feed(FRAME)
    final = await stream.finish()
    assert final.final and final.text == "听到16000" and final.audio_s == 2.0
    assert rec.calls[-1][:3] == (16000, 8000, "<挂失>")
    assert all(bias == "<挂失>" for _, _, bias, _ in rec.calls)
    with pytest.raises(ASRError, match="after finish"):
        await stream.feed(FRAME)
    with pytest.raises(ASRError, match="twice"):
        await stream.finish()
    await stream.cancel()

    quiet = rec.open_stream(8000)  # partials off by default
    for _ in range(50):
        await quiet.feed(FRAME)
    assert quiet.partial is None
    assert (await quiet.finish()).text == "听到8000"
    empty = rec.open_stream(8000)
    with pytest.raises(AudioError, match="nothing was fed"):
        await empty.finish()
    await rec.close()


async def test_failures_and_the_clean_hook() -> None:
    rec = FixedDecoder(settings())
    rec.fail = RuntimeError("model exploded")
    with pytest.raises(ASRError, match=r"Fixed failed on 1\.0 s of audio: model exploded"):
        await rec.transcribe(bytes(16000), 8000)
    rec.fail = ASRError("said by the back end")
    with pytest.raises(ASRError, match=r"^said by the back end$"):
        await rec.transcribe(bytes(16000), 8000)
    rec.fail = KeyError("not one of its failures")
    with pytest.raises(KeyError):
        await rec.transcribe(bytes(16000), 8000)
    rec.fail = None

    class Silent(FixedDecoder):
        def _clean(
            self, text: str, confidence: float | None, bias: str | None
        ) -> tuple[str, float | None]:
            return "", confidence

    silent = Silent(settings())
    t = await silent.transcribe(bytes(16000), 8000)
    assert t.text == "" and t.confidence == 0.0 and t.raw == "聽到8000"
    await silent.close()
    await rec.close()
    with pytest.raises(ASRError, match="closed"):
        await rec.transcribe(bytes(16000), 8000)


def test_the_decode_is_abstract() -> None:
    class NoDecode(BufferedRecognizer):
        name = "none"
        label = "None"

    with pytest.raises(TypeError, match="_decode"):
        NoDecode(settings())  # type: ignore[abstract]
