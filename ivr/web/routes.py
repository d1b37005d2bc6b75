"""Health, metrics, the calls API and the scripts' login; every page's routes are added here.

Who may call each route is decided in one table, ``ivr.web.policy`` (deny by default):
``/healthz`` is public, ``/metrics`` needs the scrape token, ``/api/calls`` the ops role."""

from __future__ import annotations

from aiohttp import web

from ivr.core.privacy import mask_json, mask_number
from ivr.core.promtext import counter_lines
from ivr.core.storage.models import OUTCOMES
from ivr.web import (
    agent,
    analytics,
    bots,
    callbacks,
    chat,
    knowledge,
    login,
    ops,
    prompts,
    tickets,
)
from ivr.web.keys import ARI, BOXES, CALLS, CHAT, CHAT_DESK, HANDOFF, LOOP_LAG, REPO


async def healthz(request: web.Request) -> web.Response:
    app = request.app
    ari_ok = ARI in app and app[ARI].connected.is_set()
    chat_only = ARI not in app and CHAT in app  # ``ivr up --chat-only``: no telephony to check
    keeper = app.get(BOXES)
    # a cluster worker whose box another worker serves until it is idle: up, standing by
    standby = keeper is not None and not ari_ok and keeper.standing_by
    body: dict[str, object] = {
        "status": "ok" if ari_ok or chat_only else "standby" if standby else "degraded",
        "ari_connected": ari_ok,
        "active_calls": app[CALLS].active if CALLS in app else 0,
    }
    if keeper is not None:
        body["boxes"] = sorted(keeper.served)
    if standby:
        return web.json_response(body)
    if CHAT in app:
        body["active_chats"] = app[CHAT].active
    return web.json_response(body, status=200 if ari_ok or chat_only else 503)


# call outcomes /metrics labels: the journal's, the session's and the bots' Hangup outcomes
CALL_OUTCOME_LABELS = frozenset(
    (*OUTCOMES, "handed_back", "callback", "unknown"))


# the largest request body read (aiohttp's default is 1 MiB): the campaign upload's 20 MB and
# its form fields; JSON routes refuse far less themselves (ivr.web.jsonapi)
MAX_REQUEST_BYTES = ops.MAX_UPLOAD + 1024 * 1024

ARI_BLIP_LABELS = frozenset(("calls_kept", "calls_gone", "outages"))


async def metrics(request: web.Request) -> web.Response:
    app = request.app
    lines = []
    if CALLS in app:
        calls = app[CALLS]
        lines += [
            "# TYPE ivr_calls_active gauge",
            f"ivr_calls_active {calls.active}",
            "# TYPE ivr_calls_total counter",
            f"ivr_calls_total {calls.total_calls}",
            "# TYPE ivr_call_outcomes_total counter",
        ]
        # outcomes come from bot files too: a fixed vocabulary, anything else is "other"
        lines += counter_lines("ivr_call_outcomes_total", "outcome", calls.outcomes,
                               CALL_OUTCOME_LABELS)
        lines += ["# TYPE ivr_calls_shed_total counter",
                  f"ivr_calls_shed_total {calls.shed_calls}",
                  # calls left by a server process that died, picked up by this one
                  "# TYPE ivr_calls_resumed_total counter",
                  f"ivr_calls_resumed_total {calls.resumed_calls}"]
        # ARI websocket drops: calls that went on, calls found gone on reconnect, outages
        lines.append("# TYPE ivr_ari_blip_calls_total counter")
        lines += counter_lines("ivr_ari_blip_calls_total", "result", calls.ari_blips,
                               ARI_BLIP_LABELS)
    if BOXES in app:  # which boxes this cluster worker serves, and how it came to
        keeper = app[BOXES]
        lines.append("# TYPE ivr_box_served gauge")
        lines += [f'ivr_box_served{{box="{b.name}"}} {int(b.name in keeper.served)}'
                  for b in keeper.boxes]
        lines.append("# TYPE ivr_box_calls_active gauge")
        lines += [f'ivr_box_calls_active{{box="{b.name}"}} {b.calls}' for b in keeper.boxes]
        lines.append("# TYPE ivr_box_leases_total counter")
        lines += counter_lines("ivr_box_leases_total", "event",
                               {"taken_over": keeper.took_over, "given_back": keeper.gave_back,
                                "lost": keeper.lost}, ("taken_over", "given_back", "lost"))
    if ARI in app:
        ari = app[ARI]
        lines += [
            "# TYPE ivr_ari_connected gauge",
            f"ivr_ari_connected {int(ari.connected.is_set())}",
            "# TYPE ivr_ari_reconnects_total counter",
            f"ivr_ari_reconnects_total {ari.reconnects}",
            "# TYPE ivr_ari_malformed_events_total counter",
            f"ivr_ari_malformed_events_total {ari.malformed_events}",
        ]
    if HANDOFF in app:
        lines += app[HANDOFF].metrics_lines()
    if CHAT in app:
        lines += app[CHAT].metrics_lines()
    if CHAT_DESK in app:
        lines += app[CHAT_DESK].metrics_lines()
    if LOOP_LAG in app:
        lines += app[LOOP_LAG].lines()
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")


async def recent_calls(request: web.Request) -> web.Response:
    limit = min(int(request.query.get("limit", "20")), 200)
    rows = await request.app[REPO].recent(limit)
    out = []
    for r in rows:
        out.append(
            {
                "id": str(r.id),
                "caller": mask_number(r.caller_number or ""),
                "dialed": r.dialed_number,
                "transport": r.transport,
                "started_at": r.started_at.isoformat() if r.started_at else None,
                "ended_at": r.ended_at.isoformat() if r.ended_at else None,
                "outcome": r.outcome,
                "queue": r.queue,
                "path": mask_json(r.path),
            }
        )
    return web.json_response(out)


def setup(app: web.Application) -> None:
    login.install(app)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/calls", recent_calls)
    agent.setup(app)
    knowledge.setup(app)  # /api/kb/* and the knowledge base's start-up (ivr/web/knowledge.py)
    ops.setup(app)  # /ops and /api/ops/* (ivr/web/ops.py)
    analytics.setup(app)  # /api/ops/analytics[.csv] (ivr/web/analytics.py)
    prompts.setup(app)  # /api/ops/prompts[/preview] (ivr/web/prompts.py)
    bots.setup(app)  # /ops/bots and /api/ops/bots/* (ivr/web/bots.py)
    tickets.setup(app)  # /api/tickets and /agent/api/tickets (ivr/web/tickets.py)
    callbacks.setup(app)  # /api/callbacks and /agent/api/callbacks (ivr/web/callbacks.py)
    chat.setup(app)  # /chat, /chat/ws and /agent/chat/ws (ivr/web/chat.py)
