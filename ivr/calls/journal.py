"""The call journal: sessions enqueue writes; one writer task puts them in PostgreSQL.

Queue bound: ``maxsize`` operations. When full, path steps are dropped (and counted) but call
start/finish records are always kept, so every call row is opened and closed.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from ivr.core.privacy import mask_json
from ivr.core.storage.calls import CallRepository
from ivr.core.storage.errors import StorageError

log = logging.getLogger("ivr.calls.journal")

Op = Callable[[], Awaitable[Any]]


class CallJournal:
    def __init__(self, repo: CallRepository, maxsize: int = 10_000) -> None:
        self.repo = repo
        self._queue: asyncio.Queue[Op | None] = asyncio.Queue()
        self.maxsize = maxsize
        self.dropped = 0
        self.failed = 0
        self._task: asyncio.Task[None] | None = None
        # called with the call id once a call's row is closed (e.g. survey call-backs:
        # campaigns.callbacks.CallbackFeeder.offer); hooks must not block
        self.on_finish: list[Callable[[uuid.UUID], None]] = []

    def start_writer(self) -> None:
        self._task = asyncio.create_task(self._run(), name="call-journal")

    async def close(self) -> None:
        """Flush what is queued, then stop."""
        if self._task is not None:
            self._queue.put_nowait(None)
            await self._task
            self._task = None

    async def flush(self) -> None:
        done = asyncio.get_running_loop().create_future()

        async def mark() -> None:
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
            try:
                await op()
            except StorageError as exc:
                self.failed += 1
                log.error("call journal write failed: %s", exc)

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
