"""Hybrid retrieval over the approved passages: vector kNN + keyword, fused by reciprocal rank.

- **vector**: the query's e5 embedding (``query:`` prefix) against ``kb_passages.embedding``
  by cosine distance, through the HNSW index (``hnsw.ef_search`` = ``EF_SEARCH``, iterative
  scan ``relaxed_order`` so a line filter still fills the candidate list).
- **keyword**: the query's jieba tokens OR-ed into a ``to_tsquery('simple', ...)`` over
  ``kb_passages.tsv`` (GIN index), ranked by ``ts_rank``. Only *selective* tokens are used:
  those in at most ``COMMON_SHARE`` of the passages (at least ``COMMON_MIN``); when none is,
  the rarest one present. ``TokenStats`` keeps the document frequencies (``ts_stat``), refreshed
  after an approval and every ``STATS_MAX_AGE_S``. Words every entry uses (客户, 办理) would
  otherwise rank everything alike, and at 100,000 passages make the step scan thousands.

Each list gives up to ``CANDIDATES`` passages; a passage scores ``sum(1 / (RRF_K + rank))``
over the lists it is in, normalised by the best possible (first in both lists) to [0, 1]. An
entry is represented by its best passage; the hit says why, in Chinese, for the agent:
``语义相似 0.87（第1）；关键词 挂失、加油卡（第2）``. With no embedder, search is keyword-only.
Only approved current versions have passages (see ``tables``), so nothing else is found.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import func, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from handoff.embeddings import EmbeddingPool
from handoff.knowledge.tables import KbEntryRow, KbPassageRow
from handoff.knowledge.text import tokens, tsquery_text

RRF_K = 60
CANDIDATES = 20
EF_SEARCH = 64
COMMON_SHARE = 0.2
COMMON_MIN = 10
STATS_MAX_AGE_S = 300.0


class TokenStats:
    """Document frequency of each keyword token over the searchable passages (cached)."""

    def __init__(self, max_age_s: float = STATS_MAX_AGE_S) -> None:
        self.max_age_s = max_age_s
        self.df: dict[str, int] = {}
        self.passages = 0
        self._at = float("-inf")
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        self._at = float("-inf")

    async def refresh_if_old(self, session: AsyncSession) -> None:
        if time.monotonic() - self._at < self.max_age_s:
            return
        async with self._lock:
            if time.monotonic() - self._at < self.max_age_s:
                return
            rows = (await session.execute(text(
                "SELECT word, ndoc FROM ts_stat('SELECT tsv FROM kb_passages')"))).all()
            self.df = {str(w): int(n) for w, n in rows}
            self.passages = int(await session.scalar(
                select(func.count()).select_from(KbPassageRow)) or 0)
            self._at = time.monotonic()

    def selective(self, words: list[str]) -> list[str]:
        present = [w for w in words if self.df.get(w, 0) > 0]
        limit = max(COMMON_MIN, COMMON_SHARE * self.passages)
        kept = [w for w in present if self.df[w] <= limit]
        return kept or sorted(present, key=lambda w: self.df[w])[:1]


@dataclass
class Hit:
    entry_id: str
    version: int
    line: str
    title: str
    passage: str
    score: float  # fused, 0..1
    why: str
    similarity: float | None = None  # cosine of the best passage (vector list)
    vector_rank: int | None = None
    keyword_rank: int | None = None
    matched: list[str] = field(default_factory=list)  # query tokens found in the passage
    tags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Cand:
    passage_id: int
    entry_id: str
    version: int
    line: str
    title: str
    passage: str
    tokens: str
    tags: list[str]
    rrf: float = 0.0
    similarity: float | None = None
    vector_rank: int | None = None
    keyword_rank: int | None = None


def _lines(line: str | None) -> list[str] | None:
    return None if not line or line == "general" else [line, "general"]


async def vector_candidates(session: AsyncSession, vector: np.ndarray, line: str | None,
                            n: int = CANDIDATES, *, exact: bool = False
                            ) -> list[tuple[Any, ...]]:
    """(passage row, title, tags, cosine) nearest first; ``exact`` skips the index."""
    if exact:
        await session.execute(text("SET LOCAL enable_indexscan = off"))
    else:
        await session.execute(text(f"SET LOCAL hnsw.ef_search = {max(EF_SEARCH, n)}"))
        await session.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
    distance = KbPassageRow.embedding.cosine_distance(vector.tolist())
    stmt = (select(KbPassageRow, KbEntryRow.title, KbEntryRow.tags, distance.label("d"))
            .join(KbEntryRow, KbEntryRow.id == KbPassageRow.row_id)
            .where(KbPassageRow.embedding.is_not(None)))
    lines = _lines(line)
    if lines:
        stmt = stmt.where(KbPassageRow.line.in_(lines))
    rows = (await session.execute(stmt.order_by(distance).limit(n))).all()
    out = [(r[0], r[1], r[2], 1.0 - float(r[3])) for r in rows]
    out.sort(key=lambda r: -r[3])  # relaxed_order may be slightly off
    return out


async def keyword_candidates(session: AsyncSession, words: list[str], line: str | None,
                             n: int = CANDIDATES) -> list[tuple[Any, ...]]:
    """(passage row, title, tags, rank) best first."""
    q = tsquery_text(words)
    if not q:
        return []
    tsq = func.to_tsquery(literal_column("'simple'::regconfig"), q)
    rank = func.ts_rank(KbPassageRow.tsv, tsq)
    stmt = (select(KbPassageRow, KbEntryRow.title, KbEntryRow.tags, rank.label("r"))
            .join(KbEntryRow, KbEntryRow.id == KbPassageRow.row_id)
            .where(KbPassageRow.tsv.op("@@")(tsq)))
    lines = _lines(line)
    if lines:
        stmt = stmt.where(KbPassageRow.line.in_(lines))
    rows = (await session.execute(stmt.order_by(rank.desc(), KbPassageRow.id).limit(n))).all()
    return [(r[0], r[1], r[2], float(r[3])) for r in rows]


async def hybrid_search(session: AsyncSession, pool: EmbeddingPool | None, query: str, *,
                        line: str | None = None, k: int = 5,
                        stats: TokenStats | None = None) -> list[Hit]:
    words = await asyncio.to_thread(tokens, query)
    if stats is not None:
        await stats.refresh_if_old(session)
        words = stats.selective(words)
    cands: dict[int, _Cand] = {}

    def cand(row: KbPassageRow, title: str, tags: list[str]) -> _Cand:
        c = cands.get(row.id)
        if c is None:
            c = cands[row.id] = _Cand(row.id, row.entry_id, row.version, row.line, title,
                                      row.text, row.tokens, list(tags or []))
        return c

    if pool is not None:
        vec = (await pool.embed([query], kind="query"))[0]
        for rank, (row, title, tags, sim) in enumerate(
                await vector_candidates(session, vec, line), 1):
            c = cand(row, title, tags)
            c.rrf += 1.0 / (RRF_K + rank)
            c.similarity, c.vector_rank = sim, rank
    for rank, (row, title, tags, _r) in enumerate(
            await keyword_candidates(session, words, line), 1):
        c = cand(row, title, tags)
        c.rrf += 1.0 / (RRF_K + rank)
        c.keyword_rank = rank
    best: dict[str, _Cand] = {}
    for c in sorted(cands.values(), key=lambda c: (-c.rrf, c.passage_id)):
        best.setdefault(c.entry_id, c)
    lists = 2 if pool is not None else 1
    top = sorted(best.values(), key=lambda c: (-c.rrf, c.passage_id))[:k]
    hits = []
    for c in top:
        have = set(c.tokens.split())
        matched = [w for w in words if w in have]
        why = []
        if c.vector_rank is not None and c.similarity is not None:
            why.append(f"语义相似 {c.similarity:.2f}（第{c.vector_rank}）")
        if c.keyword_rank is not None:
            why.append(f"关键词 {'、'.join(matched[:6]) or '-'}（第{c.keyword_rank}）")
        hits.append(Hit(c.entry_id, c.version, c.line, c.title, c.passage,
                        round(c.rrf * (RRF_K + 1) / lists, 4), "；".join(why),
                        None if c.similarity is None else round(c.similarity, 4),
                        c.vector_rank, c.keyword_rank, matched, c.tags))
    return hits
