"""The operations console's inbound analytics: ``/api/ops/analytics`` (JSON) and
``/api/ops/analytics.csv`` (every table, stacked) for a China date range and a line, and the
page's script ``/ops/analytics.js``. The figures are ``campaigns.inbound``'s; this module only
adds the names people read (bots from the published catalog, transfer reasons, dialog states)
and turns bad filters into a 400 with a Chinese message."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from aiohttp import web

from campaigns.inbound import BadRange, csv_rows, inbound_figures, parse_range
from handoff.rules import REASON_LABELS, SLOT_LABELS
from ivr.core.csvsafe import safe_writer
from ivr.core.lines import LINE_LABELS, line_of_queue
from ivr.web.jsonapi import json_error
from ivr.web.keys import BOT_STORE, SESSIONS

STATIC = Path(__file__).with_name("static")
HEADERS = {"Cache-Control": "no-store"}
STATE_LABELS = {"route": "主菜单", "line_menu": "业务菜单", "clarify": "澄清问题",
                "done": "已结束", "unknown": "未知"}


def _names(request: web.Request) -> dict[str, str]:
    store = request.app.get(BOT_STORE)
    return {} if store is None else {b.id: b.name for b in store.catalog.bots.values()}


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


async def script(_request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "analytics.js", headers={"Cache-Control": "no-cache"})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/ops/analytics", analytics)
    app.router.add_get("/api/ops/analytics.csv", analytics_csv)
    app.router.add_get("/ops/analytics.js", script)
