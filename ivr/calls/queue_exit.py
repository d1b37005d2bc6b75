"""Callers who come back from an agent queue without an agent: never a silent hang-up.

The dialplan (``asterisk/conf/extensions.conf``) sends a caller back into our Stasis app with
``queue-exit,<handoff id>,<QUEUESTATUS>,<queue>`` when app_queue lets them go:

- ``TIMEOUT``: the wait passed ``handoff.queue_max_wait_s``;
- ``JOINEMPTY``, ``LEAVEEMPTY``, ``JOINUNAVAIL``, ``LEAVEUNAVAIL``, ``FULL``: the queue could not
  keep them;
- ``KEY``: they pressed 1 while waiting (the periodic announcement,
  ``dialog.callback.QUEUE_ANNOUNCE``, says they may; queues.conf ``context = ivr-queue-keys``).

What is said and decided is the callback dialog's (``dialog.callback``: booked at once on
``KEY``, else offered; declined or failed: back to the same queue under the same handoff id, so
the screen pop follows the call; without the offer switched on: back after an apology). This
module only runs it: a session from the one call assembly, already answered, recorded in the
original call's path (its call id found through the screen pop).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable

from dialog.callback import CallbackDialog, QueueReturn
from ivr.calls.factory import CallFactory
from ivr.calls.session import CallChannel, Dialog
from ivr.core.lines import line_of_queue
from ivr.core.sounds import QUEUE_CALLBACK
from ivr.telephony.ari.client import AriClient

log = logging.getLogger("ivr.calls.queue_exit")

QUEUE_ANNOUNCE_NAME = QUEUE_CALLBACK  # <sounds>/<subdir>/queue-callback: queues.conf

CallOf = Callable[[str], Awaitable[uuid.UUID | None]]  # handoff id -> the original call id


class QueueExit:
    """One caller back from the queue (one task per channel, owned by the call manager);
    ``run`` returns the outcome: booked, returned, failed (booking failed: back in the queue)
    or hangup."""

    def __init__(self, channel: CallChannel, calls: CallFactory, args: tuple[str, ...], *,
                 ari: AriClient | None = None, call_of: CallOf | None = None) -> None:
        self.channel = channel
        self.calls = calls
        self.ari = ari
        self.handoff_id = args[0] if args else ""
        self.status = (args[1] if len(args) > 1 else "").upper() or "TIMEOUT"
        self.queue = args[2] if len(args) > 2 else "hotline-general"
        self.line = line_of_queue(self.queue)
        self.call_of = call_of
        self.outcome = "in_progress"

    async def run(self) -> str:
        call_id = await self._call_id()
        dialog = self._dialog(call_id)
        session = self.calls.session(self.channel, dialog, ari=self.ari, call_id=call_id,
                                     resumed=True, inbound=False)
        result = await session.run()
        self.outcome = ("hangup" if result.outcome == "caller_hangup" else
                        "booked" if result.outcome == "callback" else
                        "failed" if getattr(dialog, "outcome", "") == "failed" else "returned")
        log.info("caller of handoff %s back from %s (%s): %s", self.handoff_id[:8], self.queue,
                 self.status, self.outcome)
        return self.outcome

    def _dialog(self, call_id: uuid.UUID) -> Dialog:
        cb = self.calls.callbacks
        if cb is None:
            return QueueReturn(self.line, self.handoff_id)
        return CallbackDialog.queue_exit(
            book=lambda reason: cb.book(call_id=call_id, handoff_id=self.handoff_id or None,
                                        caller=self.channel.caller, line=self.line,
                                        queue=self.queue, reason=reason),
            outcomes=cb.outcomes, key_timeout_s=cb.key_timeout_s, status=self.status,
            line=self.line, handoff_id=self.handoff_id)

    async def _call_id(self) -> uuid.UUID:
        if self.call_of is not None and self.handoff_id:
            try:
                found = await self.call_of(self.handoff_id)
            except Exception as exc:  # the pop store may be down: the task still gets stored
                log.warning("call of handoff %s unknown: %s", self.handoff_id[:8],
                            type(exc).__name__)
                found = None
            if found is not None:
                return found
        return uuid.uuid4()
