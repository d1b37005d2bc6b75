"""Customer simulator for outbound campaigns: the project's SIP phone (ivr/sipua) registered as
the PJSIP endpoint ``customer`` (or, unregistered on a fixed port, the far end of the static
trunk ``carrier``), answering every number Asterisk dials there over real SIP/RTP, behaving by
the number's last digit:

====  ==========================================================================
0     answers, says 喂, answers the survey by keys (consent 1, CSAT 4, NPS 9#, resolved 1)
1     busy (486)
2     no answer (rings until the dialer gives up)
3     answering machine: a long continuous greeting
4     answers and speaks (可以 / 非常满意 / 十分 / 解决了 / a suggestion)
5     answers, consents, gives a CSAT by key and hangs up mid-survey
6     answers and says 不要再打了
7-9   as 0
====  ==========================================================================

Numbers starting with 170 play the network instead (``ivr/sim/carrier.py``; issue 23), by the
last digit: 0 空号, 1 停机, 2 关机, 3 正在通话中 (each as early media after a 183, repeated
until the dialer gives up, then 480), 4 a coloured ring-back (music as early media) and then a
person who answers and declines the survey (key 2), 5 a ring-back tone and then the same, 6 a
fake answer (200 OK) and then 号码不存在, over and over until the dialer hangs up, 7 a person
who answers and says nothing (waits for the caller to speak), then declines by key.

Speech comes from ``speak(text) -> 8 kHz PCM`` (the server's TTS prompt cache in the tests and
the benchmark). Used by tests/e2e/test_campaigns_calls.py and the campaign benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable

from ivr.core.config import AsteriskSettings
from ivr.sim.carrier import WORDS, line, music
from ivr.sim.demo import listen_until_quiet
from ivr.sim.sipua import SipCall, SipError
from ivr.sim.sipua.uas import IncomingCall, SipPhone

log = logging.getLogger("ivr.sim.customers")

Speak = Callable[[str], Awaitable[bytes]]

HELLO = "喂，你好。"
MACHINE_GREETING = ("您好，您拨打的用户暂时无法接听您的电话，请在提示音后留言，留言结束后请挂机，"
                    "感谢您的来电，我们会尽快给您回复。")
VOICE_ANSWERS = ("可以。", "非常满意。", "十分。", "解决了。", "希望加油站多建几个充电桩。")
BEHAVIOURS = {"0": "keys", "1": "busy", "2": "no_answer", "3": "machine", "4": "voice",
              "5": "hangup_mid", "6": "dnc"}
CARRIER_PREFIX = "170"
CARRIER_BEHAVIOURS = {"0": "vacant", "1": "suspended", "2": "unreachable", "3": "busy_words",
                      "4": "music_then_decline", "5": "ring_then_decline",
                      "6": "answered_vacant", "7": "silent_then_decline"}
# the announcement each plays (the carriers' wording: ivr.sim.carrier.WORDS)
ANNOUNCEMENT = {"vacant": WORDS["vacant"][0], "suspended": WORDS["suspended"][0],
                "unreachable": WORDS["unreachable"][0], "busy_words": WORDS["busy"][0],
                "answered_vacant": WORDS["vacant"][1]}
ANNOUNCE_FOR_S = 40.0  # then the network gives up (480)


def behaviour_of(number: str) -> str:
    if number.startswith(CARRIER_PREFIX):
        return CARRIER_BEHAVIOURS.get(number[-1:], "vacant")
    return BEHAVIOURS.get(number[-1:], "keys")


class CustomerSimulator:
    def __init__(self, asterisk: AsteriskSettings, speak: Speak, *,
                 username: str = "customer", max_calls: int = 64, register: bool = True,
                 local_port: int = 0, local_host: str = "127.0.0.1") -> None:
        """``register`` False with a fixed ``local_port``: the far end of a static trunk (a
        carrier's: no registration, Asterisk sends to a configured address; several boxes may
        send to one simulator, ``sources`` counts each box's calls)."""
        self.phone = SipPhone(server_host=asterisk.bind_host, server_port=asterisk.sip_port,
                              username=username,
                              password=asterisk.caller_password.get_secret_value(),
                              max_ringing=max_calls, local_port=local_port,
                              local_host=local_host)
        self.register = register
        self.speak = speak
        self.calls: Counter[str] = Counter()  # behaviour -> calls received
        self.sources: Counter[str] = Counter()  # the address each INVITE came from
        self.errors: list[str] = []
        self.hung_up_on: Counter[str] = Counter()  # behaviour -> calls the far end ended
        self._loop: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self.phone.start()
        if self.register:
            await self.phone.register()
        self._loop = asyncio.create_task(self._accept(), name="customer-sim")

    async def close(self) -> None:
        tasks = [t for t in (self._loop, *self._tasks) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.phone.close()

    async def _accept(self) -> None:
        while True:
            try:
                call = await self.phone.next_call(3600)
            except TimeoutError:
                continue
            task = asyncio.create_task(self._handle(call), name=f"customer-{call.call_id[:8]}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _handle(self, call: IncomingCall) -> None:
        number = _dialed(call)
        kind = behaviour_of(number)
        self.calls[kind] += 1
        self.sources[call.addr[0]] += 1
        try:
            await self._behave(call, kind)
        except SipError as exc:  # the dialer hung up on us (a machine, a timeout): not ours
            log.info("simulated customer (%s): %s", kind, exc)
        except (TimeoutError, OSError, RuntimeError) as exc:
            self.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
            log.warning("simulated customer (%s) failed: %s", kind, exc)
        finally:
            if call.ended_by_remote:  # the server's BYE (after its goodbye or apology)
                self.hung_up_on[kind] += 1
            elif not call.ended:
                with contextlib.suppress(Exception):
                    await call.hangup()

    async def _announce(self, call: IncomingCall, kind: str) -> None:
        """The network's early media (or, ``answered_``, after a fake answer), over and over,
        until the dialer gives up."""
        fake_answer = kind.startswith("answered_")
        if fake_answer:
            await call.answer()
        else:
            call.progress()
        words = await self.speak(ANNOUNCEMENT[kind])
        pause = bytes(int(0.8 * 8000) * 2)
        loop = asyncio.get_running_loop()
        until = loop.time() + ANNOUNCE_FOR_S
        while not call.ended and loop.time() < until:
            with contextlib.suppress(TimeoutError, SipError):
                await asyncio.wait_for(call.play(words + pause), len(words) / 16000 + 3)
        if not fake_answer:
            call.reject("480 Temporarily Unavailable")

    async def _behave(self, call: IncomingCall, kind: str) -> None:
        if kind in ANNOUNCEMENT:
            await self._announce(call, kind)
            return
        if kind == "music_then_decline":
            call.progress()
            await call.play(line(music(5.0, random.Random(call.call_id)) * 0.4,
                                 random.Random(call.call_id)))
            kind = "decline"
        elif kind == "ring_then_decline":
            await asyncio.sleep(3.0)  # ring-back: the 180 is already sent
            kind = "decline"
        elif kind == "silent_then_decline":
            await call.answer()
            await listen_until_quiet(call)  # says nothing until the survey's opening is over
            await _press(call, "2")
            await call.wait_hangup(timeout=60)
            return
        if kind == "busy":
            call.reject("486 Busy Here")
            return
        if kind == "no_answer":
            await call.wait_hangup(timeout=120)  # the dialer's ring timeout CANCELs
            return
        await call.answer()
        if kind == "machine":
            await call.play(await self.speak(MACHINE_GREETING))
            await call.wait_hangup(timeout=30)
            return
        await call.play(await self.speak(HELLO))
        await listen_until_quiet(call)  # opening and consent
        if kind == "dnc":  # says it again when asked again, as an annoyed customer would
            for _ in range(2):
                await call.play(await self.speak("不要再打了。"))
                await listen_until_quiet(call, max_s=15.0)
                if call.ended:
                    return
        elif kind == "decline":  # a person, who says no to the survey (key 2)
            await _press(call, "2")
        elif kind == "voice":
            for text in VOICE_ANSWERS:
                await call.play(await self.speak(text))
                await listen_until_quiet(call)
        else:
            for keys in ("1", "4", "9#", "1"):
                await _press(call, keys)
                if kind == "hangup_mid" and keys == "4":
                    await asyncio.sleep(0.5)
                    await call.hangup()
                    return
        await call.wait_hangup(timeout=60)


async def _press(call: SipCall, keys: str) -> None:
    await call.send_dtmf(keys)
    await listen_until_quiet(call)


def _dialed(call: IncomingCall) -> str:
    """The number dialed: the user part of the INVITE's request URI."""
    parts = call.invite.start.split()
    uri = parts[1] if len(parts) > 1 else ""
    user = uri.split(":", 1)[-1].split("@", 1)[0]
    return user.split(";", 1)[0]
