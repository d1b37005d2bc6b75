"""Routes ARI events to calls: one session task per channel, all owned and cancelled here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ivr.ari.channel import AriChannel
from ivr.ari.client import AriClient
from ivr.ari.events import (
    AriEvent,
    ChannelDtmf,
    ChannelHangup,
    PlaybackEvent,
    StasisEnd,
    StasisStart,
)
from ivr.session import CallLog, CallSession, Dialog, Prompts

log = logging.getLogger("ivr.calls")


class CallManager:
    def __init__(
        self,
        ari: AriClient,
        prompts: Prompts,
        journal: CallLog,
        dialog_factory: Callable[[], Dialog],
        *,
        sounds_subdir: str,
        no_input_timeout_s: float,
        interdigit_timeout_s: float,
    ) -> None:
        self.ari = ari
        self.prompts = prompts
        self.journal = journal
        self.dialog_factory = dialog_factory
        self.sounds_subdir = sounds_subdir
        self.no_input_timeout_s = no_input_timeout_s
        self.interdigit_timeout_s = interdigit_timeout_s
        self.channels: dict[str, AriChannel] = {}
        self.tasks: dict[str, asyncio.Task[object]] = {}
        self.total_calls = 0
        self.outcomes: dict[str, int] = {}

    @property
    def active(self) -> int:
        return len(self.tasks)

    async def on_event(self, event: AriEvent) -> None:
        if isinstance(event, StasisStart):
            self._start(event)
            return
        channel_id = ""
        if isinstance(event, ChannelDtmf | ChannelHangup | StasisEnd):
            channel_id = event.channel_id
        elif isinstance(event, PlaybackEvent):
            channel_id = event.channel_id
        channel = self.channels.get(channel_id)
        if channel is None:
            return
        if isinstance(event, StasisEnd):
            # the channel left our app (transferred or hung up): nothing more to wait for
            channel.feed(ChannelHangup(type="StasisEnd", channel_id=channel_id))
            return
        channel.feed(event)

    def _start(self, event: StasisStart) -> None:
        info = event.channel
        if info.id in self.channels:
            return
        channel = AriChannel(self.ari, info, self.sounds_subdir)
        session = CallSession(
            channel,
            self.dialog_factory(),
            self.prompts,
            self.journal,
            no_input_timeout_s=self.no_input_timeout_s,
            interdigit_timeout_s=self.interdigit_timeout_s,
        )
        self.channels[info.id] = channel
        task = asyncio.create_task(session.run(), name=f"call-{info.id}")
        self.tasks[info.id] = task
        self.total_calls += 1

        def done(t: asyncio.Task[object], channel_id: str = info.id) -> None:
            self.channels.pop(channel_id, None)
            self.tasks.pop(channel_id, None)
            if not t.cancelled() and t.exception() is None:
                outcome = getattr(t.result(), "outcome", "unknown")
                self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

        task.add_done_callback(done)

    async def on_connection(self, connected: bool) -> None:
        if connected:
            return
        # Asterisk went away: its channels are gone with it
        for channel_id, channel in list(self.channels.items()):
            channel.feed(ChannelHangup(type="AsteriskDisconnected", channel_id=channel_id))

    async def close(self) -> None:
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
