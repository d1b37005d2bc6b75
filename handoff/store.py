"""Screen pops in Redis: one writer task, bounded, so the call path never waits on Redis.

Keys (each with the pop's time to live, a day by default):
- ``ivr:handoff:pop:<handoff id>``: the pop as JSON
- ``ivr:handoff:chan:<caller channel id>``: its handoff id (AMI events name the channel)
- ``ivr:handoff:agent:<agent>:current``: the handoff id an agent's desktop shows now

Channels: ``ivr:handoff:pops`` (every new or updated pop) and ``ivr:handoff:agent:<agent>``
(what one agent's desktop must show). Messages are JSON envelopes ``{"type", "origin", ...}``.

Writes are queued (``WRITE_QUEUE`` deep; when full the oldest queued write is dropped and
counted: newer writes of a pop carry its whole state) and run in order by one task, each batch
in one pipeline with a timeout. Reads have a short timeout. A dead Redis is logged and counted,
never raised: the process keeps its pops in memory and delivers to its own desktops, and keeps
the newest value of every key it could not set (``UNWRITTEN_MAX`` keys, oldest dropped and
counted beyond that). When Redis answers again (a write goes through, or the subscriber is back)
those values are written before any newer queued batch, so a pop made during an outage is in
Redis afterwards; messages published during the outage are not sent again (they were live
updates; a desktop that connects later reads the stored pop).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from handoff.metrics import HandoffMetrics

log = logging.getLogger("handoff.store")

PREFIX = "ivr:handoff:"
POPS_CHANNEL = PREFIX + "pops"
AGENT_PATTERN = PREFIX + "agent:*"
WRITE_QUEUE = 256
TIMEOUT_S = 0.5
UNWRITTEN_MAX = 4096  # keys kept while Redis is away
RELISTEN_S = (0.5, 1.0, 2.0, 5.0)  # back-off of the subscriber after Redis went away
# delete an agent's current pop only if it is still the given one
_DEL_IF = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end " \
          "return 0"


def pop_key(handoff_id: str) -> str:
    return f"{PREFIX}pop:{handoff_id}"


def channel_key(channel_id: str) -> str:
    return f"{PREFIX}chan:{channel_id}"


def current_key(agent: str) -> str:
    return f"{PREFIX}agent:{agent}:current"


def agent_channel(agent: str) -> str:
    return f"{PREFIX}agent:{agent}"


@dataclass
class Write:
    """One batch: ("set", key, value), ("publish", channel, message), ("del_if", key, value)."""

    ops: list[tuple[str, str, str]]
    done: Callable[[bool], None] | None = None


class PopStore:
    def __init__(self, redis: aioredis.Redis, metrics: HandoffMetrics, *, ttl_s: int,
                 timeout_s: float = TIMEOUT_S, queue_size: int = WRITE_QUEUE) -> None:
        self.redis = redis
        self.metrics = metrics
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self._writes: asyncio.Queue[Write] = asyncio.Queue(queue_size)
        self._writer: asyncio.Task[None] | None = None
        self._failing = False  # log the first failure of a streak, not every one
        self._unwritten: OrderedDict[str, str] = OrderedDict()  # key -> newest unset value

    def start(self) -> None:
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_loop(), name="handoff-writer")

    async def close(self, drain_s: float = 1.0) -> None:
        """Give queued writes ``drain_s`` to finish, then stop the writer."""
        if self._writer is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._writes.join(), drain_s)
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
        self._writer = None

    # ---- writes ---------------------------------------------------------------------
    def write(self, write: Write) -> None:
        """Queue a batch; never blocks (when the queue is full the oldest batch is dropped)."""
        if self._writes.full():
            dropped = self._writes.get_nowait()
            self._writes.task_done()
            self.metrics.writes_dropped += 1
            if dropped.done is not None:
                dropped.done(False)
        self._writes.put_nowait(write)

    async def _write_loop(self) -> None:
        while True:
            job = await self._writes.get()
            try:
                ok = await self._run(job.ops) if job.ops else True
                if job.done is not None:
                    job.done(ok)
                if ok and self._unwritten and not self._failing:
                    await self._write_kept()
            finally:
                self._writes.task_done()

    async def _write_kept(self) -> None:
        """The values kept during an outage, now (each queued batch is newer than them)."""
        kept = [("set", key, value) for key, value in self._unwritten.items()]
        self._unwritten.clear()
        if await self._run(kept):
            log.info("handoff Redis: %d keys kept during the outage written", len(kept))

    async def _run(self, ops: list[tuple[str, str, str]]) -> bool:
        for op, key, _ in ops:  # this batch is newer than anything kept for its keys
            if op == "set":
                self._unwritten.pop(key, None)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for op, key, value in ops:
                    if op == "set":
                        pipe.set(key, value, ex=self.ttl_s)
                    elif op == "publish":
                        pipe.publish(key, value)
                    elif op == "del_if":
                        pipe.eval(_DEL_IF, 1, key, value)
                await asyncio.wait_for(pipe.execute(), self.timeout_s)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("write", exc)
            self._keep(ops)
            return False
        self._recovered()
        return True

    def _keep(self, ops: list[tuple[str, str, str]]) -> None:
        for op, key, value in ops:
            if op == "set":
                self._unwritten[key] = value
                self._unwritten.move_to_end(key)
        while len(self._unwritten) > UNWRITTEN_MAX:
            self._unwritten.popitem(last=False)
            self.metrics.writes_dropped += 1

    # ---- reads ----------------------------------------------------------------------
    async def _get(self, key: str) -> str | None:
        try:
            value = await asyncio.wait_for(self.redis.get(key), self.timeout_s)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("read", exc)
            return None
        self._recovered()
        return value if isinstance(value, str) else None

    async def load_pop(self, handoff_id: str) -> dict[str, Any] | None:
        raw = await self._get(pop_key(handoff_id))
        if raw is None:
            return None
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            log.warning("screen pop %s in Redis is not JSON: ignored", handoff_id)
            return None
        return data if isinstance(data, dict) else None

    async def handoff_for_channel(self, channel_id: str) -> str | None:
        return await self._get(channel_key(channel_id))

    async def current_of(self, agent: str) -> str | None:
        return await self._get(current_key(agent))

    # ---- other processes' updates -----------------------------------------------------
    async def listen(self, on_message: Callable[[str, dict[str, Any]], Awaitable[None]]) -> None:
        """Forward every message of the agents' channels to ``on_message(agent, envelope)``,
        reconnecting after Redis goes away; runs until cancelled."""
        attempt = 0
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(AGENT_PATTERN)
                attempt = 0
                if self._failing or self._unwritten:  # Redis is back: write what was kept
                    self._recovered()
                    self.write(Write([]))
                while True:
                    msg = await pubsub.get_message(timeout=5.0)
                    if msg is None:
                        continue
                    agent = str(msg.get("channel", ""))[len(PREFIX + "agent:"):]
                    try:
                        envelope = json.loads(msg.get("data") or "")
                    except (TypeError, ValueError, RecursionError):
                        self.metrics.malformed_messages += 1
                        continue
                    if isinstance(envelope, dict) and agent:
                        try:
                            await on_message(agent, envelope)
                        except Exception:  # one bad message never ends the listener
                            self.metrics.malformed_messages += 1
                            log.exception("pop message for %s could not be handled", agent[:32])
            except (RedisError, OSError) as exc:
                self._failed("subscribe", exc)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
            await asyncio.sleep(RELISTEN_S[min(attempt, len(RELISTEN_S) - 1)])
            attempt += 1

    # ---- failures -----------------------------------------------------------------------
    def _failed(self, op: str, exc: BaseException) -> None:
        self.metrics.redis_failures += 1
        if not self._failing:
            log.warning("handoff Redis %s failed (%s: %s); pops stay in memory until it is "
                        "back", op, type(exc).__name__, exc)
        self._failing = True

    def _recovered(self) -> None:
        if self._failing:
            log.info("handoff Redis is answering again")
        self._failing = False
