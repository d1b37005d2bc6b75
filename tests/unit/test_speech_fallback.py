"""The recogniser lets a caller down (the ``asr`` drill's down case, at the session): on old
main a failed decode counted as silence, so a speaking caller heard 没有听到您的声音 until
the no-input hang-up. Now the session says once that speech is unavailable, closes the ears,
and takes the same turn with keys."""

from __future__ import annotations

import asyncio

import pytest

from dialog.catalog import Catalog
from dialog.engine import DialogEngine
from dialog.scenario import parse_bot
from ivr.calls.session import CallSession, SpeechUnavailable
from tests.unit.test_handoff_pop import (
    BOTS,
    NoJournal,
    NoPrompts,
    ScriptedChannel,
    ScriptedEars,
    Sink,
)


class KeysAfterTheApology(ScriptedChannel):
    """The caller speaks first (no key) and presses keys once told to."""

    failed = False  # the recogniser failed on the caller's words
    told = False  # a prompt was played after that: the apology

    async def play(self, prompt: object, *, interruptible: bool, stop: object = None) -> None:
        self.told = self.failed
        return None

    async def next_digit(self, timeout: float) -> str | None:
        if not self.told:
            await asyncio.sleep(timeout)
            return None
        return await super().next_digit(timeout)


class FailingEars(ScriptedEars):
    """The recogniser fails on the caller's first words."""

    closed = False

    async def next_utterance(self, no_input_s: float) -> object:
        assert isinstance(self.channel, KeysAfterTheApology)
        self.channel.failed = True
        raise SpeechUnavailable()

    async def close(self) -> None:
        self.closed = True


@pytest.mark.asyncio
async def test_a_failed_recogniser_turns_the_call_to_keys() -> None:
    catalog = Catalog({b.id: b for b in (parse_bot(text) for text in BOTS)})
    channel = KeysAfterTheApology(["0"])
    ears = FailingEars(channel)
    sink = Sink()
    session = CallSession(channel, DialogEngine(catalog, {}), NoPrompts(), NoJournal(),
                          handoff=sink, ears=ears, no_input_timeout_s=0.5,
                          interdigit_timeout_s=0.2)
    result = await session.run()
    assert result.outcome == "transferred" and channel.transferred_to == "general"
    (context,) = sink.contexts
    steps = [e.step for e in context.trace]
    assert "asr_unavailable" in steps and "input_timeout" not in steps
    said = [e.detail.get("prompt") for e in context.trace if e.step == "say"]
    assert said.count("speech_unavailable") == 1
    assert ears.closed and session.ears is None  # keys only from here on
