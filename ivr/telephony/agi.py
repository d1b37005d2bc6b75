"""The FastAGI listener: framing and connection only; what a request means is decided above.

We read the AGI environment ourselves (panoramisk's reader loops for ever on a peer that
closes early: a peer that stalls or closes before the blank line is dropped) and use
panoramisk's ``Request`` for the command framing. A request for our route goes to the
``handler`` (``ivr.calls.agi_server``); any other script is refused and its connection closed.
Only peers in ``allow_from`` (the Asterisk boxes) get a session; any other connection is
closed unread. Connections are owned here and cancelled on stop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from panoramisk.fast_agi import Application, Request

log = logging.getLogger("ivr.telephony.agi")

HEADER_TIMEOUT_S = 5.0

Handler = Callable[[Any], Awaitable[None]]  # a panoramisk ``Request``


class FastAgiServer:
    def __init__(self, host: str, port: int, route: str, handler: Handler, *,
                 allow_from: Sequence[str] = ("127.0.0.1/32", "::1/128")) -> None:
        self.allowed = [ipaddress.ip_network(net, strict=False) for net in allow_from]
        self.refused = 0  # connections from peers not allowed
        self.host = host
        self.port = port
        self.route = route
        self.handler = handler
        self.app = Application(loop=asyncio.get_running_loop())  # holds encoding for Request
        self.sessions: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None

    @property
    def bound_port(self) -> int:
        """The port listened on (``port`` 0 picks a free one)."""
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        log.info("FastAGI listening on %s:%d (route /%s)", self.host, self.port, self.route)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.sessions.add(task)
        try:
            if not self._allowed(writer.get_extra_info("peername")):
                self.refused += 1
                log.warning("FastAGI connection from %s refused (agi.allow_from)",
                            writer.get_extra_info("peername"))
                return
            raw = await asyncio.wait_for(reader.readuntil(b"\n\n"), HEADER_TIMEOUT_S)
            headers = dict(
                line.split(": ", 1) for line in raw.decode("utf-8", "replace").splitlines()
                if ": " in line
            )
            script = headers.get("agi_network_script", "")
            if script != self.route:
                log.error("FastAGI request for unknown script %r (route is %r)", script,
                          self.route)
                return
            await self.handler(Request(self.app, headers, reader, writer))
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError) as exc:
            log.warning("FastAGI connection dropped before its environment: %r", exc)
        finally:
            self.sessions.discard(task)
            writer.close()

    def _allowed(self, peer: object) -> bool:
        if not isinstance(peer, tuple) or not peer:
            return False
        try:
            address = ipaddress.ip_address(str(peer[0]).split("%")[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in net for net in self.allowed)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self.sessions):
            task.cancel()
        await asyncio.gather(*self.sessions, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
