"""The operations page (role ``ops``): survey campaigns, live progress, results and exports.

- ``GET /ops``: the page (logged in with role ops or admin) or the login form;
  ``POST /ops/login`` (form ``agent``, ``password``: the desk logins of
  ``settings.handoff.agent_passwords``) sets the session cookie; ``POST /ops/logout`` revokes it.
- JSON under ``/api/ops/`` (the cookie or a bearer token; not logged in: 401; logged in without
  role ops/admin, e.g. an agent: 403, by ``ivr.web.policy``):
  ``GET campaigns`` (list with progress; the page polls it every 2 s),
  ``GET campaigns/{id}/results`` (progress, CSAT/NPS overall, per bot/agent/line/day,
  suggestions per bot), ``POST campaigns/{id}/start|pause|resume|stop``,
  ``POST campaigns`` (multipart: ``name``, ``survey``, ``line``, ``file``: a CSV imported with
  the campaigns import), ``GET campaigns/{id}/answers.csv`` (every answer) and
  ``GET campaigns/{id}/attempts.csv`` (every dial and what it met: ``campaigns.attemptlog``),
  phones masked; role admin may ask ``?unmasked=1``, see ``settings.ops.unmasked_roles``.

It reads from ``campaigns/`` (report, control, import), never the other way round.
"""

from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web

from campaigns import opsapi
from campaigns.attemptlog import attempts_csv_text
from campaigns.report import campaign_results, campaign_summary, csv_text, list_campaigns
from ivr.web import policy
from ivr.web.auth import authenticate
from ivr.web.keys import SESSIONS, SETTINGS
from ivr.web.login import LoginForm, form_login
from ivr.web.login import install as login_state
from ivr.web.login import logout as end_session

log = logging.getLogger("ivr.web.ops")

STATIC = Path(__file__).with_name("static")
MAX_UPLOAD = 20 * 1024 * 1024
HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'",
}


def login_page(error: str = "", status: int = 200) -> web.Response:
    html = (STATIC / "agent_login.html").read_text(encoding="utf-8")
    html = (html.replace('action="/agent/login"', 'action="/ops/login"')
            .replace("坐席工作台", "回访运营台").replace("坐席登录", "回访运营登录")
            .replace("坐席工号", "工号").replace("<!--ERROR-->", error))
    return web.Response(text=html, status=status, content_type="text/html", headers=HEADERS)


async def page(request: web.Request) -> web.StreamResponse:
    who = await authenticate(request)
    if who is None:
        return login_page()
    if who.role not in policy.OPS.roles:
        return login_page("该工号没有运营权限。", status=403)
    return web.FileResponse(STATIC / "ops.html", headers=HEADERS)


async def script(_request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "ops.js", headers={"Cache-Control": "no-cache"})


LOGIN = LoginForm("ops", login_page, "/ops", policy.OPS.roles, "该工号没有运营权限。")


async def login(request: web.Request) -> web.Response:
    """The desk's logins and passwords, with the desk's rate limit (shared with it)."""
    return await form_login(request, LOGIN)


async def logout(request: web.Request) -> web.Response:
    return await end_session(request, "/ops")


def _campaign_id(request: web.Request) -> int:
    try:
        return int(request.match_info["cid"])
    except ValueError:
        raise web.HTTPBadRequest(text='{"error": "任务编号无效"}',
                                 content_type="application/json") from None


def _not_found(cid: int) -> web.HTTPNotFound:
    return web.HTTPNotFound(text=f'{{"error": "没有编号为 {cid} 的任务"}}',
                            content_type="application/json")


async def campaigns(request: web.Request) -> web.Response:
    who = policy.principal(request)
    rows = await list_campaigns(request.app[SESSIONS])
    return web.json_response({"user": who.user, "role": who.role,
                              "campaigns": [c.as_dict() for c in rows]}, headers=HEADERS)


async def results(request: web.Request) -> web.Response:
    cid = _campaign_id(request)
    data = await campaign_results(request.app[SESSIONS], cid)
    if data is None:
        raise _not_found(cid)
    return web.json_response(data.as_dict(), headers=HEADERS)


async def control(request: web.Request) -> web.Response:
    user = policy.principal(request).user
    cid = _campaign_id(request)
    action = request.match_info["action"]
    try:
        status = await opsapi.control(request.app[SESSIONS], cid, action)
    except LookupError:
        raise _not_found(cid) from None
    except ValueError as exc:
        return web.json_response({"error": str(exc)}, status=409)
    log.info("campaign %s: %s by %s", cid, action, user)
    return web.json_response({"id": cid, "status": status}, headers=HEADERS)


async def create(request: web.Request) -> web.Response:
    user = policy.principal(request).user
    form = await request.post()
    name = str(form.get("name", "")).strip()
    survey = str(form.get("survey", "")).strip() or "csat_default"
    line = str(form.get("line", "general")).strip() or "general"
    upload = form.get("file")
    if not name:
        return web.json_response({"error": "请填写任务名称"}, status=400)
    if upload is None or isinstance(upload, str | bytes | bytearray):
        return web.json_response({"error": "请选择号码 CSV 文件"}, status=400)
    raw = upload.file.read(MAX_UPLOAD + 1)
    if len(raw) > MAX_UPLOAD:
        return web.json_response({"error": "文件过大（上限 20 MB）"}, status=413)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("gb18030")
        except UnicodeDecodeError:
            return web.json_response({"error": "文件编码无法识别（请用 UTF-8 或 GBK）"}, status=400)
    try:
        created = await opsapi.create_from_csv(request.app[SESSIONS], name=name, survey=survey,
                                               line=line, csv_text=text)
    except ValueError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    log.info("campaign %s created by %s: %d contacts loaded", created.campaign_id, user,
             created.loaded)
    return web.json_response(created.as_dict(), headers=HEADERS)


async def answers_csv(request: web.Request) -> web.Response:
    return await _export(request, "answers")


async def attempts_csv(request: web.Request) -> web.Response:
    return await _export(request, "attempts")


async def _export(request: web.Request, what: str) -> web.Response:
    who = policy.principal(request)
    cid = _campaign_id(request)
    unmasked = request.query.get("unmasked") == "1"
    if unmasked and who.role not in request.app[SETTINGS].ops.unmasked_roles:
        raise web.HTTPForbidden(text='{"error": "没有查看完整号码的权限"}',
                                content_type="application/json")
    sessions = request.app[SESSIONS]
    if what == "answers":
        text = await csv_text(sessions, cid, unmasked=unmasked)  # None: no such campaign
    elif await campaign_summary(sessions, cid) is not None:
        text = await attempts_csv_text(sessions, cid, unmasked=unmasked)
    else:
        text = None
    if text is None:
        raise _not_found(cid)
    if unmasked:
        log.info("campaign %s %s exported unmasked by %s", cid, what, who.user)
    name = f"campaign-{cid}.csv" if what == "answers" else f"campaign-{cid}-{what}.csv"
    return web.Response(
        body=("\ufeff" + text).encode("utf-8"), content_type="text/csv", charset="utf-8",
        headers={**HEADERS, "Content-Disposition": f'attachment; filename="{name}"'})


def setup(app: web.Application) -> None:
    login_state(app)
    app.router.add_get("/ops", page)
    app.router.add_get("/ops/ops.js", script)
    app.router.add_post("/ops/login", login)
    app.router.add_post("/ops/logout", logout)
    app.router.add_get("/api/ops/campaigns", campaigns)
    app.router.add_post("/api/ops/campaigns", create)
    app.router.add_get("/api/ops/campaigns/{cid}/results", results)
    app.router.add_get("/api/ops/campaigns/{cid}/answers.csv", answers_csv)
    app.router.add_get("/api/ops/campaigns/{cid}/attempts.csv", attempts_csv)
    app.router.add_post("/api/ops/campaigns/{cid}/{action:start|pause|resume|stop}", control)
