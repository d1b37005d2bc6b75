"""Calls left behind by a server process that died: which channels they are, and holding them.

A server killed mid-call leaves its callers parked in our Stasis application, hearing nothing.
``is_orphan`` is the one test of such a channel (answered, in Stasis with our application, not
a media channel of ours). ``hold_orphans`` runs first thing when ``ivr up`` starts on an
Asterisk it does not manage, before the seconds of loading models: every orphan gets music on
hold, so the restart is heard as a wait, not as a dead line. The call
manager then adopts each one (``CallManager.adopt_orphans``): hold off, an apology, the call
resumed at its question from Redis.
"""

from __future__ import annotations

import logging

import aiohttp

from ivr.core.config import AsteriskSettings
from ivr.telephony.ari.client import AriClient, AriError
from ivr.telephony.ari.events import ChannelInfo
from ivr.telephony.media.external import is_media_channel

log = logging.getLogger("ivr.calls.orphans")


def is_orphan(info: ChannelInfo, app: str) -> bool:
    """A caller's channel parked in our Stasis application (whether or not a session has it)."""
    return (info.app_name == "Stasis" and info.app_data.split(",")[0] == app
            and info.state == "Up" and not is_media_channel(info.name))


async def hold_orphans(settings: AsteriskSettings, *, timeout_s: float = 2.0) -> int:
    """Music on hold for every orphaned caller: run by a server process before it connects,
    so every caller parked in the application is one it will adopt. (Asterisk keeps reporting
    an application whose websocket is gone while it has channels, so that cannot be asked.)
    Never raises: Asterisk away or slow just means nothing to hold."""
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s))
    ari = AriClient(settings, http)
    held = 0
    try:
        for info in await ari.channels():
            if is_orphan(info, ari.app):
                try:
                    await ari.start_moh(info.id)
                    held += 1
                except AriError as exc:  # hung up meanwhile
                    log.info("could not hold channel %s: %s", info.id, exc)
    except (AriError, aiohttp.ClientError, TimeoutError, OSError) as exc:
        log.info("no orphaned calls held (%s)", exc)
    finally:
        await http.close()
    if held:
        log.warning("%d callers left by a previous server process hear music on hold until "
                    "they are resumed", held)
    return held
