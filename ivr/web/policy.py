"""The role table: who may call each route. Deny by default.

Every route of the web server has one row here, keyed by method and path pattern; the
``guard`` middleware looks the matched route up before its handler runs:

- no row: 403 (and an error in the log): a route added without a policy is closed, and
  ``tests/security/test_web_policy.py`` walks the router and fails on it;
- ``PUBLIC``: anyone (the health check, the login forms and the pages that show them, assets);
- ``SCRAPE``: ``Authorization: Bearer`` with ``web.metrics_token`` (Prometheus), else 401;
- a set of roles: a valid session (``ivr.web.auth``) whose role is in the set, else 401 (not
  logged in) or 403 (logged in without the role).

Roles: ``agent`` (answers calls: pop, tickets, knowledge search and proposals, callbacks),
``reviewer`` (an agent who also approves knowledge), ``ops`` (campaigns, call records: never the
desk's APIs, which show customers' numbers), ``author``, ``lead``, ``expert``, ``configurer``
(the bot workspace's review workflow: write, approve wording, approve facts, publish),
``admin`` (all of them). Ownership (another agent's pop or ticket, one's own knowledge
proposal) and review steps are decided by the handlers, after this.

**Cross-site requests**: a state-changing request (POST, PUT, PATCH, DELETE) whose ``Origin``
(or, without one, ``Referer``) names another site than ``Host`` or ``web.allowed_origins`` is
refused with 403; one with neither header is refused when it carries the session cookie (a
browser always sends ``Origin`` on such a request; scripts send a bearer token, which a browser
never adds by itself).
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from dialog.lifecycle.review import EDIT_ROLES
from ivr.web.auth import Principal, authenticate, presented_token
from ivr.web.jsonapi import json_error
from ivr.web.keys import SETTINGS

log = logging.getLogger("ivr.web.policy")


@dataclass(frozen=True)
class Policy:
    roles: frozenset[str] = frozenset()
    public: bool = False
    scrape: bool = False


PUBLIC = Policy(public=True)
SCRAPE = Policy(scrape=True)
DESK = Policy(roles=frozenset({"agent", "reviewer", "admin"}))
REVIEW = Policy(roles=frozenset({"reviewer", "admin"}))
OPS = Policy(roles=frozenset({"ops", "admin"}))
ANY_ROLE = Policy(roles=frozenset({"agent", "reviewer", "ops", "admin"}))
# the bot workspace: everyone of the review workflow (which step each may take is
# dialog.lifecycle.review's); never the desk's APIs
BOTS = Policy(roles=EDIT_ROLES)

ROLE_TABLE: dict[tuple[str, str], Policy] = {
    # the server
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/metrics"): SCRAPE,
    ("GET", "/api/calls"): OPS,
    ("POST", "/api/session"): PUBLIC,
    ("DELETE", "/api/session"): PUBLIC,  # revokes whatever session is presented
    # the agent desktop (ivr/web/agent.py): pages show the login form to anyone
    ("GET", "/agent"): PUBLIC,
    ("GET", "/agent/review"): PUBLIC,
    ("GET", "/agent/common.js"): PUBLIC,
    ("GET", "/agent/agent.js"): PUBLIC,
    ("GET", "/agent/agent.css"): PUBLIC,
    ("GET", "/agent/review.js"): PUBLIC,
    ("GET", "/agent/callbacks.js"): PUBLIC,
    ("POST", "/agent/login"): PUBLIC,
    ("POST", "/agent/logout"): PUBLIC,
    ("GET", "/agent/me"): ANY_ROLE,
    ("GET", "/agent/ws"): DESK,
    # knowledge (ivr/web/knowledge.py)
    ("GET", "/agent/api/kb/whoami"): DESK,
    ("GET", "/agent/api/kb/search"): DESK,
    ("POST", "/agent/api/kb/feedback"): DESK,
    ("POST", "/agent/api/kb/proposals"): DESK,
    ("GET", "/agent/api/kb/inbox"): REVIEW,
    ("POST", "/agent/api/kb/proposals/{id}/approve"): REVIEW,
    ("POST", "/agent/api/kb/proposals/{id}/reject"): REVIEW,
    ("GET", "/agent/api/kb/entries/{entry_id}/versions"): DESK,
    # tickets (ivr/web/tickets.py)
    ("GET", "/agent/api/tickets/types"): DESK,
    ("GET", "/agent/api/tickets/{handoff_id}"): DESK,
    ("POST", "/agent/api/tickets"): DESK,
    # callback tasks (ivr/web/callbacks.py)
    ("GET", "/agent/api/callbacks"): DESK,
    ("POST", "/agent/api/callbacks/{id}/claim"): DESK,
    ("POST", "/agent/api/callbacks/{id}/dial"): DESK,
    ("POST", "/agent/api/callbacks/{id}/close"): DESK,
    # the online channel (ivr/web/chat.py): anyone may chat (rate-limited there)
    ("GET", "/chat"): PUBLIC,
    ("GET", "/chat/chat.js"): PUBLIC,
    ("GET", "/chat/chat.css"): PUBLIC,
    ("GET", "/chat/embed.js"): PUBLIC,
    ("GET", "/chat/ws"): PUBLIC,
    ("GET", "/agent/chat/ws"): DESK,
    ("GET", "/agent/agentchat.js"): PUBLIC,
    # operations (ivr/web/ops.py)
    ("GET", "/ops"): PUBLIC,
    ("GET", "/ops/ops.js"): PUBLIC,
    ("POST", "/ops/login"): PUBLIC,
    ("POST", "/ops/logout"): PUBLIC,
    ("GET", "/api/ops/campaigns"): OPS,
    ("POST", "/api/ops/campaigns"): OPS,
    ("GET", "/api/ops/campaigns/{cid}/results"): OPS,
    ("GET", "/api/ops/campaigns/{cid}/answers.csv"): OPS,
    ("GET", "/api/ops/campaigns/{cid}/attempts.csv"): OPS,
    ("POST", "/api/ops/campaigns/{cid}/{action}"): OPS,
    # inbound analytics (ivr/web/analytics.py)
    ("GET", "/ops/analytics.js"): PUBLIC,
    ("GET", "/api/ops/analytics"): OPS,
    ("GET", "/api/ops/analytics.csv"): OPS,
    ("GET", "/api/ops/unmatched"): OPS,
    ("POST", "/api/ops/bots/{bot_id}/similar"): OPS,
    # prompt audio preview (ivr/web/prompts.py)
    ("GET", "/ops/prompts.js"): PUBLIC,
    ("GET", "/api/ops/prompts"): OPS,
    ("GET", "/api/ops/prompts/preview"): OPS,
    # the bot workspace and its review workflow (ivr/web/bots.py)
    ("GET", "/ops/bots"): PUBLIC,
    ("GET", "/ops/bots.js"): PUBLIC,
    ("POST", "/ops/bots/login"): PUBLIC,
    ("POST", "/ops/bots/logout"): PUBLIC,
    ("GET", "/api/ops/bots"): BOTS,
    ("POST", "/api/ops/bots/check"): BOTS,
    ("POST", "/api/ops/bots/yaml"): BOTS,
    ("POST", "/api/ops/bots/drafts"): BOTS,
    ("GET", "/api/ops/bots/{bot_id}"): BOTS,
    ("GET", "/api/ops/bots/{bot_id}/diff"): BOTS,
    ("POST", "/api/ops/bots/{bot_id}/rollback"): BOTS,
    ("GET", "/api/ops/bots/{bot_id}/versions/{version}"): BOTS,
    ("POST", "/api/ops/bots/{bot_id}/versions/{version}/test"): BOTS,
    ("POST", "/api/ops/bots/{bot_id}/versions/{version}/review"): BOTS,
    ("POST", "/api/ops/bots/{bot_id}/versions/{version}/publish"): BOTS,
}

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PRINCIPAL = web.RequestKey("principal", Principal)  # set by the guard on role routes


def policy_for(method: str, path: str) -> Policy | None:
    """The row for a route (``HEAD`` follows ``GET``); ``{name:regex}`` patterns are looked up
    by their names only."""
    method = "GET" if method == "HEAD" else method
    return ROLE_TABLE.get((method, _plain(path)))


_REGEX_PART = re.compile(r"\{(\w+):[^}]*\}")


def _plain(path: str) -> str:
    """``/{action:start|pause}`` -> ``/{action}``: patterns are looked up by name only."""
    return _REGEX_PART.sub(r"{\1}", path)


def same_site(request: web.Request, origin: str) -> bool:
    """``origin`` is this site (its ``Host``) or one of ``web.allowed_origins``."""
    allowed = request.app[SETTINGS].web.allowed_origins
    netloc = urlsplit(origin).netloc
    return bool(netloc) and (netloc == request.host or origin.rstrip("/") in allowed)


def cross_site(request: web.Request) -> bool:
    """A state-changing request a browser sent for another site."""
    if request.method not in UNSAFE:
        return False
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if origin and origin != "null":
        return not same_site(request, origin)
    if origin == "null":
        return True
    presented = presented_token(request)
    return presented is not None and presented[0] == "cookie"


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _scraper(request: web.Request) -> bool:
    token = request.app[SETTINGS].web.metrics_token.get_secret_value()
    presented = presented_token(request)
    given = presented[1] if presented is not None and presented[0] == "bearer" else ""
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    route = request.match_info.route
    if route.resource is None:  # 404 / 405: aiohttp's own answers
        return await handler(request)
    path = route.resource.canonical
    policy = policy_for(request.method, path)
    if policy is None:
        log.error("no policy for %s %s: refused (add it to ivr/web/policy.py)",
                  request.method, path)
        return json_error(403, "没有权限")
    if cross_site(request):
        log.warning("cross-site %s %s refused (Origin %r)", request.method, path,
                    request.headers.get("Origin"))
        return json_error(403, "跨站请求已拒绝")
    if policy.scrape:
        if not _scraper(request):
            return json_error(401, "需要监控令牌")
        return await handler(request)
    if not policy.public:
        principal = await authenticate(request)
        if principal is None:
            return json_error(401, "请先登录")
        if principal.role not in policy.roles:
            return json_error(403, "没有权限")
        request[PRINCIPAL] = principal
    return await handler(request)


def install(app: web.Application) -> None:
    """The guard, once per app (every page's ``setup`` calls this)."""
    if guard not in app.middlewares:
        app.middlewares.append(guard)


def principal(request: web.Request) -> Principal:
    """The caller of a role route (the guard has checked it)."""
    return request[PRINCIPAL]
