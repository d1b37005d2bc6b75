"""Simulated callers (dialog.simulate) against the real engine: a yes/no question answered
truthfully, an either/or question by key, a rephrase when asked again or when the guesses
after a request not understood miss."""

from __future__ import annotations

from dialog.simulate import simulate, summarize_dialogs
from tests.catalogs import shipped_catalog


async def test_a_sure_request_reaches_its_bot_in_one_turn() -> None:
    d = await simulate(shipped_catalog(), "fuel_loss", ["我的加油卡丢了"])
    assert (d.end, d.turns, d.reached) == ("right", 1, "fuel_loss")


async def test_a_confirmation_is_answered_truthfully() -> None:
    catalog = shipped_catalog()
    yes = await simulate(catalog, "fuel_balance", ["我跑长途想确认卡里的钱够不够"])
    assert yes.said == ("我跑长途想确认卡里的钱够不够", "是的")
    assert yes.end == "right" and yes.turns == 2
    no = await simulate(catalog, "fuel_loss", ["我跑长途想确认卡里的钱够不够", "我的加油卡丢了"])
    assert no.said[:2] == ("我跑长途想确认卡里的钱够不够", "不是") and no.end == "right"


async def test_not_understood_rephrases_then_gives_up() -> None:
    d = await simulate(shipped_catalog(), "fuel_balance", ["我找一下你们张经理"])
    assert d.end in ("agent", "gave_up") and d.reached is None
    s = summarize_dialogs([d])
    assert s["n"] == 1 and s["success_2"] == 0.0 and s["mean_turns"] is None


async def test_guesses_are_keyed_when_listed_else_the_request_is_said_again() -> None:
    catalog = shipped_catalog()
    heard = "有火力有天耶"  # 油卡里有钱没, as Whisper base heard it: gas bots are guessed
    listed = await simulate(catalog, "stove_no_ignite", [heard])
    assert listed.said[1].startswith("key ") and listed.end == "right" and listed.turns == 2
    missed = await simulate(catalog, "fuel_balance", [heard, "我要查加油卡余额"])
    assert missed.said == (heard, "我要查加油卡余额") and missed.end == "right"
