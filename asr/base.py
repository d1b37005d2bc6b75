"""The recogniser interface every back end implements, what it returns, and the decode pool.

A ``Recognizer`` is built once (its model loaded once) and shared by every call. Per utterance a
caller's audio goes into a ``RecognizerStream``: ``feed`` 16-bit mono PCM frames as they arrive
(20 ms telephone frames at 8 kHz, or any length), read ``partial`` (or get ``on_partial``
callbacks) while the caller talks, and ``finish`` for the final ``Transcript``. ``transcribe``
does the same for a whole utterance at once.

Decoding never runs on the event loop: each back end owns a ``DecodePool`` (a thread pool with a
bounded number of workers), so one call's decode never stalls another call's audio; decodes
beyond ``workers`` wait their turn in order. The whole-utterance back ends (Whisper, FunASR
offline models, PaddleSpeech) share their streams, pool and transcripts through
``asr.buffered.BufferedRecognizer`` and implement only its one abstract ``_decode``.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from asr.text import strip_punctuation

T = TypeVar("T")

Progress = Callable[[str], None]
"""Receives one human-readable line per step (model assembly, loading)."""

PartialCallback = Callable[["Transcript"], None]
"""Called on the event loop with each new partial result of a stream."""


class ASRError(Exception):
    """Recognition failed (bad audio, back end unavailable or failing); the message says which."""


class ASRUnavailable(ASRError):
    """The back end cannot run here (extra not installed, model files missing, not configured)."""


class AudioError(ASRError, ValueError):
    """The audio handed in cannot be 16-bit mono PCM at a supported rate (odd size, empty, ...)."""


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str  # Simplified Chinese, as recognised (punctuation kept)
    confidence: float  # 0..1 (back ends without a score: 1.0 for text, 0.0 for none)
    audio_s: float  # seconds of audio recognised
    elapsed_s: float  # wall time the decode took (queueing included)
    raw: str = ""  # what the back end answered before post-processing
    final: bool = True  # False for a partial result

    @property
    def plain(self) -> str:
        """The text without punctuation or spaces: what matching and CER use."""
        return strip_punctuation(self.text)


@runtime_checkable
class RecognizerStream(Protocol):
    """One utterance being recognised. Not shared between calls."""

    sample_rate: int

    @property
    def partial(self) -> Transcript | None:
        """The newest partial result (None before the first, or when partials are off)."""
        ...

    async def feed(self, pcm: bytes) -> None:
        """Append 16-bit little-endian mono PCM at ``sample_rate``. Raises AudioError."""
        ...

    async def finish(self) -> Transcript:
        """No more audio: the final result. Raises ASRError."""
        ...

    async def cancel(self) -> None:
        """Abandon the utterance (the caller hung up); idempotent."""
        ...


@runtime_checkable
class Recognizer(Protocol):
    """Loaded once, shared by every call."""

    name: str
    load_s: float  # seconds the model took to load (0 for a remote back end)

    def open_stream(
        self,
        sample_rate: int = 8000,
        *,
        hints: str | None = None,
        on_partial: PartialCallback | None = None,
    ) -> RecognizerStream:
        """A stream for one utterance. ``hints``: words the caller is likely to say now
        (context biasing where the back end supports it), separated by spaces or commas."""
        ...

    async def transcribe(
        self, pcm: bytes, sample_rate: int, *, hints: str | None = None
    ) -> Transcript:
        """A whole utterance of 16-bit mono PCM at ``sample_rate`` (8000 or 16000) -> text."""
        ...

    async def close(self) -> None: ...


class DecodePool:
    """A bounded thread pool for decodes: ``workers`` at once, the rest queue in order.

    ``pending`` counts decodes submitted and not yet done (running or queued), so a back end can
    skip optional work (partial results) while the pool is busy with other calls' finals.
    """

    def __init__(self, workers: int, name: str) -> None:
        self.workers = max(1, workers)
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix=name)
        self._pending = 0
        self._lock = threading.Lock()
        self._closed = False
        self.name = name

    @property
    def pending(self) -> int:
        return self._pending

    @property
    def idle(self) -> bool:
        """A worker is free now (a new decode would start at once)."""
        return self._pending < self.workers

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise ASRError(f"{self.name}: the recogniser is closed")
        loop = asyncio.get_running_loop()
        with self._lock:
            self._pending += 1
        try:
            job = self._executor.submit(functools.partial(self._call, fn, *args))
        except RuntimeError as exc:  # shut down between the check and the submit
            with self._lock:
                self._pending -= 1
            raise ASRError(f"{self.name}: the recogniser is closed") from exc
        try:
            return await asyncio.wrap_future(job, loop=loop)
        finally:
            if job.cancelled():  # cancelled while queued (a dropped speculative decode)
                with self._lock:
                    self._pending -= 1

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        finally:
            with self._lock:
                self._pending -= 1

    def shutdown(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
