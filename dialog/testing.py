"""Run the bots' own conversation tests, and measure intent accuracy and containment."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

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


class Driver(Protocol):
    """Runs one conversation: the engine itself, or a channel around it (``ivr bots test
    --channel chat`` drives the web chat's session, ``ivr.tools.botchat``)."""

    async def start(self) -> list[Action]: ...
    async def on_event(self, event: DialogEvent) -> list[Action]: ...
    def bot(self) -> str | None: ...
    def expected(self, text: str) -> str:
        """An expected reply as this channel shows it."""
    async def close(self) -> None: ...


class EngineDriver:
    def __init__(self, catalog: Catalog, actions: Mapping[str, ActionFn]) -> None:
        self.engine = DialogEngine(catalog, actions)

    async def start(self) -> list[Action]:
        return self.engine.start()

    async def on_event(self, event: DialogEvent) -> list[Action]:
        return await self.engine.on_event(event)

    def bot(self) -> str | None:
        return self.engine.state.bot

    def expected(self, text: str) -> str:
        return text

    async def close(self) -> None:
        return None


DriverFactory = Callable[[Catalog, Mapping[str, ActionFn]], Driver]


async def run_conversation(catalog: Catalog, actions: Mapping[str, ActionFn], bot_id: str,
                           turns: list, name: str, *,
                           driver: DriverFactory = EngineDriver) -> ConversationResult:
    d = driver(catalog, actions)
    problems: list[str] = []
    contained = True
    try:
        out = await d.start()
        for i, turn in enumerate(turns):
            if turn.caller is not None:
                out = await d.on_event(event_for(turn.caller))
            said = spoken(out)
            where = f"turn {i + 1}"
            if turn.expect_bot and d.bot() != turn.expect_bot:
                problems.append(f"{where}: expected bot {turn.expect_bot}, got {d.bot()}")
            if turn.expect_say and d.expected(turn.expect_say) not in said:
                problems.append(f"{where}: expected to hear {turn.expect_say!r}, heard {said!r}")
            transfer = next((a for a in out if isinstance(a, TransferAction)), None)
            if transfer is not None:
                contained = False
            if turn.expect_transfer and (transfer is None or
                                         transfer.line != turn.expect_transfer):
                problems.append(f"{where}: expected transfer to {turn.expect_transfer}, got "
                                f"{transfer.line if transfer else 'none'}")
            end = next((a for a in out if isinstance(a, Hangup)), None)
            if turn.expect_end and (end is None or end.outcome != turn.expect_end):
                problems.append(f"{where}: expected end {turn.expect_end}, got "
                                f"{end.outcome if end else 'none'}")
    finally:
        await d.close()
    return ConversationResult(bot_id, name, not problems, contained, problems)


async def run_catalog_tests(catalog: Catalog, actions: Mapping[str, ActionFn],
                            only: str | None = None,
                            progress: Callable[[ConversationResult], None] | None = None,
                            *, driver: DriverFactory = EngineDriver) -> CatalogReport:
    results = []
    for bot in catalog.bots.values():
        if only and bot.id != only:
            continue
        for conv in bot.tests:
            r = await run_conversation(catalog, actions, bot.id, conv.turns, conv.name,
                                       driver=driver)
            results.append(r)
            if progress is not None:
                progress(r)
    accuracy, confusions = leave_one_out_accuracy(
        catalog.intent_specs(), threshold=catalog.threshold)
    return CatalogReport(results, accuracy, confusions)
