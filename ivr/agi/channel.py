"""A call's channel over FastAGI: the session's ``CallChannel`` as AGI commands.

Framing (one command line out, one ``200 result=...`` line back) is panoramisk's ``Request``;
this module maps the session's needs onto AGI: ANSWER, STREAM FILE with escape digits (barge-in
by DTMF), WAIT FOR DIGIT, SET VARIABLE and HANGUP. A transfer sets ``IVR_TRANSFER`` (and
``IVR_HANDOFF_ID``) and ends the AGI; the dialplan then continues in ``[ivr-queues]``.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Protocol

from ivr.ari.channel import QUEUES
from ivr.session import CallerHungUp

log = logging.getLogger("ivr.agi")

ESCAPE_DIGITS = "0123456789*#"


class AgiError(RuntimeError):
    """Asterisk refused an AGI command (usage error, invalid command)."""


class AgiRequest(Protocol):
    headers: Any

    async def send_command(self, command: str) -> dict[str, Any]: ...


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class AgiChannel:
    transport = "agi"

    def __init__(self, request: AgiRequest, sounds_subdir: str) -> None:
        self.request = request
        h = request.headers
        self.channel_id = str(h.get("agi_uniqueid", ""))
        self.caller = str(h.get("agi_callerid", "")).replace("unknown", "")
        self.dialed = str(h.get("agi_extension", ""))
        self.sounds_subdir = sounds_subdir
        self.hung_up = False
        self.transferred_to: str | None = None

    async def command(self, command: str) -> int:
        """Send one command; its numeric result. Raises CallerHungUp when the channel is gone."""
        if self.hung_up:
            raise CallerHungUp()
        try:
            reply = await self.request.send_command(command)
        except (ConnectionError, OSError, ValueError) as exc:
            # ValueError: panoramisk could not parse an empty line, i.e. Asterisk closed the AGI
            self.hung_up = True
            raise CallerHungUp() from exc
        error = reply.get("error")
        # 'HANGUP' line, result=-1 (hang-up or failure), 511 (dead channel): the call is gone
        if error in ("AGIResultHangup", "AGIAppError") or reply.get("status_code") == 511:
            self.hung_up = True
            raise CallerHungUp()
        if error:
            raise AgiError(f"{command.split()[0]}: {error}: {reply.get('msg', '')}".strip())
        result = reply.get("result") or ("0", "")
        try:
            return int(result[0] if isinstance(result, tuple) else result)
        except ValueError:
            return 0

    async def answer(self) -> None:
        await self.command("ANSWER")

    async def play(self, prompt: Path, *, interruptible: bool,
                   stop: asyncio.Event | None = None) -> str | None:
        """``stop`` is ignored: over AGI there is no caller audio to listen to (keys only)."""
        escape = ESCAPE_DIGITS if interruptible else ""
        result = await self.command(
            f"STREAM FILE {self.sounds_subdir}/{prompt.stem} {_quote(escape)}"
        )
        return chr(result) if result > 0 else None

    async def next_digit(self, timeout: float) -> str | None:
        result = await self.command(f"WAIT FOR DIGIT {max(1, int(timeout * 1000))}")
        return chr(result) if result > 0 else None

    async def transfer(self, line: str, handoff_id: str) -> str:
        target = line if line in QUEUES else "general"
        await self.command(f"SET VARIABLE IVR_HANDOFF_ID {_quote(handoff_id)}")
        await self.command(f"SET VARIABLE IVR_TRANSFER {_quote(target)}")
        self.transferred_to = target
        return QUEUES[target]

    async def hangup(self) -> None:
        if self.hung_up:
            return
        try:
            await self.command("HANGUP")
        except CallerHungUp:
            pass
        self.hung_up = True
