"""Agent desktop logins: one password per agent (``settings.handoff.agent_passwords``).

A desktop logs in with the form (``POST /agent/login``) and gets a signed cookie
(``agent|expiry`` + HMAC-SHA256 with ``settings.handoff.session_secret``; HttpOnly,
SameSite=Strict); scripts and tests may send HTTP basic auth instead. Passwords are compared in
constant time and never logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time

from aiohttp import web

from ivr.core.config import HandoffSettings

COOKIE = "ivr_agent"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(settings: HandoffSettings, payload: bytes) -> str:
    key = settings.session_secret.get_secret_value().encode()
    return _b64(hmac.new(key, payload, hashlib.sha256).digest())


def check_password(settings: HandoffSettings, agent: str, password: str) -> bool:
    secret = settings.agent_passwords.get(agent)
    if secret is None or not secret.get_secret_value():
        hmac.compare_digest(password.encode(), b"-")  # same work for unknown agents
        return False
    return hmac.compare_digest(password.encode(), secret.get_secret_value().encode())


def make_cookie(settings: HandoffSettings, agent: str, now: float | None = None) -> str:
    expires = int((now or time.time()) + settings.session_hours * 3600)
    payload = f"{agent}|{expires}".encode()
    return f"{_b64(payload)}.{_mac(settings, payload)}"


def agent_from_cookie(settings: HandoffSettings, value: str,
                      now: float | None = None) -> str | None:
    body, _, mac = value.partition(".")
    try:
        payload = _unb64(body)
    except (binascii.Error, ValueError):
        return None
    if not hmac.compare_digest(mac, _mac(settings, payload)):
        return None
    agent, _, expires = payload.decode(errors="replace").partition("|")
    if not expires.isdigit() or int(expires) < (now or time.time()):
        return None
    return agent if agent in settings.agent_passwords else None


def agent_role(settings: HandoffSettings, agent: str) -> str:
    """``agent``, ``reviewer`` or ``admin`` (``settings.handoff.agent_roles``)."""
    return settings.agent_roles.get(agent, "agent")


def authenticated_agent(request: web.Request, settings: HandoffSettings) -> str | None:
    """The agent of a valid basic-auth header or login cookie, else None."""
    header = request.headers.get("Authorization", "")
    if header[:6].lower() == "basic ":
        try:
            login, sep, password = base64.b64decode(header[6:].strip(), validate=True).decode(
                "utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return login if sep and check_password(settings, login, password) else None
    cookie = request.cookies.get(COOKIE)
    return agent_from_cookie(settings, cookie) if cookie else None
