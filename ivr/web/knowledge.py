"""The knowledge API of the agent desktop (知识推荐, 标注 → 审核 → 入库), and its start-up.

Served under ``/agent/api/kb`` (the desk's session cookie, or a bearer token from
``POST /api/session``). Who may call what is in ``ivr.web.policy`` (unauthenticated 401; desk
roles search and propose; ``reviewer`` and ``admin`` review; ``ops`` 403). Bodies are JSON;
errors are ``{"error": "…中文说明…"}`` with 400 (bad input), 403 (role, or approving one's own
proposal), 404 (unknown id) or 409 (state). Below, ``/api/kb`` stands for ``/agent/api/kb``.

``GET  /api/kb/whoami`` -> ``{"agent": "agent3", "role": "reviewer"}``

``GET  /api/kb/search?q=TEXT&line=oil|gas|general&k=5`` ->
``{"query": q, "line": line, "hits": [{"entry_id", "version", "line", "title", "passage",
"score", "why", "similarity", "vector_rank", "keyword_rank", "matched", "tags"}]}``

``POST /api/kb/feedback`` ``{"entry_id", "version"?, "handoff_id"?, "verdict": "useful"|"wrong",
"comment"?}`` -> 201 ``{"id": 17}``

``POST /api/kb/proposals`` ``{"entry_id"? (a correction of that entry; absent: a new entry),
"line", "title", "body", "tags"? (list or "a, b"), "note"?, "handoff_id"?}`` -> 201
``{"proposal": ENTRY}`` (status ``proposed``, not searchable until approved)

``GET  /api/kb/inbox`` (reviewer, admin) -> ``{"items": [ENTRY + {"current": ENTRY|null}]}``
(``current``: the approved version the proposal would replace, for a diff)

``POST /api/kb/proposals/{id}/approve`` ``{"reason"?}`` (reviewer, admin) -> ``{"entry": ENTRY}``
``POST /api/kb/proposals/{id}/reject`` ``{"reason"}`` (reviewer, admin; reason required)
-> ``{"entry": ENTRY}``

``GET  /api/kb/entries/{entry_id}/versions`` -> ``{"versions": [ENTRY, …]}`` (every version)

ENTRY: ``{"id", "entry_id", "version", "line", "title", "body", "tags", "status", "author",
"note", "reviewer", "reason", "source", "handoff_id", "created_at", "reviewed_at",
"retired_at"}`` (``id`` is the version's row id, the one approve/reject take).

Suggestions for a pop are pushed on the desktop websocket (``/agent/ws``) as
``{"type": "suggestions", "handoff_id", "version", "items": [{"entry_id", "version", "title",
"line", "passage", "score", "why"}]}`` and also kept in the pop (``pop.suggestions``), so a
desktop that connects late gets them with the current pop.

``setup(app)`` adds the routes and a start-up step that builds the knowledge base on the app's
database (``knowledge.embedder``), warms jieba and the model off the event loop, and attaches
the suggester to the handoff service.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from handoff.embeddings import EmbeddingError, EmbeddingPool, build_embedder
from handoff.knowledge.repository import (
    EntryDraft,
    EntryNotFound,
    EntryStateError,
    KnowledgeBase,
    KnowledgeError,
    SelfReview,
    entry_dict,
)
from handoff.knowledge.suggest import Suggester
from handoff.knowledge.tables import EMBEDDING_DIM
from handoff.knowledge.text import warm_up
from ivr.web import policy
from ivr.web.jsonapi import BadBody, read_object
from ivr.web.jsonapi import json_error as _error
from ivr.web.jsonapi import json_ok as _json
from ivr.web.keys import HANDOFF, SESSIONS, SETTINGS
from ivr.web.login import install as login_state

log = logging.getLogger("ivr.web.knowledge")

KNOWLEDGE = web.AppKey("knowledge", KnowledgeBase)
PREFIX = "/agent/api/kb"
MAX_BODY_BYTES = 64 * 1024

Handler = Callable[[web.Request, str], Awaitable[web.StreamResponse]]


def _authed() -> Callable[[Handler], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    """The caller (checked by ``ivr.web.policy``) and the knowledge base's errors as answers."""
    def wrap(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def run(request: web.Request) -> web.StreamResponse:
            if KNOWLEDGE not in request.app:
                return _error(503, "知识库未启动")
            try:
                return await handler(request, policy.principal(request).user)
            except SelfReview as exc:
                return _error(403, str(exc))
            except EntryNotFound as exc:
                return _error(404, str(exc))
            except EntryStateError as exc:
                return _error(409, str(exc))
            except KnowledgeError as exc:
                return _error(400, str(exc))
            except EmbeddingError as exc:
                log.warning("knowledge request failed: %s", exc)
                return _error(503, "向量服务暂不可用，请稍后重试")
        return run
    return wrap


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise KnowledgeError("请求内容必须是 JSON (Content-Type: application/json)")
    try:
        return await read_object(request, MAX_BODY_BYTES)
    except BadBody as exc:
        raise KnowledgeError(str(exc)) from exc


def _opt_str(data: dict[str, Any], key: str, limit: int = 2000) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str | int) or len(str(value)) > limit:
        raise KnowledgeError(f"字段 {key} 无效")
    return str(value)


def _tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(t.strip() for t in value.replace("，", ",").replace("、", ",").split(","))
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return tuple(value)
    raise KnowledgeError("标签必须是字符串列表或以逗号分隔的文本")


def _row_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 18:
        raise EntryNotFound(f"没有编号为 {raw[:20]} 的知识版本")
    return int(raw)


@_authed()
async def whoami(request: web.Request, agent: str) -> web.StreamResponse:
    return _json({"agent": agent, "role": policy.principal(request).role})


@_authed()
async def search(request: web.Request, agent: str) -> web.StreamResponse:
    q = request.query.get("q", "").strip()
    line = request.query.get("line") or None
    k_raw = request.query.get("k", "5")
    if not k_raw.isdigit() or not 1 <= int(k_raw) <= 20:
        raise KnowledgeError("k 必须是 1 到 20 之间的整数")
    if not q:
        raise KnowledgeError("请输入要搜索的内容")
    hits = await request.app[KNOWLEDGE].search(q, line=line, k=int(k_raw))
    return _json({"query": q, "line": line, "hits": [h.to_dict() for h in hits]})


@_authed()
async def feedback(request: web.Request, agent: str) -> web.StreamResponse:
    data = await _body(request)
    version = data.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        raise KnowledgeError("version 必须是整数")
    row = await request.app[KNOWLEDGE].feedback(
        entry_id=_opt_str(data, "entry_id", 64) or "", version=version, agent=agent,
        verdict=_opt_str(data, "verdict", 16) or "", handoff_id=_opt_str(data, "handoff_id", 64),
        comment=_opt_str(data, "comment"))
    return _json({"id": row.id}, status=201)


@_authed()
async def propose(request: web.Request, agent: str) -> web.StreamResponse:
    data = await _body(request)
    draft = EntryDraft(
        line=_opt_str(data, "line", 16) or "", title=_opt_str(data, "title", 400) or "",
        body=_opt_str(data, "body", 20000) or "", tags=_tags(data.get("tags")),
        entry_id=_opt_str(data, "entry_id", 64), note=_opt_str(data, "note"),
        handoff_id=_opt_str(data, "handoff_id", 64))
    row = await request.app[KNOWLEDGE].propose(draft, agent)
    log.info("knowledge proposal %s v%d by %s", row.entry_id, row.version, agent)
    return _json({"proposal": entry_dict(row)}, status=201)


@_authed()
async def inbox(request: web.Request, agent: str) -> web.StreamResponse:
    kb = request.app[KNOWLEDGE]
    items = []
    for row in await kb.inbox():
        current = await kb.approved(row.entry_id)
        items.append({**entry_dict(row), "current": entry_dict(current) if current else None})
    return _json({"items": items})


@_authed()
async def approve(request: web.Request, agent: str) -> web.StreamResponse:
    data = await _body(request) if request.can_read_body else {}
    row = await request.app[KNOWLEDGE].approve(_row_id(request), agent, _opt_str(data, "reason"))
    log.info("knowledge %s v%d approved by %s", row.entry_id, row.version, agent)
    return _json({"entry": entry_dict(row)})


@_authed()
async def reject(request: web.Request, agent: str) -> web.StreamResponse:
    data = await _body(request)
    row = await request.app[KNOWLEDGE].reject(_row_id(request), agent,
                                              _opt_str(data, "reason") or "")
    log.info("knowledge %s v%d rejected by %s", row.entry_id, row.version, agent)
    return _json({"entry": entry_dict(row)})


@_authed()
async def versions(request: web.Request, agent: str) -> web.StreamResponse:
    rows = await request.app[KNOWLEDGE].versions(request.match_info["entry_id"][:64])
    if not rows:
        raise EntryNotFound("没有这个知识条目")
    return _json({"versions": [entry_dict(r) for r in rows]})


async def knowledge_ctx(app: web.Application) -> AsyncIterator[None]:
    """Builds the knowledge base once the database is up (skipped without one)."""
    if SESSIONS not in app:
        log.warning("no database in this app: the knowledge API answers 503")
        yield
        return
    settings = app[SETTINGS]
    embedder = build_embedder(settings.knowledge.embedder, settings.llm,
                              dimensions=EMBEDDING_DIM)
    pool = EmbeddingPool(embedder) if embedder is not None else None
    kb = KnowledgeBase(app[SESSIONS], pool)
    await asyncio.to_thread(warm_up)
    if pool is not None:
        try:
            await pool.embed(["预热"], kind="query")
        except EmbeddingError as exc:  # an endpoint down at start: searches retry per call
            log.warning("knowledge embedder %s not ready: %s", embedder and embedder.name, exc)
    app[KNOWLEDGE] = kb
    service = app.get(HANDOFF)
    if service is not None:
        service.attach_suggester(Suggester(kb, k=settings.knowledge.suggestions))
    log.info("knowledge base ready (embedder %s, %d suggestions per pop)",
             settings.knowledge.embedder, settings.knowledge.suggestions)
    yield
    if service is not None:
        service.attach_suggester(None)
    if pool is not None:
        pool.close()


def setup(app: web.Application) -> None:
    login_state(app)
    app.router.add_get(f"{PREFIX}/whoami", whoami)
    app.router.add_get(f"{PREFIX}/search", search)
    app.router.add_post(f"{PREFIX}/feedback", feedback)
    app.router.add_post(f"{PREFIX}/proposals", propose)
    app.router.add_get(f"{PREFIX}/inbox", inbox)
    app.router.add_post(f"{PREFIX}/proposals/{{id}}/approve", approve)
    app.router.add_post(f"{PREFIX}/proposals/{{id}}/reject", reject)
    app.router.add_get(f"{PREFIX}/entries/{{entry_id}}/versions", versions)
    app.cleanup_ctx.append(knowledge_ctx)
