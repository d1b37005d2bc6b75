"""The verification lockout: how many wrong PINs / ID tails one card or gas account may take,
across calls, before self-service verification of it is refused for a while.

Policy (``LockPolicy``, from ``dialog.verify_max_failures``, ``verify_failure_window_h`` and
``verify_lock_h``): the ``max_failures``-th failure within ``window`` of the first one locks the
number for ``lock_for``. While locked, ``verify.*`` refuses without checking the secret (a
locked number is no oracle) and the caller goes to an agent. A success before the lock forgets
the failures; a lock that has run out starts the count afresh. Nothing in a call (the main menu,
hanging up, calling again) resets the count: it lives in PostgreSQL (``verification_locks``).

Unknown numbers are counted like known ones, so a lock says nothing about whether a number
exists. Two calls guessing the same number at the same moment may each get their guess in
before the other's failure is counted: at most one extra guess per concurrent call.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.dialects.postgresql import insert

from dialog.backends._pg import Clock, PgAdapter
from dialog.backends.base import VERIFY_KINDS, LockState, VerifyKind
from dialog.backends.tables import VerificationLockRow
from ivr.core.config import DialogSettings
from ivr.core.storage.db import SessionFactory


@dataclass(frozen=True, slots=True)
class LockPolicy:
    max_failures: int = 5
    window: timedelta = timedelta(hours=24)
    lock_for: timedelta = timedelta(hours=24)

    @classmethod
    def from_settings(cls, settings: DialogSettings) -> LockPolicy:
        return cls(max_failures=settings.verify_max_failures,
                   window=timedelta(hours=settings.verify_failure_window_h),
                   lock_for=timedelta(hours=settings.verify_lock_h))


_SEPARATORS = re.compile(r"[\s\-]")


def lock_key(kind: VerifyKind, number: str) -> str:
    """The stored key of a card or account number: SHA-256 (hex) of ``kind:number``, the number
    without spaces or dashes.

    A plain hash, not an HMAC with a per-install secret, and that is enough here: the numbers
    are short and partly predictable, so the hash only keeps them out of this table (its rows,
    exports and backups hold no number) and is not meant to resist a brute-force search. Anyone
    who can read this table can read ``fuel_cards`` and ``gas_accounts`` in the same database,
    which hold the numbers in full, so a secret key would protect nothing more, and would have
    to be kept and rotated without ever losing the count.
    """
    if kind not in VERIFY_KINDS:
        raise ValueError(f"unknown verification kind {kind!r}")
    normalised = _SEPARATORS.sub("", number)
    return hashlib.sha256(f"{kind}:{normalised}".encode()).hexdigest()


class PgVerificationLocks(PgAdapter):
    """``VerificationLocks`` on the ``verification_locks`` table; ``now``: the clock."""

    def __init__(self, sessions: SessionFactory, *, policy: LockPolicy | None = None,
                 now: Clock | None = None) -> None:
        super().__init__(sessions, now=now)
        self.policy = policy or LockPolicy()

    def _state(self, row: VerificationLockRow | None, now: datetime) -> LockState:
        if row is None:
            return LockState(locked=False)
        if row.locked_until is not None:
            if now < row.locked_until:
                return LockState(True, row.failures, row.locked_until)
            return LockState(locked=False)  # the lock ran out: a fresh count
        if row.first_failure_at is None or now - row.first_failure_at >= self.policy.window:
            return LockState(locked=False)
        return LockState(False, row.failures)

    async def locked(self, kind: VerifyKind, key: str) -> LockState:
        async with self._tx("verify.locked") as s:
            row = await s.get(VerificationLockRow, (kind, lock_key(kind, key)))
            return self._state(row, self._now())

    async def failed(self, kind: VerifyKind, key: str) -> LockState:
        digest = lock_key(kind, key)
        async with self._tx("verify.failed") as s:
            await s.execute(insert(VerificationLockRow)
                            .values(kind=kind, key_hash=digest, failures=0)
                            .on_conflict_do_nothing())
            row = (await s.execute(
                select(VerificationLockRow)
                .where(VerificationLockRow.kind == kind, VerificationLockRow.key_hash == digest)
                .with_for_update()
            )).scalar_one()
            now = self._now()
            state = self._state(row, now)
            if state.locked:
                return state  # not counted again: a lock is never lengthened by guessing
            if state.failures == 0:  # no row, an old window, or a lock that ran out
                row.failures, row.first_failure_at, row.locked_until = 0, now, None
            row.failures += 1
            row.updated_at = now
            if row.failures >= self.policy.max_failures:
                row.locked_until = now + self.policy.lock_for
            return LockState(row.locked_until is not None, row.failures, row.locked_until)

    async def succeeded(self, kind: VerifyKind, key: str) -> None:
        now = self._now()
        async with self._tx("verify.succeeded") as s:
            await s.execute(delete(VerificationLockRow).where(
                VerificationLockRow.kind == kind,
                VerificationLockRow.key_hash == lock_key(kind, key),
                or_(VerificationLockRow.locked_until.is_(None),
                    VerificationLockRow.locked_until <= now),
            ))
