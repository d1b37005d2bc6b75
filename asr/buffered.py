"""Whole-utterance back ends (Whisper, FunASR offline models, PaddleSpeech): their base class,
with the one abstract decode each implements, and the ``RecognizerStream`` that drives it.

A back end subclasses ``BufferedRecognizer`` and implements ``_decode``: one utterance of float
samples -> raw text (and a confidence when the model gives one), blocking, run in a pool thread.
The base class does the rest alike for all of them: streams, ``transcribe``, the ``DecodePool``
(``asr.workers`` decodes at once, off the event loop), no decode for less than ``MIN_AUDIO_S``
of audio (an empty text), a back end's own failures raised as ``ASRError``, and the transcript
(Traditional -> Simplified, stripped; elapsed time with queueing included).

The stream buffers the utterance (at most ``max_utterance_s``; audio beyond that is dropped and
``truncated`` set). With ``partial_interval_s`` > 0 the growing buffer is re-decoded at most that
often, and only while the back end's decode pool has a free worker: a partial never queues in
front of another call's final (overflow policy: a partial that is not due or would wait is
skipped, the next one is tried when more audio arrives). ``finish`` always decodes the whole
utterance; that final text is what counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from asr.audio import FloatArray, check_pcm, check_rate, pcm_to_float
from asr.base import (
    ASRError,
    AudioError,
    DecodePool,
    PartialCallback,
    RecognizerStream,
    Transcript,
)
from asr.text import to_simplified

if TYPE_CHECKING:
    from ivr.core.config import ASRSettings

log = logging.getLogger("asr.buffered")

T = TypeVar("T")

MIN_AUDIO_S = 0.1  # shorter than this: nothing to recognise (an empty text, no decode)

Decode = Callable[[bytes, int, bool], Awaitable[Transcript]]
"""(pcm, sample_rate, final) -> Transcript; runs the decode in the back end's pool."""

Decoded = tuple[str, float | None]
"""What ``_decode`` answers: the raw text and its confidence 0..1 (None: the model gives no
score; the transcript then has 1.0 for a text, 0.0 for none)."""


class BufferedRecognizer(ABC):
    """A whole-utterance recogniser. Subclasses set ``name`` and ``label``, call
    ``super().__init__(settings)`` and load their model in ``__init__`` (setting ``load_s``), and
    implement ``_decode``. Optional hooks: ``bias`` (the step's hint words as this back end's
    context biasing) and ``_clean`` (post-processing of the recognised text)."""

    name: str  # "whisper": the pool's and the streams' name
    label: str  # "Whisper": how failure messages name the back end
    failures: tuple[type[Exception], ...] = ()  # its own errors from a decode, as ASRError
    min_audio_s = MIN_AUDIO_S
    load_s = 0.0  # seconds the model took to load

    def __init__(self, settings: ASRSettings) -> None:
        self.settings = settings
        self.pool = DecodePool(settings.workers, self.name)

    # -- for subclasses ----------------------------------------------------------------------

    @abstractmethod
    def _decode(self, samples: FloatArray, sample_rate: int, bias: str | None) -> Decoded:
        """One utterance, float32 mono at ``sample_rate`` (8000 or 16000) -> (raw text,
        confidence or None). Runs in a pool thread: blocking work (resampling included) is
        fine here. ``bias``: what ``bias`` made of the stream's hints."""

    def bias(self, hints: str | None) -> str | None:
        """The step's hint words as this back end's context biasing (Whisper's prompt, FunASR's
        hot words), made once per stream and handed to each ``_decode``. None: no biasing."""
        return None

    def _clean(
        self, text: str, confidence: float | None, bias: str | None
    ) -> tuple[str, float | None]:
        """Post-processing of the recognised text (Simplified, stripped) and its confidence."""
        return text, confidence

    # -- the interface -----------------------------------------------------------------------

    def open_stream(
        self,
        sample_rate: int = 8000,
        *,
        hints: str | None = None,
        on_partial: PartialCallback | None = None,
    ) -> RecognizerStream:
        """One utterance: buffered, re-decoded for partials while a worker is free."""
        bias = self.bias(hints)

        async def decode(pcm: bytes, rate: int, final: bool) -> Transcript:
            return await self.decode(pcm_to_float(pcm, rate), rate, bias, final=final)

        return BufferedStream.for_settings(self.name, self.pool, decode, sample_rate,
                                           self.settings, on_partial)

    async def transcribe(
        self, pcm: bytes, sample_rate: int, *, hints: str | None = None
    ) -> Transcript:
        samples = pcm_to_float(pcm, sample_rate)
        return await self.decode(samples, sample_rate, self.bias(hints), final=True)

    async def close(self) -> None:
        self.pool.shutdown()

    # -- decoding ----------------------------------------------------------------------------

    async def decode(
        self, samples: FloatArray, sample_rate: int, bias: str | None = None, *, final: bool
    ) -> Transcript:
        """``_decode`` in the pool, unless the audio is too short to hold a word."""
        audio_s = samples.size / sample_rate
        if audio_s < self.min_audio_s:
            return Transcript("", 0.0, audio_s, 0.0, "", final)
        t = time.monotonic()
        raw, confidence = await self._run(self._decode, samples, sample_rate, bias,
                                          audio_s=audio_s)
        return self._transcript(raw, confidence, bias, audio_s, t, final)

    async def _run(self, fn: Callable[..., T], *args: Any, audio_s: float) -> T:
        """``fn(*args)`` in the pool; the back end's ``failures`` come out as ASRError."""
        try:
            return await self.pool.run(fn, *args)
        except ASRError:
            raise
        except self.failures as exc:
            raise ASRError(f"{self.label} failed on {audio_s:.1f} s of audio: {exc}") from exc

    def _transcript(
        self, raw: str, confidence: float | None, bias: str | None, audio_s: float,
        started: float, final: bool,
    ) -> Transcript:  # fmt: skip
        text, confidence = self._clean(to_simplified(raw).strip(), confidence, bias)
        if confidence is None:
            confidence = 1.0 if text else 0.0
        return Transcript(text, confidence, audio_s, time.monotonic() - started, raw, final)


class BufferedStream:
    """One utterance of a whole-utterance back end, decoded by ``decode`` (see above)."""

    def __init__(
        self,
        name: str,
        pool: DecodePool,
        decode: Decode,
        sample_rate: int,
        *,
        max_utterance_s: float,
        partial_interval_s: float,
        on_partial: PartialCallback | None,
    ) -> None:
        self.sample_rate = check_rate(sample_rate)
        self.name = name
        self._pool = pool
        self._decode = decode
        self._on_partial = on_partial
        self._max_bytes = int(max_utterance_s * sample_rate) * 2
        self._interval_bytes = int(partial_interval_s * sample_rate) * 2
        self._buf = bytearray()
        self._decoded_at = 0
        self._partial: Transcript | None = None
        self._task: asyncio.Task[None] | None = None
        self._done = False
        self.truncated = False
        self.partials_skipped = 0  # due partials not started because the pool was busy

    @classmethod
    def for_settings(cls, name: str, pool: DecodePool, decode: Decode, sample_rate: int,
                     settings: ASRSettings, on_partial: PartialCallback | None) -> BufferedStream:
        """Bounded by ``asr.max_utterance_s``; a partial every ``asr.partial_interval_s``."""
        return cls(name, pool, decode, sample_rate, max_utterance_s=settings.max_utterance_s,
                   partial_interval_s=settings.partial_interval_s, on_partial=on_partial)

    @property
    def partial(self) -> Transcript | None:
        return self._partial

    async def feed(self, pcm: bytes) -> None:
        if self._done:
            raise ASRError(f"{self.name} stream: audio fed after finish/cancel")
        check_pcm(pcm, allow_empty=True)
        room = self._max_bytes - len(self._buf)
        if len(pcm) > room:
            self.truncated = True
            pcm = pcm[: max(0, room)]
        self._buf += pcm
        self._maybe_partial()

    def _maybe_partial(self) -> None:
        if (
            not self._interval_bytes
            or self._done
            or self._task is not None
            or len(self._buf) - self._decoded_at < self._interval_bytes
        ):
            return
        if not self._pool.idle:
            self.partials_skipped += 1
            return
        self._decoded_at = len(self._buf)
        self._task = asyncio.create_task(self._partial_decode(bytes(self._buf)))

    async def _partial_decode(self, pcm: bytes) -> None:
        t: Transcript | None = None
        try:
            t = await self._decode(pcm, self.sample_rate, False)
        except ASRError as exc:
            log.debug("%s partial decode failed: %s", self.name, exc)
        self._task = None
        if t is not None and t.text and not self._done:
            self._partial = t
            if self._on_partial is not None:
                self._on_partial(t)
        self._maybe_partial()

    async def finish(self) -> Transcript:
        if self._done:
            raise ASRError(f"{self.name} stream: finish called twice")
        await self._stop_partial()
        self._done = True
        if not self._buf:
            raise AudioError("no audio: nothing was fed to the stream")
        pcm = bytes(self._buf)
        self._buf.clear()
        return await self._decode(pcm, self.sample_rate, True)

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
        return f"<BufferedStream {self.name} {len(self._buf) / 2 / self.sample_rate:.1f}s>"
