"""Mandarin speech synthesis (8 kHz s16le mono for Asterisk) and the prompt cache.

``tts.factory.build_synthesizer`` picks the back end (Kokoro-82M by default, espeak-ng as the
fallback, an OpenAI-compatible server when configured); ``tts.cache.PromptCache`` keeps rendered
prompts as WAV files that Asterisk plays as ``sound:ivr/<name>``.
"""

from tts.base import Synthesizer, TTSError, TTSUnavailable

__all__ = ["Synthesizer", "TTSError", "TTSUnavailable"]
