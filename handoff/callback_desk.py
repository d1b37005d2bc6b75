"""Working callback tasks (回电任务) from the agent desktop: list, claim, dial, close.

A caller who chose a callback instead of waiting (``handoff.callback``) leaves a pending task.
Agents see the pending tasks, oldest first. An agent claims a task before calling (one agent at
a time: a task another agent holds answers ``CallbackConflict``; a claim older than
``claim_ttl_s`` is free again, for an agent who left without closing it). Each dial is counted
(``dials``, ``last_dial_at``); the call itself is placed by the web layer through Asterisk (the
agent's phone rings first, then the customer is dialed). The agent closes the task: ``done``
(reached and served), ``failed`` (could not be reached) or ``cancelled`` (no longer needed),
with a note. Closed tasks leave the list; nothing is deleted.

Business rules and storage only; no protocol here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from handoff.ticket_tables import CallbackTaskRow
from ivr.core.storage.db import SessionFactory
from ivr.core.storage.errors import StorageError

CLOSED = {"done": "已回电", "failed": "未能联系", "cancelled": "无需回电"}
REASONS = {"no_agent": "无坐席在线", "wait_limit": "等待过久"}
NOTE_MAX = 500


class CallbackConflict(Exception):
    """The task cannot be worked by this agent now; the message is Chinese, for the desktop."""


class CallbackNotFound(Exception):
    pass


@dataclass(frozen=True, slots=True)
class CallbackTask:
    id: int
    call_id: uuid.UUID
    handoff_id: str | None
    caller_number: str
    line: str
    queue: str
    reason: str
    status: str
    requested_at: datetime
    agent: str | None
    claimed_at: datetime | None
    dials: int
    last_dial_at: datetime | None
    note: str | None

    @classmethod
    def of(cls, row: CallbackTaskRow) -> CallbackTask:
        return cls(row.id, row.call_id, row.handoff_id, row.caller_number, row.line, row.queue,
                   row.reason, row.status, row.requested_at, row.agent, row.claimed_at,
                   row.dials or 0, row.last_dial_at, row.note)

    def view(self) -> dict[str, Any]:
        """For the desktop (the agent needs the whole number to call it)."""
        return {
            "id": self.id, "call_id": str(self.call_id), "handoff_id": self.handoff_id,
            "caller_number": self.caller_number, "line": self.line, "queue": self.queue,
            "reason": self.reason, "reason_text": REASONS.get(self.reason, self.reason),
            "status": self.status, "requested_at": self.requested_at.isoformat(),
            "agent": self.agent, "dials": self.dials, "note": self.note,
            "last_dial_at": self.last_dial_at.isoformat() if self.last_dial_at else None,
        }


class CallbackDesk:
    def __init__(self, sessions: SessionFactory, *, claim_ttl_s: float = 1800.0) -> None:
        self.sessions = sessions
        self.claim_ttl = timedelta(seconds=claim_ttl_s)

    async def pending(self, limit: int = 50) -> list[CallbackTask]:
        try:
            async with self.sessions() as s:
                rows = (await s.execute(
                    select(CallbackTaskRow).where(CallbackTaskRow.status == "pending")
                    .order_by(CallbackTaskRow.requested_at, CallbackTaskRow.id)
                    .limit(max(1, min(limit, 500))))).scalars().all()
        except SQLAlchemyError as exc:
            raise StorageError(f"reading callback tasks failed: {type(exc).__name__}") from exc
        return [CallbackTask.of(r) for r in rows]

    async def claim(self, task_id: int, agent: str) -> CallbackTask:
        """Take the task for ``agent`` (again, for its holder: the claim is renewed)."""
        free = or_(CallbackTaskRow.agent.is_(None), CallbackTaskRow.agent == agent,
                   CallbackTaskRow.claimed_at < func.now() - self.claim_ttl)
        return await self._change(task_id, agent, free,
                                  {"agent": agent, "claimed_at": func.now()})

    async def dialed(self, task_id: int, agent: str) -> CallbackTask:
        """Count a dial by the agent holding the task."""
        return await self._change(task_id, agent, CallbackTaskRow.agent == agent,
                                  {"dials": CallbackTaskRow.dials + 1,
                                   "last_dial_at": func.now()})

    async def close(self, task_id: int, agent: str, status: str, note: str = "") -> CallbackTask:
        if status not in CLOSED:
            raise ValueError(f"status must be one of {', '.join(CLOSED)}")
        return await self._change(task_id, agent, CallbackTaskRow.agent == agent,
                                  {"status": status, "closed_at": func.now(),
                                   "note": note.strip()[:NOTE_MAX] or None})

    async def _change(self, task_id: int, agent: str, allowed: Any,
                      values: dict[str, Any]) -> CallbackTask:
        try:
            async with self.sessions() as s, s.begin():
                row = (await s.execute(
                    update(CallbackTaskRow)
                    .where(CallbackTaskRow.id == task_id, CallbackTaskRow.status == "pending",
                           allowed)
                    .values(**values).returning(CallbackTaskRow))).scalar_one_or_none()
                if row is not None:
                    return CallbackTask.of(row)
                now = (await s.execute(select(CallbackTaskRow).where(
                    CallbackTaskRow.id == task_id))).scalar_one_or_none()
        except SQLAlchemyError as exc:
            raise StorageError(f"updating callback task failed: {type(exc).__name__}") from exc
        if now is None:
            raise CallbackNotFound(task_id)
        if now.status != "pending":
            raise CallbackConflict(f"该回电任务已处理（{CLOSED.get(now.status, now.status)}）")
        if now.agent and now.agent != agent:
            raise CallbackConflict(f"该回电任务已由 {now.agent} 认领")
        raise CallbackConflict("请先认领该回电任务")
