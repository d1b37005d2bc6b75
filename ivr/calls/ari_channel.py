"""A call's channel as the session sees it, implemented over ARI."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from pathlib import Path

import aiohttp

from ivr.calls.session import SPEECH, CallerHungUp
from ivr.core.lines import QUEUE_CONTEXT, queue_extension, queue_for
from ivr.telephony.ari.client import AriClient, AriError, ChannelGone
from ivr.telephony.ari.events import (
    AriEvent,
    ChannelDtmf,
    ChannelHangup,
    ChannelInfo,
    PlaybackEvent,
)

log = logging.getLogger("ivr.telephony.ari")

EVENT_QUEUE_SIZE = 128
STOP_POLL_S = 0.02  # how often a playing prompt checks for the caller's speech
PLAYBACK_CHECK_S = 1.0  # events maybe missed (ARI reconnected or down): ask Asterisk this often


class AriChannel:
    """Receives this channel's events (bounded queue: when full the oldest event is dropped;
    a hang-up is never lost because it also sets a flag) and performs the session's requests."""

    transport = "ari"
    direction = "inbound"  # the journal's; a survey call's channel says "outbound"

    def __init__(self, ari: AriClient, info: ChannelInfo, sounds_subdir: str) -> None:
        self.ari = ari
        self.info = info
        self.channel_id = info.id
        self.caller = info.caller_number
        self.dialed = info.dialed
        self.sounds_subdir = sounds_subdir
        self._events: asyncio.Queue[AriEvent] = asyncio.Queue(EVENT_QUEUE_SIZE)
        self.hung_up = asyncio.Event()
        self.handed_back = False  # let go on purpose for another worker (CallManager.hand_back)
        self.dropped_events = 0

    def feed(self, event: AriEvent) -> None:
        if isinstance(event, ChannelHangup):
            self.hung_up.set()
        if self._events.full():
            self._events.get_nowait()
            self.dropped_events += 1
            log.warning("channel %s: event queue full, dropped the oldest event", self.channel_id)
        self._events.put_nowait(event)

    def hand_back(self) -> None:
        """Let go of the call, still up, for the box's next worker to resume from Redis: the
        session ends as if hung up, keeping its state and its open record."""
        self.handed_back = True
        self.feed(ChannelHangup(type="HandedBack", channel_id=self.channel_id))

    async def _next_event(self, timeout: float | None) -> AriEvent | None:
        if self.hung_up.is_set() and self._events.empty():
            raise CallerHungUp()
        try:
            event = await asyncio.wait_for(self._events.get(), timeout)
        except TimeoutError:
            return None
        if isinstance(event, ChannelHangup):
            raise CallerHungUp()
        return event

    async def _rest(self, coro: object) -> None:
        try:
            await coro  # type: ignore[misc]
        except ChannelGone as exc:
            self.hung_up.set()
            raise CallerHungUp() from exc

    async def answer(self) -> None:
        await self._rest(self.ari.answer(self.channel_id))

    async def play(self, prompt: Path, *, interruptible: bool,
                   stop: asyncio.Event | None = None) -> str | None:
        """Play and wait for the end; a key (when ``interruptible``) or ``stop`` being set (the
        caller started talking) stops the playback at once."""
        playback_id = uuid.uuid4().hex
        media = f"sound:{self.sounds_subdir}/{prompt.stem}"
        epoch = self.ari.epoch
        await self._rest(self.ari.play(self.channel_id, media, playback_id))
        loop = asyncio.get_running_loop()
        next_check = loop.time() + PLAYBACK_CHECK_S
        while True:
            if stop is not None and stop.is_set():
                with contextlib.suppress(ChannelGone):
                    await self.ari.stop_playback(playback_id)
                return SPEECH
            event = await self._next_event(STOP_POLL_S if stop is not None else PLAYBACK_CHECK_S)
            if event is None:
                if loop.time() >= next_check and self._events_missed(epoch):
                    # the PlaybackFinished may have been lost with the websocket: ask
                    if not await self._playing(playback_id):
                        return None
                    next_check = loop.time() + PLAYBACK_CHECK_S
                continue
            if isinstance(event, PlaybackEvent) and event.playback_id == playback_id:
                if event.type == "PlaybackFinished":
                    if event.state == "failed":
                        log.error("playback of %s failed on %s", media, self.channel_id)
                    return None
            elif isinstance(event, ChannelDtmf) and interruptible:
                with contextlib.suppress(ChannelGone):
                    await self.ari.stop_playback(playback_id)
                return event.digit

    def _events_missed(self, epoch: int) -> bool:
        return self.ari.epoch != epoch or not self.ari.connected.is_set()

    async def _playing(self, playback_id: str) -> bool:
        try:
            return await self.ari.playback_playing(playback_id)
        except (AriError, OSError, aiohttp.ClientError, TimeoutError):
            if self.hung_up.is_set():
                raise CallerHungUp() from None
            return True  # Asterisk cannot say yet: keep waiting (the outage limit ends it)

    async def next_digit(self, timeout: float) -> str | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            event = await self._next_event(left)
            if isinstance(event, ChannelDtmf):
                return event.digit
        return None

    async def queue_load(self, line: str) -> tuple[str, int, int]:
        """(queue, agents logged in, callers waiting) of the queue for ``line`` (app_queue's
        dialplan functions read through ARI); raises ``AriError`` when Asterisk cannot say."""
        queue = queue_for(line)
        logged = await self.ari.get_var(self.channel_id, f"QUEUE_MEMBER({queue},logged)")
        waiting = await self.ari.get_var(self.channel_id, f"QUEUE_WAITING_COUNT({queue})")
        return queue, int(logged or 0), int(waiting or 0)

    async def transfer(self, line: str, handoff_id: str) -> str:
        queue = queue_for(line)
        extension = queue_extension(line)
        await self._rest(self.ari.set_var(self.channel_id, "IVR_HANDOFF_ID", handoff_id))
        await self._rest(self.ari.continue_in_dialplan(self.channel_id, QUEUE_CONTEXT, extension))
        return queue

    async def hangup(self) -> None:
        with contextlib.suppress(ChannelGone):
            await self.ari.hangup(self.channel_id)
