"""The one call assembly: every session (ARI inbound, FastAGI, survey, web chat) is built here.

Before, three modules built ``CallSession`` themselves and drifted (FastAGI calls had no crash
resume and no callback offer). Now the transports differ only in their channel; the features
are decided once:

- **journal and timers** for every call;
- **state in Redis** (``StateStore``) for every call whose dialog can snapshot itself, so a
  restarted server resumes it at its question (``restore``: ARI calls adopted from Stasis,
  FastAGI calls when the dialplan runs the AGI again after a dropped connection);
- **the screen pop** (``HandoffSink``) and **the callback offer** (``CallbackOffer``) for calls
  that may go to an agent (inbound); a survey never transfers, so it gets neither;
- **a web chat** (``chat_session``) gets the journal and the screen pop; its state lives with
  its connection (``ivr.calls.chathub``), not in Redis;
- **ears** (speech) whenever a recogniser is loaded: the caller's audio is tapped through ARI by
  the channel's id, whichever transport carries the call.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ivr.calls.chat import ChatChannel
from ivr.calls.chat_session import ChatSession
from ivr.calls.session import (
    CallbackOffer,
    CallChannel,
    CallLog,
    CallSession,
    Dialog,
    Ears,
    HandoffSink,
    Prompts,
    StateStore,
)
from ivr.telephony.ari.client import AriClient

log = logging.getLogger("ivr.calls.factory")

EarsFactory = Callable[[AriClient, str], Ears | None]  # (ARI client, channel id) -> ears


class SavedState(StateStore, Protocol):
    """A ``StateStore`` that can also read a call's last snapshot back (``CallStateStore``)."""

    async def load(self, channel_id: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class Restored:
    """A call found in Redis: its dialog as it was, and its call id (one journal row)."""

    dialog: Dialog
    call_id: uuid.UUID


@dataclass
class CallFactory:
    prompts: Prompts
    journal: CallLog
    no_input_timeout_s: float
    interdigit_timeout_s: float
    state: SavedState | None = None
    handoff: HandoffSink | None = None
    callbacks: CallbackOffer | None = None  # the callback offer before a queue
    ears_factory: EarsFactory | None = None
    # the inbound dialog, new or from a snapshot (None: no resume)
    dialog_factory: Callable[[], Dialog] | None = None
    dialog_restorer: Callable[[dict[str, Any]], Dialog] | None = None

    def ears(self, ari: AriClient | None, channel_id: str) -> Ears | None:
        """The caller's speech on ``channel_id`` (None: keys only)."""
        if self.ears_factory is None or ari is None or not channel_id:
            return None
        return self.ears_factory(ari, channel_id)

    def new_dialog(self) -> Dialog:
        if self.dialog_factory is None:
            raise RuntimeError("this call factory has no inbound dialog")
        return self.dialog_factory()

    async def restore(self, channel_id: str) -> Restored | None:
        """The dialog saved for ``channel_id`` by a session that did not end (the server died
        mid-call), or None. An unusable snapshot is logged and ignored (the call starts over)."""
        if self.state is None or self.dialog_restorer is None or not channel_id:
            return None
        try:
            saved = await self.state.load(channel_id)
        except Exception as exc:  # Redis down: the caller starts over rather than waits
            log.warning("call state of %s unreadable (%s): starting over", channel_id,
                        type(exc).__name__)
            return None
        if saved is None:
            return None
        try:
            return Restored(self.dialog_restorer(dict(saved.get("dialog") or {})),
                            uuid.UUID(str(saved.get("call_id"))))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("call state of %s unusable (%s): starting over", channel_id, exc)
            return None

    def session(self, channel: CallChannel, dialog: Dialog, *, ari: AriClient | None = None,
                call_id: uuid.UUID | None = None, resumed: bool = False,
                inbound: bool = True, shed: bool = False) -> CallSession:
        """A session for ``channel``. ``ari``: the client whose snoop taps the caller's audio;
        ``resumed``: already answered (a call picked up again, or a survey call answered by
        the dialer); ``inbound``: may go to an agent (screen pop, callback offer); ``shed``:
        a call beyond capacity (no ears, no callback offer: straight to the queue)."""
        return CallSession(
            channel, dialog, self.prompts, self.journal,
            no_input_timeout_s=self.no_input_timeout_s,
            interdigit_timeout_s=self.interdigit_timeout_s,
            state=self.state,
            call_id=call_id,
            resumed=resumed,
            handoff=self.handoff if inbound else None,
            callbacks=self.callbacks if inbound and not shed else None,
            ears=None if shed else self.ears(ari, channel.channel_id),
        )

    def chat_session(self, channel: ChatChannel, dialog: Dialog) -> ChatSession:
        """A web chat's session: journal and screen pop; no speech, no callback offer (the
        chat waits for an agent itself), no Redis state (the chat lives in this process)."""
        return ChatSession(channel, dialog, self.prompts, self.journal, handoff=self.handoff)
