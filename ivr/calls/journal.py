"""The call journal: sessions enqueue writes; one writer task puts them in PostgreSQL.

Queue bound: ``maxsize`` operations. When full, path steps are dropped (and counted) but call
start/finish records are always kept, so every call row is opened and closed.

A write that fails (PostgreSQL down or restarting) is retried in order, after 0.5, 1, 2 and 4 s,
then every 5 s for as long as it takes (so writing resumes within 5 s of PostgreSQL's return,
however long it was away), while later writes wait in the queue behind it; calls go on meanwhile
(nothing a caller waits on writes here). The queue's bound keeps memory bounded: past
``maxsize`` path steps are dropped, call starts and ends never. A write the table refuses (no
such call, a value it does not accept) is not retried. At shutdown each queued write gets one
try. Every write carries the moment it was queued, so a call's record written after an outage
keeps its own start, step and end times.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from ivr.core.privacy import mask_json
from ivr.core.storage.calls import CallRepository
from ivr.core.storage.errors import CallNotFoundError, InvalidCallDataError, StorageError

log = logging.getLogger("ivr.calls.journal")

Op = Callable[[], Awaitable[Any]]
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0)  # then RETRY_EVERY_S, until it goes through
RETRY_EVERY_S = 5.0


class CallJournal:
    def __init__(self, repo: CallRepository, maxsize: int = 10_000) -> None:
        self.repo = repo
        self._queue: asyncio.Queue[Op | None] = asyncio.Queue()
        self.maxsize = maxsize
        self.dropped = 0
        self.failed = 0  # writes given up (refused by the table, or at shutdown)
        self.retried = 0  # retries made
        self.retry_delays_s: tuple[float, ...] = RETRY_DELAYS_S
        self.retry_every_s = RETRY_EVERY_S
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        # called with the call id once a call's row is closed (e.g. survey call-backs:
        # campaigns.callbacks.CallbackFeeder.offer); hooks must not block
        self.on_finish: list[Callable[[uuid.UUID], None]] = []

    def start_writer(self) -> None:
        self._task = asyncio.create_task(self._run(), name="call-journal")

    async def close(self) -> None:
        """Flush what is queued, then stop."""
        if self._task is not None:
            self._closing = True
            self._queue.put_nowait(None)
            await self._task
            self._task = None

    async def flush(self) -> None:
        done = asyncio.get_running_loop().create_future()

        async def mark() -> None:
            if not done.done():  # the flusher may have stopped waiting
                done.set_result(None)

        self._queue.put_nowait(mark)
        await done

    def _put(self, op: Op, *, essential: bool) -> None:
        if not essential and self._queue.qsize() >= self.maxsize:
            self.dropped += 1
            return
        self._queue.put_nowait(op)

    async def _run(self) -> None:
        while (op := await self._queue.get()) is not None:
            await self._write(op)

    async def _write(self, op: Op) -> None:
        attempt = 0
        while True:
            delay = (self.retry_delays_s[attempt] if attempt < len(self.retry_delays_s)
                     else self.retry_every_s)
            try:
                await op()
            except StorageError as exc:
                permanent = isinstance(exc, CallNotFoundError | InvalidCallDataError)
                if self._closing or permanent:
                    self.failed += 1
                    log.error("call journal write failed for good: %s", exc)
                    return
                if attempt == 0:
                    log.warning("call journal write failed (%s); retrying, %d writes wait",
                                exc, self._queue.qsize())
                self.retried += 1
                attempt += 1
                await asyncio.sleep(delay)
            else:
                if attempt:
                    log.info("call journal writing again after %d retries", attempt)
                return

    # ---- the CallLog protocol ---------------------------------------------------
    def start(
        self, call_id: uuid.UUID, *, channel_id: str, caller: str, dialed: str, transport: str,
        direction: str = "inbound",
    ) -> None:
        at = _now()
        self._put(
            lambda: self.repo.start(
                call_id=call_id,
                channel_id=channel_id,
                caller_number=caller,
                dialed_number=dialed,
                transport=transport,
                direction=direction,
                at=at,
            ),
            essential=True,
        )

    def answered(self, call_id: uuid.UUID) -> None:
        at = _now()
        self._put(lambda: self.repo.answered(call_id, at), essential=True)

    def step(self, call_id: uuid.UUID, name: str, detail: dict[str, object]) -> None:
        """Every step is stored masked (card, phone, ID numbers and PINs in any detail)."""
        masked, at = mask_json(detail), _now()
        self._put(lambda: self.repo.add_step(call_id, name, at, **masked), essential=False)

    def finish(
        self,
        call_id: uuid.UUID,
        outcome: str,
        *,
        queue: str | None = None,
        hangup_cause: str | None = None,
        figures: dict[str, Any] | None = None,
    ) -> None:
        at = _now()

        async def op() -> None:
            if await self.repo.finish(call_id, outcome, queue=queue, hangup_cause=hangup_cause,
                                      at=at, figures=figures):
                for hook in self.on_finish:
                    hook(call_id)

        self._put(op, essential=True)


    def close_left(self, channel_id: str, outcome: str, hangup_cause: str) -> None:
        """The records a dead process left open on ``channel_id``, closed (``CallRepository``)."""
        self._put(lambda: self.repo.close_left(channel_id, outcome, hangup_cause=hangup_cause),
                  essential=True)

    def queue_result(self, call_id: uuid.UUID, result: str, wait_s: float | None) -> None:
        """How the call's wait in an agent queue ended (app_queue's events, the chat desk)."""
        self._put(lambda: self.repo.queue_result(call_id, result, wait_s), essential=False)


def _now() -> datetime:
    return datetime.now(UTC)
