"""The bot workspace ``/ops/bots``: read, edit, test and review the bots, then publish them.

Who may open it and take which review step is ``dialog.lifecycle.review``'s (roles author, lead,
expert, configurer; ops and admin); this module turns requests into those calls and bad input
into a 400 with a Chinese message. Routes (JSON under ``/api/ops/bots``):

- ``GET /api/ops/bots``: every bot with its published and newest version, the newest version's
  review state and the last 7 days' figures (calls, contained, transferred; the analytics');
  ``GET /api/ops/bots/{bot_id}``: its versions, each with its test summary and review steps
  (who, role, when, comment), the publish history and the version in service here;
  ``GET .../versions/{version}``: its YAML and the same as data for the form.
- ``POST /api/ops/bots/check`` ``{yaml}``: validation as you type (schema errors with their
  line, then ``ivr bots lint``'s problems among the published bots); ``POST /api/ops/bots/yaml``
  ``{data, base}``: the form's fields written into the version's text, only the changed fields
  rewritten (its comments and spelling kept).
- ``POST /api/ops/bots/drafts`` ``{yaml, note}``: a new draft (its author: the logged-in user);
  ``POST .../versions/{version}/test``: its conversation tests on a scratch copy of the demo back
  end, and lint (a passing draft becomes ``tested``); ``.../review`` ``{step, comment}``;
  ``.../publish``; ``POST .../rollback`` ``{to}``; ``GET .../diff?a=&b=``.

A publish goes through the catalog store's own ``BotVersions``, so this server swaps the new
version in at once; other servers see it at their next fingerprint check, as after
``ivr bots publish``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import yaml
from aiohttp import web

from campaigns.inbound import CHINA, inbound_figures, parse_range
from dialog.lifecycle.checks import check_version, lint_problems, published_specs, scratch_actions
from dialog.lifecycle.formedit import apply_form, dump
from dialog.lifecycle.repository import BotVersions, LifecycleError
from dialog.lifecycle.review import (
    EDIT_ROLES,
    STATE_LABELS,
    STEP_ROLES,
    BotReviews,
    review_state,
)
from dialog.lifecycle.tables import BotVersionRow
from dialog.scenario import ScenarioError, parse_bot
from ivr.web import policy
from ivr.web.auth import Principal, authenticate
from ivr.web.jsonapi import BadBody, json_error, json_ok, read_object
from ivr.web.keys import BOT_STORE, DB_URL, SESSIONS, SETTINGS
from ivr.web.login import LoginForm, form_login
from ivr.web.login import install as login_state
from ivr.web.login import logout as end_session
from ivr.web.ops import HEADERS, STATIC, login_page

log = logging.getLogger("ivr.web.bots")

MAX_YAML = 256 * 1024
_ERROR_LINE = re.compile(r"^bot:(\d+): (.*)$")
TESTS = web.AppKey("bot_test_runs", asyncio.Semaphore)  # one scratch test run at a time


def _page_login(error: str = "", status: int = 200) -> web.Response:
    response = login_page(error, status)
    assert isinstance(response.text, str)
    response.text = (response.text.replace('action="/ops/login"', 'action="/ops/bots/login"')
                     .replace("回访运营台", "机器人工作台")
                     .replace("回访运营登录", "机器人工作台登录"))
    return response


async def page(request: web.Request) -> web.StreamResponse:
    who = await authenticate(request)
    if who is None:
        return _page_login()
    if who.role not in EDIT_ROLES:
        return _page_login("该工号没有机器人配置权限。", status=403)
    return web.FileResponse(STATIC / "bots.html", headers=HEADERS)


async def script(_request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "bots.js", headers={"Cache-Control": "no-cache"})


LOGIN = LoginForm("bots", _page_login, "/ops/bots", EDIT_ROLES, "该工号没有机器人配置权限。")


async def login(request: web.Request) -> web.Response:
    return await form_login(request, LOGIN)


async def logout(request: web.Request) -> web.Response:
    return await end_session(request, "/ops/bots")


# ---- helpers ---------------------------------------------------------------------------------
def _versions(request: web.Request) -> BotVersions:
    """The catalog store's versions (its publishes reload this server at once)."""
    store = request.app.get(BOT_STORE)
    return store.repo if store is not None else BotVersions(request.app[SESSIONS])


def _when(value: datetime | None) -> str | None:
    return value.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S") if value else None


def _bad(message: str) -> web.HTTPBadRequest:
    """A 400 whose body is the JSON error every route answers with."""
    return web.HTTPBadRequest(text=json.dumps({"error": message}, ensure_ascii=False),
                              content_type="application/json")


def _int(request: web.Request, name: str) -> int:
    try:
        return int(request.match_info.get(name) or request.query.get(name, ""))
    except ValueError:
        raise _bad(f"{name} 应为整数") from None


def _errors(exc: ScenarioError) -> list[dict[str, Any]]:
    out = []
    for line in str(exc).splitlines():
        m = _ERROR_LINE.match(line)
        out.append({"line": int(m.group(1)), "message": m.group(2)} if m else
                   {"line": None, "message": line})
    return out


def _version_dict(row: BotVersionRow, steps: list[Any]) -> dict[str, Any]:
    state = review_state(steps)
    return {"version": row.version, "state": row.state, "author": row.author, "note": row.note,
            "created_at": _when(row.created_at), "tested_at": _when(row.tested_at),
            "published_at": _when(row.published_at), "test_summary": row.test_summary,
            "review": {"state": state, "label": STATE_LABELS[state],
                       "steps": [s.as_dict() for s in steps]}}


async def _body(request: web.Request, limit: int = MAX_YAML) -> dict[str, Any]:
    try:
        return await read_object(request, limit)
    except BadBody as exc:
        raise _bad(str(exc)) from exc


# ---- reads -----------------------------------------------------------------------------------
async def list_bots(request: web.Request) -> web.Response:
    versions = _versions(request)
    overview = await versions.overview()
    reviews = await BotReviews(versions).all_steps()
    store = request.app.get(BOT_STORE)
    catalog = store.catalog.bots if store is not None else {}
    first, last, _ = parse_range(None, None, None)
    figures = {r["bot"]: r for r in
               (await inbound_figures(request.app[SESSIONS], first, last, ""))["bots"]}
    who = policy.principal(request)
    bots = []
    for bot_id, published, newest, state in overview:
        spec = catalog.get(bot_id)
        f = figures.get(bot_id, {})
        review = review_state(reviews.get((bot_id, newest), []))
        bots.append({"bot": bot_id, "name": spec.name if spec else bot_id,
                     "line": spec.line if spec else None, "published": published,
                     "newest": newest, "newest_state": state, "review": review,
                     "review_label": STATE_LABELS[review], "calls_7d": f.get("calls", 0),
                     "containment_7d": f.get("containment"),
                     "transferred_7d": f.get("transferred", 0)})
    return json_ok({"bots": bots, "me": {"user": who.user, "role": who.role, "steps": sorted(
        step for step, roles in STEP_ROLES.items() if who.role in roles)}})


async def bot_detail(request: web.Request) -> web.Response:
    bot_id = request.match_info["bot_id"]
    versions = _versions(request)
    rows = await versions.versions(bot_id)
    if not rows:
        return json_error(404, f"没有机器人 {bot_id}")
    steps = await BotReviews(versions).history(bot_id)
    store = request.app.get(BOT_STORE)
    return json_ok({
        "bot": bot_id, "in_service": store.versions.get(bot_id) if store is not None else None,
        "versions": [_version_dict(r, steps.get(r.version, [])) for r in reversed(rows)],
        "publications": [{"version": p.version, "previous": p.previous_version,
                          "action": p.action, "author": p.author, "at": _when(p.at)}
                         for p in reversed(await versions.publications(bot_id))]})


async def version_text(request: web.Request) -> web.Response:
    bot_id, version = request.match_info["bot_id"], _int(request, "version")
    try:
        row = await _versions(request).get(bot_id, version)
    except LifecycleError as exc:
        return json_error(404, str(exc))
    try:
        data = yaml.safe_load(row.yaml_text)
    except yaml.YAMLError:
        data = None
    return json_ok({"bot": bot_id, "version": version, "state": row.state,
                    "yaml": row.yaml_text, "data": data})


async def diff(request: web.Request) -> web.Response:
    bot_id = request.match_info["bot_id"]
    try:
        text = await _versions(request).diff(bot_id, _int(request, "a"), _int(request, "b"))
    except LifecycleError as exc:
        return json_error(404, str(exc))
    return json_ok({"bot": bot_id, "diff": text})


# ---- editing ---------------------------------------------------------------------------------
async def check(request: web.Request) -> web.Response:
    """Validation as you type: schema errors with their lines, else lint among the bots."""
    text = (await _body(request)).get("yaml")
    if not isinstance(text, str):
        return json_error(400, "缺少 yaml")
    try:
        spec = parse_bot(text, "bot")
    except ScenarioError as exc:
        return json_ok({"ok": False, "errors": _errors(exc), "lint": []})
    neighbours = await published_specs(_versions(request))
    problems = await asyncio.to_thread(lint_problems, spec, neighbours)
    return json_ok({"ok": True, "bot": spec.id, "name": spec.name, "errors": [],
                    "lint": problems})


async def form_yaml(request: web.Request) -> web.Response:
    """The form's fields as the bot's YAML: ``base`` (the version's text) with only the changed
    fields rewritten (``dialog.lifecycle.formedit``); validated the same way."""
    body = await _body(request, 2 * MAX_YAML)
    data, base = body.get("data"), body.get("base")
    if not isinstance(data, dict):
        return json_error(400, "缺少 data")
    text = apply_form(base, data) if isinstance(base, str) else dump(data)
    try:
        parse_bot(text, "bot")
    except ScenarioError as exc:
        return json_ok({"ok": False, "yaml": text, "errors": _errors(exc)})
    return json_ok({"ok": True, "yaml": text, "errors": []})


async def save_draft(request: web.Request) -> web.Response:
    body = await _body(request)
    text, note = body.get("yaml"), body.get("note")
    if not isinstance(text, str) or not text.strip():
        return json_error(400, "缺少 yaml")
    if note is not None and not isinstance(note, str):
        return json_error(400, "note 应为文字")
    who = policy.principal(request)
    try:
        imported = await _versions(request).import_text(
            text, "bot", author=who.user, note=(note or "")[:500] or "工作台编辑")
    except ScenarioError as exc:
        return json_error(400, "机器人配置有误", errors=_errors(exc))
    row = imported.row
    log.info("bot %s: draft v%d saved by %s", row.bot_id, row.version, who.user)
    return json_ok({"bot": row.bot_id, "version": row.version, "state": row.state,
                    "created": imported.created})


async def run_tests(request: web.Request) -> web.Response:
    """The version's conversation tests (demo back end on a scratch database) and lint."""
    bot_id, version = request.match_info["bot_id"], _int(request, "version")
    versions = _versions(request)
    t = time.perf_counter()
    try:
        async with request.app[TESTS]:
            async with scratch_actions(request.app[DB_URL], request.app[SETTINGS].dialog
                                       ) as actions:
                row = await check_version(versions, bot_id, version, actions)
        spec = parse_bot(row.yaml_text, "bot")
    except (LifecycleError, ScenarioError) as exc:
        return json_error(400, str(exc))
    problems = await asyncio.to_thread(lint_problems, spec, await published_specs(versions))
    return json_ok({"bot": bot_id, "version": version, "state": row.state,
                    "summary": row.test_summary, "lint": problems,
                    "took_s": round(time.perf_counter() - t, 2)})


# ---- the review ------------------------------------------------------------------------------
async def review(request: web.Request) -> web.Response:
    bot_id, version = request.match_info["bot_id"], _int(request, "version")
    body = await _body(request, 8192)
    step, comment = body.get("step"), body.get("comment")
    if not isinstance(step, str) or (comment is not None and not isinstance(comment, str)):
        return json_error(400, "缺少 step")
    who = policy.principal(request)
    try:
        state = await BotReviews(_versions(request)).take(
            bot_id, version, step, who.user, who.role, comment)
    except LifecycleError as exc:
        return json_error(409, str(exc))
    log.info("bot %s v%d: review step %s by %s (%s)", bot_id, version, step, who.user, who.role)
    return json_ok({"bot": bot_id, "version": version, "review": state,
                    "label": STATE_LABELS[state]})


async def _move(request: web.Request,
                move: Callable[[BotReviews, Principal], Awaitable[BotVersionRow]]
                ) -> web.Response:
    """A publish or a rollback by the logged-in user; 409 with the reason when refused."""
    try:
        row = await move(BotReviews(_versions(request)), policy.principal(request))
    except LifecycleError as exc:
        return json_error(409, str(exc))
    return json_ok({"bot": row.bot_id, "version": row.version, "state": row.state})


async def publish(request: web.Request) -> web.Response:
    bot_id, version = request.match_info["bot_id"], _int(request, "version")
    return await _move(request, lambda r, who: r.publish(bot_id, version, who.user, who.role))


async def rollback(request: web.Request) -> web.Response:
    bot_id = request.match_info["bot_id"]
    to = (await _body(request, 1024)).get("to")
    if not isinstance(to, int):
        return json_error(400, "to 应为版本号")
    return await _move(request, lambda r, who: r.rollback(bot_id, to, who.user, who.role))


def setup(app: web.Application) -> None:
    login_state(app)
    app[TESTS] = asyncio.Semaphore(1)
    add = app.router
    add.add_get("/ops/bots", page)
    add.add_get("/ops/bots.js", script)
    add.add_post("/ops/bots/login", login)
    add.add_post("/ops/bots/logout", logout)
    add.add_get("/api/ops/bots", list_bots)
    add.add_post("/api/ops/bots/check", check)
    add.add_post("/api/ops/bots/yaml", form_yaml)
    add.add_post("/api/ops/bots/drafts", save_draft)
    add.add_get("/api/ops/bots/{bot_id}", bot_detail)
    add.add_get("/api/ops/bots/{bot_id}/diff", diff)
    add.add_post("/api/ops/bots/{bot_id}/rollback", rollback)
    add.add_get("/api/ops/bots/{bot_id}/versions/{version}", version_text)
    add.add_post("/api/ops/bots/{bot_id}/versions/{version}/test", run_tests)
    add.add_post("/api/ops/bots/{bot_id}/versions/{version}/review", review)
    add.add_post("/api/ops/bots/{bot_id}/versions/{version}/publish", publish)

