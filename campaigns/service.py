"""The campaign dialer inside the server (``ivr up``): one cleanup context, registered with a
one-line hook in ivr/app/build.py after the calls context (it reuses the prompts, the call journal
and the listener of the inbound CallManager)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from campaigns.ariorigin import AriOriginator
from campaigns.dialer import Dialer
from campaigns.followup import SurveyFollowups
from dialog.backends.demo import demo_backends
from ivr.calls.manager import CallManager
from ivr.core.config import Settings
from ivr.core.storage.db import SessionFactory

log = logging.getLogger("campaigns.service")


def server_originator(manager: CallManager, sessions: SessionFactory,
                      settings: Settings) -> AriOriginator:
    """An originator using the server's prompts, call journal and listener (speech)."""
    return AriOriginator(
        settings.asterisk, sessions, manager.prompts, manager.journal,
        endpoint=settings.dialer.endpoint, ring_timeout_s=settings.dialer.ring_timeout_s,
        ears_factory=manager.ears_factory,
        no_input_timeout_s=settings.dialog.no_input_timeout_s,
        interdigit_timeout_s=settings.dialog.dtmf_interdigit_timeout_s,
        on_survey_end=survey_followups(sessions, settings))


def survey_followups(sessions: SessionFactory, settings: Settings) -> SurveyFollowups:
    """Low-score follow-up orders through the work-order adapter (the demo back end's table,
    as the inbound bots use)."""
    return SurveyFollowups(sessions, demo_backends(sessions).work_orders, settings.ops)


def dialer_context(settings: Settings) -> Callable[[web.Application], Any]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        from ivr.web.keys import CALLS, SESSIONS

        if not settings.dialer.in_server:
            yield
            return
        originator = server_originator(app[CALLS], app[SESSIONS], settings)
        try:
            await originator.start()
        except TimeoutError:
            log.warning("survey dialer: ARI not reachable yet; it keeps trying")
        dialer = Dialer(app[SESSIONS], originator, tick_s=settings.dialer.tick_s,
                        name="server-dialer")
        app[DIALER] = dialer
        task = asyncio.create_task(dialer.run(), name="campaign-dialer")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await originator.close()

    return ctx


DIALER = web.AppKey("campaign_dialer", Dialer)
