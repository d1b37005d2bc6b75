"""The one ARI event router: an application's events to the calls that own their channels.

Each ARI application (the inbound ``ivr``, the survey dialer's ``ivr-survey``) has one router;
a call registers its channel with a sink and removes it when it ends. ``StasisEnd`` means the
channel left our application (transferred or hung up): the sink then gets a hang-up, so a
session waiting on the channel ends; a router made with ``stasis_end_hangs_up=False`` passes
it on as it is (the survey dialer, whose channels leave for ``AMD()`` and come back).
Events for channels nobody owns are dropped (counted).
"""

from __future__ import annotations

from collections.abc import Callable

from ivr.telephony.ari.events import AriEvent, ChannelHangup, StasisEnd, channel_id_of

Sink = Callable[[AriEvent], None]


class ChannelRouter:
    def __init__(self, *, stasis_end_hangs_up: bool = True) -> None:
        self._sinks: dict[str, Sink] = {}
        self.stasis_end_hangs_up = stasis_end_hangs_up
        self.unrouted = 0

    def __contains__(self, channel_id: str) -> bool:
        return channel_id in self._sinks

    def add(self, channel_id: str, sink: Sink) -> None:
        self._sinks[channel_id] = sink

    def remove(self, channel_id: str) -> None:
        self._sinks.pop(channel_id, None)

    def route(self, event: AriEvent) -> bool:
        """Deliver ``event`` to its channel's owner; False when nobody owns it."""
        channel_id = channel_id_of(event)
        sink = self._sinks.get(channel_id)
        if sink is None:
            self.unrouted += 1
            return False
        if isinstance(event, StasisEnd) and self.stasis_end_hangs_up:
            event = ChannelHangup(type="StasisEnd", channel_id=channel_id)
        sink(event)
        return True
