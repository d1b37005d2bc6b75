"""Logging in and out: the two login forms (``/agent/login``, ``/ops/login``), the scripts'
``/api/session``, and the rate limit they share.

Decides:

- **Rate limit per account, never per address** (a call-center floor shares one address: one
  guesser must not lock everyone out). After ``handoff.login_max_failures`` wrong passwords in a
  row an account is locked for ``login_lock_s``; each further wrong password after a lock doubles
  the lock, up to ``login_lock_max_s``. While locked, logins for it are answered 429 with
  ``Retry-After`` without checking the password (even the right one), so guessing gains nothing;
  other accounts are untouched. A right password clears the account's count; so does
  ``login_window_s`` without a failure. Memory is bounded (``MAX_KEYS`` accounts, least recent
  forgotten).
- A login creates a server-side session (``ivr.web.auth``); **logout revokes it** server-side
  and clears the cookie. The forms set the ``ivr_session`` cookie (HttpOnly, SameSite=Strict,
  Secure in production); ``POST /api/session`` (JSON ``{"agent", "password"}``) answers the token
  for ``Authorization: Bearer``, and ``DELETE /api/session`` revokes it.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from ivr.web import policy
from ivr.web.auth import COOKIE, PASSWORDS, SESSION_STORE, presented_token
from ivr.web.auth import install as auth_state
from ivr.web.jsonapi import BadBody, json_error, json_ok, read_object
from ivr.web.keys import SETTINGS

log = logging.getLogger("ivr.web.login")

MAX_KEYS = 10_000


@dataclass
class _Account:
    failures: int = 0
    last: float = 0.0
    locked_until: float = 0.0


class LoginLimiter:
    def __init__(self, max_failures: int, window_s: float, lock_s: float, lock_max_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.lock_s = lock_s
        self.lock_max_s = lock_max_s
        self.clock = clock
        self._accounts: OrderedDict[str, _Account] = OrderedDict()
        self.refused = 0  # logins answered 429

    def retry_after(self, account: str) -> int:
        """Seconds until a login for this account is allowed again (0: allowed now)."""
        entry = self._accounts.get(account)
        wait = entry.locked_until - self.clock() if entry is not None else 0.0
        if wait > 0:
            self.refused += 1
            return math.ceil(wait)
        return 0

    def failed(self, account: str) -> None:
        now = self.clock()
        entry = self._accounts.setdefault(account, _Account())
        self._accounts.move_to_end(account)
        if now - entry.last > self.window_s:
            entry.failures = 0
        entry.failures += 1
        entry.last = now
        if entry.failures >= self.max_failures:
            over = entry.failures - self.max_failures
            entry.locked_until = now + min(self.lock_max_s, self.lock_s * 2 ** min(over, 30))
        while len(self._accounts) > MAX_KEYS:
            self._accounts.popitem(last=False)

    def succeeded(self, account: str) -> None:
        self._accounts.pop(account, None)


LOGIN_LIMIT = web.AppKey("login_limit", LoginLimiter)  # shared by every login route


def install(app: web.Application) -> None:
    """Called by each page's ``setup`` (after ``SETTINGS`` is set): the first one adds the
    policy guard, the password book and sessions, the limiter every login shares and the
    scripts' ``/api/session`` routes."""
    if LOGIN_LIMIT in app:
        return
    auth_state(app)
    policy.install(app)
    h = app[SETTINGS].handoff
    app[LOGIN_LIMIT] = LoginLimiter(h.login_max_failures, h.login_window_s, h.login_lock_s,
                                    h.login_lock_max_s)
    app.router.add_post("/api/session", api_login)
    app.router.add_delete("/api/session", api_logout)


@dataclass(frozen=True)
class LoginResult:
    status: int  # 200, 401 (wrong), 429 (locked)
    token: str = ""
    retry_after: int = 0


async def check_login(request: web.Request, user: str, password: str,
                      where: str) -> LoginResult:
    """The limiter, the password, and a new session when both pass."""
    account = user[:64]
    limiter = request.app[LOGIN_LIMIT]
    wait = limiter.retry_after(account)
    if wait > 0:
        log.warning("%s login for %r refused: locked for %d s", where, account[:32], wait)
        return LoginResult(429, retry_after=wait)
    if not await request.app[PASSWORDS].verify(account, password):
        limiter.failed(account)
        log.info("%s login refused for %r", where, account[:32])
        return LoginResult(401)
    limiter.succeeded(account)
    token = await request.app[SESSION_STORE].create(account)
    log.info("%s login: %s", where, account)
    return LoginResult(200, token)


def locked_text(wait: int) -> str:
    return f"登录失败次数过多，请{max(1, (wait + 59) // 60)}分钟后再试。"


@dataclass(frozen=True)
class LoginForm:
    """What differs between the two forms."""

    name: str  # for the log: "agent desktop", "ops"
    page: Callable[[str, int], web.Response]  # the form again, with an error and a status
    home: str  # where a successful login goes
    roles: frozenset[str]  # who may use this page
    not_allowed: str  # the error for a right password without the role


def set_session_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    settings = request.app[SETTINGS]
    # production sits behind TLS (README, Security): the cookie never travels in clear
    response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/",
                        max_age=int(settings.handoff.session_hours * 3600),
                        secure=settings.env == "production")


async def form_login(request: web.Request, form: LoginForm) -> web.Response:
    """A posted form (``agent``, ``password``): 429 with ``Retry-After`` while locked, 401 for a
    wrong password, 403 without the page's role, else the cookie and a redirect home."""
    data = await request.post()
    user, password = str(data.get("agent", "")).strip(), str(data.get("password", ""))
    result = await check_login(request, user, password, form.name)
    if result.status == 429:
        response = form.page(locked_text(result.retry_after), 429)
        response.headers["Retry-After"] = str(result.retry_after)
        return response
    if result.status != 200:
        return form.page("工号或密码错误，请重新输入。", 401)
    if request.app[SETTINGS].handoff.agent_roles.get(user, "agent") not in form.roles:
        await request.app[SESSION_STORE].revoke(result.token)
        return form.page(form.not_allowed, 403)
    response = web.HTTPSeeOther(form.home)
    set_session_cookie(request, response, result.token)
    raise response


async def _revoke_presented(request: web.Request) -> None:
    presented = presented_token(request)
    if presented is not None:
        await request.app[SESSION_STORE].revoke(presented[1])


async def logout(request: web.Request, home: str) -> web.Response:
    """Revoke the session server-side, clear the cookie, go to the login form."""
    await _revoke_presented(request)
    response = web.HTTPSeeOther(home)
    response.del_cookie(COOKIE, path="/")
    raise response


async def api_login(request: web.Request) -> web.Response:
    """``POST /api/session`` ``{"agent", "password"}`` -> ``{"token", "agent", "role",
    "expires_in"}``; 401, 429 with ``Retry-After``, 400 for a bad body."""
    try:
        data = await read_object(request, 4096)
    except BadBody as exc:
        return json_error(400, str(exc))
    user, password = str(data.get("agent", "")).strip(), str(data.get("password", ""))
    result = await check_login(request, user, password, "api")
    if result.status == 429:
        response = json_error(429, locked_text(result.retry_after))
        response.headers["Retry-After"] = str(result.retry_after)
        return response
    if result.status != 200:
        return json_error(401, "工号或密码错误")
    handoff = request.app[SETTINGS].handoff
    return json_ok({"token": result.token, "agent": user,
                    "role": handoff.agent_roles.get(user, "agent"),
                    "expires_in": int(handoff.session_hours * 3600)})


async def api_logout(request: web.Request) -> web.Response:
    """``DELETE /api/session``: the presented session is revoked (204)."""
    await _revoke_presented(request)
    response = web.Response(status=204)
    response.del_cookie(COOKIE, path="/")
    return response
