"""The handoff contract: what a call hands the agent's side when it goes to a queue.

A neutral module between the call layer (``ivr.calls``, which fills it at the moment of
transfer) and ``handoff`` (screen pop, summary, ticket), so neither imports the other.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class TraceEntry:
    t: float  # seconds since the call started
    step: str
    detail: dict[str, Any]


CHAT_CHANNEL_PREFIX = "chat-"  # a web chat's "channel" (ivr.calls.chat): no audio to tap


def is_chat(channel_id: str) -> bool:
    return channel_id.startswith(CHAT_CHANNEL_PREFIX)


@dataclass
class HandoffContext:
    """Everything the agent's screen pop starts from, handed over at the moment of transfer."""

    handoff_id: str
    call_id: uuid.UUID
    channel_id: str
    caller: str
    dialed: str
    line: str
    reason: str
    started_at: float  # epoch seconds
    trace: list[TraceEntry]  # what happened, in order (secrets already masked)
    dialog: dict[str, Any]  # the dialog's own summary (``summary()``), may be empty
