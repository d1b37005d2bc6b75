"""The survey-call classifier (issue 23) with the real recogniser (Whisper base) and the real
TTS (Kokoro), the tolerant live tier: a clean 空号 announcement is struck off or, at worst,
retried (never taken for a person), a person's 喂 is a person, and music before an answer is
a coloured ring-back without the recogniser. The share right over 380 noisy simulated calls is
``ivr bench carrier``'s (README)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from asr.factory import build_recognizer
from campaigns.carrier import classify
from ivr.core.config import ASRSettings, Settings
from ivr.sim.carrier import line, music
from tests.integration.test_asr import MODELS, whisper_missing

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[tuple[Any, Any]]:
    import importlib.util

    reason = whisper_missing()
    if reason or importlib.util.find_spec("misaki") is None:
        pytest.skip(reason or "Kokoro is not installed")
    from tts.kokoro import KokoroSynthesizer

    rec = build_recognizer(ASRSettings(model_dir=MODELS), backend="whisper")
    tts = KokoroSynthesizer(Settings().tts)
    yield rec, tts
    await tts.close()
    assert rec is not None
    await rec.close()


async def test_announcement_person_and_music(stack: tuple[Any, Any]) -> None:
    rec, tts = stack
    vacant = await tts.synthesize("您好，您拨打的号码是空号，请查证后再拨。")
    verdict = await classify(vacant + bytes(8000), 8000, rec, answered=False)
    assert verdict.outcome in ("vacant", "unreachable"), verdict
    hello = await tts.synthesize("喂，你好。")
    verdict = await classify(bytes(3200) + hello + bytes(16000), 8000, rec, answered=True)
    assert verdict.outcome == "human", verdict

    class NoRecogniser:
        async def transcribe(self, *_a: Any, **_k: Any) -> Any:
            raise AssertionError("music needs no recogniser")

    song = line(music(4.0, random.Random(3)) * 0.4, random.Random(3))
    assert (await classify(song, 8000, NoRecogniser(), answered=False)).outcome == \
        "ringback_music"
