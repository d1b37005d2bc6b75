"""The web chat part of the server: the chat hub on the one call assembly, the agent desk on
the handoff service, and ratings into the survey results (``campaigns.chatcsat``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from campaigns.chatcsat import ChatCsat
from handoff.chatdesk import ChatDesk
from ivr.calls.chathub import ChatHub
from ivr.core.config import Settings
from ivr.web.keys import (
    CALL_FACTORY,
    CHAT,
    CHAT_DESK,
    HANDOFF,
    JOURNAL,
    SESSIONS,
)

Part = Callable[[web.Application], AsyncIterator[None]]
Progress = Callable[[str], None]


def chat_part(settings: Settings, say: Progress) -> Part:
    async def part(app: web.Application) -> AsyncIterator[None]:
        c = settings.chat
        if not c.enabled:
            yield
            return
        handoff = app.get(HANDOFF)
        desk = ChatDesk(handoff.on_queue_event if handoff is not None else None,
                        words=handoff.add_caller_words if handoff is not None else None,
                        offer_timeout_s=c.offer_timeout_s, queue_timeout_s=c.queue_timeout_s,
                        journal=app[JOURNAL])
        desk.start()
        factory = app[CALL_FACTORY]  # the inbound dialog: the published bots, as for calls
        hub = ChatHub(factory, c, desk=desk, csat=ChatCsat(app[SESSIONS]),
                      dialog_factory=factory.new_dialog)
        hub.start()
        app[CHAT], app[CHAT_DESK] = hub, desk
        say(f"Web chat ready on /chat (up to {c.capacity} chats; agents on /agent)")
        yield
        await hub.close()
        await desk.close()
    return part
