"""A request not understood, but near some bots: the engine offers them by key
(``dialog.routing.guesses``); an either/or question or the guesses answered with none of them,
or with something else, go back to routing (before, the next request was matched only among
the options, and the main menu's keys entered them)."""

from __future__ import annotations

from typing import Any

import pytest

from dialog.actions import Collect, Dtmf, Say, Step, Utterance
from dialog.catalog import Catalog
from dialog.engine import DialogEngine
from dialog.menus import OPTION_HINTS
from dialog.nlu.matching import Candidate, MatchResult
from dialog.routing import GUESS_FLOOR, MAX_GUESSES, RouteDecision, guesses, option_named
from tests.catalogs import shipped_catalog


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return shipped_catalog()


def said(actions: list[Any]) -> str:
    return "".join(a.text for a in actions if isinstance(a, Say))


def steps(actions: list[Any], name: str) -> list[dict[str, Any]]:
    return [a.detail for a in actions if isinstance(a, Step) and a.name == name]


def no_match(scores: list[tuple[str, float]], line: str | None = None) -> RouteDecision:
    cands = tuple(Candidate(i, s, "semantic", "") for i, s in scores)
    return RouteDecision("no_match", None, (), line, MatchResult("no_match", None, cands))


def test_guesses_are_the_best_few_above_the_floor_of_the_named_line(catalog: Catalog) -> None:
    near = [("gas_outage", GUESS_FLOOR + 0.1), ("fuel_balance", 0.15), ("gas_leak", 0.12),
            ("stove_no_ignite", 0.11), ("gas_balance", 0.1)]
    assert guesses(catalog, no_match(near)) == tuple(i for i, _ in near[:MAX_GUESSES])
    assert "fuel_balance" not in guesses(catalog, no_match(near, line="gas"))
    assert guesses(catalog, no_match([("gas_outage", GUESS_FLOOR - 0.01)])) == ()
    assert guesses(catalog, no_match([])) == ()
    sure = RouteDecision("confirm", None, ("gas_outage",), None,
                         MatchResult("clarify", None, ()))
    assert guesses(catalog, sure) == ()


@pytest.mark.parametrize(("text", "n", "index"), [
    ("第二个", 3, 1), ("选3", 3, 2), ("二", 3, 1), ("3", 3, 2), ("就第一个吧", 2, 0),
    ("第三个", 2, None), ("我想问一个事", 3, None), ("余额查询", 3, None)])
def test_an_option_named_by_its_place(text: str, n: int, index: int | None) -> None:
    assert option_named(text, n) == index


async def test_guesses_offered_then_taken_by_key_or_by_place(catalog: Catalog) -> None:
    e = DialogEngine(catalog)
    e.start()
    out = await e.on_event(Utterance("有火力有天耶"))  # 油卡里有钱没, as Whisper base heard it
    offered = steps(out, "no_match")[0]["guesses"]
    assert 2 <= len(offered) <= MAX_GUESSES and e.state.clarify == tuple(offered)
    text = said(out)
    assert "没有完全听懂" in text and "请按1" in text and "请直接说出" in text
    names = [catalog.bots[b].name for b in offered]
    assert all(n in text for n in names)
    assert next(a for a in out if isinstance(a, Collect)).hints == OPTION_HINTS
    again = await e.on_event(Dtmf("9"))  # no option: the list again, counted
    assert steps(again, "no_match")[0]["why"] == "invalid_key" and names[0] in said(again)
    assert "没有完全听懂" not in said(again)
    out = await e.on_event(Dtmf("2"))
    assert e.state.bot == offered[1] and steps(out, "bot")[0]["via"] == "clarify"

    e = DialogEngine(catalog)
    e.start()
    await e.on_event(Utterance("有火力有天耶"))
    out = await e.on_event(Utterance("第二个"))
    assert e.state.bot == offered[1] and steps(out, "clarify")[0]["picked"] == offered[1]


async def test_none_of_the_options_goes_back_to_routing(catalog: Catalog) -> None:
    e = DialogEngine(catalog)
    e.start()
    e.state.mode, e.state.clarify = "clarify", ("gas_meter_fault", "fuel_replace")
    out = await e.on_event(Utterance("都不是"))
    assert e.state.mode == "route" and steps(out, "clarify")[0]["declined"]
    assert not steps(out, "no_match") and "请直接说出" in said(out)
    await e.on_event(Dtmf("1"))  # the main menu's key now: the oil line, not option 1
    assert e.state.mode == "line_menu" and e.state.line == "oil"

    e = DialogEngine(catalog)
    e.start()
    e.state.mode, e.state.clarify = "clarify", ("gas_meter_fault", "fuel_replace")
    await e.on_event(Utterance("我要查加油卡余额"))  # something else: routed afresh
    assert e.state.bot == "fuel_balance"


async def test_an_option_by_its_place_ends_the_turn_early(catalog: Catalog) -> None:
    e = DialogEngine(catalog)
    e.start()
    e.state.mode, e.state.clarify = "clarify", ("gas_outage", "stove_no_ignite", "gas_leak")
    assert await e.turn_complete("第二个") and not await e.turn_complete("那个")


def test_a_plausible_runner_up_makes_an_either_or_question(catalog: Catalog) -> None:
    """An unsure best far ahead on the word layers, but the trained layer finds another bot
    plausible (``RUNNER_UP_P``): X还是Y？ with it, of the named line; else a yes/no about X."""
    from dialog.routing import RUNNER_UP_P, runner_up

    def result(proba: dict[str, float]) -> MatchResult:
        best = Candidate("gas_outage", 0.7, "semantic", "")
        return MatchResult("clarify", best, (best,), proba)

    near = result({"gas_outage": 0.5, "fuel_balance": RUNNER_UP_P + 0.1,
                   "stove_no_ignite": RUNNER_UP_P + 0.05, "_none": 0.1})
    assert runner_up(catalog, near, "gas_outage", None) == "fuel_balance"
    assert runner_up(catalog, near, "gas_outage", "gas") == "stove_no_ignite"
    far = result({"gas_outage": 0.8, "stove_no_ignite": RUNNER_UP_P - 0.01, "_none": 0.1})
    assert runner_up(catalog, far, "gas_outage", None) is None
