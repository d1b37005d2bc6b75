"""A call's channel over FastAGI: the session's ``CallChannel`` as AGI commands.

Framing (one command line out, one ``200 result=...`` line back) is panoramisk's ``Request``;
this module maps the session's needs onto AGI: ANSWER, STREAM FILE with escape digits (barge-in
by DTMF), WAIT FOR DIGIT, SET VARIABLE, GET FULL VARIABLE (the queue's load for the callback offer)
and HANGUP. A transfer sets ``IVR_TRANSFER`` (and
``IVR_HANDOFF_ID``) and ends the AGI; the dialplan then continues in ``[ivr-queues]``.

Speech over AGI: the caller's audio is tapped through ARI (a snoop of this channel, as for
Stasis calls; ``ivr.calls.agi_server``), so the session may wait for a key and for speech at once
and drop the key wait when the caller speaks. AGI answers commands strictly in order, so a command
is never abandoned half way: a cancelled command finishes in the background and the next one
waits for it, and with ``digit_slice_s`` set the wait for a question's first key is a series
of short WAIT FOR DIGITs (the reply to a caller who spoke waits at most one slice). Once a key
has come, the rest of the entry (card numbers, PINs) is read with whole WAIT FOR DIGITs until the
next prompt: a key pressed between two slices would be lost (Asterisk drops DTMF while no AGI
command runs), and a caller keying in a number is not speaking. A prompt over AGI is interrupted by
keys only (STREAM FILE cannot be stopped from outside); words said over it are still heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from pathlib import Path
from typing import Any, Protocol

from ivr.calls.session import CallerHungUp
from ivr.core.lines import queue_extension, queue_for

log = logging.getLogger("ivr.calls")

ESCAPE_DIGITS = "0123456789*#"
UNIQUEID = re.compile(r"[0-9]{1,20}\.[0-9]{1,10}")


class AgiError(RuntimeError):
    """Asterisk refused an AGI command (usage error, invalid command)."""


class AgiRequest(Protocol):
    headers: Any
    writer: Any  # the connection's asyncio.StreamWriter

    async def send_command(self, command: str) -> dict[str, Any]: ...


DTMF_KEYS = frozenset("0123456789*#ABCD")


def agi_key(result: int) -> str | None:
    """The key of an AGI digit result (its character code), or None: 0 (no key), -1 (hang-up)
    and any code that is not a DTMF key (a peer's nonsense never becomes a character)."""
    if 0 < result < 128 and chr(result) in DTMF_KEYS:
        return chr(result)
    return None


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _retrieve(task: asyncio.Task[tuple[str, str]]) -> None:
    """A command whose caller was cancelled: its outcome is not needed (CallerHungUp is seen
    again by the next command), only retrieved so asyncio does not report it."""
    if not task.cancelled():
        task.exception()


class AgiChannel:
    transport = "agi"

    def __init__(self, request: AgiRequest, sounds_subdir: str) -> None:
        self.request = request
        h = request.headers
        # Asterisk's unique id (1732480000.42): it names the call's Redis state and the ARI
        # snoop, so anything else a peer sends is refused (no id: keys only, no resume)
        uid = str(h.get("agi_uniqueid", ""))
        self.channel_id = uid if UNIQUEID.fullmatch(uid) else ""
        self.caller = str(h.get("agi_callerid", "")).replace("unknown", "")
        self.dialed = str(h.get("agi_extension", ""))
        self.sounds_subdir = sounds_subdir
        self.hung_up = False
        self.handed_back = False  # let go on purpose for another server (AgiServer.hand_back)
        self.transferred_to: str | None = None
        self.digit_slice_s: float | None = None  # set when speech is heard too (see above)
        self._keying = False  # a key came since the last prompt: whole waits
        self._inflight: asyncio.Task[tuple[str, str]] | None = None

    async def command(self, command: str) -> int:
        """Send one command; its numeric result. Raises CallerHungUp when the channel is gone.
        Cancelling the caller does not cancel the command (see the module's docstring)."""
        value, _ = await self._command(command)
        try:
            return int(value)
        except ValueError:
            return 0

    async def variable(self, expression: str) -> str:
        """The value of a dialplan expression (``GET FULL VARIABLE``); empty when unset."""
        _, data = await self._command(f"GET FULL VARIABLE {_quote(expression)}")
        return data

    async def _command(self, command: str) -> tuple[str, str]:
        previous = self._inflight
        if previous is not None and not previous.done():
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.shield(previous)
        if self.hung_up:
            raise CallerHungUp()
        task = self._inflight = asyncio.create_task(self._send(command), name="agi-command")
        task.add_done_callback(_retrieve)
        return await asyncio.shield(task)

    async def _send(self, command: str) -> tuple[str, str]:
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
        if isinstance(result, tuple):
            return str(result[0]), str(result[1] or "")
        return str(result), ""

    async def answer(self) -> None:
        await self.command("ANSWER")

    async def play(self, prompt: Path, *, interruptible: bool,
                   stop: asyncio.Event | None = None) -> str | None:
        """``stop`` is ignored: STREAM FILE stops for keys only (see the module's docstring)."""
        self._keying = False
        escape = ESCAPE_DIGITS if interruptible else ""
        result = await self.command(
            f"STREAM FILE {self.sounds_subdir}/{prompt.stem} {_quote(escape)}"
        )
        key = agi_key(result)
        self._keying = key is not None  # a key cut the prompt: the rest of the entry follows
        return key

    async def next_digit(self, timeout: float) -> str | None:
        if self.digit_slice_s is None or self._keying:
            result = await self.command(f"WAIT FOR DIGIT {max(1, int(timeout * 1000))}")
            return agi_key(result)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            result = await self.command(
                f"WAIT FOR DIGIT {max(1, int(min(left, self.digit_slice_s) * 1000))}")
            if (key := agi_key(result)) is not None:
                self._keying = True
                return key
        return None

    async def queue_load(self, line: str) -> tuple[str, int, int]:
        """(queue, agents logged in, callers waiting) of the queue for ``line``, read through
        app_queue's dialplan functions (as ``AriChannel.queue_load``): the callback offer."""
        queue = queue_for(line)
        logged = await self.variable(f"${{QUEUE_MEMBER({queue},logged)}}")
        waiting = await self.variable(f"${{QUEUE_WAITING_COUNT({queue})}}")
        return queue, int(logged or 0), int(waiting or 0)

    async def transfer(self, line: str, handoff_id: str) -> str:
        target = queue_extension(line)
        await self.command(f"SET VARIABLE IVR_HANDOFF_ID {_quote(handoff_id)}")
        await self.command(f"SET VARIABLE IVR_TRANSFER {_quote(target)}")
        self.transferred_to = target
        return queue_for(target)

    def hand_back(self) -> None:
        """Drop the connection to Asterisk without ending the call: the AGI returns with the
        channel neither transferred nor hung up, so the dialplan runs it again."""
        self.handed_back = True
        self.hung_up = True
        self.request.writer.transport.abort()

    async def hangup(self) -> None:
        if self.hung_up:
            return
        try:
            await self.command("HANGUP")
        except CallerHungUp:
            pass
        self.hung_up = True
