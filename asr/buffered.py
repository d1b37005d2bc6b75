"""A ``RecognizerStream`` for whole-utterance back ends (Whisper, FunASR offline models,
PaddleSpeech).

The utterance is buffered (at most ``max_utterance_s``; audio beyond that is dropped and
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
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from asr.audio import check_pcm, check_rate
from asr.base import ASRError, AudioError, DecodePool, PartialCallback, Transcript

if TYPE_CHECKING:
    from ivr.core.config import ASRSettings

log = logging.getLogger("asr.buffered")

Decode = Callable[[bytes, int, bool], Awaitable[Transcript]]
"""(pcm, sample_rate, final) -> Transcript; runs the decode in the back end's pool."""


class BufferedStream:
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
