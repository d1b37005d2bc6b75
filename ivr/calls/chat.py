"""One web chat: its message history, its customer's connection and its transport for a session.

A chat is a call whose transport is text (``transport = "chat"``): the same dialog engine, the
same published bots, the same journal and screen pop. What this module decides:

- **History**: every message the customer sees gets a sequence number and is kept (the last
  ``HISTORY`` of them), so a browser that reconnects with its resume token and the last number
  it saw gets exactly what it missed. The customer's own entries are kept masked: a number
  field keeps its last four digits, a secret field (a PIN) none, free text its digit runs
  masked (``ivr.core.privacy``); a PIN is never echoed, logged or stored.
- **Input**: the customer's messages go to a bounded queue (``INBOX``); a message beyond it is
  refused (``too_fast``) rather than queued without bound. A menu becomes buttons: the options
  are read from the prompts' own "X请按N" phrases, so a bot's menu and its chat buttons cannot
  drift apart.
- **Absence**: a customer who goes away (reload, network blip) keeps the chat for
  ``resume_s``; a question's no-input timer runs only while they are connected. Past
  ``resume_s`` the chat ends as a customer hang-up.

``ChatChannel`` is the session's ``CallChannel``; ``ChatRoom`` is what the websocket (``ivr.web
.chat``) and the agent desk (``handoff.chatdesk``) talk to.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from dialog.actions import Collect, DialogEvent, Dtmf, NoInput, Utterance
from dialog.prompts import P
from ivr.calls.session import CallerHungUp
from ivr.core.handoff import CHAT_CHANNEL_PREFIX
from ivr.core.privacy import mask_digits_in_text

HISTORY = 500  # messages kept per chat (a replay gives at most these)
INBOX = 16  # customer messages waiting for the bot; beyond: refused (too_fast)
KEYS = frozenset("0123456789*#")
SECRET_ECHO = "••••••"
RATINGS = ((5, "非常满意"), (4, "满意"), (3, "一般"), (2, "不满意"), (1, "非常不满意"))
_MENU_OPTION = re.compile(r"([^，。；：！？,.;:!?“”\s]+?)请按(\d|星号键|井号键|[*#])")
_KEY_WORDS = {"星号键": "*", "井号键": "#"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

Message = dict[str, Any]
Send = Callable[[Message], bool]  # a connection's non-blocking sender: False = it gave up


class ChatQueue(Protocol):
    """Where a chat goes when the bot hands it to an agent (``handoff.chatdesk.ChatDesk``)."""

    def enqueue(self, room: ChatRoom, line: str, handoff_id: str) -> str: ...
    def customer_text(self, room: ChatRoom, text: str) -> None: ...
    def customer_typing(self, room: ChatRoom, on: bool) -> None: ...
    def customer_gone(self, room: ChatRoom, why: str) -> None: ...


def menu_buttons(texts: list[str]) -> list[dict[str, str]]:
    """The options prompts offer ("加油卡业务请按1": key 1, label 加油卡业务), first one kept."""
    out: dict[str, str] = {}
    for text in texts:
        for label, key in _MENU_OPTION.findall(text):
            key = _KEY_WORDS.get(key, key)
            label = label.removeprefix("或者").removeprefix("按键选择") or key
            out.setdefault(key, label)
    return [{"key": k, "label": v} for k, v in out.items()]


def clean_text(text: str, limit: int) -> str | None:
    """A customer's text as it may be kept: control characters dropped, trimmed; None when it
    is longer than ``limit`` characters (refused, not cut: a cut sentence misleads)."""
    text = _CONTROL.sub("", text).strip()
    return text if len(text) <= limit else None


def masked_entry(digits: str, entry: str) -> str:
    """What the customer's own typed number looks like in the history."""
    if entry == "secret":
        return SECRET_ECHO
    return "*" * max(0, len(digits) - 4) + digits[-4:]


class ChatRoom:
    """One chat's state, shared by its session, its connection(s) and the agent desk."""

    def __init__(self, *, resume_s: float, max_message_chars: int) -> None:
        self.chat_id = uuid.uuid4().hex
        self.token = secrets.token_urlsafe(24)  # the resume token: the chat's only credential
        self.channel_id = f"{CHAT_CHANNEL_PREFIX}{self.chat_id}"
        self.call_id: uuid.UUID | None = None
        self.resume_s = resume_s
        self.max_message_chars = max_message_chars
        self.created = time.monotonic()
        self.state = "bot"  # bot | queued | agent | ended
        self.line = ""
        self.handoff_id = ""
        self.agent = ""
        self.bot = ""  # the last bot that served the chat (reports)
        self.end_reason = ""
        self.ending = ""  # the customer ended the chat while the bot had it
        self.ended_at: float | None = None
        self.rating_asked = False
        self.rated = False
        self.seq = 0
        self.history: deque[Message] = deque(maxlen=HISTORY)
        self.inbox: asyncio.Queue[Message] = asyncio.Queue(INBOX)
        self.entry = ""  # the entry the bot waits for now ("", digits, secret)
        self.buttons: dict[str, str] = {}
        self.pending_texts: list[str] = []  # bot texts since the last question (menu buttons)
        self.queue: ChatQueue | None = None
        self.on_rating: Callable[[int], None] | None = None  # the hub records a rating
        self._send: Send | None = None
        self.connected = asyncio.Event()
        self.gone_since: float | None = time.monotonic()  # not yet connected

    # ---- connections -------------------------------------------------------------------
    def attach(self, send: Send, after: int) -> list[Message]:
        """A connection takes the chat over (a newer one replaces an older one); returns the
        messages after ``after`` to replay."""
        self._send = send
        self.gone_since = None
        self.connected.set()
        return [m for m in self.history if m["seq"] > after]

    def detach(self, send: Send) -> None:
        if self._send is send:
            self._send = None
            self.connected.clear()
            self.gone_since = time.monotonic()
            if self.queue is not None and self.state in ("queued", "agent"):
                self.queue.customer_typing(self, False)

    @property
    def is_connected(self) -> bool:
        return self._send is not None

    def absent_s(self) -> float:
        return 0.0 if self.gone_since is None else time.monotonic() - self.gone_since

    # ---- to the customer ---------------------------------------------------------------
    def post(self, kind: str, *, keep: bool = True, **fields: Any) -> Message:
        """Send a message to the customer; ``keep``: numbered and kept for replays."""
        message: Message = {"type": kind, **fields}
        if keep:
            self.seq += 1
            message["seq"] = self.seq
            self.history.append(message)
        self.push(message)
        return message

    def push(self, message: Message) -> None:
        send = self._send
        if send is not None and not send(message):
            self.detach(send)  # that connection fell behind and is closing: it replays later

    def say(self, text: str, who: str = "bot", **extra: Any) -> None:
        self.post("msg", **{"from": who, "text": text, **extra})
        if who == "bot":
            self.pending_texts.append(text)

    def ask(self, action: Collect) -> None:
        """Show what the bot waits for: buttons for a menu, a number or masked field."""
        entry = action.entry if action.entry in ("digits", "secret") else ""
        buttons = [] if entry else menu_buttons(self.pending_texts)
        self.pending_texts = []
        self.entry = entry
        self.buttons = {b["key"]: b["label"] for b in buttons}
        self.post("input", entry=entry or ("menu" if buttons else "text"),
                  max_digits=action.max_digits, buttons=buttons)

    # ---- from the customer -------------------------------------------------------------
    def receive(self, message: Message) -> str | None:
        """A customer's message; returns an error code for the customer, or None."""
        kind = message.get("type")
        if kind == "typing":
            if self.queue is not None and self.state == "agent":
                self.queue.customer_typing(self, bool(message.get("on")))
            return None
        if kind == "end":
            self.customer_ends("customer")
            return None
        if kind == "rate":
            return self._rate(message.get("score"))
        if kind == "text":
            text = clean_text(str(message.get("text", "")), self.max_message_chars)
            if text is None:
                return "too_long"
            if not text:
                return None
            message = {"type": "text", "text": text}
        elif kind == "key":
            if message.get("key") not in KEYS:
                return "bad_message"
            message = {"type": "key", "key": message["key"]}
        elif kind == "digits":
            digits = str(message.get("digits", ""))
            if not digits or len(digits) > 32 or not all(c in KEYS for c in digits):
                return "bad_message"
            message = {"type": "digits", "digits": digits}
        else:
            return "bad_message"
        if self.state == "bot":
            try:
                self.inbox.put_nowait(message)
            except asyncio.QueueFull:
                return "too_fast"
            self._echo(message)
        elif self.state in ("queued", "agent") and kind == "text":
            self._echo(message)
            if self.queue is not None:
                self.queue.customer_text(self, message["text"])
        return None

    def ask_rating(self) -> None:
        """The satisfaction question, once per chat (after the bot or the agent is done)."""
        if self.rating_asked or self.on_rating is None:
            return
        self.rating_asked = True
        self.post("rate", question=P["chat_rate"],
                  options=[{"score": s, "label": label} for s, label in RATINGS])

    def _rate(self, score: Any) -> str | None:
        if not self.rating_asked or self.rated:
            return "bad_message"
        if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 5:
            return "bad_message"
        self.rated = True
        self.post("rated", keep=False)
        if self.on_rating is not None:
            self.on_rating(score)
        return None

    def _echo(self, message: Message) -> None:
        """The customer's own entry, as kept (masked) for replays and the agent's history."""
        if message["type"] == "key":
            text = self.buttons.get(message["key"], message["key"])
        elif message["type"] == "digits":
            text = masked_entry(message["digits"], self.entry)
        elif self.entry == "secret" and self.state == "bot":
            text = SECRET_ECHO  # a PIN typed in the text box is a PIN
        else:
            text = mask_digits_in_text(message["text"])
        self.seq += 1
        self.history.append({"type": "msg", "seq": self.seq, "from": "me", "text": text})

    def customer_ends(self, why: str) -> None:
        """The customer ended the chat (the end button) or is gone for good."""
        if self.state == "bot":
            self.ending = why  # the session ends at its next step, whatever else was sent
            while not self.inbox.empty():
                self.inbox.get_nowait()
            self.inbox.put_nowait({"type": "end", "why": why})
        elif self.state in ("queued", "agent"):
            if self.queue is not None:
                self.queue.customer_gone(self, why)
            self.finish(why)

    def finish(self, reason: str) -> None:
        if self.state == "ended":
            return
        self.state = "ended"
        self.end_reason = reason
        self.ended_at = time.monotonic()
        self.post("ended", reason=reason)

    def history_for_agent(self) -> list[Message]:
        names = {"me": "customer"}
        return [{"seq": m["seq"], "from": names.get(m["from"], m["from"]), "text": m["text"]}
                for m in self.history if m["type"] == "msg"]


class ChatChannel:
    """The session's transport for a chat (``CallChannel`` plus ``show`` and ``next_input``)."""

    transport = "chat"

    def __init__(self, room: ChatRoom, *, no_input_s: float, queue: ChatQueue | None) -> None:
        self.room = room
        self.channel_id = room.channel_id
        self.caller = ""  # a web chat has no number; agents ask for one if they need it
        self.dialed = "chat"
        self.no_input_s = no_input_s
        self.queue = queue
        room.queue = queue

    async def answer(self) -> None:
        return None

    async def show(self, text: str) -> None:
        self.room.say(text)

    async def next_input(self, action: Collect) -> DialogEvent:
        """The customer's answer to ``action``; NoInput after ``no_input_s`` connected without
        one; CallerHungUp when they ended the chat or stayed away past ``resume_s``."""
        room = self.room
        if room.ending:
            raise CallerHungUp()
        room.ask(action)
        while True:
            if not room.is_connected:
                away = room.resume_s - room.absent_s()
                try:
                    await asyncio.wait_for(room.connected.wait(), max(0.0, away))
                except TimeoutError:
                    raise CallerHungUp() from None
            try:  # the question's clock starts again whenever they come back
                message = await asyncio.wait_for(room.inbox.get(), self.no_input_s)
            except TimeoutError:
                if room.is_connected:
                    return NoInput()
                continue  # they left while we waited: wait for them to come back
            if message["type"] == "end":
                raise CallerHungUp()
            if message["type"] == "text":
                return Utterance(message["text"], 1.0)
            return Dtmf(message.get("key") or message["digits"])

    async def play(self, prompt: Path, *, interruptible: bool,
                   stop: asyncio.Event | None = None) -> str | None:
        raise NotImplementedError("a chat shows text (show), it plays nothing")

    async def next_digit(self, timeout: float) -> str | None:
        raise NotImplementedError("a chat's input comes whole (next_input)")

    async def transfer(self, line: str, handoff_id: str) -> str:
        room = self.room
        if room.state == "ended" or room.ending:  # gone, expired or closing: no queue
            raise CallerHungUp()
        if self.queue is None:
            raise RuntimeError("no agent desk for chats")
        room.state = "queued"
        return self.queue.enqueue(room, line, handoff_id)

    async def hangup(self) -> None:
        return None  # the hub ends the room with the session's outcome
