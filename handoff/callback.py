"""The callback offer (回电): instead of an endless wait in an agent queue, the caller may ask to
be called back; the request is stored as a callback task (``callback_tasks``).

Business rules only; no protocol here. The session (``ivr.calls.session``) asks the channel for the
queue's load (``CallChannel.queue_load``: over ARI the app_queue functions
``QUEUE_MEMBER(queue,logged)`` and ``QUEUE_WAITING_COUNT(queue)``), asks ``CallbackPolicy.reason``
whether to offer; the offer itself (its prompts, key 1 or a spoken yes) is a dialog,
``dialog.callback``, which calls ``CallbackPolicy.book``.

The offer is made when no agent is logged into the target queue (``no_agent``) or when the
expected wait, ``(waiting + 1) * callback_avg_handle_s / logged``, passes
``callback_wait_limit_s`` (``wait_limit``). A load that cannot be read makes no offer (the
caller goes to the queue as before).
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from dataclasses import dataclass

from handoff.ticket_store import TicketStore
from ivr.core.config import HandoffSettings
from ivr.core.promtext import counter_lines
from ivr.core.storage.db import SessionFactory

log = logging.getLogger("handoff.callback")


@dataclass(frozen=True, slots=True)
class QueueLoad:
    queue: str
    logged: int  # agents logged into the queue
    waiting: int  # callers waiting in it now

    def expected_wait_s(self, avg_handle_s: float) -> float:
        if self.logged <= 0:
            return float("inf")
        return (self.waiting + 1) * avg_handle_s / self.logged


class CallbackPolicy:
    def __init__(self, settings: HandoffSettings, store: TicketStore) -> None:
        self.settings = settings
        self.store = store
        self.outcomes: Counter[str] = Counter()  # offered, booked, declined, failed
        self.key_timeout_s = settings.callback_key_timeout_s

    @property
    def enabled(self) -> bool:
        return self.settings.callback_offer

    def reason(self, load: QueueLoad | None) -> str | None:
        """``no_agent``, ``wait_limit`` or None (no offer: the caller queues)."""
        if load is None or not self.enabled:
            return None
        if load.logged <= 0:
            return "no_agent"
        if load.expected_wait_s(self.settings.callback_avg_handle_s) > \
                self.settings.callback_wait_limit_s:
            return "wait_limit"
        return None

    def reason_for(self, queue: str, logged: int, waiting: int) -> str | None:
        return self.reason(QueueLoad(queue, logged, waiting))

    async def book(self, *, call_id: uuid.UUID, handoff_id: str | None, caller: str, line: str,
                   queue: str, reason: str) -> int:
        """Store the callback task; returns its id (raises ``StorageError``)."""
        task_id = await self.store.add_callback(call_id=call_id, handoff_id=handoff_id,
                                                caller=caller, line=line, queue=queue,
                                                reason=reason)
        self.outcomes["booked"] += 1
        log.info("callback task %d booked for call %s (%s, %s)", task_id, call_id.hex[:8],
                 line, reason)
        return task_id

    def metrics_lines(self) -> list[str]:
        out = ["# TYPE ivr_callback_offers_total counter"]
        out += counter_lines("ivr_callback_offers_total", "outcome", self.outcomes,
                             ("offered", "booked", "declined", "failed"))
        return out


def callback_policy(sessions: SessionFactory, settings: HandoffSettings) -> CallbackPolicy | None:
    """The app's policy (None when ``handoff.callback_offer`` is off)."""
    return CallbackPolicy(settings, TicketStore(sessions)) if settings.callback_offer else None
