"""OpenAI-compatible ``audio.speech`` back end (OpenAI itself or a compatible server).

Base URL and API key come from the LLM settings, model and voice from the TTS settings. Asks for
``wav`` (self-describing, so servers that use other sample rates work too); a body that is not
RIFF/WAVE is taken as OpenAI's raw ``pcm`` (24 kHz s16le mono). Resampled to 8 kHz.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from ivr.core.config import LLMSettings, TTSSettings
from tts import audio
from tts.base import ChunkedSynthesizer, LoopLocal, TTSError, TTSUnavailable

PCM_RATE = 24000  # OpenAI's response_format="pcm"


def is_configured(llm: LLMSettings | None) -> bool:
    return llm is not None and bool(llm.base_url or llm.api_key.get_secret_value())


class OpenAISynthesizer(ChunkedSynthesizer):
    name = "openai"

    def __init__(
        self,
        settings: TTSSettings,
        llm: LLMSettings | None,
        *,
        client: Any = None,
        response_format: Literal["wav", "pcm"] = "wav",
        max_requests: int = 4,
    ) -> None:
        if client is None:
            if llm is None or not is_configured(llm):
                raise TTSUnavailable(
                    "OpenAI-compatible TTS is not configured: set llm.base_url and/or llm.api_key"
                )
            from openai import AsyncOpenAI

            client = AsyncOpenAI(
                base_url=llm.base_url,
                api_key=llm.api_key.get_secret_value() or "unused",
                timeout=max(llm.timeout_s, 15.0),
                max_retries=1,
            )
            self._owns_client = True
        else:
            self._owns_client = False
        self._client = client
        self.model = settings.openai_model
        self.voice = settings.openai_voice
        self.speed = float(settings.speed)
        self.response_format = response_format
        super().__init__(workers=2)  # only resampling runs in the pool
        self._requests = LoopLocal(max_requests)

    async def _render(self, chunk: str) -> np.ndarray:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "voice": self.voice,
            "input": chunk,
            "response_format": self.response_format,
        }
        if self.speed != 1.0:
            kwargs["speed"] = self.speed
        try:
            async with self._requests.get():
                response = await self._client.audio.speech.create(**kwargs)
                body = response.content if hasattr(response, "content") else await response.aread()
        except TTSError:
            raise
        except Exception as exc:  # openai.APIError and transport errors
            raise TTSError(f"openai TTS ({self.model}, voice {self.voice}) failed: {exc}") from exc
        if not body:
            raise TTSError(f"openai TTS returned an empty body for {chunk!r}")
        if body[:4] == b"RIFF":
            try:
                samples, rate = audio.decode_wav(body)
            except audio.AudioFormatError as exc:
                raise TTSError(f"openai TTS returned an unreadable WAV: {exc}") from exc
        else:
            samples, rate = audio.pcm16_to_float(body), PCM_RATE
        return await self._run(audio.resample, samples, rate, audio.SAMPLE_RATE)

    async def close(self) -> None:
        await super().close()
        if self._owns_client:
            await self._client.close()
