"""The call journal: sessions enqueue writes; one writer task puts them in PostgreSQL.

Queue bound: ``maxsize`` operations. When full, path steps are dropped (and counted) but call
start/finish records are always kept, so every call row is opened and closed.

A write that fails (PostgreSQL down or restarting) is retried in order, after 0.5, 1, 2, 4, 8,
15, 30 and 30 s (about 90 s in all), while later writes wait in the queue behind it; calls go on
meanwhile (nothing a caller waits on writes here). Only after the last retry is it counted as
failed and dropped. A write the table refuses (no such call, a value it does not accept) is not
retried. At shutdown each queued write gets one try.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from ivr.core.privacy import mask_json
from ivr.core.storage.calls import CallRepository
from ivr.core.storage.errors import CallNotFoundError, InvalidCallDataError, StorageError

log = logging.getLogger("ivr.calls.journal")

Op = Callable[[], Awaitable[Any]]
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 30.0)


class CallJournal:
    def __init__(self, repo: CallRepository, maxsize: int = 10_000) -> None:
        self.repo = repo
        self._queue: asyncio.Queue[Op | None] = asyncio.Queue()
        self.maxsize = maxsize
        self.dropped = 0
        self.failed = 0  # writes given up after every retry
        self.retried = 0  # retries made
        self.retry_delays_s: tuple[float, ...] = RETRY_DELAYS_S
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
        for attempt, delay in enumerate((*self.retry_delays_s, None)):
            try:
                await op()
            except StorageError as exc:
                permanent = isinstance(exc, CallNotFoundError | InvalidCallDataError)
                if delay is None or self._closing or permanent:
                    self.failed += 1
                    log.error("call journal write failed for good: %s", exc)
                    return
                if attempt == 0:
                    log.warning("call journal write failed (%s); retrying, %d writes wait",
                                exc, self._queue.qsize())
                self.retried += 1
                await asyncio.sleep(delay)
            else:
                if attempt:
                    log.info("call journal writing again after %d retries", attempt)
                return

    # ---- the CallLog protocol ---------------------------------------------------
    def start(
        self, call_id: uuid.UUID, *, channel_id: str, caller: str, dialed: str, transport: str
    ) -> None:
        self._put(
            lambda: self.repo.start(
                call_id=call_id,
                channel_id=channel_id,
                caller_number=caller,
                dialed_number=dialed,
                transport=transport,
            ),
            essential=True,
        )

    def answered(self, call_id: uuid.UUID) -> None:
        self._put(lambda: self.repo.answered(call_id), essential=True)

    def step(self, call_id: uuid.UUID, name: str, detail: dict[str, object]) -> None:
        """Every step is stored masked (card, phone, ID numbers and PINs in any detail)."""
        masked = mask_json(detail)
        self._put(lambda: self.repo.add_step(call_id, name, **masked), essential=False)

    def finish(
        self,
        call_id: uuid.UUID,
        outcome: str,
        *,
        queue: str | None = None,
        hangup_cause: str | None = None,
    ) -> None:
        async def op() -> None:
            if await self.repo.finish(call_id, outcome, queue=queue, hangup_cause=hangup_cause):
                for hook in self.on_finish:
                    hook(call_id)

        self._put(op, essential=True)
