"""A call's dialog state, and its JSON form for Redis (so a call survives a server restart).

Secrets never leave the process: slots marked ``sensitive`` (PINs, ID tails) are dropped from
the snapshot, so a resumed call asks for them again if it still needs them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dialog.actions import Action, Collect, Say

SNAPSHOT_VERSION = 1


@dataclass
class DialogState:
    mode: str = "route"  # route | line_menu | clarify | bot | done
    line: str = ""
    bot: str | None = None
    pc: int = 0
    slots: dict[str, Any] = field(default_factory=dict)
    vars: dict[str, Any] = field(default_factory=dict)
    verified: bool = False
    failures: int = 0  # consecutive no-match / invalid answers
    silences: int = 0  # consecutive no-inputs
    turns: int = 0
    clarify: tuple[str, ...] = ()
    last_prompt: list[Action] = field(default_factory=list)
    history: list[int] = field(default_factory=list)  # pcs of asks, for 返回上一步
    # before a bot: what the caller's tries at their request so far said of each bot (the
    # trained layer's probabilities, those declined set to 0), weighed into the next try
    evidence: dict[str, float] = field(default_factory=dict)


def _dump_action(action: Action) -> dict[str, Any]:
    if isinstance(action, Say):
        return {"say": action.text, "id": action.prompt_id, "barge_in": action.barge_in}
    if isinstance(action, Collect):
        return {"collect": action.max_digits, "timeout_s": action.timeout_s,
                "entry": action.entry}
    raise TypeError(f"only Say and Collect are kept as the last prompt, not {action!r}")


def _load_action(data: dict[str, Any]) -> Action:
    if "say" in data:
        return Say(str(data["say"]), data.get("id"), bool(data.get("barge_in", True)))
    return Collect(int(data["collect"]), data.get("timeout_s"), entry=str(data.get("entry") or ""))


def dump_state(state: DialogState, secret_slots: Iterable[str]) -> dict[str, Any]:
    secret = set(secret_slots)
    return {
        "v": SNAPSHOT_VERSION,
        "mode": state.mode, "line": state.line, "bot": state.bot, "pc": state.pc,
        "slots": {k: v if _plain(v) else str(v) for k, v in state.slots.items()
                  if k not in secret},
        "vars": {k: v for k, v in state.vars.items() if _plain(v)},
        "verified": state.verified, "failures": state.failures, "silences": state.silences,
        "turns": state.turns, "clarify": list(state.clarify),
        "last_prompt": [_dump_action(a) for a in state.last_prompt],
        "history": list(state.history),
        "evidence": {k: float(v) for k, v in state.evidence.items()},
    }


def load_state(data: dict[str, Any]) -> DialogState:
    """The inverse of ``dump_state``; raises ValueError on a snapshot it cannot use."""
    if not isinstance(data, dict) or data.get("v") != SNAPSHOT_VERSION:
        raise ValueError("not a dialog snapshot of this version")
    try:
        return DialogState(
            mode=str(data["mode"]), line=str(data["line"]), bot=data.get("bot"),
            pc=int(data["pc"]), slots=dict(data["slots"]), vars=dict(data["vars"]),
            verified=bool(data["verified"]), failures=int(data["failures"]),
            silences=int(data["silences"]), turns=int(data["turns"]),
            clarify=tuple(data["clarify"]),
            last_prompt=[_load_action(a) for a in data["last_prompt"]],
            history=[int(i) for i in data["history"]],
            evidence={str(k): float(v) for k, v in data.get("evidence", {}).items()},
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"broken dialog snapshot: {exc}") from exc


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)
