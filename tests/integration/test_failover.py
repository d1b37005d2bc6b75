"""Box leases on a real Redis (``ivr.calls.failover``): a worker's own box, a dead worker's box
taken over, given back idle, a lease lost, Redis away. The boxes here only record what the
keeper asked of them; the ARI side is driven by ``ivr drill cluster`` (tests/e2e)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

import pytest

from ivr.calls.failover import BoxKeeper, BoxLeases, ServedBox
from ivr.core.config import FailoverPeer, FailoverSettings
from ivr.core.storage.redis_server import connect_redis

LEASE_S = 0.3


@dataclass
class Box:
    name: str
    home: bool
    calls: int = 0
    did: list[str] = field(default_factory=list)

    async def start(self) -> None:
        self.did.append("start")

    async def stop(self, *, hand_back: bool) -> None:
        self.did.append("hand_back" if hand_back else "stop")

    async def close(self) -> None:
        self.did.append("close")


def keeper(redis: object, me: str, home: str, other: str) -> BoxKeeper:
    boxes: list[ServedBox] = [Box(home, True), Box(other, False)]
    return BoxKeeper(BoxLeases(redis, lease_s=LEASE_S), me, boxes,  # type: ignore[arg-type]
                     renew_s=LEASE_S / 3, lease_s=LEASE_S)


async def lapse(*alive: BoxKeeper) -> None:
    """Past one lease; the ``alive`` workers renew meanwhile."""
    for _ in range(5):
        await asyncio.sleep(LEASE_S / 3)
        for k in alive:
            await k.tick()


async def test_a_dead_workers_box_is_taken_over_then_given_back_idle(redis_url: str) -> None:
    redis = await connect_redis(redis_url)
    one, two = f"b1-{uuid.uuid4().hex[:6]}", f"b2-{uuid.uuid4().hex[:6]}"
    try:
        a, b = keeper(redis, "w1", one, two), keeper(redis, "w2", two, one)
        await a.tick()
        await b.tick()
        assert a.served == {one} and b.served == {two}  # each its own; no standby at start
        await lapse(a, b)
        assert b.served == {two} and b.took_over == 0  # w1 renews: its box is not taken
        # w1 dies (no renewal): after the lease, w2 takes its box
        await lapse(b)
        assert b.served == {one, two} and b.took_over == 1
        assert b.box(one).did == ["start"]  # type: ignore[attr-defined]
        # w1's replacement waits while a call is up on its box, gets it once idle
        a2 = keeper(redis, "w1b", one, two)
        await a2.tick()
        assert a2.served == set() and await a2.leases.holder(one) == "w2"
        a2.looked.set(), b.looked.set()  # as their run loops do after a round
        assert a2.standing_by and not b.standing_by
        b.box(one).calls = 1  # type: ignore[misc]
        await b.tick()
        assert one in b.served
        b.box(one).calls = 0  # type: ignore[misc]
        await b.tick()
        assert b.served == {two} and b.gave_back == 1
        assert b.box(one).did == ["start", "stop"]  # type: ignore[attr-defined]
        await a2.tick()
        assert a2.served == {one} and await a2.leases.holder(one) == "w1b"
        assert not a2.standing_by
        # and w2's own box is never taken by w1b while w2 renews
        await lapse(b, a2)
        assert a2.served == {one} and b.served == {two}
        await b.close()  # a stopping worker releases at once
        assert await b.leases.holder(two) is None
    finally:
        await redis.delete(*(f"ivr:box:{n}:{k}" for n in (one, two) for k in ("owner", "home")))
        await redis.aclose()


async def test_a_lease_found_taken_hands_the_calls_back(redis_url: str) -> None:
    redis = await connect_redis(redis_url)
    one, two = f"b1-{uuid.uuid4().hex[:6]}", f"b2-{uuid.uuid4().hex[:6]}"
    try:
        a = keeper(redis, "w1", one, two)
        await a.tick()
        await asyncio.sleep(LEASE_S * 1.5)  # renewed late, nobody took it: still w1's
        await a.tick()
        assert one in a.served and a.lost == 0
        await redis.set(BoxLeases.owner_key(one), "w9")  # w1 was paused past its lease
        await a.tick()
        assert one not in a.served and a.lost == 1
        assert a.box(one).did == ["start", "hand_back"]  # type: ignore[attr-defined]
    finally:
        await redis.delete(*(f"ivr:box:{n}:{k}" for n in (one, two) for k in ("owner", "home")))
        await redis.aclose()


async def test_redis_away_keeps_what_is_served_and_takes_nothing(redis_url: str,
                                                                   tmp_path: object) -> None:
    redis = await connect_redis(redis_url)
    one, two = f"b1-{uuid.uuid4().hex[:6]}", f"b2-{uuid.uuid4().hex[:6]}"
    try:
        a = keeper(redis, "w1", one, two)
        await a.tick()
        await lapse()
        gone = type(redis)(unix_socket_path=f"{tmp_path}/none.sock")
        a.leases.redis = gone
        await a.tick()
        assert a.served == {one} and a.lost == 0 and a.took_over == 0
        await gone.aclose()
    finally:
        await redis.delete(*(f"ivr:box:{n}:{k}" for n in (one, two) for k in ("owner", "home")))
        await redis.aclose()


def test_failover_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="half"):
        FailoverSettings(box="box1", lease_s=1.0, renew_s=0.8)
    with pytest.raises(ValueError, match="own name"):
        FailoverSettings(box="box1", standby=[FailoverPeer(name="box1", ari_url="http://x")])
    with pytest.raises(ValueError):
        FailoverSettings(box="box 1\n")
    assert FailoverSettings().box == ""
