"""The caller beyond capacity: when the server already has ``calls.capacity`` calls, a new
caller is neither turned away nor left in silence. An announcement, then the general agent
queue, with a screen pop that says why (reason ``overload``). The call opens no recogniser and
no bot: it costs the server one prompt and a transfer."""

from __future__ import annotations

from dialog.actions import Action, DialogEvent, Say, Step, Transfer
from dialog.prompts import P

REASON = "overload"
LINE = "general"


class OverloadDialog:
    def __init__(self, active: int, capacity: int) -> None:
        self.detail = {"active": active, "capacity": capacity}

    def start(self) -> list[Action]:
        return [Step(REASON, self.detail), Say(P[REASON], REASON, barge_in=False),
                Transfer(LINE, REASON)]

    def on_event(self, event: DialogEvent) -> list[Action]:
        return [Transfer(LINE, REASON)]
