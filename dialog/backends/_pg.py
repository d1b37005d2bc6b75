"""What the PostgreSQL demo adapters share: one transaction per operation, errors turned into
``BackendError`` (numbers masked), the clock, and reference numbers from sequences."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date, datetime, time, timedelta

from sqlalchemy import Sequence, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from dialog.backends.base import BackendError, BackendUnavailable
from dialog.backends.hashing import check_secret
from ivr.core.chinatime import CHINA
from ivr.core.privacy import mask_digits_in_text
from ivr.core.storage.db import SessionFactory

CHINA_TZ = CHINA
Clock = Callable[[], datetime]
_DB_ERRORS = (SQLAlchemyError, OSError, TimeoutError)
MAX_LIMIT = 50

BUSY_ZH = "系统暂时无法办理，请您稍后再拨，或者转人工服务。"
IDEM_REUSED_ZH = "这笔业务暂时无法办理，请转人工服务。"


def china_now() -> datetime:
    return datetime.now(CHINA_TZ)


def day_start(day: date) -> datetime:
    """00:00 China time of ``day``."""
    return datetime.combine(day, time(0), tzinfo=CHINA_TZ)


def day_range(start: date, end: date) -> tuple[datetime, datetime]:
    """``[start 00:00, end + 1 day 00:00)`` in China time: both days inclusive."""
    return day_start(start), day_start(end + timedelta(days=1))


def clamp_limit(limit: int) -> int:
    return max(1, min(int(limit), MAX_LIMIT))


def require_key(idem_key: str) -> str:
    if not idem_key or not idem_key.strip():
        raise ValueError("idem_key must not be empty")
    return idem_key


async def matches(value: str | None, stored: str | None) -> bool:
    """Hash check off the event loop (PBKDF2 takes tens of milliseconds)."""
    if not value:
        return False
    return await asyncio.to_thread(check_secret, value, stored)


class PgAdapter:
    """Base of the demo adapters: ``self._tx(op)`` gives a session in a transaction."""

    def __init__(self, sessions: SessionFactory, *, now: Clock | None = None) -> None:
        self._sessions = sessions
        self._now: Clock = now or china_now

    @asynccontextmanager
    async def _tx(self, op: str) -> AsyncIterator[AsyncSession]:
        """One transaction; a ``BackendError`` raised inside rolls it back and passes through,
        a database failure becomes ``BackendUnavailable`` (digits in the message masked)."""
        try:
            async with self._sessions() as session, session.begin():
                yield session
        except BackendError:
            raise
        except _DB_ERRORS as exc:
            first_line = (str(exc).splitlines() or [""])[0]
            raise BackendUnavailable(
                BUSY_ZH,
                detail=f"{op} failed: {type(exc).__name__}: {mask_digits_in_text(first_line)}",
            ) from exc

    async def _next_ref(
        self, session: AsyncSession, seq: Sequence, prefix: str, digits: int
    ) -> tuple[str, datetime]:
        """``prefix + yyyymmdd + digits`` (China date), and the time it was taken."""
        n = int((await session.execute(select(seq.next_value()))).scalar_one())
        now = self._now().astimezone(CHINA_TZ)
        return f"{prefix}{now:%Y%m%d}{n % 10**digits:0{digits}d}", now
