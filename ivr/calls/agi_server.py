"""Calls over FastAGI: ``AGI(agi://host:port/hotline)`` runs the same call session as Stasis.

Each request for the ``hotline`` route becomes an ``AgiChannel`` driven by a session from the
one call assembly (``ivr.calls.factory``), so FastAGI calls get what ARI calls get: the screen
pop, the callback offer, speech (the caller's audio tapped through ARI by the channel's unique
id) and **crash resume**. A session that ends normally leaves the channel transferred
(``IVR_TRANSFER``) or hung up; when the server dies mid-call the AGI ends with neither, and the
dialplan (``asterisk/conf/extensions.conf``, 956101) runs the AGI again a few times: the
server that answers finds the call's last snapshot in Redis by its unique id and resumes it at
its question, without answering or greeting again. The listener itself
(``ivr.telephony.agi``) only frames; a cancelled session sends the caller to the general queue,
while ``hand_back`` lets every call go to be resumed (its state kept, its record left open).
"""

from __future__ import annotations

import logging
from typing import Any

from ivr.calls.agi_channel import AgiChannel
from ivr.calls.factory import CallFactory
from ivr.core.config import AGISettings
from ivr.telephony.agi import FastAgiServer
from ivr.telephony.ari.client import AriClient

log = logging.getLogger("ivr.calls.agi")

ROUTE = "hotline"
DIGIT_SLICE_S = 0.2  # key waits while speech is heard too (ivr.calls.agi_channel)


class AgiServer:
    def __init__(self, settings: AGISettings, calls: CallFactory, *, sounds_subdir: str,
                 ari: AriClient | None = None) -> None:
        self.settings = settings
        self.calls = calls
        self.sounds_subdir = sounds_subdir
        self.ari = ari  # taps the caller's audio for speech (None: keys only)
        self.listener: FastAgiServer | None = None
        self.total_calls = 0
        self.resumed_calls = 0
        self.channels: set[AgiChannel] = set()  # the calls in progress

    async def start(self) -> None:
        self.listener = FastAgiServer(self.settings.host, self.settings.port, ROUTE,
                                      self._hotline, allow_from=self.settings.allow_from)
        await self.listener.start()

    async def _hotline(self, request: Any) -> None:
        channel = AgiChannel(request, self.sounds_subdir)
        self.total_calls += 1
        saved = await self.calls.restore(channel.channel_id)
        if saved is not None:
            self.resumed_calls += 1
            log.info("resuming FastAGI call %s from its saved state", channel.channel_id)
        session = self.calls.session(
            channel, saved.dialog if saved is not None else self.calls.new_dialog(),
            ari=self.ari, call_id=saved.call_id if saved is not None else None,
            resumed=saved is not None)
        if session.ears is not None:
            channel.digit_slice_s = DIGIT_SLICE_S
        self.channels.add(channel)
        try:
            await session.run()
        finally:
            self.channels.discard(channel)

    def hand_back(self) -> int:
        """Let go of every call in progress, each left in Redis at its question: the dialplan
        runs the AGI again and whichever server answers resumes it (a server that hands its
        calls to another before it stops, and the drill that proves it). Returns how many."""
        channels = list(self.channels)
        for channel in channels:
            channel.hand_back()
        return len(channels)

    async def stop(self) -> None:
        if self.listener is not None:
            await self.listener.stop()
