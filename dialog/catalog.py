"""The bot catalog: every bot file in a folder, validated, with one intent matcher over them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from dialog.nlu.matching import Embedder, IntentMatcher, IntentSpec
from dialog.scenario import BotSpec, ScenarioError, SlotSpec, load_bot

BOTS_DIR = Path(__file__).with_name("bots")

IDENTITY_SLOTS: dict[str, dict[str, SlotSpec]] = {
    "fuel_card": {
        "card_number": SlotSpec(
            type="card_number", max_digits=20,
            prompt="请输入您的加油卡卡号，以井号键结束。",
            reprompt="卡号应为十六位或十九位数字，请重新输入，以井号键结束。"),
        "pin": SlotSpec(type="pin", max_digits=7, sensitive=True,
                        prompt="请输入六位卡密码，以井号键结束。"),
    },
    "gas_account": {
        "gas_account": SlotSpec(
            type="gas_account", max_digits=11,
            prompt="请输入您的十位燃气户号，以井号键结束。",
            reprompt="户号应为十位数字，请重新输入，以井号键结束。"),
        "id_tail": SlotSpec(type="id_tail", max_digits=7, sensitive=True,
                            prompt="请输入户主身份证号码的后六位，字母X请按星号键，以井号键结束。"),
    },
}


class CatalogError(ValueError):
    """One or more bot files cannot be used (each problem names file, line and field)."""


def menu_key_problems(bots: Iterable[BotSpec]) -> list[str]:
    """Bots of one line that share a menu key (one message per clash)."""
    problems: list[str] = []
    keys: dict[tuple[str, str], str] = {}
    for bot in bots:
        if bot.menu_key:
            other = keys.setdefault((bot.line, bot.menu_key), bot.id)
            if other != bot.id:
                problems.append(f"{bot.id}: menu_key {bot.menu_key} of line {bot.line} "
                                f"is also used by {other}")
    return problems


NO_BOT_FILE = Path(__file__).with_name("nlu") / "no_bot.txt"


@lru_cache(maxsize=1)
def no_bot_examples() -> tuple[str, ...]:
    """Requests no bot handles: the trained layer's "no bot" class (dialog/nlu/no_bot.txt)."""
    lines = NO_BOT_FILE.read_text(encoding="utf-8").splitlines()
    return tuple(t.strip() for t in lines if t.strip() and not t.startswith("#"))


HEARD_FILE = Path(__file__).with_name("nlu") / "heard.tsv"


def read_heard(path: Path) -> tuple[tuple[str, str, str], ...]:
    """The ``bot, said, heard`` rows of a heard file (``#`` comments and the header skipped;
    none when the file is absent)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return ()
    rows = [line.split("\t") for line in lines if line and not line.startswith("#")]
    return tuple((r[0], r[1], r[2]) for r in rows if len(r) == 3 and r[0] != "bot")


@lru_cache(maxsize=1)
def heard_examples() -> tuple[tuple[str, str, str], ...]:
    """``(bot, said, heard)``: what the recogniser made of each bot question and "no bot"
    example (``dialog/nlu/heard.tsv``, written by ``ivr bots hear``)."""
    return read_heard(HEARD_FILE)


@dataclass
class Catalog:
    bots: dict[str, BotSpec]
    # measured on the spoken dev set (`ivr eval intents`, dialog/evalsets/dev.tsv, Whisper base
    # at 8 kHz; the same recognised texts routed again): 0.6 -> 0.5 takes the right bot from
    # 57% to 64% of utterances, wrong bot unchanged (4.4%), leave-one-out text accuracy
    # unchanged (99.5%), none of 22 out-of-scope requests newly matched
    threshold: float = 0.5
    # the sentence embedder of the matcher's trained layer (a blocking callable: the engine
    # then matches off the event loop)
    embedder: Embedder | None = None
    # the matcher's trained layer (dialog.nlu.classifier); off only to measure without it
    semantic: bool = True
    matcher: IntentMatcher = field(init=False)

    def __post_init__(self) -> None:
        self.matcher = IntentMatcher(
            self.intent_specs(), threshold=self.threshold, embedder=self.embedder,
            semantic=self.semantic,
            no_bot=no_bot_examples() if self.semantic else (),
            heard=heard_examples() if self.semantic else ())

    def intent_specs(self) -> list[IntentSpec]:
        return [IntentSpec(id=b.id, name=b.name, standard=b.standard, similar=tuple(b.similar),
                           rules=tuple(b.rules)) for b in self.bots.values()]

    @classmethod
    def load(cls, folder: Path = BOTS_DIR, *, embedder: Embedder | None = None,
             semantic: bool = True) -> Catalog:
        bots: dict[str, BotSpec] = {}
        problems: list[str] = []
        for path in sorted(folder.glob("*.yaml")):
            try:
                bot = load_bot(path)
            except ScenarioError as exc:
                problems.append(str(exc))
                continue
            if bot.id in bots:
                problems.append(f"{path}:1: id: {bot.id!r} is used by another bot")
                continue
            bots[bot.id] = bot
        problems += menu_key_problems(bots.values())
        if problems:
            raise CatalogError("\n".join(problems))
        return cls(bots, embedder=embedder, semantic=semantic)

    @classmethod
    def from_specs(cls, specs: Iterable[BotSpec], *, embedder: Embedder | None = None,
                   semantic: bool = True) -> Catalog:
        """A catalog of already parsed bots (e.g. the published versions in the database);
        raises ``CatalogError`` on a repeated id or menu key, as ``load`` does."""
        bots: dict[str, BotSpec] = {}
        problems: list[str] = []
        for bot in specs:
            if bot.id in bots:
                problems.append(f"{bot.id}: id {bot.id!r} is used by another bot")
                continue
            bots[bot.id] = bot
        problems += menu_key_problems(bots.values())
        if problems:
            raise CatalogError("\n".join(problems))
        return cls(bots, embedder=embedder, semantic=semantic)

    def menu(self, line: str) -> list[BotSpec]:
        return sorted((b for b in self.bots.values() if b.line == line and b.menu_key),
                      key=lambda b: b.menu_key or "")

    def by_key(self, line: str, key: str) -> BotSpec | None:
        return next((b for b in self.menu(line) if b.menu_key == key), None)

    def identity_slots(self, kind: object) -> dict[str, SlotSpec]:
        return IDENTITY_SLOTS.get(str(kind), {}) if kind else {}

    @staticmethod
    def yes_no_slot(question: str) -> SlotSpec:
        return SlotSpec(type="yes_no", max_digits=1, prompt=f"{question}是请按1，不是请按2。")
