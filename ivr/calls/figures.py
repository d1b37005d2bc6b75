"""A call's figures for the inbound analytics, from its path and its dialog, at its end.

Written once per call into the call's row (``CallRepository.finish(figures=...)``), so the
analytics (``campaigns/inbound.py``) aggregate plain columns in PostgreSQL instead of walking
every call's path. What counts:

- **turns by kind**: ``speech_turns`` (an utterance, or a web chat's typed message),
  ``key_turns`` (DTMF, a chat's button or number), ``no_input`` (a question's timeout);
- ``no_match`` and ``clarify``: the dialog's own steps (a request it did not understand, a
  question it asked to choose between bots);
- ``asr_confidence``: the mean of the recogniser's confidences over the call's utterances
  (None without speech);
- ``line``, ``bot``, ``exit_point`` (the dialog state at the end: where a caller who hung up
  left) and ``states`` (turns, no-match, clarify, no-input per dialog state) from the dialog's
  summary; ``reason``: why it went to an agent (the transfer's reason).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ivr.core.handoff import TraceEntry


def call_figures(trace: Iterable[TraceEntry], dialog: dict[str, Any]) -> dict[str, Any]:
    speech = keys = silences = no_match = clarify = 0
    confidences: list[float] = []
    reason: str | None = None
    for e in trace:
        if e.step in ("speech", "chat"):
            speech += 1
            conf = e.detail.get("confidence")
            if e.step == "speech" and isinstance(conf, int | float):
                confidences.append(float(conf))
        elif e.step == "dtmf":
            keys += 1
        elif e.step == "input_timeout":
            silences += 1
        elif e.step == "no_match":
            no_match += 1
        elif e.step == "clarify":
            clarify += 1
        elif e.step in ("transfer", "failover"):
            reason = str(e.detail.get("reason") or e.step)[:32]
    states = dialog.get("states")
    return {
        "line": str(dialog.get("line") or "")[:16] or None,
        "bot": str(dialog.get("bot") or "")[:64] or None,
        "reason": reason,
        "exit_point": str(dialog.get("at") or "")[:96] or None,
        "turns": speech + keys + silences,
        "speech_turns": speech, "key_turns": keys, "no_input": silences,
        "no_match": no_match, "clarify": clarify,
        "asr_confidence": round(sum(confidences) / len(confidences), 3) if confidences else None,
        "states": states if isinstance(states, dict) and states else None,
    }
