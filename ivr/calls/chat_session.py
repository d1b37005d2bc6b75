"""A chat's session: the call session with text in place of prompts, speech and keys.

Everything a call's session decides holds for a chat (journal, screen pop, failover to the
general queue on an internal error, the path's masking); only two things differ: a prompt is
shown as text rather than played, and an answer comes whole (a message, a button, a typed
number) rather than as speech or digit by digit. A question's timeout is the chat's own
(``chat.no_input_s``): people type slower than they speak, and read while they do.
"""

from __future__ import annotations

from typing import Any

from dialog.actions import Collect, DialogEvent, Dtmf, NoInput, Say
from dialog.prompts import chat_text
from ivr.calls.chat import SECRET_ECHO, ChatChannel
from ivr.calls.session import CallLog, CallSession, Dialog, Prompts
from ivr.core.privacy import mask_digits_in_text


class ChatSession(CallSession):
    def __init__(self, channel: ChatChannel, dialog: Dialog, prompts: Prompts, journal: CallLog,
                 **options: Any) -> None:
        super().__init__(channel, dialog, prompts, journal,
                         no_input_timeout_s=channel.no_input_s, **options)
        self.chat = channel  # the channel as a chat (show, next_input)

    async def _say(self, action: Say) -> str | None:
        text = chat_text(action.text)  # as the customer reads it, in the path and the pop too
        self._step("say", prompt=action.prompt_id or "", text=text)
        await self.chat.show(text)
        return None  # nothing interrupts a text

    async def _collect(self, action: Collect, first: str | None) -> DialogEvent:
        event = await self.chat.next_input(action)
        if isinstance(event, NoInput):
            self._step("input_timeout", timeout_s=self.chat.no_input_s)
        elif isinstance(event, Dtmf):
            digits = event.digits
            self._step("dtmf", digits=digits if len(digits) <= 2 else f"<{len(digits)} digits>")
        else:
            secret = action.entry == "secret"
            self._step("chat", text=SECRET_ECHO if secret else mask_digits_in_text(event.text))
        return event
