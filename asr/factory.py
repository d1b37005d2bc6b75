"""The configured recogniser (``settings.asr.backend``) and the endpointer settings for a call."""

from __future__ import annotations

from asr.base import ASRUnavailable, Progress, Recognizer
from asr.endpoint import EndpointSettings
from ivr.core.config import ASRSettings

BACKENDS = ("whisper", "funasr", "funasr_ws", "paddlespeech", "none")


def build_recognizer(
    settings: ASRSettings, progress: Progress | None = None, *, backend: str | None = None
) -> Recognizer | None:
    """Build ``backend`` (default: ``settings.backend``). Blocking (Whisper loads its model):
    call it through a thread from async code. None when recognition is off (``none``: calls
    take keys only). ASRUnavailable says why a back end cannot run here."""
    name = (backend or settings.backend).replace("-", "_")
    if name == "none":
        return None
    if name == "whisper":
        from asr.whisper import WhisperRecognizer

        return WhisperRecognizer(settings, progress)
    if name == "funasr_ws":
        from asr.funasr_ws import FunAsrWsRecognizer

        return FunAsrWsRecognizer(settings)
    if name == "funasr":
        from asr.funasr_local import FunAsrLocalRecognizer

        return FunAsrLocalRecognizer(settings, progress)
    if name == "paddlespeech":
        from asr.paddlespeech import PaddleSpeechRecognizer

        return PaddleSpeechRecognizer(settings, progress)
    raise ASRUnavailable(
        f"ASR back end {name!r} is not built into this version (one of {', '.join(BACKENDS)})"
    )


def endpoint_settings(settings: ASRSettings, no_input_s: float = 5.0) -> EndpointSettings:
    return EndpointSettings.from_settings(settings, no_input_s=no_input_s)
