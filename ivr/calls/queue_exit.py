"""Callers who come back from an agent queue without an agent: never a silent hang-up.

The dialplan (``asterisk/conf/extensions.conf``) sends a caller back into our Stasis app with
``queue-exit,<handoff id>,<QUEUESTATUS>,<queue>`` when app_queue lets them go:

- ``TIMEOUT``: the wait passed ``handoff.queue_max_wait_s``;
- ``JOINEMPTY``, ``LEAVEEMPTY``, ``JOINUNAVAIL``, ``LEAVEUNAVAIL``, ``FULL``: the queue could not
  keep them;
- ``KEY``: they pressed 1 while waiting (the periodic announcement, ``QUEUE_ANNOUNCE_TEXT``,
  says they may; queues.conf ``context = ivr-queue-keys``).

On ``KEY`` the callback task is booked at once. Otherwise the callback offer is made (1: booked;
2 or nothing: back to the same queue with the same handoff id, so the screen pop follows the
call). Without a callback policy (``handoff.callback_offer`` off) the caller goes back to the
queue after an apology. A booking that cannot be stored sends the caller back to the queue too.
Business rules are the policy's (``handoff.callback``); the channel is the session's
``CallChannel`` (ARI here), so no protocol code lives in this module.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable

from ivr.calls.session import SPEECH, CallbackOffer, CallChannel, CallerHungUp, Prompts
from ivr.core.lines import line_of_queue

log = logging.getLogger("ivr.calls.queue_exit")

QUEUE_ANNOUNCE_TEXT = "如需预约回电，请随时按1。"
QUEUE_ANNOUNCE_NAME = "queue-callback"  # <sounds>/<subdir>/queue-callback: queues.conf
TIMEOUT_TEXT = "抱歉让您久等了，坐席仍在忙。如需回电请按1，继续等待请按2。"
UNAVAILABLE_TEXT = "抱歉，当前暂时没有坐席可以接听。如需回电请按1，继续等待请按2。"
BACK_TEXT = "好的，请您继续等待，坐席将尽快为您服务。"
SORRY_BACK_TEXT = "抱歉让您久等了，请您继续等待，坐席将尽快为您服务。"
REASONS = {"KEY": "queue_key", "TIMEOUT": "queue_timeout"}  # others: queue_unavailable

CallOf = Callable[[str], Awaitable[uuid.UUID | None]]  # handoff id -> the original call id


class QueueExit:
    """One caller back from the queue (one task per channel, owned by the call manager);
    ``run`` returns the outcome: booked, returned, failed (booking failed: back in the queue)
    or hangup."""

    def __init__(self, channel: CallChannel, prompts: Prompts, callbacks: CallbackOffer | None,
                 args: tuple[str, ...], *, call_of: CallOf | None = None) -> None:
        self.channel = channel
        self.prompts = prompts
        self.callbacks = callbacks
        self.handoff_id = args[0] if args else ""
        self.status = (args[1] if len(args) > 1 else "").upper() or "TIMEOUT"
        self.queue = args[2] if len(args) > 2 else "hotline-general"
        self.line = line_of_queue(self.queue)
        self.call_of = call_of
        self.outcome = "in_progress"

    async def run(self) -> str:
        try:
            self.outcome = await self._run()
        except CallerHungUp:
            self.outcome = "hangup"
        log.info("caller of handoff %s back from %s (%s): %s", self.handoff_id[:8], self.queue,
                 self.status, self.outcome)
        return self.outcome

    async def _run(self) -> str:
        cb = self.callbacks
        if cb is None:
            return await self._back(SORRY_BACK_TEXT)
        key: str | None = "1"
        if self.status != "KEY":
            cb.outcomes["offered"] += 1
            text = TIMEOUT_TEXT if self.status == "TIMEOUT" else UNAVAILABLE_TEXT
            key = await self._say(text, "queue_exit_offer", interruptible=True)
            if key is None or key == SPEECH:
                key = await self.channel.next_digit(cb.key_timeout_s)
        if key != "1":
            cb.outcomes["declined"] += 1
            return await self._back(BACK_TEXT)
        reason = REASONS.get(self.status, "queue_unavailable")
        call_id = await self._call_id()
        try:
            task_id = await cb.book(call_id=call_id, handoff_id=self.handoff_id or None,
                                    caller=self.channel.caller, line=self.line, queue=self.queue,
                                    reason=reason)
        except Exception as exc:  # the caller is never dropped: back to the queue
            cb.outcomes["failed"] += 1
            log.warning("callback task for handoff %s not stored: %s", self.handoff_id[:8],
                        type(exc).__name__)
            await self._say(cb.texts["failed"], "callback_failed", interruptible=False)
            await self.channel.transfer(self.line, self.handoff_id)
            return "failed"
        log.info("callback task %d booked from %s (%s)", task_id, self.queue, reason)
        await self._say(cb.texts["booked"], "callback_booked", interruptible=False)
        await self.channel.hangup()
        return "booked"

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

    async def _back(self, text: str) -> str:
        await self._say(text, "queue_exit_back", interruptible=False)
        await self.channel.transfer(self.line, self.handoff_id)
        return "returned"

    async def _say(self, text: str, prompt_id: str, *, interruptible: bool) -> str | None:
        path = await self.prompts.get(text, prompt_id)
        return await self.channel.play(path, interruptible=interruptible)
