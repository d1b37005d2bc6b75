"""Which Asterisk boxes this worker serves: one lease per box in Redis.

In a cluster (``failover.box`` set) a worker drives a box's Stasis application only while it
holds the box's lease (``ivr:box:<name>:owner``, renewed every ``renew_s``, lapsing after
``lease_s``), so two workers never drive one box's calls at once.

- **Its own box**: a worker takes its box's lease whenever it is free (at start, and a
  replacement started after a crash).
- **Taking over**: ``failover.standby`` lists other workers' boxes. When one's lease lapses (its
  worker died, or its host is gone) and no worker of its own is waiting for it, the first
  standby to take the lease connects to that box. Its callers are resumed from Redis at their
  question, with an apology, as a restarted worker resumes its own
  (``CallManager.adopt_orphans``). A box the standby has never seen served is left to its
  own worker for ``START_GRACE_S``: a free lease then may only mean that worker is starting.
- **Giving back**: the box's own worker, back up, finds the lease held and says so
  (``ivr:box:<name>:home``). The holder lets go at the first moment it has no call on that
  box, so no caller is moved twice.
- **A lease lost**: a worker that finds its lease held by another (it was paused past
  ``lease_s``) lets go at once. Its calls are handed back in Redis for the holder to resume.
- **Redis away**: nobody can tell who is alive, so every worker keeps what it serves and
  takes nothing new.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable
from typing import Protocol, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ivr.calls.factory import CallFactory
from ivr.calls.manager import CallManager
from ivr.core.config import Settings
from ivr.telephony.ari.client import AriClient

log = logging.getLogger("ivr.calls.failover")

PREFIX = "ivr:box:"
TIMEOUT_S = 0.5  # one Redis command; slower counts as Redis away
# a standby leaves a box it has never seen served this long to its own worker, which may be
# starting (a cluster's workers start together, and load their models at their own pace)
START_GRACE_S = 30.0
T = TypeVar("T")


class _Away:
    """What a lease command gives when Redis did not answer."""


AWAY = _Away()

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0"""


def worker_id() -> str:
    """This worker in the leases: host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


class BoxLeases:
    """The leases in Redis. Every call returns None when Redis cannot answer in time."""

    def __init__(self, redis: Redis, *, lease_s: float) -> None:
        self.redis = redis
        self.lease_ms = int(lease_s * 1000)

    @staticmethod
    def owner_key(box: str) -> str:
        return f"{PREFIX}{box}:owner"

    @staticmethod
    def home_key(box: str) -> str:
        return f"{PREFIX}{box}:home"

    async def _ask(self, coro: Awaitable[T]) -> T | _Away:
        try:
            return await asyncio.wait_for(coro, TIMEOUT_S)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("box leases: Redis did not answer (%s)", type(exc).__name__)
            return AWAY

    async def take(self, box: str, me: str) -> bool | None:
        """True: ours now; False: held by a worker; None: Redis away."""
        got = await self._ask(self.redis.set(self.owner_key(box), me, nx=True, px=self.lease_ms))
        return None if got is AWAY else bool(got)

    async def renew(self, box: str, me: str) -> bool | None:
        """True: still ours; False: another worker's, or lapsed; None: Redis away."""
        done = await self._ask(self.redis.eval(_RENEW, 1, self.owner_key(box), me,
                                               self.lease_ms))
        return None if done is AWAY else bool(done)

    async def release(self, box: str, me: str) -> None:
        await self._ask(self.redis.eval(_RELEASE, 1, self.owner_key(box), me))

    async def holder(self, box: str) -> str | None:
        value = await self._ask(self.redis.get(self.owner_key(box)))
        if isinstance(value, bytes):
            return value.decode()
        return value if isinstance(value, str) else None

    async def want_home(self, box: str, me: str) -> None:
        """This box's own worker is up and waiting for it (lapses with the worker)."""
        await self._ask(self.redis.set(self.home_key(box), me, px=self.lease_ms))

    async def home_waiting(self, box: str) -> bool | None:
        n = await self._ask(self.redis.exists(self.home_key(box)))
        return None if n is AWAY else bool(n)


class ServedBox(Protocol):
    """One box as the keeper sees it."""

    name: str
    home: bool  # this worker's own box

    @property
    def calls(self) -> int: ...

    async def start(self) -> None:
        """Connect and serve: callers parked in its application are resumed."""

    async def stop(self, *, hand_back: bool) -> None:
        """Disconnect. ``hand_back``: every call left in Redis for the next holder; else
        ended as on a server stop (the general queue)."""

    async def close(self) -> None:
        """The worker stops: what the box holds open is closed."""


class BoxKeeper:
    """Serves the boxes whose lease this worker holds; see the module's docstring."""

    def __init__(self, leases: BoxLeases, me: str, boxes: list[ServedBox], *,
                 renew_s: float, lease_s: float) -> None:
        self.leases = leases
        self.me = me
        self.boxes = boxes
        self.renew_s = renew_s
        self.lease_s = lease_s
        self.served: set[str] = set()
        self.took_over = 0  # other workers' boxes taken when their lease lapsed
        self.gave_back = 0  # boxes given back to their own worker, idle
        self.lost = 0  # leases found taken by another worker (calls handed back)
        self.looked = asyncio.Event()  # the first round is done (what it holds is known)
        self._started = time.monotonic()
        self._seen: set[str] = set()  # other workers' boxes seen served

    def box(self, name: str) -> ServedBox:
        return next(b for b in self.boxes if b.name == name)

    @property
    def standing_by(self) -> bool:
        """Up and looking, without its own box (another worker serves it until it is idle)."""
        return self.looked.is_set() and not any(b.home and b.name in self.served
                                                for b in self.boxes)

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # never let the keeper die: a box it holds goes unrenewed
                log.exception("box keeper round failed")
            self.looked.set()
            await asyncio.sleep(self.renew_s)

    async def tick(self) -> None:
        for box in self.boxes:
            if box.name in self.served:
                await self._keep(box)
            elif box.home:
                if await self.leases.take(box.name, self.me):
                    await self._serve(box, "its own")
                else:
                    await self.leases.want_home(box.name, self.me)
            elif await self.leases.home_waiting(box.name) is False:
                await self._stand_by(box)

    async def _stand_by(self, box: ServedBox) -> None:
        """Another worker's box, not served by this one: taken when its lease lapsed."""
        if box.name not in self._seen and time.monotonic() - self._started < START_GRACE_S:
            # never seen served: its worker may be starting still
            if await self.leases.holder(box.name) is not None:
                self._seen.add(box.name)
            return
        got = await self.leases.take(box.name, self.me)
        if got:
            self.took_over += 1
            await self._serve(box, "taken over (its worker is gone)")
        elif got is False:
            self._seen.add(box.name)

    async def _keep(self, box: ServedBox) -> None:
        held = await self.leases.renew(box.name, self.me)
        if held is False and await self.leases.take(box.name, self.me):
            log.warning("box %s: lease renewed late (lapsed, nobody had taken it)", box.name)
            held = True
        if held is False:
            self.lost += 1
            log.warning("box %s: lease taken by %s: letting go, %d calls handed back",
                        box.name, await self.leases.holder(box.name), box.calls)
            await self._let_go(box, hand_back=True)
        elif held and not box.home and box.calls == 0 and await self.leases.home_waiting(
                box.name):
            await self._let_go(box, hand_back=False)
            await self.leases.release(box.name, self.me)
            self.gave_back += 1
            log.info("box %s given back to its own worker (no call on it)", box.name)

    async def _serve(self, box: ServedBox, why: str) -> None:
        log.log(logging.INFO if box.home else logging.WARNING, "box %s: serving it, %s",
                box.name, why)
        try:
            await box.start()
        except Exception:
            log.exception("box %s did not start: lease given up", box.name)
            await self.leases.release(box.name, self.me)
            return
        self.served.add(box.name)

    async def _let_go(self, box: ServedBox, *, hand_back: bool) -> None:
        self.served.discard(box.name)
        await box.stop(hand_back=hand_back)

    async def close(self) -> None:
        """A stopping worker: its calls go to the general queue (as without leases) and its
        leases are released at once, for a standby to take its box without waiting."""
        for box in self.boxes:
            if box.name in self.served:
                with contextlib.suppress(Exception):
                    await self._let_go(box, hand_back=False)
                await self.leases.release(box.name, self.me)
            await box.close()


class AriBox:
    """A box served over ARI by its call manager: its events websocket is open while the
    lease is held."""

    def __init__(self, name: str, manager: CallManager, *, home: bool) -> None:
        self.name = name
        self.home = home
        self.manager = manager
        self._events: asyncio.Task[None] | None = None

    @property
    def calls(self) -> int:
        return self.manager.active

    async def start(self) -> None:
        m = self.manager
        self._events = asyncio.create_task(m.ari.run(m.on_event, m.on_connection),
                                           name=f"ari-events-{self.name}")

    async def stop(self, *, hand_back: bool) -> None:
        task, self._events = self._events, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.manager.ari.connected.clear()
        if hand_back:
            n = await self.manager.hand_back()
            log.warning("box %s: %d calls handed back", self.name, n)
        else:
            await self.manager.close()

    async def close(self) -> None:
        if not self.home:  # the worker's own client is closed with the rest of its calls
            await self.manager.ari.close()


def box_keeper(settings: Settings, redis: Redis, home: CallManager,
               factory: CallFactory) -> BoxKeeper:
    """The keeper of ``failover``'s boxes: this worker's own, served by ``home``, and each
    standby box with a call manager of its own on the same call assembly."""
    f = settings.failover
    boxes: list[ServedBox] = [AriBox(f.box, home, home=True)]
    for peer in f.standby:
        a = settings.asterisk.model_copy(update={"ari_url": peer.ari_url,
                                                 "sounds_subdir": peer.sounds_subdir})
        manager = CallManager(AriClient(a), factory, sounds_subdir=peer.sounds_subdir,
                              outage_s=a.ari_outage_s, capacity=settings.calls.capacity)
        boxes.append(AriBox(peer.name, manager, home=False))
    return BoxKeeper(BoxLeases(redis, lease_s=f.lease_s), worker_id(), boxes,
                     renew_s=f.renew_s, lease_s=f.lease_s)
