"""The campaign dialer: a scheduler loop over the running campaigns.

Each tick, per running campaign inside its calling window, it claims due contacts
(campaigns.repo.claim_due: ``FOR UPDATE SKIP LOCKED``, attempt row committed before the dial),
paced by ``calls_per_second`` (a token bucket on the injected clock) and bounded by
``max_channels`` calls in progress; the claim itself holds both caps over every dialer of the
campaign (campaigns.repo._room), so N dialers together stay within them. Every claimed dial
runs as an owned task that asks the :class:`Originator` to place the call and run the survey,
then records the outcome
(campaigns.repo.finish_attempt: retry delay per outcome, max attempts). Pausing or stopping a
campaign stops new claims at the next tick; calls in progress finish. On start and every
``recover_every_s`` it fails attempts left ``dialing`` by a dead dialer (cause ``lost``).

Several dialers (processes or tasks) can run on one database; the claims keep them apart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

from campaigns import repo
from campaigns.phones import masked
from campaigns.repo import Claim
from campaigns.tables import Campaign
from ivr.core.storage.db import SessionFactory

log = logging.getLogger("campaigns.dialer")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class DialResult:
    """What became of one dial. ``outcome``: answered|busy|no_answer|failed|machine, or what
    the network's early media said: vacant|suspended|unreachable|busy (``campaigns.carrier``);
    ``contact_status`` for an answered call: completed|refused|dnc|pending (call-back)."""

    outcome: str
    amd_status: str | None = None
    cause: str | None = None
    channel_id: str | None = None
    contact_status: str | None = None
    retry_at: datetime | None = None


class Originator(Protocol):
    async def dial(self, claim: Claim, campaign: Campaign) -> DialResult:
        """Place the call, run the survey when answered, return when the call has ended."""


@dataclass
class _Pace:
    tokens: float = 0.0
    last: datetime | None = None
    active: set[asyncio.Task[None]] = field(default_factory=set)


class Dialer:
    def __init__(self, sessions: SessionFactory, originator: Originator, *,
                 clock: Clock = utc_now, tick_s: float = 0.05,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 stale_after: timedelta = timedelta(minutes=10),
                 recover_every_s: float = 60.0, name: str = "dialer") -> None:
        self.sessions = sessions
        self.originator = originator
        self.clock = clock
        self.tick_s = tick_s
        self.sleep = sleep
        self.stale_after = stale_after
        self.recover_every_s = recover_every_s
        self.name = name
        self.dials = 0
        self._pace: dict[int, _Pace] = {}
        self._last_recover: datetime | None = None

    @property
    def in_progress(self) -> int:
        return sum(len(p.active) for p in self._pace.values())

    async def run(self) -> None:
        """Tick until cancelled; on cancellation the calls in progress are cancelled too."""
        try:
            while True:
                try:
                    await self.tick()
                except (SQLAlchemyError, OSError) as exc:  # database away: try again later
                    log.warning("%s: tick failed: %s: %s", self.name, type(exc).__name__, exc)
                    await self.sleep(1.0)
                await self.sleep(self.tick_s)
        finally:
            await self.shutdown()

    async def shutdown(self) -> None:
        tasks = [t for p in self._pace.values() for t in p.active]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def drain(self) -> None:
        """Wait for the calls in progress (tests, graceful stop)."""
        while tasks := [t for p in self._pace.values() for t in p.active]:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def tick(self) -> int:
        """One scheduling round; returns the number of dials started."""
        now = self.clock()
        if (self._last_recover is None
                or (now - self._last_recover).total_seconds() >= self.recover_every_s):
            self._last_recover = now
            lost = await repo.recover_stale(self.sessions, now, older_than=self.stale_after)
            if lost:
                log.warning("%s: %d attempts left open by a dead dialer settled (cause lost)",
                            self.name, len(lost))
        started = 0
        for campaign in await repo.running_campaigns(self.sessions):
            started += await self._tick_campaign(campaign, now)
        return started

    async def _tick_campaign(self, campaign: Campaign, now: datetime) -> int:
        pace = self._pace.setdefault(campaign.id, _Pace())
        burst = max(1.0, campaign.calls_per_second)
        if pace.last is None:
            pace.tokens = burst
        else:
            elapsed = max(0.0, (now - pace.last).total_seconds())
            pace.tokens = min(burst, pace.tokens + elapsed * campaign.calls_per_second)
        pace.last = now
        room = min(int(pace.tokens), campaign.max_channels - len(pace.active))
        if room <= 0:
            return 0
        claims = await repo.claim_due(self.sessions, campaign.id, room, now)
        if not claims:
            if not pace.active:
                await repo.settle_finished(self.sessions, campaign.id)
            return 0
        pace.tokens -= len(claims)
        for claim in claims:
            task = asyncio.create_task(self._call(claim, campaign),
                                       name=f"dial-{claim.attempt_id}")
            pace.active.add(task)
            task.add_done_callback(pace.active.discard)
        self.dials += len(claims)
        return len(claims)

    async def _call(self, claim: Claim, campaign: Campaign) -> None:
        try:
            result = await self.originator.dial(claim, campaign)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one failed dial must not stop the dialer
            log.exception("dial of attempt %s (%s) failed", claim.attempt_id, masked(claim.phone))
            result = DialResult("failed", cause=type(exc).__name__[:64])
        await repo.finish_attempt(self.sessions, claim.attempt_id, result.outcome, self.clock(),
                                  amd_status=result.amd_status, cause=result.cause,
                                  channel_id=result.channel_id,
                                  contact_status=result.contact_status,
                                  retry_at=result.retry_at)
