"""A call's ears: caller audio -> endpointer -> recogniser -> utterances for the session.

One task per call reads the caller's 20 ms frames (``ivr.media``), runs the endpointer on every
frame (so speech is noticed even while a prompt plays: barge-in), and sends each finished
utterance to the shared recogniser. Finished utterances wait in a small queue (``QUEUE_MAX``;
when full the oldest is dropped: the caller's latest words matter most).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from asr.base import ASRError, Recognizer
from asr.endpoint import Endpointer, EndpointSettings, SpeechEnded, SpeechStarted

log = logging.getLogger("ivr.listener")

QUEUE_MAX = 4


class AudioSource(Protocol):
    async def frame(self) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class Heard:
    text: str
    confidence: float
    speech_s: float
    asr_s: float  # recognition time
    latency_s: float  # end of speech -> text


class Listener:
    def __init__(self, open_audio: Callable[[], Awaitable[AudioSource]],
                 close_audio: Callable[[], Awaitable[None]], recognizer: Recognizer,
                 settings: EndpointSettings | None = None, *, hints: str | None = None) -> None:
        self._open_audio = open_audio
        self._close_audio = close_audio
        self.recognizer = recognizer
        self.endpointer = Endpointer(settings)
        self.hints = hints
        self.speech_started = asyncio.Event()  # set while the caller is talking
        self._heard: asyncio.Queue[Heard] = asyncio.Queue(QUEUE_MAX)
        self._task: asyncio.Task[None] | None = None
        self._recognising: set[asyncio.Task[None]] = set()
        self.dropped = 0
        self.utterances = 0

    async def start(self) -> None:
        audio = await self._open_audio()
        self._task = asyncio.create_task(self._run(audio), name="listener")

    async def close(self) -> None:
        tasks = [t for t in (self._task, *self._recognising) if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._task = None
        await self._close_audio()

    def flush(self) -> None:
        """Forget what was heard so far (speech during a prompt that cannot be interrupted)."""
        while not self._heard.empty():
            self._heard.get_nowait()
        if not self.endpointer.speaking:
            self.speech_started.clear()

    @property
    def busy(self) -> bool:
        """The caller is talking, or their last words are being recognised."""
        return self.endpointer.speaking or bool(self._recognising)

    async def next_utterance(self, no_input_s: float) -> Heard | None:
        """The next thing the caller says; None when they say nothing for ``no_input_s``.
        Speech that has started is waited for to its end (up to the maximum utterance)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + no_input_s
        while True:
            if not self._heard.empty():
                return self._heard.get_nowait()
            left = deadline - loop.time()
            if left <= 0 and not self.busy:
                return None
            try:
                return await asyncio.wait_for(self._heard.get(), max(0.05, min(left, 0.2))
                                              if left > 0 else 0.2)
            except TimeoutError:
                continue

    # ---- the audio task ----------------------------------------------------------------
    async def _run(self, audio: AudioSource) -> None:
        while True:
            frame = await audio.frame()
            if frame is None:
                return
            for event in self.endpointer.feed(frame):
                if isinstance(event, SpeechStarted):
                    self.speech_started.set()
                elif isinstance(event, SpeechEnded):
                    self.speech_started.clear()
                    ended = time.monotonic()
                    task = asyncio.create_task(self._recognise(event, ended))
                    self._recognising.add(task)
                    task.add_done_callback(self._recognising.discard)

    async def _recognise(self, event: SpeechEnded, ended: float) -> None:
        try:
            t = await self.recognizer.transcribe(event.pcm, self.endpointer.sample_rate,
                                                 hints=self.hints)
        except ASRError as exc:
            log.warning("recognition failed: %s", exc)
            return
        heard = Heard(t.text, t.confidence, event.speech_s, t.elapsed_s,
                      time.monotonic() - ended)
        self.utterances += 1
        if self._heard.full():
            self._heard.get_nowait()
            self.dropped += 1
        self._heard.put_nowait(heard)
