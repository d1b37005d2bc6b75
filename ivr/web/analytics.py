"""The operations console's inbound analytics: ``/api/ops/analytics`` (JSON) and
``/api/ops/analytics.csv`` (every table, stacked) for a China date range and a line, and the
page's script ``/ops/analytics.js``; ``/api/ops/unmatched`` (what callers said that no bot
caught, grouped by meaning) and ``POST /api/ops/bots/{bot_id}/similar`` (one such text as a
similar question, in the bot's next draft). The figures are ``campaigns.inbound``'s and
``campaigns.unmatched``'s; this module only adds the names people read (bots from the published
catalog, transfer reasons, dialog states) and turns bad input into a 400 with a Chinese
message."""

from __future__ import annotations

import asyncio
import functools
import io
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from campaigns.inbound import BadRange, csv_rows, inbound_figures, parse_range
from campaigns.unmatched import add_similar, cluster, unmatched
from dialog.catalog import Catalog
from dialog.lifecycle.repository import BotVersions, LifecycleError
from dialog.scenario import ScenarioError
from handoff.embeddings import Embedder, EmbeddingError, build_embedder
from handoff.rules import REASON_LABELS, SLOT_LABELS
from ivr.core.config import Settings
from ivr.core.csvsafe import safe_writer
from ivr.core.lines import LINE_LABELS, line_of_queue
from ivr.web import policy
from ivr.web.jsonapi import json_error, read_object
from ivr.web.keys import BOT_STORE, SESSIONS, SETTINGS

log = logging.getLogger("ivr.web.analytics")
MAX_CLUSTERS = 50

STATIC = Path(__file__).with_name("static")
HEADERS = {"Cache-Control": "no-store"}
STATE_LABELS = {"route": "主菜单", "line_menu": "业务菜单", "clarify": "澄清问题",
                "done": "已结束", "unknown": "未知"}


def _names(request: web.Request) -> dict[str, str]:
    """Bot id -> name: the published catalog's (the shipped files' where no store runs)."""
    store = request.app.get(BOT_STORE)
    catalog = store.catalog if store is not None else _shipped()
    return {b.id: b.name for b in catalog.bots.values()}


@functools.cache
def _shipped() -> Catalog:
    return Catalog.load()


def _state_label(state: str, names: dict[str, str]) -> str:
    if state in STATE_LABELS:
        return STATE_LABELS[state]
    bot, _, slot = state.partition(".")
    name = names.get(bot, bot)
    return f"{name} · {SLOT_LABELS.get(slot, slot)}" if slot else name


async def _figures(request: web.Request) -> dict[str, Any]:
    q = request.query
    first, last, line = parse_range(q.get("from"), q.get("to"), q.get("line"))
    figures = await inbound_figures(request.app[SESSIONS], first, last, line)
    names = _names(request)
    for row in figures["bots"]:
        row["name"] = names.get(row["bot"], row["bot"])
    for row in figures["reasons"]:
        row["label"] = REASON_LABELS.get(row["reason"], row["reason"])
    for row in figures["states"]:
        row["label"] = _state_label(row["state"], names)
    for row in figures["hangups"]:
        row["label"] = _state_label(row["at"], names)
    for row in figures["queues"]:
        row["line"] = line_of_queue(row["queue"])
        row["line_label"] = LINE_LABELS.get(row["line"], row["line"])
    return figures


async def analytics(request: web.Request) -> web.Response:
    try:
        return web.json_response(await _figures(request), headers=HEADERS)
    except BadRange as exc:
        return json_error(400, str(exc))


async def analytics_csv(request: web.Request) -> web.Response:
    try:
        figures = await _figures(request)
    except BadRange as exc:
        return json_error(400, str(exc))
    out = io.StringIO()
    writer = safe_writer(out)
    for row in csv_rows(figures):
        writer.writerow(row)
    r = figures["range"]
    name = f"inbound-{r['from']}-{r['to']}{'-' + r['line'] if r['line'] else ''}.csv"
    disposition = f'attachment; filename="{name}"'
    return web.Response(body=("\ufeff" + out.getvalue()).encode("utf-8"),
                        content_type="text/csv", charset="utf-8",
                        headers={**HEADERS, "Content-Disposition": disposition})


class _LazyEmbedder:
    """The matcher's embedder, built on first use (a model load), once per app."""

    def __init__(self) -> None:
        self.loaded = False
        self.embedder: Embedder | None = None
        self.lock = asyncio.Lock()

    async def embed_fn(self, settings: Settings) -> Callable[[list[str]], Any] | None:
        async with self.lock:
            if not self.loaded:
                try:
                    self.embedder = await asyncio.to_thread(
                        build_embedder, settings.nlu.embedder, settings.llm)
                except EmbeddingError as exc:
                    log.warning("no embedder for grouping utterances (%s): exact texts only",
                                exc)
                self.loaded = True
        return None if self.embedder is None else self.embedder.embed


EMBEDDER = web.AppKey("unmatched_embedder", _LazyEmbedder)


async def unmatched_clusters(request: web.Request) -> web.Response:
    """What callers said that no bot caught, grouped by meaning."""
    q = request.query
    try:
        first, last, line = parse_range(q.get("from"), q.get("to"), q.get("line"))
    except BadRange as exc:
        return json_error(400, str(exc))
    t = time.perf_counter()
    rows = await unmatched(request.app[SESSIONS], first, last, line)
    embed = await request.app[EMBEDDER].embed_fn(request.app[SETTINGS]) if rows else None
    said = [(text, n) for text, _decision, n in rows]
    try:
        groups = await asyncio.to_thread(cluster, said, embed)
    except EmbeddingError as exc:  # the embedder failed now: exact texts still help
        log.warning("grouping utterances by meaning failed (%s): exact texts only", exc)
        groups = cluster(said, None)
    return web.json_response({
        "range": {"from": first.isoformat(), "to": last.isoformat(), "line": line},
        "texts": len(rows), "said": sum(n for _t, n in said),
        "groups": len(groups), "clusters": [g.as_dict() for g in groups[:MAX_CLUSTERS]],
        "bots": [{"bot": b, "name": n} for b, n in sorted(_names(request).items())],
        "took_ms": round((time.perf_counter() - t) * 1000, 1)}, headers=HEADERS)


async def add_similar_question(request: web.Request) -> web.Response:
    """One utterance as a similar question of a bot: the bot's next draft, for review."""
    body = await read_object(request, 4096)
    question = body.get("text")
    if not isinstance(question, str):
        return json_error(400, "缺少 text")
    bot_id = request.match_info["bot_id"]
    try:
        version = await add_similar(BotVersions(request.app[SESSIONS]), bot_id, question,
                                    author=policy.principal(request).user)
    except (LifecycleError, ScenarioError) as exc:
        return json_error(400, str(exc))
    log.info("similar question added to %s as draft v%d by %s", bot_id, version,
             policy.principal(request).user)
    return web.json_response({"bot": bot_id, "version": version, "state": "draft"},
                             headers=HEADERS)


async def script(_request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "analytics.js", headers={"Cache-Control": "no-cache"})


def setup(app: web.Application) -> None:
    app[EMBEDDER] = _LazyEmbedder()
    app.router.add_get("/api/ops/analytics", analytics)
    app.router.add_get("/api/ops/analytics.csv", analytics_csv)
    app.router.add_get("/ops/analytics.js", script)
    app.router.add_get("/api/ops/unmatched", unmatched_clusters)
    app.router.add_post("/api/ops/bots/{bot_id}/similar", add_similar_question)
