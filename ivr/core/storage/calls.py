"""The call record: one row per call in ``calls``, its path appended step by step.

Each write takes the moment it happened (``at``, optional: the database's clock otherwise), so a
record written late (the journal retrying while PostgreSQL was away) keeps the call's own times.

Every method raises ``StorageError`` (or a subclass) and nothing else for storage failures, bad
values and unknown call ids, with the operation and call id in the message (never the caller's
number; the engine hides bound parameters). Callers decide what to do: the call journal logs it
and carries on.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    Numeric,
    String,
    cast,
    func,
    literal,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql import Executable

from ivr.core.storage.db import SessionFactory
from ivr.core.storage.errors import CallNotFoundError, InvalidCallDataError, StorageError
from ivr.core.storage.models import (
    DIRECTIONS,
    FIGURES,
    IN_PROGRESS,
    OUTCOMES,
    QUEUE_RESULTS,
    TRANSPORTS,
    Call,
)

_DB_ERRORS = (SQLAlchemyError, OSError, TimeoutError)
MAX_RECENT = 1000


class CallRepository:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    async def _rows(self, op: str, call_id: object, stmt: Executable) -> Sequence[Any]:
        """Run one statement (a SELECT, or DML with RETURNING) in its own transaction."""
        try:
            async with self._sessions() as session, session.begin():
                return (await session.execute(stmt)).all()
        except _DB_ERRORS as exc:
            raise StorageError(
                f"calls.{op} failed (call {call_id}): {type(exc).__name__}: {exc}"
            ) from exc

    async def _exists(self, op: str, call_id: uuid.UUID) -> bool:
        rows = await self._rows(op, call_id, select(Call.id).where(Call.id == call_id))
        return bool(rows)

    # ---- writes ------------------------------------------------------------------------
    async def start(
        self,
        *,
        channel_id: str,
        transport: str,
        caller_number: str | None = None,
        dialed_number: str | None = None,
        direction: str = "inbound",
        call_id: uuid.UUID | None = None,
        at: datetime | None = None,
    ) -> uuid.UUID:
        """Open the row of a new call (outcome ``in_progress``); return its id.

        ``call_id`` defaults to a new UUID. Starting the same id again changes nothing.
        """
        if transport not in TRANSPORTS:
            raise InvalidCallDataError(f"calls.start: transport must be one of {TRANSPORTS}, "
                                       f"not {transport!r}")
        if direction not in DIRECTIONS:
            raise InvalidCallDataError(f"calls.start: direction must be one of {DIRECTIONS}, "
                                       f"not {direction!r}")
        cid = call_id or uuid.uuid4()
        stmt = insert(Call).values(
            id=cid, channel_id=channel_id, transport=transport, direction=direction,
            caller_number=caller_number, dialed_number=dialed_number,
            **({} if at is None else {"started_at": at}),
        ).on_conflict_do_nothing(index_elements=[Call.id]).returning(Call.id)
        await self._rows("start", cid, stmt)
        return cid

    async def answered(self, call_id: uuid.UUID, at: datetime | None = None) -> None:
        """Set ``answered_at`` (the first time only)."""
        stmt = (
            update(Call).where(Call.id == call_id)
            .values(answered_at=func.coalesce(Call.answered_at, _moment(at, func.now())))
            .returning(Call.id)
        )
        if not await self._rows("answered", call_id, stmt):
            raise CallNotFoundError(f"calls.answered: no call {call_id}")

    async def add_step(self, call_id: uuid.UUID, step: str, at: datetime | None = None, /,
                       **detail: Any) -> None:
        """Append ``{"t": seconds since start, "step": step, "detail": detail}`` to the path.

        ``call_id``, ``step`` and ``at`` are positional-only, so ``detail`` may use any name.
        The append happens in one UPDATE (``path || ...``), so concurrent steps are all kept.
        Detail values JSON lacks (datetime, UUID, ...) are stored as strings.
        """
        if not step:
            raise InvalidCallDataError("calls.add_step: step name is empty")
        seconds = func.round(
            cast(func.extract("epoch", _moment(at, func.clock_timestamp()) - Call.started_at),
                 Numeric), 3
        )
        entry = func.jsonb_build_object(
            literal_column("'t'"), seconds,
            literal_column("'step'"), literal(step, String()),
            literal_column("'detail'"), literal(detail, JSONB()),
        )
        stmt = (
            update(Call).where(Call.id == call_id)
            .values(path=func.coalesce(Call.path, cast(literal_column("'[]'"), JSONB))
                    .op("||")(func.jsonb_build_array(entry)))
            .returning(Call.id)
        )
        if not await self._rows("add_step", call_id, stmt):
            raise CallNotFoundError(f"calls.add_step({step!r}): no call {call_id}")

    async def finish(
        self,
        call_id: uuid.UUID,
        outcome: str,
        *,
        queue: str | None = None,
        hangup_cause: str | None = None,
        at: datetime | None = None,
        figures: dict[str, Any] | None = None,
    ) -> bool:
        """Close the call: outcome, ``ended_at`` and optionally queue, hangup cause and the
        call's figures (``FIGURES``: its line, bot, turn counts, ... for the analytics).

        Only a call still ``in_progress`` is changed, so a second finish keeps the first outcome.
        Returns True when this call closed it, False when it was already closed.
        """
        if not outcome or outcome == IN_PROGRESS:
            raise InvalidCallDataError(f"calls.finish: {outcome!r} is not a final outcome")
        values: dict[str, Any] = {"outcome": outcome, "ended_at": _moment(at, func.now())}
        if queue is not None:
            values["queue"] = queue
        if hangup_cause is not None:
            values["hangup_cause"] = hangup_cause
        for name, value in (figures or {}).items():
            if name not in FIGURES:
                raise InvalidCallDataError(f"calls.finish: {name!r} is not a call figure")
            values[name] = value
        stmt = (
            update(Call).where(Call.id == call_id, Call.outcome == IN_PROGRESS)
            .values(**values).returning(Call.id)
        )
        if await self._rows("finish", call_id, stmt):
            return True
        if not await self._exists("finish", call_id):
            raise CallNotFoundError(f"calls.finish: no call {call_id}")
        return False

    async def close_left(self, channel_id: str, outcome: str, *, hangup_cause: str) -> int:
        """Close the records still in progress on ``channel_id``: a call a process that died
        left open, which nobody else will finish (a survey call ended by the next dialer).
        Returns how many were closed."""
        if outcome not in OUTCOMES or outcome == IN_PROGRESS:
            raise InvalidCallDataError(f"calls.close_left: {outcome!r} is not a final outcome")
        stmt = (update(Call).where(Call.channel_id == channel_id, Call.outcome == IN_PROGRESS)
                .values(outcome=outcome, ended_at=func.now(), hangup_cause=hangup_cause)
                .returning(Call.id))
        return len(await self._rows("close_left", channel_id, stmt))

    async def queue_result(self, call_id: uuid.UUID, result: str, wait_s: float | None) -> bool:
        """How the call's wait for an agent ended (``answered`` | ``abandoned``) and how long
        it was; the first result stays (a call answered after a ring-no-answer is answered)."""
        if result not in QUEUE_RESULTS:
            raise InvalidCallDataError(f"calls.queue_result: {result!r} is not one of "
                                       f"{QUEUE_RESULTS}")
        stmt = (update(Call).where(Call.id == call_id, Call.queue_result.is_(None))
                .values(queue_result=result, queue_wait_s=wait_s).returning(Call.id))
        return bool(await self._rows("queue_result", call_id, stmt))

    # ---- reads -------------------------------------------------------------------------
    async def get(self, call_id: uuid.UUID) -> Call | None:
        rows = await self._rows("get", call_id, select(Call).where(Call.id == call_id))
        return rows[0][0] if rows else None

    async def by_channel(self, channel_id: str) -> Call | None:
        """The latest call on Asterisk channel ``channel_id``, or None."""
        stmt = (
            select(Call).where(Call.channel_id == channel_id)
            .order_by(Call.started_at.desc()).limit(1)
        )
        rows = await self._rows("by_channel", channel_id, stmt)
        return rows[0][0] if rows else None

    async def recent(self, limit: int = 20) -> list[Call]:
        """The latest ``limit`` calls (at most 1000), newest first."""
        n = max(1, min(int(limit), MAX_RECENT))
        stmt = select(Call).order_by(Call.started_at.desc(), Call.id).limit(n)
        return [row[0] for row in await self._rows("recent", None, stmt)]

    async def started_since(self, since: float, limit: int) -> list[Call]:
        """The calls started after ``since`` (epoch seconds), newest first, at most ``limit``
        (drills, tests)."""
        return [r for r in await self.recent(limit) if r.started_at.timestamp() >= since - 1]

    async def all_closed_since(self, since: float, count: int,
                               wait_s: float = 15.0) -> list[Call]:
        """The calls started after ``since``, waiting up to ``wait_s`` until at least ``count``
        are there and every one is closed (a drill's calls, their ends written); what there
        is then."""
        rows: list[Call] = []
        for _ in range(max(1, int(wait_s / 0.2))):
            rows = await self.started_since(since, min(MAX_RECENT, count + 50))
            if len(rows) >= count and all(r.ended_at for r in rows):
                break
            await asyncio.sleep(0.2)
        return rows

    async def closed_since(self, since: float, wait_s: float = 10.0) -> Call | None:
        """The newest call started after ``since`` (epoch seconds) once it is closed, waiting
        up to ``wait_s`` for its end to be written (drills, tests); None if there is none."""
        for _ in range(max(1, int(wait_s / 0.2))):
            rows = await self.recent(1)
            if rows and rows[0].started_at.timestamp() >= since - 1 and rows[0].ended_at:
                return rows[0]
            await asyncio.sleep(0.2)
        return None


def _moment(at: datetime | None, default: Any) -> Any:
    """``at`` as a bound timestamp, else the database's clock (``default``)."""
    return default if at is None else literal(at, DateTime(timezone=True))
