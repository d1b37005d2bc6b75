"""Asterisk REST Interface: typed events and a reconnecting client."""

from ivr.telephony.ari.client import AriClient, AriError, ChannelGone
from ivr.telephony.ari.events import (
    AriEvent,
    ChannelDtmf,
    ChannelHangup,
    ChannelInfo,
    MalformedEvent,
    PlaybackEvent,
    StasisEnd,
    StasisStart,
    parse_event,
)

__all__ = [
    "AriClient",
    "AriError",
    "AriEvent",
    "ChannelDtmf",
    "ChannelGone",
    "ChannelHangup",
    "ChannelInfo",
    "MalformedEvent",
    "PlaybackEvent",
    "StasisEnd",
    "StasisStart",
    "parse_event",
]
