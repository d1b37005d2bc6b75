"""The bots' own conversation tests through the web chat's channel (``ivr bots test --channel
chat``): each turn goes in as a customer's chat message, button or typed number, through the
chat's session (``ivr.calls.chat_session``), and what the customer is shown comes back as the
actions the tests judge. The tests are the bots' files, unchanged; an expected reply is
compared as the chat shows it (``dialog.prompts.chat_text``)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Mapping
from typing import Any

from dialog.actions import Action, DialogEvent, Dtmf, Hangup, NoInput, Say, Transfer
from dialog.catalog import Catalog
from dialog.engine import ActionFn, DialogEngine
from dialog.prompts import chat_text
from ivr.calls.chat import ChatChannel, ChatRoom
from ivr.calls.chat_session import ChatSession

TURN_TIMEOUT_S = 15.0
NO_INPUT_S = 2.0  # a "(silence)" turn waits this long for the chat's no-input


class _NoJournal:
    def start(self, call_id: uuid.UUID, *, channel_id: str, caller: str, dialed: str,
              transport: str, direction: str = "inbound") -> None: ...
    def answered(self, call_id: uuid.UUID) -> None: ...
    def step(self, call_id: uuid.UUID, name: str, detail: dict[str, object]) -> None: ...
    def finish(self, call_id: uuid.UUID, outcome: str, *, queue: str | None = None,
               hangup_cause: str | None = None,
               figures: dict[str, Any] | None = None) -> None: ...


class _NoPrompts:
    async def get(self, text: str, prompt_id: str | None = None) -> Any:
        raise AssertionError("a chat renders no prompt")


class _Queue:
    """The agent queue as far as a test sees it: the line the chat went to."""

    def __init__(self, turned: asyncio.Event) -> None:
        self.turned = turned
        self.line: str | None = None

    def enqueue(self, room: ChatRoom, line: str, handoff_id: str) -> str:
        self.line = line
        self.turned.set()
        return line

    def customer_text(self, room: ChatRoom, text: str) -> None: ...
    def customer_typing(self, room: ChatRoom, on: bool) -> None: ...
    def customer_gone(self, room: ChatRoom, why: str) -> None: ...


class ChatDriver:
    """A ``dialog.testing.Driver`` over one web chat."""

    def __init__(self, catalog: Catalog, actions: Mapping[str, ActionFn]) -> None:
        self.engine = DialogEngine(catalog, actions)
        self.room = ChatRoom(resume_s=60.0, max_message_chars=500)
        self.turned = asyncio.Event()
        self.queue = _Queue(self.turned)
        channel = ChatChannel(self.room, no_input_s=NO_INPUT_S, queue=self.queue)
        self.session = ChatSession(channel, self.engine, _NoPrompts(), _NoJournal())
        self.shown: list[dict[str, Any]] = []
        self.room.attach(self._shown, 0)
        self.task: asyncio.Task[Any] | None = None

    def _shown(self, message: dict[str, Any]) -> bool:
        self.shown.append(message)
        if message["type"] in ("input", "ended"):
            self.turned.set()
        return True

    async def start(self) -> list[Action]:
        self.task = asyncio.create_task(self.session.run(), name="chat-test")
        return await self._turn()

    async def on_event(self, event: DialogEvent) -> list[Action]:
        if isinstance(event, Dtmf):
            kind = "key" if len(event.digits) == 1 else "digits"
            self.room.receive({"type": kind, kind: event.digits})
        elif not isinstance(event, NoInput):  # no input: the chat's own timeout answers
            self.room.receive({"type": "text", "text": event.text})
        return await self._turn()

    async def _turn(self) -> list[Action]:
        """What the customer was shown until the chat waits again (a question), went to the
        queue, or its session ended."""
        assert self.task is not None
        waiter = asyncio.ensure_future(self.turned.wait())
        done, _ = await asyncio.wait({waiter, self.task}, timeout=TURN_TIMEOUT_S,
                                     return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if not done:
            return [Say("(no reply from the chat)")]
        self.turned.clear()
        shown, self.shown = self.shown, []
        out: list[Action] = [Say(m["text"]) for m in shown
                             if m["type"] == "msg" and m["from"] == "bot"]
        if self.queue.line is not None:
            out.append(Transfer(self.queue.line, "chat"))
            self.queue.line = None
        elif self.task.done():
            out.append(Hangup(self.session.outcome))
        return out

    def bot(self) -> str | None:
        return self.engine.state.bot

    def expected(self, text: str) -> str:
        return chat_text(text)

    async def close(self) -> None:
        if self.task is not None and not self.task.done():
            self.room.finish("closing")
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
