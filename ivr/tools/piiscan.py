"""The PII scan (``ivr privacy scan``, and after the end-to-end tests in CI): looks for personal
numbers stored in clear where the project promises they are masked.

Decides what counts as a finding:

- **Where it looks**: every table of the database (each row as JSON, column by column), every
  Redis key and value, and the given log files.
- **What it looks for**: a card number (16 to 19 digits, alone or in groups of digits split by
  one space or ``-``), a mobile number (11 digits from ``13``-``19``), an ID number (17 digits and
  a check character), and any of the ``known`` secrets (e.g. the demo cards' PINs and ID tails)
  standing alone. A number only counts standing alone: not inside a longer run of letters and
  digits (hashes, ids), not as the decimals of a time.
- **The register**: the columns that hold a phone number in full on purpose (the number to dial
  or call back, the caller of a call record: what ``ivr privacy forget`` finds and removes) are
  exempt from the phone check only. The demo business system's tables stand for the company's
  own systems of record (cards, accounts, work orders), and the bot versions are configuration
  (their test conversations use the demo cards on purpose): neither is scanned.

Findings carry where and what, with the number itself masked: the report never repeats it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.core.privacy import mask_number

_EDGE_BEFORE = r"(?<![0-9A-Za-z.\-])"
_EDGE_AFTER = r"(?![0-9A-Za-z\-])"
PATTERNS = {
    "card": re.compile(_EDGE_BEFORE + r"\d(?:[ \-]?\d){15,18}" + _EDGE_AFTER),
    "phone": re.compile(_EDGE_BEFORE + r"1[3-9]\d{9}" + _EDGE_AFTER),
    "id": re.compile(_EDGE_BEFORE + r"\d{17}[\dXx]" + _EDGE_AFTER),
}

# columns that keep a phone number in full on purpose (ivr.app.forget removes them)
PHONE_REGISTER = frozenset({
    ("calls", "caller_number"), ("calls", "dialed_number"),
    ("tickets", "contact"), ("callback_tasks", "caller_number"),
    ("campaign_contacts", "phone"), ("do_not_call", "phone"), ("number_flags", "phone"),
    ("consent_events", "phone"),
})
# the demo business system: stands for the company's systems of record
SYSTEM_OF_RECORD = frozenset({
    "fuel_cards", "fuel_transactions", "card_events", "invoices", "gas_accounts",
    "gas_recharges", "gas_meters", "work_orders",
})
# configuration written by operations staff, not by or about callers
CONFIGURATION = frozenset({"bot_versions", "bot_publications", "alembic_version"})


@dataclass(frozen=True)
class Finding:
    where: str  # "table calls.path row 12", "redis ivr:pop:...", "log ivr.log:34"
    kind: str  # card | phone | id | known
    sample: str  # masked

    def __str__(self) -> str:
        return f"{self.kind:5} {self.sample:24} in {self.where}"


def summary(found: list[Finding], limit: int = 40) -> str:
    """Findings counted by place and kind, then the first ``limit`` of them."""
    counts: dict[tuple[str, str], int] = {}
    for f in found:
        place = f.where.split(" row ")[0].rsplit(":", 1)[0]
        counts[place, f.kind] = counts.get((place, f.kind), 0) + 1
    lines = [f"{n:5} {kind:5} {place}" for (place, kind), n in sorted(counts.items())]
    return "\n".join([*lines, "first findings:", *map(str, found[:limit])])


def find_in_text(value: str, known: Iterable[str] = (), phone: bool = True
                 ) -> Iterator[tuple[str, str]]:
    """``(kind, masked)`` for every personal number standing alone in ``value``."""
    for kind, pattern in PATTERNS.items():
        if kind == "phone" and not phone:
            continue
        for m in pattern.finditer(value):
            yield kind, mask_number(re.sub(r"\D", "", m.group()))
    for secret in known:
        if re.search(_EDGE_BEFORE + re.escape(secret) + _EDGE_AFTER, value):
            yield "known", secret[:1] + "*" * (len(secret) - 1)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


async def scan_database(engine: AsyncEngine, known: Iterable[str] = ()) -> list[Finding]:
    known = tuple(known)
    out: list[Finding] = []
    async with engine.connect() as conn:
        tables = (await conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "ORDER BY tablename"))).scalars().all()
        for table in tables:
            if table in SYSTEM_OF_RECORD or table in CONFIGURATION:
                continue
            result = await conn.stream(text(f'SELECT to_jsonb(t) FROM "{table}" t'))
            n = 0
            async for (row,) in result:
                n += 1
                for column, value in (row or {}).items():
                    if value is None:
                        continue
                    phone = (table, column) not in PHONE_REGISTER
                    for kind, sample in find_in_text(_text(value), known, phone):
                        out.append(Finding(f"table {table}.{column} row {n}", kind, sample))
    return out


async def scan_redis(client: aioredis.Redis, known: Iterable[str] = ()) -> list[Finding]:
    known = tuple(known)
    out: list[Finding] = []
    async for raw_key in client.scan_iter(count=500):
        key = raw_key.decode(errors="replace") if isinstance(raw_key, bytes) else str(raw_key)
        kind = await client.type(raw_key)
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        values: list[Any] = [key]
        if kind == "string":
            values.append(await client.get(raw_key))
        elif kind == "hash":
            values += list((await client.hgetall(raw_key)).items())
        elif kind == "list":
            values += await client.lrange(raw_key, 0, -1)
        elif kind == "set":
            values += list(await client.smembers(raw_key))
        elif kind == "zset":
            values += await client.zrange(raw_key, 0, -1)
        elif kind == "stream":
            values += [fields for _id, fields in (await client.xrange(raw_key) or [])]
        for value in values:
            blob = repr(value) if not isinstance(value, str | bytes) else (
                value.decode(errors="replace") if isinstance(value, bytes) else value)
            for what, sample in find_in_text(blob, known):
                out.append(Finding(f"redis {key[:60]}", what, sample))
    return out


def scan_files(paths: Iterable[Path], known: Iterable[str] = ()) -> list[Finding]:
    known = tuple(known)
    out: list[Finding] = []
    for path in paths:
        with path.open(encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                for kind, sample in find_in_text(line, known):
                    out.append(Finding(f"log {path.name}:{n}", kind, sample))
    return out
