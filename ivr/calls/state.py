"""Per-call dialog state in Redis, so a call in progress survives a server restart.

The session saves the dialog's snapshot after every turn under ``ivr:call:<channel id>`` (with
a time to live, so abandoned keys expire), and deletes it when the call leaves the IVR. After a
restart the call manager finds the channels still parked in our Stasis application and resumes
each from its snapshot. Redis is never in the caller's critical path: every operation has a
short timeout, and a failure is logged and counted, not raised.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger("ivr.calls.state")

KEY_PREFIX = "ivr:call:"
TTL_S = 2 * 3600
TIMEOUT_S = 0.5


class CallStateStore:
    def __init__(self, redis: aioredis.Redis, *, ttl_s: int = TTL_S,
                 timeout_s: float = TIMEOUT_S) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self.failures = 0

    @staticmethod
    def key(channel_id: str) -> str:
        return KEY_PREFIX + channel_id

    async def save(self, channel_id: str, snapshot: dict[str, Any]) -> bool:
        data = json.dumps(snapshot, ensure_ascii=False, default=str)
        return await self._run("save", self.redis.set(self.key(channel_id), data, ex=self.ttl_s))

    async def delete(self, channel_id: str) -> bool:
        return await self._run("delete", self.redis.delete(self.key(channel_id)))

    async def load(self, channel_id: str) -> dict[str, Any] | None:
        """The snapshot, or None when there is none, it is unreadable, or Redis is down."""
        raw: Any = None
        try:
            raw = await asyncio.wait_for(self.redis.get(self.key(channel_id)), self.timeout_s)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("load", exc)
            return None
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            log.warning("call state of %s is not JSON (%s); ignored", channel_id, exc)
            return None
        return value if isinstance(value, dict) else None

    async def _run(self, op: str, coro: Any) -> bool:
        try:
            await asyncio.wait_for(coro, self.timeout_s)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(op, exc)
            return False
        return True

    def _failed(self, op: str, exc: BaseException) -> None:
        self.failures += 1
        log.warning("call state %s failed (%s: %s); the call goes on without it", op,
                    type(exc).__name__, exc)
