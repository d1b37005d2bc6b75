"""Pick and build the configured TTS back end (with the espeak-ng fallback)."""

from __future__ import annotations

import logging

from ivr.core.config import LLMSettings, TTSSettings
from tts.base import Progress, Synthesizer, TTSUnavailable

log = logging.getLogger("ivr.tts")


def build_synthesizer(
    settings: TTSSettings, llm: LLMSettings | None = None, progress: Progress | None = None
) -> Synthesizer:
    """Build ``settings.backend``. Blocking (Kokoro loads its model): call it via a thread.

    When the back end cannot be used here (packages missing, model checksum mismatch, OpenAI not
    configured, ...) and ``settings.fallback == "espeak"``, log a warning and use espeak-ng;
    otherwise raise TTSUnavailable (a TTSError) saying why.
    """
    try:
        return _build(settings.backend, settings, llm, progress)
    except TTSUnavailable as exc:
        if settings.backend == "espeak" or settings.fallback != "espeak":
            raise
        log.warning(
            "TTS back end %r unavailable, falling back to espeak-ng (voice %s): %s",
            settings.backend, settings.espeak_voice, exc,
        )  # fmt: skip
        if progress is not None:
            progress(f"WARNING: {settings.backend} TTS unavailable ({exc}); using espeak-ng")
        return _build("espeak", settings, llm, progress)


def _build(
    backend: str, settings: TTSSettings, llm: LLMSettings | None, progress: Progress | None
) -> Synthesizer:
    if backend == "kokoro":
        try:
            from tts.kokoro import KokoroSynthesizer
        except ImportError as exc:  # numpy/scipy-level breakage
            raise TTSUnavailable(f"Kokoro back end cannot be imported: {exc}") from exc
        return KokoroSynthesizer(settings, progress)
    if backend == "espeak":
        from tts.espeak import EspeakSynthesizer

        return EspeakSynthesizer(settings)
    if backend == "openai":
        from tts.openai_tts import OpenAISynthesizer

        return OpenAISynthesizer(settings, llm)
    if backend == "paddlespeech":
        from tts.paddlespeech import PaddleSpeechSynthesizer

        return PaddleSpeechSynthesizer(settings, progress)
    raise TTSUnavailable(
        f"unknown TTS back end {backend!r} (kokoro, espeak, openai or paddlespeech)"
    )
