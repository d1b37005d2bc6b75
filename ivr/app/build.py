"""The server: an aiohttp application whose cleanup contexts are the start-up parts.

The one composition root. ``build_app`` composes every part of ``ivr.app.parts`` in order
(``ivr up``, the benches and the test server all start through it); ``dialer_app`` composes
the few a dialer alone needs (``ivr campaigns run``). Web modules only register routes.
"""

from __future__ import annotations

import logging

from aiohttp import web

from ivr.app.chat import chat_part
from ivr.app.parts import (
    Part,
    Progress,
    asr_part,
    asterisk_part,
    bots_part,
    call_factory_part,
    calls_part,
    dialer_part,
    handoff_part,
    loop_lag_part,
    prompts_part,
    retention_part,
    storage_part,
)
from ivr.core.config import Settings
from ivr.core.production import check_production
from ivr.web import routes
from ivr.web.keys import SETTINGS

log = logging.getLogger("ivr.app.build")


def stack_parts(settings: Settings, say: Progress, *, start_asterisk: bool) -> list[Part]:
    """Every part of the server, in start order."""
    return [
        *([asterisk_part(settings, say)] if start_asterisk else []),
        storage_part(settings, say),
        handoff_part(settings, say),
        bots_part(settings, say),
        prompts_part(settings, say),
        asr_part(settings, say),
        call_factory_part(settings),
        calls_part(settings, say),
        chat_part(settings, say),  # the online channel (/chat), on the same call assembly
        dialer_part(settings, say),  # outbound surveys, when dialer.in_server
        retention_part(settings),  # daily purge of personal data past retention
        loop_lag_part(),  # the event loop's lateness, for /metrics
    ]


def chat_parts(settings: Settings, say: Progress) -> list[Part]:
    """A web-chat-only server (``ivr up --chat-only``): no Asterisk, TTS or ASR; the same
    storage, bots, journal, screen pops and agent desk."""
    return [
        storage_part(settings, say),
        handoff_part(settings, say, ami=False),
        bots_part(settings, say),
        call_factory_part(settings),
        chat_part(settings, say),
        loop_lag_part(),
    ]


def dialer_parts(settings: Settings, say: Progress, *, endpoint: str | None = None,
                 tick_s: float | None = None, keys_only: bool = False) -> list[Part]:
    """A survey dialer as its own process: storage, prompts, speech (unless ``keys_only``),
    the call assembly and the dialer."""
    return [
        storage_part(settings, say, redis=False),
        prompts_part(settings, say),
        *([] if keys_only else [asr_part(settings, say)]),
        call_factory_part(settings, inbound=False),
        dialer_part(settings, say, endpoint=endpoint, tick_s=tick_s, name="dialer",
                    enabled=True),
    ]


def build_app(
    settings: Settings, *, progress: Progress | None = None, start_asterisk: bool | None = None,
    chat_only: bool = False,
) -> web.Application:
    check_production(settings)  # env production: no secret anyone could know
    say = progress or (lambda m: log.info("%s", m))
    app = web.Application(client_max_size=routes.MAX_REQUEST_BYTES)
    app[SETTINGS] = settings
    run_asterisk = settings.asterisk.managed if start_asterisk is None else start_asterisk
    app.cleanup_ctx.extend(chat_parts(settings, say) if chat_only else
                           stack_parts(settings, say, start_asterisk=run_asterisk))
    routes.setup(app)
    return app


def parts_app(settings: Settings, parts: list[Part]) -> web.Application:
    """An application holding only ``parts`` (no routes): a tool's own stack."""
    app = web.Application()
    app[SETTINGS] = settings
    app.cleanup_ctx.extend(parts)
    return app
