"""One call: runs the dialog's actions against the channel and feeds it the caller's input.

A session owns everything of its call (event queue, timers, playbacks) and ends on hang-up,
transfer or a dialog hang-up. The transport is behind ``CallChannel`` so ARI and FastAGI calls
run the same code.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from dialog.actions import (
    Action,
    Collect,
    DialogEvent,
    Dtmf,
    Hangup,
    NoInput,
    Say,
    Step,
    Transfer,
    Utterance,
)
from dialog.callback import CallbackDialog
from dialog.prompts import P
from ivr.calls.figures import call_figures
from ivr.core.handoff import HandoffContext, TraceEntry
from ivr.core.logs import call_id_var
from ivr.core.privacy import mask_digits_in_text, mask_json

log = logging.getLogger("ivr.calls.session")

HANDOFF_TIMEOUT_S = 0.5
QUEUE_LOAD_TIMEOUT_S = 1.0  # reading the queue's load for the callback offer
SPEECH = "speech"  # what ``play`` returns when the caller's speech interrupted the prompt


class Ears(Protocol):
    """The caller's speech (``ivr.calls.listener.Listener``)."""

    speech_started: asyncio.Event
    hints: str | None  # context for the recogniser, set per question
    # the dialog's judgement of a text said before a pause (None: wait for the end of speech)
    complete: Callable[[str], Awaitable[bool]] | None

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    def flush(self) -> None: ...
    async def next_utterance(self, no_input_s: float) -> Any: ...


class CallerHungUp(Exception):
    """The caller (or Asterisk) ended the call."""


class SpeechUnavailable(Exception):
    """Raised by ``Ears.next_utterance``: the recogniser failed, or missed its deadline, on what
    the caller said. The call goes on with keys (``CallSession._speech_lost``)."""


class Dialog(Protocol):
    def start(self) -> list[Action] | Awaitable[list[Action]]: ...
    def on_event(self, event: DialogEvent) -> list[Action] | Awaitable[list[Action]]: ...


class StateStore(Protocol):
    """Where the dialog's state is kept between turns (Redis), so a restart can resume it."""

    async def save(self, channel_id: str, snapshot: dict[str, Any]) -> bool: ...
    async def delete(self, channel_id: str) -> bool: ...


class HandoffSink(Protocol):
    """Receives the context when a call goes to an agent; must return fast (no model calls)."""

    async def handoff(self, context: HandoffContext) -> None: ...


class CallbackOffer(Protocol):
    """The callback offer's business rules (``handoff.callback.CallbackPolicy``); its questions
    and prompts are a dialog's (``dialog.callback``)."""

    key_timeout_s: float
    outcomes: Any  # a Counter: offered, declined, booked, failed

    def reason_for(self, queue: str, logged: int, waiting: int) -> str | None: ...
    async def book(self, *, call_id: uuid.UUID, handoff_id: str | None, caller: str, line: str,
                   queue: str, reason: str) -> int: ...


class Prompts(Protocol):
    async def get(self, text: str, prompt_id: str | None = None) -> Path: ...


class CallLog(Protocol):
    """Non-blocking call journal (writes are queued; the audio path never waits on a database)."""

    def start(
        self, call_id: uuid.UUID, *, channel_id: str, caller: str, dialed: str, transport: str,
        direction: str = "inbound",
    ) -> None: ...
    def answered(self, call_id: uuid.UUID) -> None: ...
    def step(self, call_id: uuid.UUID, name: str, detail: dict[str, object]) -> None: ...
    def finish(
        self,
        call_id: uuid.UUID,
        outcome: str,
        *,
        queue: str | None = None,
        hangup_cause: str | None = None,
        figures: dict[str, Any] | None = None,
    ) -> None: ...


class CallChannel(Protocol):
    """What a session needs from the transport (ARI or AGI)."""

    channel_id: str
    caller: str
    dialed: str
    transport: str

    async def answer(self) -> None: ...
    async def play(self, prompt: Path, *, interruptible: bool,
                   stop: asyncio.Event | None = None) -> str | None:
        """Play a prompt; return the DTMF digit that interrupted it, ``SPEECH`` when ``stop``
        was set (the caller started talking), else None."""

    async def next_digit(self, timeout: float) -> str | None: ...
    async def transfer(self, line: str, handoff_id: str) -> str:
        """Hand the call to the agent queue for ``line``; return the queue name."""

    async def hangup(self) -> None: ...


TRACE_MAX = 500  # entries kept in memory per call (the journal keeps the full path)


@dataclass
class SessionResult:
    call_id: uuid.UUID
    outcome: str
    queue: str | None = None


class CallSession:
    def __init__(
        self,
        channel: CallChannel,
        dialog: Dialog,
        prompts: Prompts,
        journal: CallLog,
        *,
        no_input_timeout_s: float = 5.0,
        interdigit_timeout_s: float = 3.0,
        state: StateStore | None = None,
        call_id: uuid.UUID | None = None,
        resumed: bool = False,
        handoff: HandoffSink | None = None,
        ears: Ears | None = None,
        callbacks: CallbackOffer | None = None,
    ) -> None:
        self.channel = channel
        self.callbacks = callbacks
        self.ears = ears
        self.dialog = dialog
        self.prompts = prompts
        self.journal = journal
        self.no_input_timeout_s = no_input_timeout_s
        self.interdigit_timeout_s = interdigit_timeout_s
        self.state = state
        self.resumed = resumed  # picked up again after a server restart: already answered
        self.call_id = call_id or uuid.uuid4()
        self.handoff_sink = handoff
        self.started_at = time.time()
        self._t0 = time.monotonic()
        self.trace: deque[TraceEntry] = deque(maxlen=TRACE_MAX)
        self._first_key: str | None = None
        self.outcome = "in_progress"
        self.queue: str | None = None

    def _step(self, name: str, **detail: object) -> None:
        masked = mask_json(detail)  # the path and the agent's trace never hold a full number
        self.journal.step(self.call_id, name, masked)
        self.trace.append(TraceEntry(round(time.monotonic() - self._t0, 2), name, masked))

    async def run(self) -> SessionResult:
        ch = self.channel
        call_id_var.set(self.call_id.hex[:8])
        self.journal.start(
            self.call_id,
            channel_id=ch.channel_id,
            caller=ch.caller,
            dialed=ch.dialed,
            transport=ch.transport,
            direction=getattr(ch, "direction", "inbound"),  # a survey call's is outbound
        )
        cause: str | None = None
        try:
            if self.resumed:
                resume = getattr(self.dialog, "resume", None)
                actions = await _actions(resume() if resume is not None else self.dialog.start())
            else:
                await ch.answer()
                self.journal.answered(self.call_id)
                actions = await _actions(self.dialog.start())
            await self._start_ears()
            while True:
                await self._save_state()
                event = await self._execute(actions)
                if event is None:
                    break
                actions = await _actions(self.dialog.on_event(event))
        except CallerHungUp:
            if getattr(self.channel, "handed_back", False):
                # the transport let go of a live channel for another server to resume it
                # (``AgiServer.hand_back``): its state stays, its record stays open
                self.outcome = "handed_back"
                self._step("handed_back")
                log.info("call %s handed back for another server to resume", self.call_id)
                return SessionResult(self.call_id, self.outcome, None)
            self.outcome, cause = "caller_hangup", "caller"
            self._step("caller_hangup")
        except asyncio.CancelledError:
            # the server is stopping: put the caller in the general queue rather than drop them
            self.outcome, cause = "failed", "server_stopping"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._safe_failover(), 2.0)
            raise
        except Exception as exc:
            log.exception("call %s failed", self.call_id)
            self.outcome, cause = "failed", type(exc).__name__
            self._step("error", error=str(exc)[:200])
            await self._safe_failover()
        finally:
            await self._stop_ears()
            if self.outcome != "handed_back":
                if self.state is not None:
                    await self.state.delete(ch.channel_id)
                self.journal.finish(self.call_id, self.outcome, queue=self.queue,
                                    hangup_cause=cause, figures=self._figures())
            log.info(
                "call %s ended: %s%s",
                self.call_id,
                self.outcome,
                f" -> {self.queue}" if self.queue else "",
            )
        return SessionResult(self.call_id, self.outcome, self.queue)

    def _figures(self) -> dict[str, Any] | None:
        """The call's figures for the analytics (``ivr.calls.figures``); None if they cannot
        be made (a call's end never fails for its statistics)."""
        try:
            summary = getattr(self.dialog, "summary", None)
            return call_figures(self.trace, summary() if summary is not None else {})
        except Exception as exc:
            log.warning("figures of call %s not made: %s: %s", self.call_id,
                        type(exc).__name__, exc)
            return None

    async def _save_state(self) -> None:
        snapshot = getattr(self.dialog, "snapshot", None)
        if self.state is None or snapshot is None:
            return
        ch = self.channel
        await self.state.save(ch.channel_id, {
            "call_id": self.call_id.hex, "dialed": ch.dialed,  # no caller number: not needed
            "dialog": snapshot(),
        })

    async def _execute(self, actions: list[Action]) -> DialogEvent | None:
        """Run actions in order; return the caller's next input, or None when the call is done."""
        pending: str | None = None  # a digit that interrupted a prompt answers the next Collect
        for action in actions:
            if isinstance(action, Step):
                self._step(action.name, **action.detail)
            elif isinstance(action, Say):
                if pending is not None and action.barge_in:
                    continue  # the caller already answered: skip the rest of the prompt chain
                got = await self._say(action)
                if got is not None:
                    pending = got
            elif isinstance(action, Collect):
                return await self._collect(action, pending)
            elif isinstance(action, Transfer):
                returning = action.handoff_id is not None  # back to a queue: offer and pop made
                handoff_id = action.handoff_id or uuid.uuid4().hex
                if not returning and self.callbacks is not None and \
                        await self._offer_callback(action, handoff_id):
                    return None
                self._step("transfer", line=action.line, reason=action.reason, handoff=handoff_id)
                if not returning:
                    await self._hand_off(handoff_id, action)
                await self._stop_ears()  # the media tap goes before the channel leaves us
                self.queue = await self.channel.transfer(action.line, handoff_id)
                self.outcome = "transferred"
                return None
            elif isinstance(action, Hangup):
                self.outcome = action.outcome
                self._step("hangup", outcome=action.outcome)
                await self.channel.hangup()
                return None
        return None

    async def _say(self, action: Say) -> str | None:
        """Play one prompt; return what interrupted it (a digit, ``SPEECH``) or None."""
        path = await self.prompts.get(action.text, action.prompt_id)
        self._step("say", prompt=action.prompt_id or "", text=action.text)
        ears = self.ears if action.barge_in else None
        got = await self.channel.play(
            path, interruptible=action.barge_in,
            stop=ears.speech_started if ears is not None else None,
        )
        if self.ears is not None and not action.barge_in:
            self.ears.flush()  # words said over a protected prompt are not answers
        if got == SPEECH:
            self._step("barge_in", by="speech")
        elif got is not None:
            self._step("barge_in", key=got)
        return got

    async def _offer_callback(self, action: Transfer, handoff_id: str) -> bool:
        """Offer a callback when the queue has no agent or a long wait (the rules are the
        policy's, the questions ``dialog.callback``'s); True when the caller took it (task
        stored, call ended)."""
        cb = self.callbacks
        load_of = getattr(self.channel, "queue_load", None)
        if cb is None or load_of is None:
            return False
        try:
            queue, logged, waiting = await asyncio.wait_for(load_of(action.line),
                                                            QUEUE_LOAD_TIMEOUT_S)
        except CallerHungUp:
            raise
        except Exception as exc:  # no load, no offer: the caller queues as before
            log.warning("queue load for %s unknown (%s): no callback offer", action.line,
                        type(exc).__name__)
            return False
        reason = cb.reason_for(queue, logged, waiting)
        if reason is None:
            return False

        async def book(reason: str) -> int:
            return await cb.book(call_id=self.call_id, handoff_id=handoff_id,
                                 caller=self.channel.caller, line=action.line, queue=queue,
                                 reason=reason)

        offer = CallbackDialog.before_queue(
            book=book, outcomes=cb.outcomes, key_timeout_s=cb.key_timeout_s, reason=reason,
            detail={"queue": queue, "logged": logged, "waiting": waiting})
        await self._run_dialog(offer)
        if offer.outcome == "failed":
            log.warning("callback task for call %s not stored: to the queue", self.call_id)
        return offer.outcome == "booked"

    async def _run_dialog(self, dialog: Dialog) -> None:
        """Run a dialog of the call's (the callback offer) to its end within this session."""
        actions = await _actions(dialog.start())
        while (event := await self._execute(actions)) is not None:
            actions = await _actions(dialog.on_event(event))

    async def _hand_off(self, handoff_id: str, action: Transfer) -> None:
        """Give the screen pop its start; a failure here never keeps the caller from the queue."""
        if self.handoff_sink is None:
            return
        summary = getattr(self.dialog, "summary", None)
        ch = self.channel
        context = HandoffContext(
            handoff_id=handoff_id, call_id=self.call_id, channel_id=ch.channel_id,
            caller=ch.caller, dialed=ch.dialed, line=action.line, reason=action.reason,
            started_at=self.started_at, trace=list(self.trace),
            dialog=summary() if summary is not None else {},
        )
        try:
            await asyncio.wait_for(self.handoff_sink.handoff(context), HANDOFF_TIMEOUT_S)
        except Exception as exc:  # the pop is a courtesy to the agent; the caller comes first
            log.warning("screen pop for call %s failed: %s: %s", self.call_id,
                        type(exc).__name__, exc)

    async def _start_ears(self) -> None:
        if self.ears is None:
            return
        try:
            await self.ears.start()
        except Exception as exc:  # no speech then, keys still work: the call goes on
            log.warning("listening failed to start (%s: %s); keys only for this call",
                        type(exc).__name__, exc)
            self.ears = None

    async def _stop_ears(self) -> None:
        ears, self.ears = self.ears, None
        if ears is not None:
            try:
                await ears.close()
            except Exception as exc:  # tear-down of a call that is ending anyway
                log.warning("closing the listener failed: %s: %s", type(exc).__name__, exc)

    async def _collect(self, action: Collect, first: str | None) -> DialogEvent:
        timeout = action.timeout_s or self.no_input_timeout_s
        if self.ears is not None and (first is None or first == SPEECH):
            self.ears.hints = action.hints or None
            self.ears.complete = getattr(self.dialog, "turn_complete", None)
            event = await self._keys_or_speech(timeout, speaking=first == SPEECH)
            if event is not None:
                return event
            first = self._first_key
        return await self._keys(action, first)

    async def _keys_or_speech(self, timeout: float, *, speaking: bool) -> DialogEvent | None:
        """Whichever comes first: a key (then None is returned, ``_first_key`` holds it and the
        key loop goes on) or an utterance; NoInput when neither comes within ``timeout``
        (speech that has started is waited for to its end)."""
        assert self.ears is not None
        self._first_key = None
        heard, lost = None, False
        speech = asyncio.create_task(self.ears.next_utterance(timeout))
        key = None if speaking else asyncio.create_task(self.channel.next_digit(timeout))
        try:
            if key is not None:
                await asyncio.wait({speech, key}, return_when=asyncio.FIRST_COMPLETED)
                if key.done():
                    digit = key.result()  # re-raises CallerHungUp
                    if digit:
                        self._first_key = digit
                        return None
            try:
                heard = await speech
            except SpeechUnavailable:
                lost = True
        finally:
            for t in (speech, key):
                if t is not None and not t.done():
                    t.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await t
                elif t is not None and not t.cancelled():
                    t.exception()  # retrieved: a key won over a failed decode at the same time
        if lost:
            await self._speech_lost()
            return None  # the key loop takes this turn (and a key said over the apology)
        if heard is None:
            self._step("input_timeout", timeout_s=timeout)
            return NoInput()
        first_partial = getattr(heard, "first_partial_s", None)  # partial results were on
        speech_s = getattr(heard, "speech_s", None)  # seconds recognised (ivr bench voice)
        spoken = {} if speech_s is None else {"speech_s": round(speech_s, 2)}
        partials = {} if first_partial is None else {
            "partials": heard.partials, "first_partial_s": round(first_partial, 2)}
        # how the turn ended: judged complete at a pause; after the silence, with the decode
        # started at the pause; after the silence, decoded then (ivr bench voice counts these)
        ended = ("early" if getattr(heard, "early", False) else
                 "pause" if getattr(heard, "speculative", False) else "silence")
        self._step("speech", text=mask_digits_in_text(heard.text),
                   confidence=round(heard.confidence, 2), asr_s=round(heard.asr_s, 2),
                   latency_s=round(heard.latency_s, 2), **partials, **spoken, turn_end=ended)
        return Utterance(heard.text, heard.confidence, heard=True)

    async def _speech_lost(self) -> None:
        """The recogniser let this caller down: say so once, and go on with keys only (the
        caller is never left with prompts that wait for speech nobody can hear)."""
        self._step("asr_unavailable")
        await self._stop_ears()
        path = await self.prompts.get(P["speech_unavailable"], "speech_unavailable")
        self._step("say", prompt="speech_unavailable", text=P["speech_unavailable"])
        got = await self.channel.play(path, interruptible=True)
        if got is not None and got != SPEECH:
            self._first_key = got

    async def _keys(self, action: Collect, first: str | None) -> DialogEvent:
        digits = first or ""
        timeout = action.timeout_s or self.no_input_timeout_s
        while len(digits) < action.max_digits and not digits.endswith("#"):
            digit = await self.channel.next_digit(
                timeout if not digits else self.interdigit_timeout_s
            )
            if digit is None:
                break
            digits += digit
        if not digits:
            self._step("input_timeout", timeout_s=timeout)
            return NoInput()
        # a menu key is kept; longer entries (card numbers, PINs) only by their length
        self._step("dtmf", digits=digits if len(digits) <= 2 else f"<{len(digits)} digits>")
        return Dtmf(digits)

    async def _safe_failover(self) -> None:
        """After an internal error, try to put the caller in the general queue (never drop them)."""
        try:
            self.queue = await self.channel.transfer("general", uuid.uuid4().hex)
            self.outcome = "transferred"
            self._step("failover", queue=self.queue)
        except Exception as exc:  # the channel may be gone as well: nothing more to do
            log.warning("failover transfer for %s failed: %s", self.call_id, exc)


async def _actions(result: list[Action] | Awaitable[list[Action]]) -> list[Action]:
    """A dialog's answer, which it may compute asynchronously (business actions)."""
    return await result if inspect.isawaitable(result) else result
