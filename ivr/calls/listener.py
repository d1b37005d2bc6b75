"""A call's ears: caller audio -> endpointer -> recogniser -> utterances for the session.

One task per call reads the caller's 20 ms frames (``ivr.telephony.media``), runs the endpointer on
every frame (so speech is noticed even while a prompt plays: barge-in), and sends each finished
utterance to the shared recogniser. Finished utterances wait in a small queue (``QUEUE_MAX``;
when full the oldest is dropped: the caller's latest words matter most).

Partial results (``partial_interval_s`` > 0): at the start of speech a recogniser stream is
opened and fed the utterance as it comes (through a bounded queue of ``FEED_MAX`` frames and its
own task, so a slow back end never stalls the audio task; when that queue is full the stream is
abandoned for this utterance: no more partials, the final is unaffected). Whisper re-decodes the
audio so far in its bounded pool and skips a partial while the pool is busy; FunASR's streaming
back ends give their online results. Partials are counted and timed on ``Heard``, logged (digits
masked), passed to ``on_partial``, and with ``confirm_by_text`` they are what confirms a barge-in:
``speech_started`` is then set only once the caller's speech yields text (a partial or the
final), so a cough or a door slam does not cut a prompt. The final text still decides: it is
the whole utterance's decode (``transcribe``), or the stream's own final for back ends whose
``final_from_stream`` is true (the FunASR websocket server's 2pass result).

Pauses (``pause_ms`` > 0): at a pause in the speech the utterance so far is recognised at once
(a speculative final). If the silence goes on to the end, that decode is the final: the caller
does not wait for recognition after the end-of-speech silence. If the caller goes on talking it
is dropped. With ``complete`` set (the dialog's judgement: a confident bot match, a valid
answer to the question, a global intent), a complete text ends the turn at the pause instead
of waiting for the full end-of-speech silence; a turn ended so and followed by more speech
within ``CUT_S`` is counted as a possible cut-off (``early_cut``).

Failures: a decode that fails (the recogniser is down) or is not done ``decode_deadline_s``
after the caller stopped (queued behind other calls', or a back end hanging) is counted, and
the next ``next_utterance`` raises ``SpeechUnavailable``: the session tells the caller and goes
on with keys, instead of taking the words for silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from asr.base import ASRError, Recognizer, RecognizerStream, Transcript
from asr.endpoint import Endpointer, EndpointSettings, SpeechEnded, SpeechPaused, SpeechStarted
from ivr.calls.session import SpeechUnavailable
from ivr.core.privacy import mask_digits_in_text

log = logging.getLogger("ivr.calls.listener")

QUEUE_MAX = 4
FEED_MAX = 50  # frames (1 s) waiting for a partial stream; more: the stream is abandoned
CUT_S = 1.0  # speech this soon after a turn ended early: the caller was probably cut off


class AudioSource(Protocol):
    async def frame(self) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class Heard:
    text: str
    confidence: float
    speech_s: float
    asr_s: float  # recognition time
    latency_s: float  # end of speech -> text
    partials: int = 0  # partial results received during the utterance
    first_partial_s: float | None = None  # start of speech -> first partial with text
    early: bool = False  # the turn ended at a pause: the text was judged complete
    speculative: bool = False  # the final was the decode started at the pause


@dataclass(slots=True)
class Speculation:
    """The decode started at pause number ``seq`` of the utterance in progress."""

    seq: int
    task: asyncio.Task[Transcript]


def _retrieved(task: asyncio.Task[Transcript]) -> None:
    if not task.cancelled():
        task.exception()


class PartialFeed:
    """The stream of one utterance for partial results, fed by its own task."""

    def __init__(self, stream: RecognizerStream) -> None:
        self.stream = stream
        self.started = time.monotonic()
        self.partials = 0
        self.first_s: float | None = None
        self.broken = False  # abandoned (queue full or the back end failed)
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(FEED_MAX)
        self._task = asyncio.create_task(self._pump(), name="partial-feed")

    def put(self, pcm: bytes) -> None:
        if self.broken or not pcm:
            return
        try:
            self._queue.put_nowait(pcm)
        except asyncio.QueueFull:
            log.info("partial stream fell %d frames behind: abandoned for this utterance",
                     FEED_MAX)
            self.broken = True
            self._task.cancel()

    async def _pump(self) -> None:
        while (pcm := await self._queue.get()) is not None:
            try:
                await self.stream.feed(pcm)
            except ASRError as exc:
                log.info("partial stream failed: %s", exc)
                self.broken = True
                return

    async def drain(self) -> bool:
        """Wait until everything put has been fed; False when the stream was abandoned."""
        if self.broken:
            return False
        try:
            await asyncio.wait_for(self._queue.put(None), 1.0)
        except TimeoutError:
            self.broken = True
            return False
        await asyncio.wait([self._task])  # our own cancellation still propagates
        if self._task.cancelled():
            self.broken = True
        return not self.broken

    async def close(self) -> None:
        if not self._task.done():
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self.stream.cancel()


class Listener:
    def __init__(self, open_audio: Callable[[], Awaitable[AudioSource]],
                 close_audio: Callable[[], Awaitable[None]], recognizer: Recognizer,
                 settings: EndpointSettings | None = None, *, hints: str | None = None,
                 partial_interval_s: float = 0.0, confirm_by_text: bool = False,
                 on_partial: Callable[[Transcript], None] | None = None,
                 early_end: bool = True, cut_s: float = CUT_S,
                 decode_deadline_s: float | None = None) -> None:
        self._open_audio = open_audio
        # a final decode not done by then counts as failed (the caller goes on with keys)
        self.decode_deadline_s = decode_deadline_s
        self.failures = 0  # decodes that failed or missed the deadline
        self._failed = asyncio.Event()  # told to the next ``next_utterance``
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
        self.partials_on = partial_interval_s > 0
        self.confirm_by_text = confirm_by_text
        self.on_partial = on_partial
        self._feed: PartialFeed | None = None
        self._final_from_stream = bool(getattr(recognizer, "final_from_stream", False))
        # the dialog's judgement of a text said before a pause (set per question, like hints)
        self.complete: Callable[[str], Awaitable[bool]] | None = None
        self.early_end = early_end
        self.cut_s = cut_s
        self._spec: Speculation | None = None
        self._judging: set[asyncio.Task[None]] = set()
        self._early_at: float | None = None  # when the last turn ended early
        self.early_ends = 0
        self.early_cut = 0  # early ends followed by more speech within CUT_S

    async def start(self) -> None:
        audio = await self._open_audio()
        self._task = asyncio.create_task(self._run(audio), name="listener")

    async def close(self) -> None:
        self._drop_spec()
        tasks = [t for t in (self._task, *self._recognising, *self._judging) if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._task = None
        feed, self._feed = self._feed, None
        if feed is not None:
            await feed.close()
        await self._close_audio()

    def flush(self) -> None:
        """Forget what was heard so far (speech during a prompt that cannot be interrupted)."""
        while not self._heard.empty():
            self._heard.get_nowait()
        if not self.endpointer.speaking:
            self.speech_started.clear()

    @property
    def busy(self) -> bool:
        """The caller is talking (or starting to), or their last words are being recognised."""
        return self.endpointer.speaking or self.endpointer.onset or bool(self._recognising)

    async def next_utterance(self, no_input_s: float) -> Heard | None:
        """The next thing the caller says; None when they say nothing for ``no_input_s``.
        Speech that has started is waited for to its end (up to the maximum utterance). Raises
        ``SpeechUnavailable`` when the recogniser failed on it (or missed its deadline)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + no_input_s
        while True:
            if self._failed.is_set():
                self._failed.clear()
                raise SpeechUnavailable()
            if not self._heard.empty():
                return self._taken(self._heard.get_nowait())
            left = deadline - loop.time()
            if left <= 0 and not self.busy:
                return None
            try:
                return self._taken(await asyncio.wait_for(
                    self._heard.get(), max(0.05, min(left, 0.2)) if left > 0 else 0.2))
            except TimeoutError:
                continue

    def _taken(self, heard: Heard) -> Heard:
        """With ``confirm_by_text`` the text that confirmed a barge-in is served now: the next
        prompt is not to be stopped by it (unless newer speech has already yielded text)."""
        if self.confirm_by_text and self._heard.empty() and (
                self._feed is None or self._feed.partials == 0):
            self.speech_started.clear()
        return heard

    # ---- the audio task ----------------------------------------------------------------
    async def _run(self, audio: AudioSource) -> None:
        while True:
            frame = await audio.frame()
            if frame is None:
                return
            was_speaking = self.endpointer.speaking
            events = self.endpointer.feed(frame)
            if was_speaking and self._feed is not None and self.endpointer.speaking:
                self._feed.put(frame)  # the utterance goes on (a pause included)
            for event in events:
                if isinstance(event, SpeechStarted):
                    self._started()
                elif isinstance(event, SpeechPaused):
                    self._paused(event)
                elif isinstance(event, SpeechEnded):
                    spec = self._spec if event.after_pause else None
                    self._ended(event, spec)

    def _started(self) -> None:
        if self.confirm_by_text:
            self.speech_started.clear()  # a new utterance: not confirmed yet
        else:
            self.speech_started.set()
        if self._early_at is not None and time.monotonic() - self._early_at < self.cut_s:
            self.early_cut += 1
            log.info("speech again %.2f s after a turn ended at a pause (%d of %d early ends)",
                     time.monotonic() - self._early_at, self.early_cut, self.early_ends)
        self._early_at = None
        self._open_feed()

    def _ended(self, event: SpeechEnded, spec: Speculation | None,
               text: Transcript | None = None) -> None:
        if spec is None:
            self._drop_spec()
        else:
            self._spec = None  # the recognition task below owns it now
        if not self.confirm_by_text:
            self.speech_started.clear()
        feed, self._feed = self._feed, None
        task = asyncio.create_task(self._recognise(event, time.monotonic(), feed, spec, text))
        self._recognising.add(task)
        task.add_done_callback(self._recognising.discard)

    # ---- pauses: speculative finals and early ends ----------------------------------------
    def _paused(self, event: SpeechPaused) -> None:
        self._drop_spec()
        task = asyncio.create_task(self.recognizer.transcribe(
            event.pcm, self.endpointer.sample_rate, hints=self.hints), name="speculative")
        task.add_done_callback(_retrieved)  # a dropped decode's failure needs no report
        spec = self._spec = Speculation(event.seq, task)
        if self.early_end and self.complete is not None:
            judge = asyncio.create_task(self._judge(spec, self.complete), name="judge")
            self._judging.add(judge)
            judge.add_done_callback(self._judging.discard)

    def _drop_spec(self) -> None:
        spec, self._spec = self._spec, None
        if spec is not None and not spec.task.done():
            spec.task.cancel()  # the pool thread finishes; its text is not used

    def _current(self, spec: Speculation) -> bool:
        return self._spec is spec and self.endpointer.paused_at(spec.seq)

    async def _judge(self, spec: Speculation,
                     complete: Callable[[str], Awaitable[bool]]) -> None:
        """End the turn now if what was said before the pause is a complete answer."""
        try:
            t = await asyncio.shield(spec.task)
        except (ASRError, asyncio.CancelledError):
            return
        if not t.text or not self._current(spec):
            return
        try:
            done = await complete(t.text)
        except Exception as exc:  # the judgement is an optimisation: wait for the end instead
            log.warning("judging a turn failed (%s: %s)", type(exc).__name__, exc)
            return
        if not done or not self._current(spec):
            return
        event = self.endpointer.end_now()
        if event is None:
            return
        self.early_ends += 1
        self._early_at = time.monotonic()
        self._ended(event, spec, t)

    def _open_feed(self) -> None:
        if not self.partials_on:
            return
        old, self._feed = self._feed, None
        if old is not None:  # cannot happen (ended utterances take theirs): never leak one
            old.broken = True
            self._close_later(old)
        feed: PartialFeed | None = None

        def partial(t: Transcript) -> None:
            if feed is None or not t.text:
                return
            feed.partials += 1
            if feed.first_s is None:
                feed.first_s = time.monotonic() - feed.started
            log.debug("partial %d: %s", feed.partials, mask_digits_in_text(t.text))
            if self.confirm_by_text and self._feed is feed:
                self.speech_started.set()  # the speech yields text: a real barge-in
            if self.on_partial is not None:
                self.on_partial(t)

        try:
            stream = self.recognizer.open_stream(self.endpointer.sample_rate, hints=self.hints,
                                                 on_partial=partial)
        except ASRError as exc:
            log.info("no partial stream for this utterance: %s", exc)
            return
        feed = self._feed = PartialFeed(stream)
        feed.put(self.endpointer.utterance_pcm())

    def _close_later(self, feed: PartialFeed) -> None:
        task = asyncio.create_task(feed.close())
        self._recognising.add(task)
        task.add_done_callback(self._recognising.discard)

    async def _speculated(self, spec: Speculation | None) -> Transcript | None:
        """The decode started at the pause, when the utterance ended in that pause."""
        if spec is None or spec.task.cancelled():
            return None
        try:
            return await spec.task
        except ASRError as exc:
            log.info("the decode at the pause failed (%s): decoding the utterance", exc)
            return None

    async def _final(self, event: SpeechEnded, feed: PartialFeed | None) -> Transcript:
        rate = self.endpointer.sample_rate
        if feed is not None and self._final_from_stream and await feed.drain():
            try:
                return await feed.stream.finish()
            except ASRError as exc:  # the whole utterance once more, at once
                log.info("stream final failed (%s): decoding the utterance", exc)
        if feed is not None:
            await feed.close()
        return await self.recognizer.transcribe(event.pcm, rate, hints=self.hints)

    async def _decode(self, event: SpeechEnded, feed: PartialFeed | None,
                      spec: Speculation | None, early: Transcript | None
                      ) -> tuple[Transcript, bool]:
        """The utterance's text, and whether it came from the pause (judged or speculated)."""
        t = early or await self._speculated(spec)
        if t is not None:
            return t, True
        return await self._final(event, feed), False

    async def _recognise(self, event: SpeechEnded, ended: float,
                         feed: PartialFeed | None = None, spec: Speculation | None = None,
                         early: Transcript | None = None) -> None:
        try:  # the deadline covers the decode started at the pause too (a hanging back end)
            t, speculative = await asyncio.wait_for(self._decode(event, feed, spec, early),
                                                    self.decode_deadline_s)
        except (ASRError, TimeoutError) as exc:
            what = "missed its deadline" if isinstance(exc, TimeoutError) else str(exc)
            log.warning("recognition failed (%s): the call goes on with keys", what)
            self.failures += 1
            self._failed.set()
            return
        finally:
            if feed is not None:
                await feed.close()
        heard = Heard(t.text, t.confidence, event.speech_s, t.elapsed_s,
                      time.monotonic() - ended, feed.partials if feed else 0,
                      feed.first_s if feed else None, early=early is not None,
                      speculative=speculative)
        if self.confirm_by_text and t.text:
            self.speech_started.set()  # confirmed by the final (no partial came in time)
        self.utterances += 1
        if self._heard.full():
            self._heard.get_nowait()
            self.dropped += 1
        self._heard.put_nowait(heard)
