"""The FastAGI server: ``AGI(agi://host:port/hotline)`` runs the same call session as Stasis.

We read the AGI environment ourselves (panoramisk's reader loops for ever on a peer that
closes early) and use panoramisk's ``Request`` for the command framing; each request becomes an
``AgiChannel`` driven by a ``CallSession``. Sessions are owned here and cancelled on
stop (a cancelled AGI session sends the caller to the general queue, as over ARI). With an
``ears_factory`` (``ivr up`` passes the ARI listener's) callers may speak over AGI too: their
audio is tapped through ARI by the channel's unique id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from panoramisk.fast_agi import Application, Request

from ivr.calls.agi_channel import AgiChannel
from ivr.calls.session import CallLog, CallSession, Dialog, Ears, HandoffSink, Prompts
from ivr.core.config import AGISettings

log = logging.getLogger("ivr.calls")

ROUTE = "hotline"
HEADER_TIMEOUT_S = 5.0
DIGIT_SLICE_S = 0.2  # key waits while speech is heard too (ivr.calls.agi_channel)


class AgiServer:
    def __init__(
        self,
        settings: AGISettings,
        prompts: Prompts,
        journal: CallLog,
        dialog_factory: Callable[[], Dialog],
        *,
        sounds_subdir: str,
        no_input_timeout_s: float,
        interdigit_timeout_s: float,
        handoff: HandoffSink | None = None,
        ears_factory: Callable[[str], Ears | None] | None = None,
    ) -> None:
        self.settings = settings
        self.prompts = prompts
        self.journal = journal
        self.dialog_factory = dialog_factory
        self.sounds_subdir = sounds_subdir
        self.no_input_timeout_s = no_input_timeout_s
        self.interdigit_timeout_s = interdigit_timeout_s
        self.handoff = handoff
        self.ears_factory = ears_factory  # the caller's speech, by the channel's unique id
        self.app = Application(loop=asyncio.get_running_loop())  # holds encoding for Request
        self.sessions: set[asyncio.Task[Any]] = set()
        self.total_calls = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.settings.host,
                                                  self.settings.port)
        log.info("FastAGI listening on %s:%d (route /%s)", self.settings.host,
                 self.settings.port, ROUTE)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read the AGI environment (up to the blank line; a peer that stalls or closes first is
        dropped), then drive the call with panoramisk's ``Request`` framing."""
        task = asyncio.current_task()
        assert task is not None
        self.sessions.add(task)
        try:
            raw = await asyncio.wait_for(reader.readuntil(b"\n\n"), HEADER_TIMEOUT_S)
            headers = dict(
                line.split(": ", 1) for line in raw.decode("utf-8", "replace").splitlines()
                if ": " in line
            )
            script = headers.get("agi_network_script", "")
            if script != ROUTE:
                log.error("FastAGI request for unknown script %r (route is %r)", script, ROUTE)
                return
            await self._hotline(Request(self.app, headers, reader, writer))
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError) as exc:
            log.warning("FastAGI connection dropped before its environment: %r", exc)
        finally:
            self.sessions.discard(task)
            writer.close()

    async def _hotline(self, request: Any) -> None:
        channel = AgiChannel(request, self.sounds_subdir)
        self.total_calls += 1
        ears = self.ears_factory(channel.channel_id) if self.ears_factory and \
            channel.channel_id else None
        if ears is not None:
            channel.digit_slice_s = DIGIT_SLICE_S
        session = CallSession(
            channel,
            self.dialog_factory(),
            self.prompts,
            self.journal,
            no_input_timeout_s=self.no_input_timeout_s,
            interdigit_timeout_s=self.interdigit_timeout_s,
            handoff=self.handoff,
            ears=ears,
        )
        await session.run()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self.sessions):
            task.cancel()
        await asyncio.gather(*self.sessions, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
