"""The LLM's word when routing is unsure (``dialog.nlu.llmchoice``), as the engine uses it: asked
only then, among the matcher's own candidates; its pick is put to the caller as one yes/no
question, never entered; no pick (late, failed, none of them) leaves the dialog's own question.
The adviser here is a scripted one (what the engine does with an answer); the real client
against a real model is ``tests/integration/test_llm_local.py``'s."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from dialog.actions import Utterance
from dialog.catalog import Catalog
from dialog.engine import DialogEngine
from dialog.nlu.llmchoice import Option, parse_choice, prompt_for
from tests.catalogs import shipped_catalog


def said(actions: list[Any]) -> str:
    return "".join(getattr(a, "text", "") for a in actions)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return shipped_catalog()


class Scripted:
    """Picks ``pick`` when it is among the options offered; records what it was asked."""

    def __init__(self, pick: str | None) -> None:
        self.pick = pick
        self.asked: list[tuple[str, list[str]]] = []

    async def choose(self, text: str, options: Sequence[Option]) -> str | None:
        bots = [o.bot for o in options]
        self.asked.append((text, bots))
        return self.pick if self.pick in bots else None


OPTIONS = [Option("a", "甲", "问甲"), Option("b", "乙", "问乙")]


def test_an_answer_is_one_of_the_numbers_offered() -> None:
    assert parse_choice("2", OPTIONS) == "b"
    assert parse_choice("答案：1。", OPTIONS) == "a"
    for bad in ("0", "3", "都不是", "", None):
        assert parse_choice(bad, OPTIONS) is None, bad


def test_the_prompt_carries_no_card_number() -> None:
    prompt = prompt_for("我的卡号是9001010000012345678，卡有问题", OPTIONS)
    assert "9001010000012345678" not in prompt and "1. 甲（问甲）" in prompt


async def test_unsure_routing_asks_the_adviser_and_confirms_its_pick(catalog: Catalog) -> None:
    adviser = Scripted("fuel_replace")
    e = DialogEngine(catalog, adviser=adviser)
    e.start()
    asked = await e.on_event(Utterance("卡出问题了"))  # the matcher: an either/or
    assert adviser.asked and "fuel_replace" in adviser.asked[0][1]
    name = catalog.bots["fuel_replace"].name
    assert f"请问您是要办理{name}" in said(asked) and "还是" not in said(asked)
    await e.on_event(Utterance("是的"))
    assert e.state.bot == "fuel_replace"


async def test_no_pick_leaves_the_dialogs_own_question(catalog: Catalog) -> None:
    e = DialogEngine(catalog, adviser=Scripted(None))
    e.start()
    asked = await e.on_event(Utterance("卡出问题了"))
    assert "还是" in said(asked)  # the either/or, as without an LLM


async def test_no_match_with_candidates_is_asked_and_a_sure_match_never(
        catalog: Catalog) -> None:
    adviser = Scripted("fuel_loss")
    e = DialogEngine(catalog, adviser=adviser)
    e.start()
    asked = await e.on_event(Utterance("问一下卡的事情"))  # no match, but candidates scored
    assert adviser.asked
    assert "请问您是要办理" in said(asked) and e.state.clarify == ("fuel_loss",)
    sure = Scripted("fuel_balance")
    e = DialogEngine(catalog, adviser=sure)
    e.start()
    await e.on_event(Utterance("开票"))
    assert not sure.asked and e.state.bot == "fuel_invoice"
