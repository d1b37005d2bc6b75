"""Simulated callers against the real dialog engine: does a caller reach the bot they want, in
how many turns, and how often are they sent to the wrong one? (``ivr eval dialogs``)

A simulated caller wants one bot and knows only their own words for it: the evaluation set's
sentences for that bot (in file order, starting with the one being scored). They say the
first; then they answer what the engine asks, truthfully:

- a yes/no question (您是要办理X吗？): 是的 when X is the bot they want, else 不是;
- an either/or question (X还是Y？): the key of the option they want, when offered; else 都不是;
- the guesses after a request not understood (您要办理的是不是以下业务：X请按1…都不是的话，请直接
  说出您要办理的业务): the key of their bot, when listed; else, as the prompt asks, their next
  sentence for it;
- a line's menu (加油卡业务…): the key of their bot, when the menu lists it;
- asked again (没有听懂, 请再简单说一下): their next sentence for the bot (their first again when
  they have no other).

A turn is one thing the caller says or keys. The dialog ends when the engine enters a bot (the
right one or a wrong one; the safety global, which gives a leak's service at once, counts as
entering ``gas_leak``, as ``ivr eval intents`` counts it), transfers to an agent, hangs up, or
after ``MAX_TURNS``. Reported:
task success within two turns (the right bot by the caller's second turn), success at all,
mean turns to the right bot, and the wrong-bot rate (any wrong bot entered: the worst outcome).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from dialog.actions import Action, Dtmf, Hangup, Say, Step, Transfer, Utterance
from dialog.catalog import Catalog
from dialog.engine import DialogEngine
from dialog.global_intents import SAFETY_BOT
from dialog.nlu.llmchoice import IntentAdviser

MAX_TURNS = 4
YES, NO, NEITHER = "是的", "不是", "都不是"

End = Literal["right", "wrong", "agent", "hangup", "gave_up"]


@dataclass(frozen=True, slots=True)
class Dialog:
    expected: str
    said: tuple[str, ...]  # what the caller said or keyed, turn by turn
    end: End
    turns: int  # turns used (to the right bot when end is right)
    reached: str | None  # the bot entered, if any
    source: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"expected": self.expected, "said": list(self.said), "end": self.end,
                "turns": self.turns, "reached": self.reached, "source": self.source}


def _said(actions: Sequence[Action]) -> str:
    return "".join(a.text for a in actions if isinstance(a, Say))


async def simulate(catalog: Catalog, expected: str, sentences: Sequence[str],
                   source: str = "", *, adviser: IntentAdviser | None = None,
                   heard: bool = False) -> Dialog:
    """One caller who wants ``expected`` and words it as ``sentences`` (first one first);
    ``adviser``: the engine asks it when routing is unsure (``dialog.nlu.llmchoice``);
    ``heard``: the sentences are what the recogniser heard (a call), not typed."""
    engine = DialogEngine(catalog, adviser=adviser)
    engine.start()
    st = engine.state
    said: list[str] = []
    queue = list(sentences) or [""]
    nxt = 0
    event: Utterance | Dtmf = Utterance(queue[0], heard=heard)
    for turn in range(1, MAX_TURNS + 1):
        said.append(event.text if isinstance(event, Utterance) else f"key {event.digits}")
        out = await engine.on_event(event)
        reached = SAFETY_BOT if _steps(out, "safety") else st.bot  # a leak's service at once
        if reached is not None:
            end: End = "right" if reached == expected else "wrong"
            return Dialog(expected, tuple(said), end, turn, reached, source)
        if any(isinstance(a, Transfer) for a in out):
            return Dialog(expected, tuple(said), "agent", turn, None, source)
        if any(isinstance(a, Hangup) for a in out) or st.mode == "done":
            return Dialog(expected, tuple(said), "hangup", turn, None, source)
        if st.mode == "clarify" and len(st.clarify) == 1:
            event = Utterance(YES if st.clarify[0] == expected else NO, heard=heard)
        elif st.mode == "clarify" and expected in st.clarify:
            event = Dtmf(str(st.clarify.index(expected) + 1))
        elif st.mode == "clarify" and not _guessed(out):
            event = Utterance(NEITHER, heard=heard)
        elif st.mode == "line_menu" and (key := _menu_key(catalog, st.line, expected)):
            event = Dtmf(key)
        else:  # asked again: the caller's next words for it
            nxt = (nxt + 1) % len(queue)
            event = Utterance(queue[nxt], heard=heard)
    return Dialog(expected, tuple(said), "gave_up", MAX_TURNS, None, source)


def _steps(actions: Sequence[Action], name: str) -> list[dict[str, Any]]:
    return [a.detail for a in actions if isinstance(a, Step) and a.name == name]


def _guessed(actions: Sequence[Action]) -> bool:
    """Were these the guesses after a request not understood (``dialog.routing.guesses``)?"""
    return any("guesses" in d for d in _steps(actions, "no_match"))


def _menu_key(catalog: Catalog, line: str, bot_id: str) -> str | None:
    bot = catalog.bots.get(bot_id)
    return bot.menu_key if bot is not None and bot.line == line and bot.menu_key else None


async def simulate_set(catalog: Catalog, rows: Sequence[tuple[str, str, str]], *,
                       adviser: IntentAdviser | None = None,
                       heard: bool = False) -> list[Dialog]:
    """Every ``(bot, source, text)`` row as a caller: the row's own sentence first, then the
    same bot's other sentences of the set, in order."""
    by_bot: dict[str, list[str]] = {}
    for bot, _, text in rows:
        by_bot.setdefault(bot, []).append(text)
    out = []
    for bot, source, text in rows:
        others = [t for t in by_bot[bot] if t != text]
        out.append(await simulate(catalog, bot, [text, *others], source, adviser=adviser,
                                  heard=heard))
    return out


def summarize_dialogs(dialogs: Sequence[Dialog]) -> dict[str, Any]:
    n = len(dialogs)
    if not n:
        return {"n": 0}

    def share(pred: Any) -> float:
        return round(sum(1 for d in dialogs if pred(d)) / n, 4)

    right = [d.turns for d in dialogs if d.end == "right"]
    return {
        "n": n,
        "success_2": share(lambda d: d.end == "right" and d.turns <= 2),
        "success_1": share(lambda d: d.end == "right" and d.turns == 1),
        "success": share(lambda d: d.end == "right"),
        "wrong": share(lambda d: d.end == "wrong"),
        "agent": share(lambda d: d.end == "agent"),
        "gave_up": share(lambda d: d.end in ("gave_up", "hangup")),
        "mean_turns": round(statistics.fmean(right), 2) if right else None,
    }
