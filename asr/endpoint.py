"""End-of-turn detection: a state machine over VAD windows that finds one utterance at a time.

Feed 16-bit PCM of any length (20 ms telephone frames); ``feed`` returns the events that
happened, in order:

* ``SpeechStarted`` once ``start_ms`` of continuous speech is heard (coughs, clicks and other
  sounds shorter than that never start an utterance);
* then ``SpeechEnded`` with the audio (a ``preroll_ms`` lead-in included, trailing silence
  trimmed to ``tail_ms``) after ``end_silence_ms`` of silence, or ``MaxLength`` (a SpeechEnded
  with ``truncated=True``) when the utterance reaches ``max_utterance_s``;
* ``NoInput`` when nothing started within ``no_input_s`` of ``reset()`` (once per reset);
* ``SpeechPaused`` (when ``pause_ms`` > 0) once a pause in the speech reaches ``pause_ms``, with
  the audio so far, trimmed as a SpeechEnded would be: a recogniser can start on it before the
  end is certain. If the silence goes on to the end, the SpeechEnded says ``after_pause`` and
  carries the same audio; ``end_now()`` ends the utterance at once (a listener that judged what
  was said before the pause complete).

After an utterance ends the endpointer listens for the next one at once (no-input disarmed until
the next ``reset``). Memory is bounded: the lead-in ring, the utterance (at most
``max_utterance_s``) and less than one VAD window of pending samples.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from asr.audio import check_pcm, check_rate
from asr.vad import Vad, make_vad

if TYPE_CHECKING:
    from ivr.core.config import ASRSettings

HYSTERESIS = 0.15  # once speaking, a window is silence only below threshold - HYSTERESIS


@dataclass(frozen=True, slots=True)
class EndpointSettings:
    threshold: float = 0.5  # speech probability that counts as speech
    start_ms: int = 200  # continuous speech that starts an utterance
    end_silence_ms: int = 700  # silence that ends it (600-800 is usual for a phone dialog)
    max_utterance_s: float = 13.0
    no_input_s: float = 5.0
    preroll_ms: int = 300  # audio kept from before the start (the first syllable's onset)
    tail_ms: int = 300  # trailing silence kept in the utterance
    vad: str = "silero"  # or "energy"
    pause_ms: int = 0  # silence that reports a SpeechPaused (0: never; < end_silence_ms)

    @classmethod
    def from_settings(cls, asr: ASRSettings, *, no_input_s: float = 5.0) -> EndpointSettings:
        return cls(
            threshold=asr.vad_threshold,
            start_ms=asr.start_ms,
            end_silence_ms=asr.end_silence_ms,
            max_utterance_s=asr.max_utterance_s,
            no_input_s=no_input_s,
            vad=asr.vad,
            pause_ms=asr.pause_ms,
        )


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    kind: ClassVar[str] = "speech_started"
    at_s: float  # since listening began (the end of the window that confirmed speech)


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    kind: ClassVar[str] = "speech_ended"
    pcm: bytes  # 16-bit mono at the endpointer's sample rate
    at_s: float  # when the end was decided
    speech_s: float  # speech heard (windows above threshold)
    truncated: bool = False  # cut at max_utterance_s (see MaxLength)
    start_s: float = 0.0  # where the returned audio starts, on the same clock
    sample_rate: int = 8000
    after_pause: bool = False  # silent since the last SpeechPaused: the same audio as it had

    @property
    def audio_s(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate


@dataclass(frozen=True, slots=True)
class MaxLength(SpeechEnded):
    kind: ClassVar[str] = "max_length"


@dataclass(frozen=True, slots=True)
class SpeechPaused:
    kind: ClassVar[str] = "speech_paused"
    pcm: bytes  # the utterance so far, trailing silence trimmed to tail_ms
    at_s: float
    speech_s: float
    seq: int  # the endpointer's pause count (see Endpointer.paused_at)


@dataclass(frozen=True, slots=True)
class NoInput:
    kind: ClassVar[str] = "no_input"
    at_s: float


EndpointEvent = SpeechStarted | SpeechEnded | SpeechPaused | NoInput


class Endpointer:
    """One per call (the VAD state is per call)."""

    def __init__(
        self,
        settings: EndpointSettings | None = None,
        sample_rate: int = 8000,
        vad: Vad | None = None,
    ) -> None:
        self.s = settings or EndpointSettings()
        self.sample_rate = check_rate(sample_rate)
        self.vad = vad or make_vad(self.s.vad, sample_rate)
        if self.vad.sample_rate != sample_rate:
            raise ValueError(f"the VAD runs at {self.vad.sample_rate} Hz, not {sample_rate}")
        self.window = self.vad.window
        self.window_s = self.window / sample_rate
        self._start_windows = max(1, math.ceil(self.s.start_ms / 1000 / self.window_s))
        self._end_windows = max(1, math.ceil(self.s.end_silence_ms / 1000 / self.window_s))
        self._max_windows = max(1, int(self.s.max_utterance_s / self.window_s))
        self._tail_windows = max(0, round(self.s.tail_ms / 1000 / self.window_s))
        pause = math.ceil(self.s.pause_ms / 1000 / self.window_s) if self.s.pause_ms > 0 else 0
        self._pause_windows = pause if 0 < pause < self._end_windows else 0
        self.pauses = 0  # SpeechPaused events so far (their seq)
        lead = math.ceil(self.s.preroll_ms / 1000 / self.window_s)
        self._lead: deque[np.ndarray] = deque(maxlen=lead + self._start_windows)
        self._pending = np.zeros(0, dtype=np.int16)
        self._t_windows = 0
        self.last_prob = 0.0
        self.reset()

    # -- state -----------------------------------------------------------------------------

    def reset(self, *, no_input: bool = True) -> None:
        """Listen for a new utterance; the no-input clock starts now when ``no_input``."""
        self._armed_at = self._t_windows
        self._no_input_armed = no_input
        self._clear_utterance()

    def _clear_utterance(self) -> None:
        self._speaking = False
        self._run = 0  # consecutive speech windows before the start
        self._silence = 0  # consecutive silent windows while speaking
        self._speech = 0  # speech windows in the utterance
        self._audio: list[np.ndarray] = []
        self._audio_start = 0
        self._paused = False  # silent since the last SpeechPaused
        self._lead.clear()

    @property
    def speaking(self) -> bool:
        return self._speaking

    def paused_at(self, seq: int) -> bool:
        """Still in the silence that SpeechPaused number ``seq`` reported."""
        return self._speaking and self._paused and self.pauses == seq

    @property
    def onset(self) -> bool:
        """Speech-like windows are being heard but have not yet started an utterance: a
        no-input timer should not fire now."""
        return not self._speaking and self._run > 0

    def utterance_pcm(self) -> bytes:
        """The audio of the utterance in progress so far (lead-in included); b"" between
        utterances. For a streaming recogniser started at ``SpeechStarted``."""
        if not self._speaking or not self._audio:
            return b""
        return np.concatenate(self._audio).astype("<i2").tobytes()

    @property
    def now_s(self) -> float:
        """Audio time fed so far (whole windows)."""
        return self._t_windows * self.window_s

    # -- input -----------------------------------------------------------------------------

    def feed(self, pcm: bytes) -> list[EndpointEvent]:
        """Feed 16-bit mono PCM at ``sample_rate``; return the events it completed."""
        check_pcm(pcm, allow_empty=True)
        samples = np.frombuffer(pcm, dtype="<i2")
        if self._pending.size:
            samples = np.concatenate([self._pending, samples])
        events: list[EndpointEvent] = []
        n = samples.size // self.window
        for i in range(n):
            event = self._window(samples[i * self.window : (i + 1) * self.window])
            if event is not None:
                events.append(event)
        self._pending = samples[n * self.window :].copy()
        return events

    def _window(self, chunk: np.ndarray) -> EndpointEvent | None:
        s = self.s
        self._t_windows += 1
        prob = self.vad(chunk.astype(np.float32) / 32768.0)
        self.last_prob = prob
        if not self._speaking:
            self._lead.append(chunk)
            self._run = self._run + 1 if prob >= s.threshold else 0
            if self._run >= self._start_windows:
                self._speaking = True
                self._silence = 0
                self._speech = self._run
                self._audio = list(self._lead)
                self._audio_start = self._t_windows - len(self._audio)
                self._lead.clear()
                return SpeechStarted(self.now_s)
            waited = (self._t_windows - self._armed_at) * self.window_s
            if self._no_input_armed and self._run == 0 and waited >= s.no_input_s:
                self._no_input_armed = False
                return NoInput(self.now_s)
            return None
        self._audio.append(chunk)
        if prob >= s.threshold - HYSTERESIS:
            self._silence = 0
            self._speech += 1
            self._paused = False
        else:
            self._silence += 1
        if self._pause_windows and self._silence == self._pause_windows:
            self._paused = True
            self.pauses += 1
            return SpeechPaused(self._trimmed(), self.now_s, self._speech * self.window_s,
                                self.pauses)
        if self._silence >= self._end_windows:
            return self._finish(truncated=False)
        if len(self._audio) >= self._max_windows:
            return self._finish(truncated=True)
        return None

    def end_now(self) -> SpeechEnded | None:
        """End the utterance in progress at once (None when there is none)."""
        return self._finish(truncated=False) if self._speaking else None

    def _trimmed(self) -> bytes:
        keep = len(self._audio) - max(0, self._silence - self._tail_windows)
        return np.concatenate(self._audio[:keep]).astype("<i2").tobytes()

    def _finish(self, *, truncated: bool) -> SpeechEnded:
        if truncated:
            pcm = np.concatenate(self._audio).astype("<i2").tobytes()
        else:
            pcm = self._trimmed()
        cls = MaxLength if truncated else SpeechEnded
        ended = cls(
            pcm, self.now_s, self._speech * self.window_s, truncated,
            self._audio_start * self.window_s, self.sample_rate,
            after_pause=self._paused and not truncated,
        )  # fmt: skip
        self._no_input_armed = False
        self._clear_utterance()
        self.vad.reset()
        return ended
