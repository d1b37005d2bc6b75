"""Callers are told before they say anything that the call is recorded, transcribed and
processed by a model (PIPL; security issue, item 9): the notice follows the greeting by
default, can be worded by the operator, and is pre-rendered like every fixed prompt."""

from __future__ import annotations

from pathlib import Path

from dialog.actions import Collect, Say
from dialog.catalog import Catalog
from dialog.engine import DialogEngine
from ivr.core.config import PRIVACY_NOTICE, load_settings


def test_the_notice_is_said_after_the_greeting_by_default(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path)
    assert settings.dialog.privacy_notice == PRIVACY_NOTICE
    assert "录音" in PRIVACY_NOTICE and "智能" in PRIVACY_NOTICE
    actions = DialogEngine(Catalog.load(), notice=settings.dialog.privacy_notice).start()
    says = [a for a in actions if isinstance(a, Say)]
    assert [s.prompt_id for s in says[:2]] == ["greeting", "privacy_notice"]
    first_question = next(i for i, a in enumerate(actions) if isinstance(a, Collect))
    assert actions.index(says[1]) < first_question


def test_an_operator_can_word_it_or_turn_it_off(tmp_path: Path) -> None:
    worded = load_settings(home=tmp_path, dialog={"privacy_notice": "本通话将被录音。"})
    engine = DialogEngine(Catalog.load(), notice=worded.dialog.privacy_notice)
    assert Say("本通话将被录音。", "privacy_notice") in engine.start()
    off = DialogEngine(Catalog.load(), notice="")
    assert all(getattr(a, "prompt_id", "") != "privacy_notice" for a in off.start())
