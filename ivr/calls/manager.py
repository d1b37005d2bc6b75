"""Routes ARI events to calls: one session task per channel, all owned and cancelled here.

A drop of the ARI events websocket is not Asterisk gone: calls go on (their playbacks are
followed over REST meanwhile, ``ivr.calls.ari_channel``). When the websocket is back, the
channels Asterisk no longer has are ended (their hang-up was missed) and the rest continue where
they were. Only when it stays away longer than ``asterisk.ari_outage_s`` are its calls taken
for gone and ended. The outcome of every blip is counted (``ari_blips``).

Overload: with ``calls.capacity`` calls up, a new caller gets ``dialog.overload`` (an
announcement, then the general agent queue) instead of the bots and the recogniser; counted
in ``shed_calls``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import Coroutine
from typing import Any

import aiohttp

from dialog.overload import OverloadDialog
from ivr.calls.ari_channel import AriChannel
from ivr.calls.factory import CallFactory
from ivr.calls.orphans import is_orphan
from ivr.calls.queue_exit import QueueExit
from ivr.calls.router import ChannelRouter
from ivr.calls.session import (
    Dialog,
)
from ivr.telephony.ari.client import AriClient, AriError
from ivr.telephony.ari.events import (
    AriEvent,
    ChannelHangup,
    ChannelInfo,
    StasisStart,
)
from ivr.telephony.media.external import is_media_channel

log = logging.getLogger("ivr.calls.manager")


class CallManager:
    """Inbound calls over ARI: one session per channel, built by the call factory."""

    def __init__(self, ari: AriClient, calls: CallFactory, *, sounds_subdir: str,
                 outage_s: float = 20.0, capacity: int = 100) -> None:
        self.ari = ari
        self.capacity = capacity
        self.shed_calls = 0  # callers beyond capacity, sent straight to the general queue
        self.outage_s = outage_s
        self._outage: asyncio.Task[None] | None = None
        self.ari_blips: Counter[str] = Counter()  # calls_kept / calls_gone / outages
        self.calls = calls
        self.sounds_subdir = sounds_subdir
        self.resumed_calls = 0
        self._adoption: asyncio.Task[int] | None = None
        self.channels: dict[str, AriChannel] = {}
        self.router = ChannelRouter()  # this application's events to their calls
        self.tasks: dict[str, asyncio.Task[object]] = {}
        self.total_calls = 0
        self.outcomes: dict[str, int] = {}
        self.queue_exits: Counter[str] = Counter()  # callers back from a queue, by outcome

    @property
    def active(self) -> int:
        return len(self.tasks)

    async def on_event(self, event: AriEvent) -> None:
        if isinstance(event, StasisStart):
            self._start(event)
            return
        self.router.route(event)

    def _start(self, event: StasisStart) -> None:
        info = event.channel
        if info.id in self.channels or is_media_channel(info.name):
            return
        if event.args[:1] == ("queue-exit",):  # back from an agent queue (ivr/calls/queue_exit.py)
            self._own(info, QueueExit(self._channel(info), self.calls, event.args[1:],
                                      ari=self.ari, call_of=self._call_of).run(),
                      self.queue_exits)
            return
        if self.active >= self.capacity:
            self.shed_calls += 1
            log.warning("%d calls up (capacity %d): channel %s goes straight to an agent",
                        self.active, self.capacity, info.id)
            self._launch(info, OverloadDialog(self.active, self.capacity), shed=True)
            return
        self._launch(info, self.calls.new_dialog())

    def _channel(self, info: ChannelInfo) -> AriChannel:
        channel = AriChannel(self.ari, info, self.sounds_subdir)
        self.channels[info.id] = channel
        self.router.add(info.id, channel.feed)
        return channel

    def _own(self, info: ChannelInfo, coro: Coroutine[Any, Any, str],
             outcomes: Counter[str]) -> None:
        task: asyncio.Task[object] = asyncio.create_task(coro, name=f"call-{info.id}")
        self.tasks[info.id] = task

        def done(t: asyncio.Task[object], channel_id: str = info.id) -> None:
            self.channels.pop(channel_id, None)
            self.router.remove(channel_id)
            self.tasks.pop(channel_id, None)
            if not t.cancelled() and t.exception() is None:
                outcomes[str(t.result())] += 1

        task.add_done_callback(done)

    async def _call_of(self, handoff_id: str) -> uuid.UUID | None:
        """The original call of a handoff (its screen pop), for a callback task's link."""
        find = getattr(self.calls.handoff, "find_pop", None)
        pop = await find(handoff_id) if find is not None else None
        return uuid.UUID(str(pop.call_id)) if pop is not None else None

    def _launch(self, info: ChannelInfo, dialog: Dialog, *, call_id: uuid.UUID | None = None,
                resumed: bool = False, shed: bool = False) -> None:
        channel = self._channel(info)
        session = self.calls.session(channel, dialog, ari=self.ari, call_id=call_id,
                                     resumed=resumed, shed=shed)
        task = asyncio.create_task(session.run(), name=f"call-{info.id}")
        self.tasks[info.id] = task
        self.total_calls += 1

        def done(t: asyncio.Task[object], channel_id: str = info.id) -> None:
            self.channels.pop(channel_id, None)
            self.router.remove(channel_id)
            self.tasks.pop(channel_id, None)
            if not t.cancelled() and t.exception() is None:
                outcome = getattr(t.result(), "outcome", "unknown")
                self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

        task.add_done_callback(done)

    # ---- calls left behind by a previous server process ----------------------------------
    async def adopt_orphans(self) -> int:
        """Resume the calls still parked in our Stasis application that no session drives
        (the previous server process died mid-call): their music on hold stopped, from their
        Redis snapshot when there is one, else from the main menu, always with an apology
        first. Returns how many."""
        try:
            channels = await self.ari.channels()
        except (AriError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("could not list channels to resume orphaned calls: %s", exc)
            return 0
        adopted = 0
        for info in channels:
            if not is_orphan(info, self.ari.app) or info.id in self.channels:
                continue
            with contextlib.suppress(AriError, aiohttp.ClientError, TimeoutError):
                await self.ari.stop_moh(info.id)  # held while this server started (orphans.py)
            saved = await self.calls.restore(info.id)
            log.info("resuming orphaned call on channel %s (%s)", info.id,
                     "from its saved state" if saved is not None else "from the main menu")
            if saved is not None:
                self._launch(info, saved.dialog, call_id=saved.call_id, resumed=True)
            else:
                self._launch(info, self.calls.new_dialog(), resumed=True)
            adopted += 1
        self.resumed_calls += adopted
        return adopted

    async def on_connection(self, connected: bool) -> None:
        if connected:
            if self._outage is not None:
                self._outage.cancel()
                self._outage = None
                await self._reconcile()
            if self._adoption is None or self._adoption.done():
                self._adoption = asyncio.create_task(self.adopt_orphans(), name="adopt-orphans")
            return
        if self.channels and (self._outage is None or self._outage.done()):
            self._outage = asyncio.create_task(self._end_after_outage(), name="ari-outage")

    async def _end_after_outage(self) -> None:
        await asyncio.sleep(self.outage_s)
        log.warning("ARI away for %.0f s: Asterisk is taken for gone, ending %d calls",
                    self.outage_s, len(self.channels))
        self.ari_blips["outages"] += 1
        self._end(list(self.channels), "AsteriskDisconnected")

    async def _reconcile(self) -> None:
        """After a reconnect: end the calls whose channel Asterisk no longer has."""
        try:
            present = {info.id for info in await self.ari.channels()}
        except (AriError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("could not list channels after the reconnect: %s", exc)
            return
        gone = [cid for cid in self.channels if cid not in present]
        self.ari_blips["calls_gone"] += len(gone)
        self.ari_blips["calls_kept"] += len(self.channels) - len(gone)
        log.info("ARI back: %d calls go on, %d ended while it was away",
                 len(self.channels) - len(gone), len(gone))
        self._end(gone, "ChannelGoneDuringOutage")

    def _end(self, channel_ids: list[str], why: str) -> None:
        for channel_id in channel_ids:
            channel = self.channels.get(channel_id)
            if channel is not None:
                channel.feed(ChannelHangup(type=why, channel_id=channel_id))

    async def hand_back(self, *, wait_s: float = 5.0) -> int:
        """Let go of every call, each left in Redis at its question for whichever worker holds
        the box next (``ivr.calls.failover``: this worker lost the box's lease). Call after the
        events websocket is closed. A session that has not ended within ``wait_s`` is cancelled
        (its caller goes to the general queue). Returns how many calls were let go."""
        if self._outage is not None:
            self._outage.cancel()
        if self._adoption is not None:
            self._adoption.cancel()
        channels = list(self.channels.values())
        for channel in channels:
            channel.hand_back()
        tasks = list(self.tasks.values())
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=wait_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        return len(channels)

    async def close(self) -> None:
        if self._outage is not None:
            self._outage.cancel()
        if self._adoption is not None:
            self._adoption.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._adoption
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
