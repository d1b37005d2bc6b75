"""The agent's screen pop: what the IVR learnt about a call, built at the moment of transfer.

``build_pop(context)`` is pure (no I/O, no clock, no model) and fast: it runs on the call's
path right before the queue transfer. Everything in a pop is already safe to show an agent:
card and account numbers only by their last four digits, PINs and ID tails never, free text
passed through ``mask_digits_in_text``, the caller's number masked too (138****8000: the agent's
phone shows it in full; a pop lives in Redis and reaches the model). A ticket whose contact is
left as the masked caller number gets the full one from the call record when it is submitted
(``ivr.web.tickets``); logs never print a pop.

The LLM summary arrives later (``handoff.summary``) and is merged in by the service; until then
the deterministic summary of ``handoff.rules`` is what the agent reads.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from handoff.rules import (
    REASON_LABELS,
    caller_texts,
    deterministic_summary,
    identity_label,
    prefill_ticket,
    reason_label,
    step_label,
)
from ivr.core.handoff import HandoffContext, TraceEntry
from ivr.core.lines import LINE_LABELS, queue_for
from ivr.core.privacy import mask_digits_in_text, mask_json, mask_number

# trace steps that say what the IVR did on the caller's behalf (shown as "bot steps taken")
BOT_STEPS = frozenset({
    "menu", "bot", "slot", "verified", "verify_failed", "action_refused", "no_match",
    "failure_limit", "global", "clarify", "safety", "no_input", "no_input_limit", "resumed",
    "transfer", "failover", "error",
})
_LONG_ENTRY = re.compile(r"<(\d+) digits>")  # how the session journals a card number or a PIN
# what a pop's LLM summary can be at a given moment
LLM_STATUSES = ("pending", "ok", "timeout", "error", "invalid", "disabled", "skipped")


@dataclass
class ScreenPop:
    """One handoff as the agent desktop shows it (JSON-able through ``to_dict``)."""

    handoff_id: str
    call_id: str
    channel_id: str
    caller: str
    dialed: str
    line: str
    line_label: str
    queue: str
    reason: str
    reason_label: str
    started_at: float  # epoch seconds
    handed_off_at: float  # epoch seconds
    identity: dict[str, Any]  # kind, kind_label, verified, tail (last 4 digits at most)
    bot: dict[str, Any] | None  # id, name
    intents: list[dict[str, Any]]  # t, text, intent, score, layer, decision
    slots: dict[str, Any]  # already masked by the dialog
    steps: list[dict[str, Any]]  # t, step, label, detail
    transcript: list[dict[str, Any]]  # t, who (ivr|caller), kind, text
    summary: dict[str, str]  # situation, done, pending, mood, text
    ticket: dict[str, Any]
    error: str | None = None
    llm_summary: dict[str, str] | None = None
    llm_status: str = "pending"
    state: str = "queued"  # queued | ringing | connected | ended | abandoned
    offered_to: list[str] = field(default_factory=list)  # agents whose phone rang
    agent: str | None = None  # the agent who answered
    version: int = 1  # bumped on every update, so a desktop keeps the newest
    # knowledge suggestions (handoff.knowledge.suggest), filled in the background
    suggestions: list[dict[str, Any]] = field(default_factory=list)
    # the ticket draft completed by the LLM (handoff.tickets), in the background like the summary
    ticket_status: str = "pending"  # same values as llm_status

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScreenPop:
        """A pop read back from storage; unknown keys are ignored (older or newer writers)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def _tail(value: object) -> str:
    digits = "".join(ch for ch in str(value or "") if ch.isdigit())
    return digits[-4:]


def _transcript(trace: list[TraceEntry]) -> list[dict[str, Any]]:
    """IVR prompts, caller keys and caller speech in call order, with call-relative times."""
    out: list[dict[str, Any]] = []
    last_speech = ""
    for e in trace:
        d = e.detail
        if e.step == "say":
            out.append({"t": e.t, "who": "ivr", "kind": "say",
                        "text": mask_digits_in_text(str(d.get("text", "")))})
        elif e.step == "dtmf":
            keys = str(d.get("digits", ""))
            n = _LONG_ENTRY.fullmatch(keys)
            shown = f"按键输入{n.group(1)}位数字" if n else f"按键 {keys}"
            out.append({"t": e.t, "who": "caller", "kind": "dtmf", "keys": keys, "text": shown})
        elif e.step in ("speech", "chat"):  # said on a call, typed in a web chat
            last_speech = mask_digits_in_text(str(d.get("text", "")))
            out.append({"t": e.t, "who": "caller", "kind": "speech", "text": last_speech})
        elif e.step == "intent":
            text = mask_digits_in_text(str(d.get("text", "")))
            if text and text != last_speech:  # text chat and evaluations have no speech step
                out.append({"t": e.t, "who": "caller", "kind": "speech", "text": text})
            last_speech = ""
        elif e.step == "input_timeout":
            out.append({"t": e.t, "who": "caller", "kind": "no_input", "text": "（未输入）"})
    return out


def _intents(trace: list[TraceEntry]) -> list[dict[str, Any]]:
    out = []
    for e in trace:
        d = e.detail
        # a request asked about (X吗？, X还是Y？) is one too; not the caller's answer to it
        if e.step != "intent" and (e.step not in ("clarify", "confirm") or "decision" not in d):
            continue
        score = d.get("score")
        out.append({
            "t": e.t,
            "text": mask_digits_in_text(str(d.get("text", ""))),
            "intent": d.get("intent"),
            "score": float(score) if isinstance(score, int | float) else 0.0,
            "layer": d.get("layer"),
            "decision": d.get("decision", "match" if e.step == "intent" else "clarify"),
        })
    return out


def _steps(trace: list[TraceEntry], bot: dict[str, Any] | None) -> list[dict[str, Any]]:
    names = {bot["id"]: bot["name"]} if bot else {}
    out = []
    for e in trace:
        if e.step in BOT_STEPS:
            detail = mask_json(dict(e.detail))
            out.append({"t": e.t, "step": e.step, "label": step_label(e.step, detail, names),
                        "detail": detail})
    return out


def build_pop(context: HandoffContext) -> ScreenPop:
    """The screen pop of a handoff: pure and fast (no I/O, no model; well under 5 ms)."""
    d = context.dialog or {}
    trace = list(context.trace)
    line = context.line or str(d.get("line") or "general")
    bot = {"id": d["bot"], "name": d.get("bot_name") or d["bot"]} if d.get("bot") else None
    kind = str(d.get("identity") or "none")
    slots = mask_json(dict(d.get("slots") or {}))
    tail = _tail(d.get("identity_tail")) or next(
        (_tail(v) for k, v in slots.items() if k in ("card_number", "gas_account")), "")
    identity = {"kind": kind, "kind_label": identity_label(kind),
                "verified": bool(d.get("verified")), "tail": tail}
    error = mask_digits_in_text(str(d["error"])) if d.get("error") else None
    transcript = _transcript(trace)
    steps = _steps(trace, bot)
    texts = caller_texts(transcript)
    summary = deterministic_summary(
        reason=context.reason, line=line, bot=bot, identity=identity, slots=slots,
        steps=steps, caller_texts=texts, error=error)
    caller = mask_number(context.caller) if context.caller else ""
    ticket = prefill_ticket(
        reason=context.reason, line=line, bot=bot, identity=identity, summary=summary,
        caller=caller, caller_texts=texts)
    handed_off_at = context.started_at + (trace[-1].t if trace else 0.0)
    return ScreenPop(
        handoff_id=context.handoff_id,
        call_id=context.call_id.hex,
        channel_id=context.channel_id,
        caller=caller,
        dialed=context.dialed,
        line=line,
        line_label=LINE_LABELS.get(line, line),
        queue=queue_for(line),
        reason=context.reason,
        reason_label=REASON_LABELS.get(context.reason) or reason_label(context.reason, bot),
        started_at=context.started_at,
        handed_off_at=round(handed_off_at, 3),
        identity=identity,
        bot=bot,
        intents=_intents(trace),
        slots=slots,
        steps=steps,
        transcript=transcript,
        summary=summary,
        ticket=ticket,
        error=error,
    )
