"""The speech synthesis interface and the machinery the back ends share.

Every back end turns Mandarin text into 8 kHz, 16-bit signed little-endian mono PCM ("slin"),
the format Asterisk plays. ``synthesize`` returns the whole utterance; ``stream`` yields it
sentence by sentence as each is rendered, so a caller hears the first sentence early.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import weakref
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from tts import audio
from tts.text import normalize, pause_after, speakable, split_sentences

log = logging.getLogger("ivr.tts")

SAMPLE_RATE = audio.SAMPLE_RATE  # 8000 Hz
SAMPLE_WIDTH = audio.SAMPLE_WIDTH  # 2 bytes, s16le, mono

Progress = Callable[[str], None]
"""Receives one human-readable line per step (model assembly, loading, pre-rendering)."""

T = TypeVar("T")


class TTSError(Exception):
    """Speech synthesis failed; the message says which back end and why."""


class TTSUnavailable(TTSError):
    """A back end cannot be used here: package/program missing, bad model files, not configured."""


@runtime_checkable
class Synthesizer(Protocol):
    """Mandarin text -> 8 kHz s16le mono PCM.

    Back ends may also have ``speed: float`` (part of the prompt cache key when present).
    """

    name: str  # back end: "kokoro", "espeak", "openai"
    voice: str

    async def synthesize(self, text: str) -> bytes:
        """The whole utterance as 8 kHz s16le mono PCM. Raises TTSError."""
        ...

    def stream(self, text: str) -> AsyncIterator[bytes]:
        """Yield the PCM of each sentence as soon as it is rendered (an async generator)."""
        ...

    async def close(self) -> None: ...


class LoopLocal:
    """One asyncio.Semaphore per event loop (a back end may outlive a loop, e.g. in tests)."""

    def __init__(self, value: int) -> None:
        self.value = value
        self._sems: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    def get(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        sem = self._sems.get(loop)
        if sem is None:
            sem = self._sems[loop] = asyncio.Semaphore(self.value)
        return sem


class ChunkedSynthesizer:
    """Shared implementation: normalise, split, render chunk by chunk, check, join.

    Subclasses implement ``_render(chunk) -> float32 samples at 8 kHz``. CPU-heavy work goes
    through ``_run`` into this back end's own bounded thread pool, so the event loop never
    stalls and at most ``workers`` renders run at once (more wait their turn).
    """

    name = "base"
    voice = ""
    speed = 1.0
    #: chunks for ``synthesize`` (whole sentences) and for ``stream`` (short first chunk)
    sentence_chars = 48
    stream_chars = 24
    stream_first_chars = 12

    def __init__(self, *, workers: int = 1) -> None:
        self.workers = max(1, workers)
        self._executor = ThreadPoolExecutor(
            max_workers=self.workers, thread_name_prefix=f"tts-{self.name}"
        )
        self._closed = False

    # -- for subclasses --------------------------------------------------------------------------

    async def _render(self, chunk: str) -> np.ndarray:
        """Render one chunk of normalised text: float32 mono samples at 8 kHz."""
        raise NotImplementedError

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in this back end's bounded thread pool."""
        if self._closed:
            raise TTSError(f"{self.name} TTS is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    # -- the interface ---------------------------------------------------------------------------

    def prepare(self, text: str, *, streaming: bool = False) -> list[str]:
        """Normalise and split ``text`` into the chunks that will be rendered; TTSError if none."""
        if not isinstance(text, str):
            raise TTSError(f"{self.name} TTS: text must be a str, not {type(text).__name__}")
        if not text.strip():
            raise TTSError(f"{self.name} TTS: cannot synthesise empty text")
        normalized = normalize(text)
        if streaming:
            chunks = split_sentences(normalized, self.stream_chars, self.stream_first_chars)
        else:
            chunks = split_sentences(normalized, self.sentence_chars, self.sentence_chars)
        if not chunks or not any(speakable(c) for c in chunks):
            raise TTSError(f"{self.name} TTS: nothing speakable in {text!r}")
        return chunks

    async def synthesize(self, text: str) -> bytes:
        chunks = self.prepare(text)
        parts = [
            await self._render_chunk(c, last=i == len(chunks) - 1) for i, c in enumerate(chunks)
        ]
        return b"".join(parts)

    async def stream(self, text: str) -> AsyncIterator[bytes]:
        chunks = self.prepare(text, streaming=True)
        # render one chunk ahead while the caller plays the current one
        pending: asyncio.Future[bytes] | None = self._start(chunks[0], len(chunks) == 1)
        try:
            for i in range(len(chunks)):
                assert pending is not None
                pcm = await pending
                pending = None
                if i + 1 < len(chunks):
                    pending = self._start(chunks[i + 1], i + 2 == len(chunks))
                yield pcm
        finally:
            if pending is not None and not pending.done():
                pending.cancel()

    async def close(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- internals -------------------------------------------------------------------------------

    def _start(self, chunk: str, last: bool) -> asyncio.Future[bytes]:
        fut = asyncio.ensure_future(self._render_chunk(chunk, last=last))
        fut.add_done_callback(_consume)
        return fut

    async def _render_chunk(self, chunk: str, *, last: bool) -> bytes:
        try:
            samples = await self._render(chunk)
        except TTSError:
            raise
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a back end's own failure: say which and where
            raise TTSError(f"{self.name} TTS failed on {chunk!r}: {exc}") from exc
        samples = np.asarray(samples, dtype=np.float32).ravel()
        if len(samples) == 0:
            raise TTSError(f"{self.name} TTS produced no audio for {chunk!r}")
        if not np.all(np.isfinite(samples)):
            raise TTSError(f"{self.name} TTS produced invalid samples (NaN/inf) for {chunk!r}")
        if audio.peak(samples) < 1e-3:
            raise TTSError(f"{self.name} TTS produced silence for {chunk!r}")
        samples = audio.trim_silence(
            samples, SAMPLE_RATE, threshold=0.01 * max(audio.peak(samples), 0.1)
        )
        gap = audio.silence(0.05 if last else pause_after(chunk))
        return audio.to_pcm16(np.concatenate([samples, gap]))


def _consume(fut: asyncio.Future[Any]) -> None:
    """Mark a background render's exception as retrieved (the awaiting code re-raises it)."""
    if not fut.cancelled():
        fut.exception()
