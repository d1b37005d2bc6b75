"""A script's login to the desk API: ``POST /api/session`` with a desk user's password, then
``Authorization: Bearer TOKEN`` on every request (the demo call, the handoff bench and the tests
use it; a browser uses the login form and its cookie instead).

Scripts know a password only in development, where the settings hold plain ones
(``dev_password``); in production they hold argon2 hashes and a script must be given one.
"""

from __future__ import annotations

import aiohttp

from ivr.core.config import Settings


class DeskLoginError(RuntimeError):
    pass


def dev_password(settings: Settings, user: str) -> str | None:
    """The plain development password of a desk user, or None (unknown, or a hash)."""
    secret = settings.handoff.agent_passwords.get(user)
    value = secret.get_secret_value() if secret is not None else ""
    return value if value and not value.startswith("$argon2") else None


async def desk_token(http: aiohttp.ClientSession, base_url: str, user: str,
                     password: str) -> str:
    async with http.post(f"{base_url}/api/session",
                         json={"agent": user, "password": password}) as r:
        body = await r.json(content_type=None)
        if r.status != 200:
            raise DeskLoginError(f"login as {user}: {r.status} {body.get('error', '')}")
        return str(body["token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def desk_headers(http: aiohttp.ClientSession, base_url: str, user: str,
                       password: str) -> dict[str, str]:
    """The bearer header of a new session for ``user``."""
    return bearer(await desk_token(http, base_url, user, password))


async def dev_desk_headers(http: aiohttp.ClientSession, settings: Settings,
                           user: str) -> dict[str, str]:
    """Log ``user`` into this settings' server with its development password."""
    password = dev_password(settings, user)
    if password is None:
        raise DeskLoginError(f"no development password for {user} (production settings?)")
    base = f"http://{settings.web.host}:{settings.web.port}"
    return await desk_headers(http, base, user, password)
