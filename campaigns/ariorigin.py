"""Places survey calls through ARI and runs the survey on the answered channel.

The originator has its own ARI application (``<ari_app>-survey``) on its own websocket, so it
runs the same inside the server (``ivr up``) and in a separate dialer process
(``ivr campaigns run``), and never disturbs the inbound calls' CallManager.

A dial: ``POST /channels`` to ``PJSIP/<number>@<endpoint>`` with our app (the app is
subscribed to the channel from its creation, so a busy or unanswered dial reports its
ChannelDestroyed cause). While it rings, ``early`` (``campaigns.earlymedia``) listens to what
the network sends before an answer: an announcement (空号, 停机, 关机 …) ends the dial at once
with that outcome (``campaigns.carrier``), instead of ringing out the timeout. On answer
(StasisStart ``dial``) the channel continues in the dialplan context ``survey-amd``
(asterisk/conf/extensions.conf): ``AMD()``, then back into the app (StasisStart
``amd,<AMDSTATUS>,<AMDCAUSE>``). A machine is hung up on (or given a short message, per
campaign); a person gets the survey: a CallSession driving a SurveyDialog, with the same
prompts, journal and listener (speech) as inbound calls.

The network may answer and then announce (a fake answer), which AMD takes for a machine (a long
greeting) or a person: the listening goes on for the first seconds after the answer
(``earlymedia.AFTER_ANSWER_S``). Its announcement outranks AMD: a MACHINE verdict waits for it,
and a survey already begun is hung up on when it comes. AMD's MACHINE for silence alone
(``INITIALSILENCE``) is taken for a person: in China many people answer an unknown number and
wait for the caller to speak; the survey's own no-input handling ends the call when nobody is
there.

A survey call a dead process left parked in the application is ended by the next originator to
start (``end_orphans``): the customer hears why, the attempt is settled at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from campaigns.answers import DbAnswerSink
from campaigns.carrier import ANNOUNCEMENTS, Verdict
from campaigns.dialer import DialResult
from campaigns.earlymedia import EarlyMedia
from campaigns.phones import masked
from campaigns.repo import Claim, mark_answered, settle_cut
from campaigns.survey import SurveySpec, load_survey
from campaigns.surveydialog import SurveyDialog
from campaigns.tables import Campaign, Contact
from ivr.calls.ari_channel import AriChannel
from ivr.calls.factory import CallFactory
from ivr.calls.orphans import is_orphan
from ivr.calls.router import ChannelRouter
from ivr.core.config import AsteriskSettings
from ivr.core.storage.db import SessionFactory
from ivr.telephony.ari.client import AriClient, AriError
from ivr.telephony.ari.events import (
    AriEvent,
    ChannelHangup,
    ChannelInfo,
    StasisEnd,
    StasisStart,
)

log = logging.getLogger("campaigns.ari")

RING_TIMEOUT_S = 30
AMD_TIMEOUT_S = 10.0  # answered, waiting for AMD() to give the channel back
AFTER_ANSWER_WAIT_S = 10.0  # AMD said MACHINE: the most waited for the listening's verdict
SILENCE_CAUSE = "INITIALSILENCE"  # AMD's MACHINE for silence alone: a person who waits
MACHINE_MESSAGE = "您好，这里是中国石油956100客服热线，我们稍后会再与您联系，再见。"
# to a customer whose survey a crashed process left (end_orphans)
ORPHAN_APOLOGY = "抱歉，系统刚才出现了问题，本次回访到此结束，感谢您的配合，再见。"
EVENT_QUEUE = 64  # per dialing channel; overflow: the oldest event is dropped
BUSY_CAUSES = {17}
NO_ANSWER_CAUSES = {18, 19, 0}
CONGESTION_CAUSES = {34, 38, 41, 42}


SurveyEnd = Callable[[Campaign, int, uuid.UUID], Awaitable[object]]


@dataclass
class _Dialing:
    events: asyncio.Queue[AriEvent | Verdict]  # a Verdict: the network's announcement
    channel: AriChannel | None = None
    listening: asyncio.Task[Verdict | None] | None = None
    answered: asyncio.Event = field(default_factory=asyncio.Event)

    async def announcement(self, wait_s: float = 0.0) -> Verdict | None:
        """The network's announcement heard, waiting up to ``wait_s`` for the listening (which
        ends by itself ``AFTER_ANSWER_S`` after the answer) to decide."""
        task = self.listening
        if task is None:
            return None
        if not task.done():
            await asyncio.wait({task}, timeout=wait_s)
            if not task.done():
                return None
        if task.cancelled() or task.exception() is not None:
            return None
        verdict = task.result()
        return verdict if verdict is not None and verdict.outcome in ANNOUNCEMENTS else None

    async def stop_listening(self) -> None:
        if self.listening is not None:
            self.listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.listening
            self.listening = None


class AriOriginator:
    def __init__(self, asterisk: AsteriskSettings, sessions: SessionFactory, calls: CallFactory,
                 *, endpoint: str = "customer", ring_timeout_s: int = RING_TIMEOUT_S,
                 on_survey_end: SurveyEnd | None = None,
                 early: Callable[[], EarlyMedia] | None = None) -> None:
        self.ari = AriClient(asterisk.model_copy(update={"ari_app": f"{asterisk.ari_app}-survey"}))
        self.sessions = sessions
        self.calls = calls  # the one call assembly (prompts, journal, ears), as inbound calls
        self.prompts = calls.prompts
        self.endpoint = endpoint
        self.sounds_subdir = asterisk.sounds_subdir
        self.ring_timeout_s = ring_timeout_s
        self.on_survey_end = on_survey_end  # e.g. followup.SurveyFollowups
        self.early = early  # a listener per dial for the early media (None: not listened to)
        self.router = ChannelRouter(stasis_end_hangs_up=False)  # the dialing calls' events
        self._surveys: dict[str, SurveySpec] = {}
        self._task: asyncio.Task[None] | None = None
        self._orphans: asyncio.Task[int] | None = None

    async def start(self, wait_s: float = 15.0) -> None:
        self._task = asyncio.create_task(self.ari.run(self._on_event), name="survey-ari")
        await asyncio.wait_for(self.ari.connected.wait(), wait_s)
        self._orphans = asyncio.create_task(self.end_orphans(), name="survey-orphans")

    async def close(self) -> None:
        for task in (self._orphans, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.ari.close()

    async def end_orphans(self) -> int:
        """Survey calls a process that died left in our application (one originator per
        Asterisk, as for inbound calls): the customer hears why the survey ends, then the call
        is hung up and its attempt settled at once (``repo.settle_cut``: the answers given are
        kept, and count). Returns how many."""
        try:
            channels = [c for c in await self.ari.channels() if is_orphan(c, self.ari.app)]
        except (AriError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("could not list survey calls left by a previous process: %s", exc)
            return 0
        if channels:
            log.info("%d survey calls left by a previous process: each is told and ended",
                     len(channels))
        await asyncio.gather(*(self._end_orphan(info) for info in channels))
        return len(channels)

    async def _end_orphan(self, info: ChannelInfo) -> None:
        channel = AriChannel(self.ari, info, self.sounds_subdir)
        self.router.add(info.id, channel.feed)
        try:
            with contextlib.suppress(Exception):  # hung up meanwhile, or no prompt
                await channel.play(await self.prompts.get(ORPHAN_APOLOGY, "survey_orphan"),
                                   interruptible=False)
            with contextlib.suppress(AriError):
                await self.ari.hangup(info.id)
        finally:
            self.router.remove(info.id)
        close_left = getattr(self.calls.journal, "close_left", None)  # its record, left open
        if close_left is not None:
            close_left(info.id, "failed", "server_lost")
        parts = info.id.split("-")  # survey-<attempt id>-<hex>
        if len(parts) == 3 and parts[0] == "survey" and parts[1].isdigit():
            try:
                await settle_cut(self.sessions, int(parts[1]), datetime.now(UTC))
            except Exception as exc:  # recover_stale settles it later
                log.warning("survey attempt %s not settled: %s", parts[1], exc)

    async def _on_event(self, event: AriEvent) -> None:
        self.router.route(event)

    @staticmethod
    def _sink(call: _Dialing) -> Callable[[AriEvent], None]:
        """Until answer, a dialing call's events queue up for ``_dial``; once its session runs,
        they go to its channel (StasisEnd there only means AMD is over: the session goes on)."""
        def sink(event: AriEvent) -> None:
            if call.channel is not None:
                if not isinstance(event, StasisEnd):
                    call.channel.feed(event)
                return
            if call.events.full():
                call.events.get_nowait()
            call.events.put_nowait(event)
        return sink

    def _survey(self, name: str) -> SurveySpec:
        if name not in self._surveys:
            self._surveys[name] = load_survey(name)
        return self._surveys[name]

    async def dial(self, claim: Claim, campaign: Campaign) -> DialResult:
        channel_id = f"survey-{claim.attempt_id}-{uuid.uuid4().hex[:8]}"
        call = _Dialing(asyncio.Queue(EVENT_QUEUE))
        self.router.add(channel_id, self._sink(call))
        try:
            return await self._dial(channel_id, call, claim, campaign)
        finally:
            await call.stop_listening()
            self.router.remove(channel_id)

    async def _hear(self, listener: EarlyMedia, channel_id: str,
                    call: _Dialing) -> Verdict | None:
        try:
            verdict = await listener.listen(self.ari, channel_id, call.answered)
        except (AriError, aiohttp.ClientError, OSError) as exc:  # listening never costs a call
            log.warning("listening to %s failed: %s", channel_id, exc)
            return None
        if verdict is not None and call.channel is None:  # not yet in the survey: to _dial
            if call.events.full():
                call.events.get_nowait()
            call.events.put_nowait(verdict)
        return verdict

    async def _dial(self, channel_id: str, call: _Dialing, claim: Claim,
                    campaign: Campaign) -> DialResult:
        ring_s = int(campaign.settings.get("ring_timeout_s", self.ring_timeout_s))
        try:
            await self.ari.request(
                "POST", "/channels", endpoint=f"PJSIP/{claim.phone}@{self.endpoint}",
                app=self.ari.app, appArgs=f"dial,{claim.attempt_id}", channelId=channel_id,
                callerId="956100", timeout=ring_s)
        except AriError as exc:
            return DialResult("failed", cause=f"originate {exc.status}", channel_id=channel_id)
        if self.early is not None:
            call.listening = asyncio.create_task(
                self._hear(self.early(), channel_id, call), name=f"early-{channel_id}")
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + ring_s + 5
        answered = False
        while True:
            left = deadline - loop.time()
            try:
                event = await asyncio.wait_for(call.events.get(), max(0.1, left))
            except TimeoutError:
                with contextlib.suppress(AriError):
                    await self.ari.hangup(channel_id)
                return DialResult("failed" if answered else "no_answer",
                                  cause="amd timeout" if answered else "ring timeout",
                                  channel_id=channel_id)
            if isinstance(event, Verdict):  # the network's announcement: no one will answer
                with contextlib.suppress(AriError):
                    await self.ari.hangup(channel_id)
                return _announced(event, channel_id, answered)
            if isinstance(event, ChannelHangup):
                if answered:  # gone before a word was said: retried like a failed dial
                    return DialResult("failed", cause="hangup during amd",
                                      channel_id=channel_id)
                return self._unanswered(event, channel_id, loop.time() - started, ring_s)
            if isinstance(event, StasisStart) and event.args[:1] == ("dial",):
                answered = True
                call.answered.set()  # AMD and the survey take it from here; listening goes on
                deadline = loop.time() + AMD_TIMEOUT_S
                await mark_answered(self.sessions, claim.attempt_id, datetime.now(UTC),
                                    channel_id=channel_id)
                try:
                    await self.ari.continue_in_dialplan(channel_id, "survey-amd", "s")
                except AriError:
                    return DialResult("failed", cause="gone after answer",
                                      channel_id=channel_id)
            elif isinstance(event, StasisStart) and event.args[:1] == ("amd",):
                amd = event.args[1] if len(event.args) > 1 else "NOTSURE"
                amd_cause = event.args[2] if len(event.args) > 2 else ""
                return await self._answered(channel_id, call, event.channel, claim, campaign,
                                            amd, amd_cause)

    async def _announced_during(self, call: _Dialing, run: asyncio.Task[Any],
                                channel_id: str) -> Verdict | None:
        """The survey has begun while the listening goes on: an announcement then (a fake
        answer after AMD said HUMAN) ends the call, and the survey's result counts for
        nothing."""
        if call.listening is None:
            return None
        await asyncio.wait({run, call.listening}, return_when=asyncio.FIRST_COMPLETED)
        if run.done():
            return None
        verdict = await call.announcement()
        if verdict is not None:
            log.info("survey call %s: the network announced after the answer (%s): ended",
                     channel_id, verdict.outcome)
            with contextlib.suppress(AriError):
                await self.ari.hangup(channel_id)
        return verdict

    def _unanswered(self, event: ChannelHangup, channel_id: str, rang_s: float,
                    ring_s: int) -> DialResult:
        cause = f"{event.cause} {event.cause_txt}".strip()
        if event.cause in BUSY_CAUSES:
            return DialResult("busy", cause=cause, channel_id=channel_id)
        if event.cause in NO_ANSWER_CAUSES or rang_s >= ring_s - 1:
            return DialResult("no_answer", cause=cause, channel_id=channel_id)
        if event.cause in CONGESTION_CAUSES:
            return DialResult("failed", cause=f"congestion {cause}", channel_id=channel_id)
        return DialResult("failed", cause=cause, channel_id=channel_id)

    async def _answered(self, channel_id: str, call: _Dialing, info: ChannelInfo, claim: Claim,
                        campaign: Campaign, amd: str, amd_cause: str) -> DialResult:
        channel = AriChannel(self.ari, info, self.sounds_subdir)
        channel.direction = "outbound"  # not an inbound call (analytics, call-backs)
        call.channel = channel
        while not call.events.empty():  # anything that came with the AMD hand-back
            event = call.events.get_nowait()
            if not isinstance(event, Verdict):  # a late verdict: answered, so not ours
                channel.feed(event)
        if amd == "MACHINE" and amd_cause.startswith(SILENCE_CAUSE):
            log.info("survey call %s: silence after the answer, taken for a person who waits",
                     channel_id)
        elif amd == "MACHINE":
            verdict = await call.announcement(AFTER_ANSWER_WAIT_S)
            if verdict is not None:  # a fake answer: the network announced, not a machine
                with contextlib.suppress(AriError):
                    await self.ari.hangup(channel_id)
                return _announced(verdict, channel_id, True, amd=f"{amd} {amd_cause}")
            if campaign.machine_action == "message":
                with contextlib.suppress(Exception):
                    await channel.play(await self.prompts.get(MACHINE_MESSAGE, "survey_machine"),
                                       interruptible=False)
            with contextlib.suppress(AriError):
                await self.ari.hangup(channel_id)
            return DialResult("machine", amd_status=f"MACHINE {amd_cause}"[:32],
                              channel_id=channel_id)
        async with self.sessions() as s:
            contact = await s.get(Contact, claim.contact_id)
        variables: dict[str, Any] = dict(contact.fields) if contact is not None else {}
        if contact is not None:
            variables.update(name=f"{contact.name}" if contact.name else "",
                             bot=contact.bot or "", agent=contact.agent or "")
        call_id = uuid.uuid4()
        sink = DbAnswerSink(self.sessions, campaign_id=campaign.id, contact_id=claim.contact_id,
                            call_id=call_id, phone=claim.phone)
        dialog = SurveyDialog(self._survey(campaign.survey), sink, variables)
        session = self.calls.session(channel, dialog, ari=self.ari, call_id=call_id,
                                     resumed=True,  # answered already: no ARI answer
                                     inbound=False)  # a survey never goes to an agent
        run = asyncio.create_task(session.run(), name=f"survey-{channel_id}")
        try:
            verdict = await self._announced_during(call, run, channel_id)
            result = await run
        finally:  # cancelled (the dialer stops): the survey session with it, as before
            if not run.done():
                run.cancel()
                await asyncio.gather(run, return_exceptions=True)
        if verdict is not None:
            return _announced(verdict, channel_id, True, amd=f"{amd} {amd_cause}")
        log.info("survey call to %s: %s (%s, %d answers)", masked(claim.phone),
                 dialog.result.contact_status, result.outcome, dialog.result.answered)
        if self.on_survey_end is not None and dialog.result.answered:
            await self.on_survey_end(campaign, claim.contact_id, call_id)
        retry_at = (datetime.now(UTC) + dialog.result.retry_after
                    if dialog.result.retry_after else None)
        status = dialog.result.contact_status
        if status == "partial":  # hung up mid-survey: the answers given are kept
            status = "completed" if dialog.result.answered else "refused"
        return DialResult("answered", amd_status=f"{amd} {amd_cause}".strip()[:32],
                          channel_id=channel_id, contact_status=status, retry_at=retry_at)


def _announced(verdict: Verdict, channel_id: str, answered: bool, *,
               amd: str | None = None) -> DialResult:
    when = "after answer" if answered else "early media"
    return DialResult(verdict.outcome or "failed", cause=f"{when}: {verdict.why}"[:64],
                      amd_status=amd.strip()[:32] if amd else None, channel_id=channel_id)
