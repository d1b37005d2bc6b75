"""Callers back from a queue without an agent (ivr/calls/queue_exit.py): the decisions, with a
scripted channel and prompt source (the real path, through Asterisk's dialplan, is in
test_callback.py)."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import pytest

from dialog.callback import BOOKED, FAILED, QUEUE_BACK, QUEUE_SORRY_BACK, QUEUE_TIMEOUT
from dialog.callback import QUEUE_UNAVAILABLE as UNAVAILABLE_TEXT
from ivr.calls.factory import CallFactory
from ivr.calls.queue_exit import QueueExit
from ivr.calls.session import CallerHungUp

BACK_TEXT, SORRY_BACK_TEXT, TIMEOUT_TEXT = QUEUE_BACK, QUEUE_SORRY_BACK, QUEUE_TIMEOUT


class Channel:
    channel_id, caller, dialed, transport = "c1", "13800138000", "956100", "test"

    def __init__(self, keys: list[str | None], hang_up_on_play: bool = False) -> None:
        self.keys = keys
        self.played: list[str] = []
        self.transferred: list[tuple[str, str]] = []
        self.hung_up = False
        self.hang_up_on_play = hang_up_on_play

    async def answer(self) -> None: ...

    async def play(self, prompt: Path, *, interruptible: bool, stop: object = None) -> str | None:
        if self.hang_up_on_play:
            raise CallerHungUp()
        self.played.append(prompt.name)
        return self.keys.pop(0) if interruptible and self.keys else None

    async def next_digit(self, timeout: float) -> str | None:
        return self.keys.pop(0) if self.keys else None

    async def transfer(self, line: str, handoff_id: str) -> str:
        self.transferred.append((line, handoff_id))
        return f"hotline-{line}"

    async def hangup(self) -> None:
        self.hung_up = True


class Prompts:
    async def get(self, text: str, prompt_id: str | None = None) -> Path:
        return Path(text)


class Policy:
    key_timeout_s = 0.1

    def __init__(self, fail: bool = False) -> None:
        self.outcomes: Counter[str] = Counter()
        self.booked: list[dict[str, object]] = []
        self.fail = fail

    def reason_for(self, queue: str, logged: int, waiting: int) -> str | None:
        return None

    async def book(self, **kw: object) -> int:
        if self.fail:
            raise OSError("database down")
        self.booked.append(kw)
        return len(self.booked)


CALL = uuid.uuid4()


async def call_of(handoff_id: str) -> uuid.UUID | None:
    return CALL if handoff_id == "h1" else None


class Journal:
    """The call journal, kept in memory: the exit's steps join the original call's path."""

    def __init__(self) -> None:
        self.steps: list[tuple[uuid.UUID, str]] = []

    def start(self, call_id: uuid.UUID, **_: object) -> None: ...
    def answered(self, call_id: uuid.UUID) -> None: ...
    def finish(self, call_id: uuid.UUID, outcome: str, **_: object) -> None: ...

    def step(self, call_id: uuid.UUID, name: str, detail: dict[str, object]) -> None:
        self.steps.append((call_id, name))


def run(channel: Channel, policy: Policy | None, *args: str) -> QueueExit:
    calls = CallFactory(Prompts(), Journal(), no_input_timeout_s=0.1, interdigit_timeout_s=0.1,
                        callbacks=policy)
    return QueueExit(channel, calls, args, call_of=call_of)


@pytest.mark.parametrize(("status", "keys", "outcome"), [
    ("KEY", [], "booked"),  # pressed 1 in the queue: booked without asking again
    ("TIMEOUT", ["1"], "booked"),
    ("TIMEOUT", ["2"], "returned"),
    ("TIMEOUT", [], "returned"),  # no answer: back to the queue, not dropped
    ("LEAVEEMPTY", [None, "1"], "booked"),  # the key after the offer ended
])
async def test_offers_and_returns(status: str, keys: list[str | None], outcome: str) -> None:
    channel, policy = Channel(keys), Policy()
    assert await run(channel, policy, "h1", status, "hotline-gas").run() == outcome
    if outcome == "booked":
        (booked,) = policy.booked
        reason = {"KEY": "queue_key", "TIMEOUT": "queue_timeout"}.get(status, "queue_unavailable")
        assert booked == {"call_id": CALL, "handoff_id": "h1", "caller": "13800138000",
                          "line": "gas", "queue": "hotline-gas", "reason": reason}
        assert channel.played[-1] == BOOKED and channel.hung_up and not channel.transferred
    else:
        assert channel.transferred == [("gas", "h1")] and not channel.hung_up
        assert channel.played[-1] == BACK_TEXT
    if status != "KEY":
        assert channel.played[0] == (TIMEOUT_TEXT if status == "TIMEOUT" else UNAVAILABLE_TEXT)


async def test_without_a_policy_or_a_store_the_caller_goes_back() -> None:
    channel = Channel(["1"])
    assert await run(channel, None, "h1", "TIMEOUT", "hotline-oil").run() == "returned"
    assert channel.played == [SORRY_BACK_TEXT] and channel.transferred == [("oil", "h1")]

    channel, policy = Channel(["1"]), Policy(fail=True)
    assert await run(channel, policy, "h2", "TIMEOUT", "odd-queue").run() == "failed"
    assert channel.played[-1] == FAILED and channel.transferred == [("general", "h2")]
    assert policy.outcomes["failed"] == 1


async def test_a_caller_who_hangs_up_is_let_go() -> None:
    channel = Channel([], hang_up_on_play=True)
    assert await run(channel, Policy(), "h1", "TIMEOUT", "hotline-gas").run() == "hangup"


async def test_an_unknown_handoff_still_gets_its_task() -> None:
    channel, policy = Channel([]), Policy()
    assert await run(channel, policy, "zzz", "KEY", "hotline-priority").run() == "booked"
    assert policy.booked[0]["call_id"] != CALL and policy.booked[0]["line"] == "priority"
