"""A month of synthetic inbound calls for the analytics (``ivr analytics seed``, ``ivr bench
analytics``, the analytics page's test): rows of the ``calls`` table with the figures a real
call's end writes (``ivr.calls.figures``), never a phone number.

The mix is a hotline's, deterministic for a seed: more calls in the day than at night
(``HOURLY``), lines 55 % oil, 40 % gas, 5 % general; 70 % of callers reach a bot (the catalog's
bots, a few far more asked than others), of whom most are served; the rest ask for an agent,
fail twice, or hang up at a menu or a bot's question; a third of turns are keys; recogniser
confidence mostly high; queue waits exponential, one in eight abandoned. Seeded rows have
``channel_id`` ``analytics-seed-N`` (``clear_seeded`` removes them) and end on the day before
``end`` so they never mix with today's real calls.
"""

from __future__ import annotations

import random
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert

from dialog.catalog import Catalog
from ivr.core.chinatime import CHINA, china_today
from ivr.core.lines import queue_for
from ivr.core.storage.db import SessionFactory
from ivr.core.storage.models import Call

PREFIX = "analytics-seed-"
CHUNK = 5000
# share of a day's calls per China hour (a hotline: quiet at night, peaks at 10 and 15)
HOURLY = (1, 1, 1, 1, 1, 2, 4, 8, 14, 18, 20, 18, 12, 12, 16, 19, 17, 14, 10, 9, 8, 6, 4, 2)
LINES = (("oil", 0.55), ("gas", 0.40), ("general", 0.05))
# what callers say that no bot catches (grouped by meaning on the page): a few topics, each in
# several wordings
UNCAUGHT = (
    ("加油站能洗车吗", "你们加油站有没有洗车服务", "哪个加油站可以洗车"),
    ("你们招不招加油员", "加油站招聘怎么报名", "我想去加油站工作"),
    ("便利店几点开门", "加油站便利店卖不卖咖啡", "便利店能用加油卡买东西吗"),
    ("电动车在哪充电", "你们有没有充电桩", "加油站能给电车充电吗"),
)
REASONS = (("caller_request", 0.55), ("repeated_failures", 0.2), ("backend_refused", 0.1),
           ("verification_failed", 0.1), ("turn_limit", 0.05))


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([k for k, _ in weighted], [w for _, w in weighted])[0]


def synthetic_calls(catalog: Catalog, *, calls: int, days: int, end: date,
                    seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    bots: dict[str, list[str]] = {}
    for b in catalog.bots.values():
        bots.setdefault(b.line, []).append(b.id)
    slots = {b.id: [n for n in b.slots] or ["confirm"] for b in catalog.bots.values()}
    first = end - timedelta(days=days)
    rows = []
    for n in range(calls):
        day = first + timedelta(days=rng.randrange(days))
        hour = rng.choices(range(24), HOURLY)[0]
        start = datetime(day.year, day.month, day.day, hour, rng.randrange(60),
                         rng.randrange(60), tzinfo=CHINA)
        line = _pick(rng, LINES)
        pool = bots.get(line) or [b for ids in bots.values() for b in ids]
        bot = pool[min(int(rng.expovariate(0.35)), len(pool) - 1)] if rng.random() < 0.7 else None
        where = rng.choice(("route", "line_menu"))
        roll = rng.random()
        if bot is not None and roll < 0.72:
            outcome, exit_point = "completed", bot
        elif roll < 0.9:
            outcome, exit_point = "transferred", bot or where
        else:
            outcome = "caller_hangup"
            exit_point = f"{bot}.{rng.choice(slots[bot])}" if bot else where
        turns = rng.randint(2, 9)
        keys = sum(rng.random() < 0.35 for _ in range(turns))
        no_match = sum(rng.random() < 0.08 for _ in range(turns))
        clarify = sum(rng.random() < 0.04 for _ in range(turns))
        silent = sum(rng.random() < 0.03 for _ in range(turns))
        states: dict[str, dict[str, int]] = {"route": {"turns": 1}}
        if bot:
            states[bot] = {"turns": max(1, turns - 1)}
        target = states[bot] if bot else states["route"]
        target.update(no_match=no_match, clarify=clarify, no_input=silent)
        in_ivr = rng.uniform(15, 50) * (1 + turns / 4)
        path: list[dict[str, Any]] = []
        if no_match and rng.random() < 0.2:  # the router's own record of what it missed
            topic = rng.choice(UNCAUGHT)
            path = [{"t": 3.0, "step": "intent",
                     "detail": {"text": rng.choice(topic), "decision": "no_match",
                                "intent": None, "score": 0.0, "layer": None}},
                    {"t": 3.0, "step": "no_match", "detail": {"why": "no_match", "count": 1}}]
        queued = outcome == "transferred"
        abandoned = queued and rng.random() < 0.125
        rows.append({
            "id": uuid.UUID(int=rng.getrandbits(128), version=4),
            "channel_id": f"{PREFIX}{n}", "transport": "ari", "direction": "inbound",
            "dialed_number": "956100", "started_at": start, "answered_at": start,
            "ended_at": start + timedelta(seconds=in_ivr), "outcome": outcome,
            "queue": queue_for(line) if queued else None, "path": path,
            "line": line, "bot": bot,
            "reason": _pick(rng, REASONS) if queued else None, "exit_point": exit_point,
            "turns": turns, "speech_turns": turns - keys - silent, "key_turns": keys,
            "no_input": silent, "no_match": no_match, "clarify": clarify,
            "asr_confidence": round(min(1.0, max(0.05, rng.betavariate(6, 1.6))), 3)
            if turns - keys - silent > 0 else None,
            "states": states,
            "queue_result": ("abandoned" if abandoned else "answered") if queued else None,
            "queue_wait_s": round(rng.expovariate(1 / 40), 1) if queued else None,
        })
    return rows


async def seed_month(sessions: SessionFactory, catalog: Catalog, *, calls: int = 50_000,
                     days: int = 30, end: date | None = None, seed: int = 0) -> int:
    """Insert ``calls`` synthetic calls over the ``days`` China days before ``end`` (default
    today): the day range is ``[end - days, end)``."""
    end = end or china_today()
    rows = synthetic_calls(catalog, calls=calls, days=days, end=end, seed=seed)
    for i in range(0, len(rows), CHUNK):
        async with sessions() as s, s.begin():
            await s.execute(insert(Call), rows[i:i + CHUNK])
    return len(rows)


async def clear_seeded(sessions: SessionFactory) -> int:
    async with sessions() as s, s.begin():
        result = await s.execute(delete(Call).where(Call.channel_id.like(f"{PREFIX}%")))
    return int(getattr(result, "rowcount", 0) or 0)
