"""What the dialog sees (events) and what it asks for (actions). No I/O, no protocol."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


# ---- events into the dialog -------------------------------------------------
@dataclass(frozen=True, slots=True)
class Dtmf:
    digits: str


@dataclass(frozen=True, slots=True)
class NoInput:
    pass


@dataclass(frozen=True, slots=True)
class Utterance:
    text: str
    confidence: float = 1.0
    # recognised from speech (a call), not typed (web chat, tests): the matcher's trained
    # layer then uses its model that also learnt the recogniser's mishearings
    heard: bool = False


DialogEvent = Dtmf | NoInput | Utterance


# ---- actions out of the dialog ----------------------------------------------
@dataclass(frozen=True, slots=True)
class Say:
    text: str
    prompt_id: str | None = None  # operator recordings override synthesised prompts by id
    barge_in: bool = True


@dataclass(frozen=True, slots=True)
class Collect:
    """Wait for the caller's input: keys, or speech where the call has a recogniser."""

    max_digits: int = 1
    timeout_s: float | None = None  # None: the settings' no-input timeout
    hints: str = ""  # words the caller is likely to say now (ASR context biasing)
    # how a typed channel (web chat) asks for it: "" (a menu or free words), "digits" (a
    # number field), "secret" (a masked field: a PIN, never echoed)
    entry: str = ""


@dataclass(frozen=True, slots=True)
class Transfer:
    line: str  # oil | gas | general | priority
    reason: str
    handoff_id: str | None = None  # back to a queue under the handoff it had (pop kept)


@dataclass(frozen=True, slots=True)
class Hangup:
    outcome: str  # completed | no_input | ...


@dataclass(frozen=True, slots=True)
class Step:
    """A note for the call's path (what the IVR did and why); the session records it."""

    name: str
    detail: dict[str, Any] = field(default_factory=dict)


Action = Say | Collect | Transfer | Hangup | Step
