"""Who is asking: desk passwords (argon2), server-side sessions, and the request's principal.

Decides:

- **Passwords** are checked against argon2id hashes (``argon2-cffi``). ``handoff.agent_passwords``
  holds either a hash (``$argon2id$...``, made by ``ivr secrets hash``; the only form the
  production profile accepts) or, in development, a plain password that is hashed in memory
  when the book is first used. An unknown login is checked against a dummy hash: the same work
  and time as a wrong password. Verification runs in a worker thread (it costs ~50 ms of CPU).
- **Sessions** are random tokens (32 bytes) kept server-side under their SHA-256, for
  ``handoff.session_hours``: in Redis when the app has one (shared by every web worker and kept
  over restarts), else in this process's memory (bounded, oldest dropped). Logout deletes the
  session, so a copied cookie or token stops working at once.
- A request carries its session in the ``ivr_session`` cookie (browsers: HttpOnly,
  SameSite=Strict, Secure in production) or as ``Authorization: Bearer TOKEN`` (scripts, from
  ``POST /api/session``). HTTP Basic is not accepted anywhere: a password travels only to the
  login routes, which are rate limited (``ivr.web.login``).
- A user's **role** is ``handoff.agent_roles[user]`` (``agent`` unless listed); a user whose
  password was removed from the settings loses every session at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ivr.core.config import HandoffSettings
from ivr.web.keys import REDIS, SETTINGS

COOKIE = "ivr_session"
SESSION_PREFIX = "ivr:session:"
MAX_MEMORY_SESSIONS = 10_000
HASH_PREFIX = "$argon2"


def is_hash(value: str) -> bool:
    return value.startswith(HASH_PREFIX)


def hash_password(password: str) -> str:
    """An argon2id hash for ``handoff.agent_passwords`` (``ivr secrets hash``)."""
    return PasswordHasher().hash(password)


@dataclass(frozen=True)
class Principal:
    """A logged-in desk user."""

    user: str
    role: str


class PasswordBook:
    """The desk logins of the settings, as argon2 hashes."""

    def __init__(self, settings: HandoffSettings) -> None:
        self._settings = settings
        self._hasher = PasswordHasher()

    @cached_property
    def _hashes(self) -> dict[str, str]:
        out = {}
        for user, secret in self._settings.agent_passwords.items():
            value = secret.get_secret_value()
            if value:
                out[user] = value if is_hash(value) else self._hasher.hash(value)
        return out

    @cached_property
    def _dummy(self) -> str:
        return self._hasher.hash(secrets.token_urlsafe(16))

    def _verify(self, user: str, password: str) -> bool:
        stored = self._hashes.get(user)
        try:
            return self._hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    async def verify(self, user: str, password: str) -> bool:
        return await asyncio.to_thread(self._verify, user, password)


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore:
    """Server-side sessions: Redis when the app has one (looked up per call: the Redis client
    is set during start-up, after the routes), else this process's memory."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._memory: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def _ttl_s(self) -> int:
        return max(60, int(self._app[SETTINGS].handoff.session_hours * 3600))

    async def create(self, user: str) -> str:
        token = secrets.token_urlsafe(32)
        redis = self._app.get(REDIS)
        if redis is not None:
            await redis.set(SESSION_PREFIX + _key(token), user, ex=self._ttl_s())
        else:
            self._memory[_key(token)] = (user, time.time() + self._ttl_s())
            while len(self._memory) > MAX_MEMORY_SESSIONS:
                self._memory.popitem(last=False)
        return token

    async def user_of(self, token: str) -> str | None:
        if not token or len(token) > 128:
            return None
        redis = self._app.get(REDIS)
        if redis is not None:
            value = await redis.get(SESSION_PREFIX + _key(token))
            if value is None:
                return None
            return value.decode() if isinstance(value, bytes) else str(value)
        entry = self._memory.get(_key(token))
        if entry is None or entry[1] < time.time():
            self._memory.pop(_key(token), None)
            return None
        return entry[0]

    async def revoke(self, token: str) -> None:
        redis = self._app.get(REDIS)
        if redis is not None:
            await redis.delete(SESSION_PREFIX + _key(token))
        self._memory.pop(_key(token), None)


PASSWORDS = web.AppKey("passwords", PasswordBook)
SESSION_STORE = web.AppKey("session_store", SessionStore)


def install(app: web.Application) -> None:
    """The password book and the session store (once per app; after ``SETTINGS`` is set)."""
    if PASSWORDS not in app:
        app[PASSWORDS] = PasswordBook(app[SETTINGS].handoff)
        app[SESSION_STORE] = SessionStore(app)


def presented_token(request: web.Request) -> tuple[str, str] | None:
    """``("bearer"|"cookie", token)`` of the request, or None. A bearer header wins."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return "bearer", header[7:].strip()
    cookie = request.cookies.get(COOKIE)
    return ("cookie", cookie) if cookie else None


async def authenticate(request: web.Request) -> Principal | None:
    presented = presented_token(request)
    if presented is None:
        return None
    user = await request.app[SESSION_STORE].user_of(presented[1])
    settings = request.app[SETTINGS].handoff
    if user is None or user not in settings.agent_passwords:
        return None
    return Principal(user, settings.agent_roles.get(user, "agent"))
