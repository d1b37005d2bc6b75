"""ARI wire events -> typed events. Dialog code never sees ARI JSON."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("ivr.telephony.ari")


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    id: str
    name: str = ""
    state: str = ""
    caller_number: str = ""
    caller_name: str = ""
    dialed: str = ""
    context: str = ""
    app_name: str = ""  # the dialplan application running now ("Stasis" while in ours)
    app_data: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChannelInfo:
        caller = data.get("caller") or {}
        dialplan = data.get("dialplan") or {}
        return cls(
            id=str(data.get("id", "")),
            name=str(data.get("name", "")),
            state=str(data.get("state", "")),
            caller_number=str(caller.get("number", "")),
            caller_name=str(caller.get("name", "")),
            dialed=str(dialplan.get("exten", "")),
            context=str(dialplan.get("context", "")),
            app_name=str(dialplan.get("app_name", "")),
            app_data=str(dialplan.get("app_data", "")),
        )


@dataclass(frozen=True, slots=True)
class AriEvent:
    type: str
    application: str = ""
    timestamp: str = ""


@dataclass(frozen=True, slots=True)
class StasisStart(AriEvent):
    channel: ChannelInfo = field(default_factory=lambda: ChannelInfo(""))
    args: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StasisEnd(AriEvent):
    channel_id: str = ""


@dataclass(frozen=True, slots=True)
class ChannelDtmf(AriEvent):
    channel_id: str = ""
    digit: str = ""
    duration_ms: int = 0


@dataclass(frozen=True, slots=True)
class ChannelHangup(AriEvent):
    """ChannelHangupRequest or ChannelDestroyed: the caller (or Asterisk) is gone."""

    channel_id: str = ""
    cause: int = 0
    cause_txt: str = ""


@dataclass(frozen=True, slots=True)
class PlaybackEvent(AriEvent):
    playback_id: str = ""
    target_uri: str = ""
    state: str = ""

    @property
    def channel_id(self) -> str:
        prefix = "channel:"
        return self.target_uri[len(prefix) :] if self.target_uri.startswith(prefix) else ""


@dataclass(frozen=True, slots=True)
class ChannelStateChange(AriEvent):
    channel: ChannelInfo = field(default_factory=lambda: ChannelInfo(""))


@dataclass(frozen=True, slots=True)
class OtherEvent(AriEvent):
    raw: dict[str, Any] = field(default_factory=dict)


class MalformedEvent(ValueError):
    """A websocket message that is not an ARI event."""


def parse_event(message: str | bytes | dict[str, Any]) -> AriEvent:
    """Parse one websocket message. Raises MalformedEvent (never anything else)."""
    try:
        data = message if isinstance(message, dict) else json.loads(message)
    except (ValueError, TypeError, RecursionError) as exc:  # RecursionError: deep nesting
        raise MalformedEvent(f"not JSON: {type(exc).__name__}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise MalformedEvent("no event type")
    try:
        return _build(data)
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError,
            RecursionError) as exc:  # ArithmeticError: int(1e400), an inf from the JSON
        raise MalformedEvent(f"{str(data.get('type'))[:40]}: {type(exc).__name__}") from exc


CHANNEL_EVENTS = frozenset(
    {
        "StasisStart",
        "StasisEnd",
        "ChannelDtmfReceived",
        "ChannelHangupRequest",
        "ChannelDestroyed",
        "ChannelStateChange",
    }
)


def _build(d: dict[str, Any]) -> AriEvent:
    kind = d["type"]
    base = {
        "type": kind,
        "application": str(d.get("application", "")),
        "timestamp": str(d.get("timestamp", "")),
    }
    chan: dict[str, Any] = d.get("channel") or {}
    if kind in CHANNEL_EVENTS and not chan.get("id"):
        raise ValueError("channel event without a channel id")
    if kind == "StasisStart":
        return StasisStart(
            **base,
            channel=ChannelInfo.from_json(chan),
            args=tuple(str(a) for a in d.get("args", [])),
        )
    if kind == "StasisEnd":
        return StasisEnd(**base, channel_id=str(chan["id"]))
    if kind == "ChannelDtmfReceived":
        return ChannelDtmf(
            **base,
            channel_id=str(chan["id"]),
            digit=str(d["digit"]),
            duration_ms=int(d.get("duration_ms", 0)),
        )
    if kind in ("ChannelHangupRequest", "ChannelDestroyed"):
        return ChannelHangup(
            **base,
            channel_id=str(chan["id"]),
            cause=int(d.get("cause", 0)),
            cause_txt=str(d.get("cause_txt", "")),
        )
    if kind in ("PlaybackStarted", "PlaybackFinished", "PlaybackContinuing"):
        pb = d["playback"]
        return PlaybackEvent(
            **base,
            playback_id=str(pb["id"]),
            target_uri=str(pb.get("target_uri", "")),
            state=str(pb.get("state", "")),
        )
    if kind == "ChannelStateChange":
        return ChannelStateChange(**base, channel=ChannelInfo.from_json(chan))
    return OtherEvent(**base, raw=d)


def channel_id_of(event: AriEvent) -> str:
    """The channel an event is about ("" when it is about none: bridges, endpoints...)."""
    if isinstance(event, StasisStart | ChannelStateChange):
        return event.channel.id
    if isinstance(event, StasisEnd | ChannelDtmf | ChannelHangup | PlaybackEvent):
        return event.channel_id
    return ""
