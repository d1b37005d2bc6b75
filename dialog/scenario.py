"""Scenario (bot) files: the schema, and loading with errors that name file, line and field.

A bot is one YAML file in dialog/bots/. Operations staff edit these; the engine runs them.
See dialog/bots/README.md for the format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ivr.core.lines import Line

SlotType = Literal[
    "digits", "card_number", "gas_account", "phone", "id_tail", "pin", "yes_no", "amount",
    "date", "choice", "text",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SlotSpec(_Model):
    type: SlotType
    prompt: str
    reprompt: str | None = None
    max_digits: int | None = None  # DTMF entry length (ended early by #)
    choices: dict[str, list[str]] = Field(default_factory=dict)  # value -> words (1st = DTMF key)
    sensitive: bool = False  # PINs, ID tails: never stored or logged in clear


class Step(_Model):
    """One step. Exactly one of say/ask/confirm/action/goto/transfer/end is the step's kind."""

    id: str | None = None
    say: str | None = None
    ask: str | None = None  # slot name
    confirm: str | None = None  # yes/no question; the answer goes to slot ``confirmed``
    action: str | None = None  # back-end action name, e.g. fuel.balance
    args: dict[str, str] = Field(default_factory=dict)  # action args: {param: "{slot}"}
    transfer: Line | Literal["priority"] | None = None
    reason: str | None = None
    end: Literal["completed", "abandoned"] | None = None
    goto: str | None = None
    # conditions: run the step only when the variable equals the value (or is truthy)
    when: str | None = None
    equals: str | bool | int | None = None
    on_no: str | None = None  # for confirm: step id to go to when the caller says no
    on_error: str | None = None  # for action: step id to go to on a back-end refusal
    barge_in: bool = True

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        kinds = [k for k in ("say", "ask", "confirm", "action", "transfer", "end", "goto")
                 if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a step needs exactly one of say/ask/confirm/action/transfer/end/"
                             f"goto, got {kinds or 'none'}")
        return self

    @property
    def kind(self) -> str:
        for k in ("say", "ask", "confirm", "action", "transfer", "end", "goto"):
            if getattr(self, k) is not None:
                return k
        raise AssertionError("validated")


class TestTurn(_Model):
    caller: str | None = None  # text, or "#123#" style for DTMF, or "(silence)"
    expect_bot: str | None = None
    expect_say: str | None = None  # a substring of what the IVR says next
    expect_transfer: str | None = None
    expect_end: str | None = None


class TestConversation(_Model):
    name: str
    turns: list[TestTurn]


class BotSpec(_Model):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    line: Line
    menu_key: str | None = Field(default=None, pattern=r"^[1-9]$")
    standard: str
    similar: list[str] = Field(default_factory=list)
    rules: list[str] = Field(default_factory=list)
    identity: Literal["none", "fuel_card", "gas_account"] = "none"
    slots: dict[str, SlotSpec] = Field(default_factory=dict)
    steps: list[Step]
    escalate_after_failures: int = 2
    tests: list[TestConversation] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> BotSpec:
        ids = {s.id for s in self.steps if s.id}
        for i, step in enumerate(self.steps):
            if step.ask and step.ask not in self.slots:
                raise ValueError(f"steps[{i}]: asks for slot {step.ask!r} not defined in slots")
            for ref in (step.goto, step.on_no, step.on_error):
                if ref and ref not in ids:
                    raise ValueError(f"steps[{i}]: goes to unknown step {ref!r}")
        return self


class ScenarioError(ValueError):
    """A bot file that cannot be used; the message names file, line and field."""


def _lines(node: yaml.Node, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], int]:
    out = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out.update(_lines(value, (*path, key.value)))
            out[(*path, key.value)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out.update(_lines(item, (*path, i)))
    return out


M = TypeVar("M", bound=BaseModel)


def parse_yaml_model(text: str, source: str, model: type[M], error: type[ValueError],
                     what: str) -> M:
    """``text`` (YAML) validated as ``model``; ``error`` with one ``source:line: field: msg``
    line per problem otherwise. ``what`` names the kind of file ("a bot file (id, ...)")."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise error(f"{source}{where}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or node is None:
        raise error(f"{source}:1: {what} must be a mapping")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = _lines(node)
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            line = next((lines[loc[:n]] for n in range(len(loc), -1, -1) if loc[:n] in lines), 1)
            field = ".".join(str(p) for p in loc) or "(top)"
            problems.append(f"{source}:{line}: {field}: {err['msg']}")
        raise error("\n".join(problems)) from exc


def parse_bot(text: str, source: str = "<bot>") -> BotSpec:
    return parse_yaml_model(text, source, BotSpec, ScenarioError,
                            "a bot file (id, name, steps, ...)")


def load_bot(path: Path) -> BotSpec:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from exc
    return parse_bot(text, str(path))
