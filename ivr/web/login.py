"""The form logins of the agent desktop (``/agent/login``) and the operations page
(``/ops/login``), and their rate limit: failed attempts per login name and per client address
in a sliding window (``handoff.login_max_failures`` in ``handoff.login_window_s``). Both forms
check the same passwords, so they share one limiter: failures on one count for the other.

Once either key has reached the limit, logins for it are refused with 429 (even with the right
password) until its oldest failure leaves the window. A successful login clears the agent's
failures (not the address's). Memory is bounded: at most ``MAX_KEYS`` keys are tracked; beyond
that the key seen least recently is forgotten (an attacker cycling through many names gets
caught by the per-address key anyway).
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from ivr.web.agentauth import check_password, make_cookie
from ivr.web.keys import SETTINGS

log = logging.getLogger("ivr.web.login")

MAX_KEYS = 10_000


class LoginLimiter:
    def __init__(self, max_failures: int, window_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self.refused = 0  # logins answered 429

    def _recent(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def retry_after(self, *keys: str) -> int:
        """Seconds until a login for these keys is allowed again (0: allowed now)."""
        now = self.clock()
        wait = 0.0
        for key in keys:
            times = self._recent(key, now)
            if times is not None and len(times) >= self.max_failures:
                wait = max(wait, times[-self.max_failures] + self.window_s - now)
        if wait > 0:
            self.refused += 1
        return math.ceil(wait)

    def failed(self, *keys: str) -> None:
        now = self.clock()
        for key in keys:
            times = self._failures.setdefault(key, deque(maxlen=self.max_failures))
            times.append(now)
            self._failures.move_to_end(key)
        while len(self._failures) > MAX_KEYS:
            self._failures.popitem(last=False)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)


LOGIN_LIMIT = web.AppKey("login_limit", LoginLimiter)  # shared by the two forms


@dataclass(frozen=True)
class LoginForm:
    """What differs between the two forms."""

    name: str  # for the log: "agent desktop", "ops"
    page: Callable[[str, int], web.Response]  # the form again, with an error and a status
    cookie: str
    cookie_path: str
    home: str  # where a successful login goes
    allowed: Callable[[web.Request, str], bool] = lambda _request, _user: True
    not_allowed: str = ""  # the error for a right password without the role


def install(app: web.Application) -> None:
    """Called by each page's ``setup`` that has a login form (after ``SETTINGS`` is set): the
    first makes the limiter both forms share."""
    if LOGIN_LIMIT not in app:
        settings = app[SETTINGS].handoff
        app[LOGIN_LIMIT] = LoginLimiter(settings.login_max_failures, settings.login_window_s)


async def form_login(request: web.Request, form: LoginForm) -> web.Response:
    """Check ``agent`` and ``password`` of a posted form: 429 with ``Retry-After`` while rate
    limited, 401 for a wrong password, 403 without the role, else the signed cookie and a
    redirect to ``form.home``."""
    settings = request.app[SETTINGS].handoff
    data = await request.post()
    user, password = str(data.get("agent", "")).strip(), str(data.get("password", ""))
    limiter = request.app[LOGIN_LIMIT]
    keys = (f"agent:{user[:64]}", f"ip:{request.remote or '-'}")
    wait = limiter.retry_after(*keys)
    if wait > 0:
        log.warning("%s login for %r rate limited (%d s)", form.name, user[:32], wait)
        response = form.page(f"登录失败次数过多，请{max(1, (wait + 59) // 60)}分钟后再试。", 429)
        response.headers["Retry-After"] = str(wait)
        return response
    if not check_password(settings, user, password):
        limiter.failed(*keys)
        log.info("%s login refused for %r", form.name, user[:32])
        return form.page("工号或密码错误，请重新输入。", 401)
    limiter.succeeded(keys[0])
    if not form.allowed(request, user):
        return form.page(form.not_allowed, 403)
    response = web.HTTPSeeOther(form.home)
    # production sits behind TLS (README, Security): the cookie never travels in clear
    secure = request.app[SETTINGS].env == "production"
    response.set_cookie(form.cookie, make_cookie(settings, user), httponly=True,
                        samesite="Strict", max_age=int(settings.session_hours * 3600),
                        path=form.cookie_path, secure=secure)
    raise response
