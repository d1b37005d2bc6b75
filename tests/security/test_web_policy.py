"""Every route has a role policy, deny by default (security issue, items 2, 5 and 6).

On old main ``/api/calls`` and ``/metrics`` answered anyone, HTTP Basic was accepted everywhere
and bypassed the login limiter, the limiter locked every account of one address, logout left
the session valid, the ops role passed every ``/agent/api`` check, and no request was checked
for its origin. These tests walk the router and call every route over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from ivr.core.config import Settings
from ivr.sim.desk import bearer, desk_token
from ivr.web import policy, routes
from ivr.web.auth import COOKIE, PasswordBook, hash_password
from ivr.web.keys import SETTINGS
from ivr.web.login import LoginLimiter

session_loop = pytest.mark.asyncio(loop_scope="session")


def full_app(settings: Settings | None = None) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings or Settings()
    routes.setup(app)  # every page's routes, as the server adds them
    return app


def test_every_route_has_a_policy_and_every_policy_a_route() -> None:
    app = full_app()
    seen = set()
    missing = []
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue
        path = route.resource.canonical
        key = (route.method, policy._plain(path))
        seen.add(key)
        if policy.policy_for(route.method, path) is None:
            missing.append(f"{route.method} {path}")
    assert not missing, f"routes without a policy in ivr/web/policy.py: {missing}"
    stale = set(policy.ROLE_TABLE) - seen
    assert not stale, f"policies for routes that do not exist: {stale}"


@session_loop
async def test_a_route_without_a_row_is_refused() -> None:
    app = full_app()

    async def forgotten(_request: web.Request) -> web.Response:
        return web.Response(text="customers' numbers")

    app.router.add_get("/api/forgotten", forgotten)  # added without a row in the table
    srv = TestServer(app)
    await srv.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(_base(srv) + "/api/forgotten",
                                headers=await _login(srv, "agent2")) as r:
                assert r.status == 403 and "customers" not in await r.text()
    finally:
        await srv.close()


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[TestServer]:
    settings = Settings()
    settings.handoff.agent_roles["agent2"] = "admin"
    srv = TestServer(full_app(settings))
    await srv.start_server()
    yield srv
    await srv.close()


def _base(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


async def _login(server: TestServer, user: str) -> dict[str, str]:
    async with aiohttp.ClientSession() as http:
        return bearer(await desk_token(http, _base(server), user, f"{user}-desk-dev-secret"))


def _concrete(path: str) -> str:
    return (path.replace("{id}", "1").replace("{cid}", "1").replace("{entry_id}", "x")
            .replace("{handoff_id}", "h").replace("{action}", "start")
            .replace("{bot_id}", "fuel_balance").replace("{version}", "1"))


@session_loop
async def test_anonymous_requests_get_401_on_every_role_route(server: TestServer) -> None:
    async with aiohttp.ClientSession() as http:
        for (method, path), rule in policy.ROLE_TABLE.items():
            if rule.public:
                continue
            async with http.request(method, _base(server) + _concrete(path)) as r:
                assert r.status == 401, f"{method} {path}: {r.status}"


@session_loop
async def test_calls_and_metrics_are_closed(server: TestServer) -> None:
    """Item 2: /api/calls needs the ops role, /metrics the scrape token."""
    base = _base(server)
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "/api/calls", headers=await _login(server, "agent1")) as r:
            assert r.status == 403
        async with http.get(base + "/metrics", headers=bearer("wrong")) as r:
            assert r.status == 401
        async with http.get(base + "/metrics", headers=bearer("metrics-dev-secret")) as r:
            assert r.status == 200
        async with http.get(base + "/healthz") as r:
            assert r.status in (200, 503)  # public: the load balancer asks it


@session_loop
async def test_basic_auth_is_refused_everywhere(server: TestServer) -> None:
    """Item 5: a right password in an Authorization: Basic header opens nothing."""
    basic = {"Authorization": aiohttp.encode_basic_auth("agent1", "agent1-desk-dev-secret")}
    async with aiohttp.ClientSession() as http:
        for path in ("/agent/me", "/agent/api/callbacks", "/agent/api/kb/whoami"):
            async with http.get(_base(server) + path, headers=basic) as r:
                assert r.status == 401, path


@session_loop
async def test_the_limiter_locks_one_account_and_never_another(server: TestServer) -> None:
    """Item 5: guesses are limited per account (429 with Retry-After, even for the right
    password), and a guesser at one address does not lock out the agents beside them."""
    url = _base(server) + "/api/session"
    async with aiohttp.ClientSession() as http:
        statuses = []
        for _ in range(8):
            async with http.post(url, json={"agent": "agent3", "password": "guess"}) as r:
                statuses.append(r.status)
        assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
        async with http.post(url, json={"agent": "agent3",
                                        "password": "agent3-desk-dev-secret"}) as r:
            assert r.status == 429 and int(r.headers["Retry-After"]) > 0
        async with http.post(url, json={"agent": "agent1",
                                        "password": "agent1-desk-dev-secret"}) as r:
            assert r.status == 200  # same address, another account


def test_lock_grows_with_each_failure_after_it_and_a_success_clears_it() -> None:
    now = [0.0]
    limiter = LoginLimiter(3, 900.0, 60.0, 3600.0, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.retry_after("a") == 0
        limiter.failed("a")
    assert limiter.retry_after("a") == 60 and limiter.retry_after("b") == 0
    now[0] = 61.0
    limiter.failed("a")  # the next guess after the lock: twice as long
    assert limiter.retry_after("a") == 120
    now[0] = 182.0
    limiter.failed("a")
    assert limiter.retry_after("a") == 240
    for _ in range(20):
        limiter.failed("a")
    assert limiter.retry_after("a") <= 3600  # capped
    limiter.succeeded("a")
    assert limiter.retry_after("a") == 0
    limiter.failed("c")
    now[0] += 901.0  # quiet for the window: the count starts again
    limiter.failed("c")
    limiter.failed("c")
    assert limiter.retry_after("c") == 0


@session_loop
async def test_logout_revokes_the_session_server_side(server: TestServer) -> None:
    """Item 5: after logout the same token or cookie value opens nothing."""
    base = _base(server)
    async with aiohttp.ClientSession() as http:
        token = await _login(server, "agent1")
        async with http.get(base + "/agent/me", headers=token) as r:
            assert r.status == 200
        async with http.delete(base + "/api/session", headers=token) as r:
            assert r.status == 204
        async with http.get(base + "/agent/me", headers=token) as r:
            assert r.status == 401
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.post(base + "/agent/login", allow_redirects=False,
                             data={"agent": "agent1", "password": "agent1-desk-dev-secret"}) as r:
            assert r.status == 303
            cookie = r.cookies[COOKIE].value
            assert r.cookies[COOKIE]["httponly"] and r.cookies[COOKIE]["samesite"] == "Strict"
        async with http.post(base + "/agent/logout", allow_redirects=False,
                             headers={"Origin": base}) as r:
            assert r.status == 303
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "/agent/me", cookies={COOKIE: cookie}) as r:
            assert r.status == 401  # a copy of the old cookie is dead too


@session_loop
async def test_passwords_are_kept_as_argon2_hashes() -> None:
    """Item 5: plain passwords of the settings are hashed; a hash in the settings works."""
    settings = Settings()
    book = PasswordBook(settings.handoff)
    assert all(h.startswith("$argon2id$") for h in book._hashes.values())
    assert await book.verify("agent1", "agent1-desk-dev-secret")
    assert not await book.verify("agent1", "agent2-desk-dev-secret")
    assert not await book.verify("nobody", "agent1-desk-dev-secret")
    settings.handoff.agent_passwords["agent9"] = SecretStr(hash_password("agent9-own-password"))
    assert await PasswordBook(settings.handoff).verify("agent9", "agent9-own-password")


@session_loop
async def test_ops_stays_out_of_the_agent_desk(server: TestServer) -> None:
    """Item 6: the ops role lists no callbacks (customers' numbers), no pops, no knowledge."""
    ops = await _login(server, "ops1")
    base = _base(server)
    async with aiohttp.ClientSession() as http:
        for method, path in (("GET", "/agent/api/callbacks"),
                             ("POST", "/agent/api/callbacks/1/dial"),
                             ("GET", "/agent/api/kb/search"), ("GET", "/agent/api/tickets/h"),
                             ("GET", "/agent/ws")):
            async with http.request(method, base + path, headers=ops) as r:
                assert r.status == 403, path
        async with http.get(base + "/api/ops/campaigns", headers=await _login(server, "agent1")
                            ) as r:
            assert r.status == 403  # and agents stay out of operations
        async with http.get(base + "/agent/me", headers=ops) as r:
            assert (await r.json())["role"] == "ops"


@session_loop
async def test_cross_site_requests_are_refused(server: TestServer) -> None:
    """A state-changing request from another site, or a cookie request with no origin at all,
    never reaches a handler; the same site and bearer scripts do."""
    base = _base(server)
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.post(base + "/agent/login", allow_redirects=False,
                             headers={"Origin": "https://evil.example"},
                             data={"agent": "agent1", "password": "agent1-desk-dev-secret"}) as r:
            assert r.status == 403  # login CSRF
        async with http.post(base + "/agent/login", allow_redirects=False,
                             data={"agent": "agent1", "password": "agent1-desk-dev-secret"}) as r:
            assert r.status == 303
        close = base + "/agent/api/callbacks/1/close"
        for headers in ({"Origin": "https://evil.example"}, {"Referer": "http://evil/x"},
                        {"Origin": "null"}, {}):
            async with http.post(close, json={"status": "done"}, headers=headers) as r:
                assert r.status == 403, headers
        async with http.post(close, json={"status": "done"}, headers={"Origin": base}) as r:
            assert r.status == 503  # reached the handler: no database in this app
        async with http.get(base + "/agent/me") as r:
            assert r.status == 200  # reading needs no origin
