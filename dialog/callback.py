"""The callback offer (回电) as a dialog: the one place its questions, answers and prompts live.

It is offered at two moments, with the same steps (events in, actions out, as every dialog):

- **before a queue** (``before_queue``): the call is about to go to an agent, but the queue has
  no agent logged in or a long expected wait (the policy's rules, ``handoff.callback``). Key 1
  (or a spoken yes, or 回电) books a callback task and ends the call; anything else, or a
  booking that cannot be stored, lets the transfer go on.
- **back from a queue** (``queue_exit``): app_queue let a waiting caller go (key 1 pressed in
  the queue: booked at once; the wait limit or an empty queue: offered). Declined, the caller
  goes back to the same queue with the same handoff id (the screen pop follows the call); a
  booking that fails goes back too; without the offer switched on, back after an apology.

Booking is the caller's business action, injected like the bots' (``Book``: stores the task,
returns its id). The offer's outcome counters (offered, declined, booked, failed) are the
policy's, so metrics count both moments together.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

from dialog.actions import (
    Action,
    Collect,
    DialogEvent,
    Dtmf,
    Hangup,
    Say,
    Step,
    Transfer,
    Utterance,
)
from dialog.nlu.extract import extract_yes_no

Book = Callable[[str], Awaitable[int]]  # stores the task for a reason; its id (raises)

# the prompts of both moments (rendered by the TTS like every fixed prompt)
OFFER = "当前坐席繁忙，如需回电请按1，继续等待请按2。"
BOOKED = "已为您登记回电，工作人员将尽快与您联系。感谢您的来电，再见。"
FAILED = "抱歉，回电登记暂时无法完成，正在为您转接人工服务，请稍候。"
QUEUE_TIMEOUT = "抱歉让您久等了，坐席仍在忙。如需回电请按1，继续等待请按2。"
QUEUE_UNAVAILABLE = "抱歉，当前暂时没有坐席可以接听。如需回电请按1，继续等待请按2。"
QUEUE_BACK = "好的，请您继续等待，坐席将尽快为您服务。"
QUEUE_SORRY_BACK = "抱歉让您久等了，请您继续等待，坐席将尽快为您服务。"
QUEUE_ANNOUNCE = "如需预约回电，请随时按1。"  # the queues' periodic announcement (queues.conf)
QUEUE_REASONS = {"KEY": "queue_key", "TIMEOUT": "queue_timeout"}  # others: queue_unavailable
CALLBACK_WORDS = ("回电", "回拨", "打回来", "给我回")


def said_yes(event: DialogEvent) -> bool:
    """Key 1, a spoken 1, a yes (好的, 可以) or a callback asked for by name."""
    if isinstance(event, Dtmf):
        return event.digits[:1] == "1"
    if isinstance(event, Utterance):
        text = event.text.strip("。，,. ")
        if text in ("1", "一", "幺") or any(w in text for w in CALLBACK_WORDS):
            return True
        return extract_yes_no(text) is True
    return False


class CallbackDialog:
    """One offer; ``outcome`` ends as booked, declined, failed or returned."""

    def __init__(self, *, book: Book, outcomes: Counter[str], key_timeout_s: float,
                 offer: str | None, reason: str, detail: dict[str, object],
                 declined: list[Action], failed: list[Action]) -> None:
        self.book = book
        self.outcomes = outcomes
        self.key_timeout_s = key_timeout_s
        self.offer = offer  # None: the caller asked already (key 1 in the queue)
        self.reason = reason
        self.detail = detail  # for the path: queue, load
        self.declined = declined
        self.failed = failed
        self.outcome = "in_progress"

    @classmethod
    def before_queue(cls, *, book: Book, outcomes: Counter[str], key_timeout_s: float,
                     reason: str, detail: dict[str, object]) -> CallbackDialog:
        return cls(book=book, outcomes=outcomes, key_timeout_s=key_timeout_s, offer=OFFER,
                   reason=reason, detail=detail, declined=[],
                   failed=[Say(FAILED, "callback_failed", barge_in=False)])

    @classmethod
    def queue_exit(cls, *, book: Book, outcomes: Counter[str], key_timeout_s: float,
                   status: str, line: str, handoff_id: str) -> CallbackDialog:
        back = Transfer(line, "queue_return", handoff_id=handoff_id)
        offer = None if status == "KEY" else (
            QUEUE_TIMEOUT if status == "TIMEOUT" else QUEUE_UNAVAILABLE)
        return cls(book=book, outcomes=outcomes, key_timeout_s=key_timeout_s, offer=offer,
                   reason=QUEUE_REASONS.get(status, "queue_unavailable"),
                   detail={"status": status},
                   declined=[Say(QUEUE_BACK, "queue_exit_back", barge_in=False), back],
                   failed=[Say(FAILED, "callback_failed", barge_in=False), back])

    @staticmethod
    def back_to_queue(line: str, handoff_id: str) -> list[Action]:
        """No offer (switched off): an apology and back to the same queue."""
        return [Say(QUEUE_SORRY_BACK, "queue_exit_back", barge_in=False),
                Transfer(line, "queue_return", handoff_id=handoff_id)]

    async def start(self) -> list[Action]:
        """The offer; or, when the caller asked already (key 1 in the queue), the booking."""
        if self.offer is None:
            return await self._book()
        self.outcomes["offered"] += 1
        return [Step("callback_offer", {**self.detail, "reason": self.reason}),
                Say(self.offer, "callback_offer" if self.offer == OFFER else "queue_exit_offer"),
                Collect(max_digits=1, timeout_s=self.key_timeout_s, hints="回电 好的 不用")]

    async def on_event(self, event: DialogEvent) -> list[Action]:
        if not said_yes(event):
            self.outcomes["declined"] += 1
            self.outcome = "declined"
            key = event.digits if isinstance(event, Dtmf) else ""
            return [Step("callback_declined", {"key": key}), *self.declined]
        return await self._book()

    async def _book(self) -> list[Action]:
        try:
            task_id = await self.book(self.reason)
        except Exception as exc:  # the caller is never dropped: to the queue after all
            self.outcomes["failed"] += 1
            self.outcome = "failed"
            return [Step("callback_failed", {"error": type(exc).__name__}), *self.failed]
        self.outcome = "booked"
        return [Step("callback", {"task": task_id, "reason": self.reason, **self.detail}),
                Say(BOOKED, "callback_booked", barge_in=False), Hangup("callback")]


class QueueReturn:
    """Back to the queue after an apology (the offer switched off); ``outcome`` returned."""

    def __init__(self, line: str, handoff_id: str) -> None:
        self.line = line
        self.handoff_id = handoff_id
        self.outcome = "returned"

    def start(self) -> list[Action]:
        return CallbackDialog.back_to_queue(self.line, self.handoff_id)

    def on_event(self, event: DialogEvent) -> list[Action]:
        return []
