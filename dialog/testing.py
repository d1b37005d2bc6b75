"""Run the bots' own conversation tests, and measure intent accuracy and containment."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from dialog.actions import Action, DialogEvent, Dtmf, Hangup, NoInput, Say, Utterance
from dialog.actions import Transfer as TransferAction
from dialog.catalog import Catalog
from dialog.engine import ActionFn, DialogEngine
from dialog.nlu.matching import leave_one_out_accuracy


def event_for(caller: str) -> DialogEvent:
    """'#9001#' or '#1' is DTMF; '(silence)' is no input; anything else is speech."""
    if caller == "(silence)":
        return NoInput()
    if caller.startswith("#"):
        return Dtmf(caller[1:])
    return Utterance(caller)


def spoken(actions: list[Action]) -> str:
    return "".join(a.text for a in actions if isinstance(a, Say))


@dataclass
class ConversationResult:
    bot: str
    name: str
    ok: bool
    contained: bool  # ended without an agent
    problems: list[str] = field(default_factory=list)


@dataclass
class CatalogReport:
    results: list[ConversationResult]
    intent_accuracy: float
    confusions: list[tuple[str, str, str]]

    @property
    def passed(self) -> int:
        return sum(r.ok for r in self.results)

    @property
    def containment(self) -> float:
        return sum(r.contained for r in self.results) / len(self.results) if self.results else 0.0


async def run_conversation(catalog: Catalog, actions: Mapping[str, ActionFn], bot_id: str,
                           turns: list, name: str) -> ConversationResult:
    engine = DialogEngine(catalog, actions)
    out = engine.start()
    problems: list[str] = []
    contained = True
    for i, turn in enumerate(turns):
        if turn.caller is not None:
            out = await engine.on_event(event_for(turn.caller))
        said = spoken(out)
        where = f"turn {i + 1}"
        if turn.expect_bot and engine.state.bot != turn.expect_bot:
            problems.append(f"{where}: expected bot {turn.expect_bot}, got {engine.state.bot}")
        if turn.expect_say and turn.expect_say not in said:
            problems.append(f"{where}: expected to hear {turn.expect_say!r}, heard {said!r}")
        transfer = next((a for a in out if isinstance(a, TransferAction)), None)
        if transfer is not None:
            contained = False
        if turn.expect_transfer and (transfer is None or transfer.line != turn.expect_transfer):
            problems.append(f"{where}: expected transfer to {turn.expect_transfer}, got "
                            f"{transfer.line if transfer else 'none'}")
        end = next((a for a in out if isinstance(a, Hangup)), None)
        if turn.expect_end and (end is None or end.outcome != turn.expect_end):
            problems.append(f"{where}: expected end {turn.expect_end}, got "
                            f"{end.outcome if end else 'none'}")
    return ConversationResult(bot_id, name, not problems, contained, problems)


async def run_catalog_tests(catalog: Catalog, actions: Mapping[str, ActionFn],
                            only: str | None = None,
                            progress: Callable[[ConversationResult], None] | None = None,
                            ) -> CatalogReport:
    results = []
    for bot in catalog.bots.values():
        if only and bot.id != only:
            continue
        for conv in bot.tests:
            r = await run_conversation(catalog, actions, bot.id, conv.turns, conv.name)
            results.append(r)
            if progress is not None:
                progress(r)
    accuracy, confusions = leave_one_out_accuracy(
        catalog.intent_specs(), threshold=catalog.threshold)
    return CatalogReport(results, accuracy, confusions)
