"""AMI (Asterisk Manager Interface) over panoramisk: queue and agent events as typed events.

panoramisk owns framing and reconnects; this module turns its messages into ``QueueEvent``s and
hands them to subscribers through bounded queues (when a subscriber's queue is full, the oldest
event is dropped and counted).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from panoramisk import Manager

from ivr.core.config import AsteriskSettings

log = logging.getLogger("ivr.telephony.ami")

QUEUE_EVENTS = (
    "QueueCallerJoin",
    "QueueCallerLeave",
    "QueueCallerAbandon",
    "AgentCalled",
    "AgentConnect",
    "AgentComplete",
    "AgentRingNoAnswer",
)


@dataclass(frozen=True, slots=True)
class QueueEvent:
    kind: str
    queue: str
    channel: str
    uniqueid: str
    linkedid: str = ""
    member: str = ""  # the agent's interface for Agent* events
    variables: dict[str, str] = field(default_factory=dict)
    received_at: float = 0.0  # time.monotonic() when the event reached us (latency figures)
    hold_s: float | None = None  # AgentConnect / QueueCallerAbandon: seconds the caller waited


def to_queue_event(message: Any) -> QueueEvent | None:
    """A panoramisk message (dict-like) -> QueueEvent, or None when it is not one."""
    try:
        kind = str(message["Event"])
    except (KeyError, TypeError):
        return None
    if kind not in QUEUE_EVENTS:
        return None
    variables: dict[str, str] = {}
    raw_vars = message.get("ChanVariable")
    items = raw_vars if isinstance(raw_vars, list) else [raw_vars] if raw_vars else []
    for item in items:
        name, _, value = str(item).partition("=")
        variables[name] = value
    return QueueEvent(
        kind=kind,
        queue=str(message.get("Queue", "")),
        channel=str(message.get("Channel", "")),
        uniqueid=str(message.get("Uniqueid", "")),
        linkedid=str(message.get("Linkedid", "")),
        member=str(message.get("Interface", message.get("MemberName", ""))),
        variables=variables,
        received_at=time.monotonic(),
        hold_s=_seconds(message.get("HoldTime")),
    )


def _seconds(value: object) -> float | None:
    try:
        seconds = float(str(value))
    except ValueError:
        return None
    return seconds if 0 <= seconds < 10**7 else None  # nan, inf and nonsense are no wait


class AmiClient:
    def __init__(self, settings: AsteriskSettings) -> None:
        self.manager = Manager(
            host=settings.ami_host,
            port=settings.ami_port,
            username=settings.ami_user,
            secret=settings.ami_secret.get_secret_value(),
            ping_delay=10,
            reconnect_timeout=1,
        )
        self._subscribers: list[asyncio.Queue[QueueEvent]] = []
        self.dropped = 0
        for kind in QUEUE_EVENTS:
            self.manager.register_event(kind, self._on_event)

    async def connect(self) -> None:
        self.manager.loop = asyncio.get_running_loop()
        await self.manager.connect()

    async def wait_connected(self, timeout: float = 10.0) -> None:
        """Wait until AMI answers a Ping (panoramisk reconnects by itself after a restart)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if getattr(self.manager, "_connected", False) and self.manager.protocol is not None:
                try:
                    reply = await asyncio.wait_for(self.manager.send_action({"Action": "Ping"}), 2)
                except (TimeoutError, OSError, AttributeError):
                    reply = None
                if reply is not None and str(reply.get("Response", "")).lower() == "success":
                    return
            await asyncio.sleep(0.2)
        raise TimeoutError("AMI did not answer a Ping")

    def close(self) -> None:
        self.manager.close()

    def subscribe(self, maxsize: int = 256) -> asyncio.Queue[QueueEvent]:
        q: asyncio.Queue[QueueEvent] = asyncio.Queue(maxsize)
        self._subscribers.append(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[QueueEvent]) -> None:
        if q in self._subscribers:
            self._subscribers.remove(q)

    def _on_event(self, _manager: Manager, message: Any) -> None:
        event = to_queue_event(message)
        if event is None:
            return
        for q in self._subscribers:
            if q.full():
                q.get_nowait()
                self.dropped += 1
            q.put_nowait(event)
