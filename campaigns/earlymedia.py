"""Listening to a survey call before anyone answers: the network's early media, classified.

While a dial rings, ``EarlyMedia.listen`` taps the dialing channel as the inbound calls are
tapped (``ivr.telephony.media.external.MediaTap``: a snoop that hears what the far end sends,
183 Session Progress audio included, bridged to an externalMedia RTP socket of ours) and, every
``step_s`` of audio, classifies the last ``window_s`` (``campaigns.carrier.classify``,
provisional: words still being said decide only when telling). It returns the first verdict
that ends the dial (an announcement: vacant, suspended, unreachable, busy) and otherwise runs
until it is cancelled (the call hung up). A coloured ring-back ends nothing (it is not an
answer: the dial rings on).

The network also answers and then announces (a fake answer: 200 OK, then 空号 or 停机), which
``AMD()`` takes for a machine or a person. So listening goes on for ``AFTER_ANSWER_S`` after
the answer (``answered`` set), classified as answered audio; only an announcement (or a busy
or congestion tone) is returned: whether a person or a machine answered stays AMD's and the
survey's to decide. Then it returns None. A tap that cannot be set up (the
channel already gone, an Asterisk that refuses the snoop) is logged and the dial goes on as
before, without listening: listening never costs a call.
"""

from __future__ import annotations

import asyncio
import logging

from campaigns.carrier import ANNOUNCEMENTS, Transcriber, Verdict, classify
from ivr.core.config import AsteriskSettings
from ivr.telephony.ari.client import AriClient, AriError
from ivr.telephony.media.external import MediaTap

log = logging.getLogger("campaigns.earlymedia")

RATE = 8000
STEP_S = 1.0  # classify after each second of new audio
WINDOW_S = 10.0  # the last seconds classified (an announcement said once fits)
AFTER_ANSWER_S = 8.0  # listening on after an answer (a fake answer's announcement fits)


class EarlyMedia:
    def __init__(self, recognizer: Transcriber, asterisk: AsteriskSettings, *,
                 step_s: float = STEP_S, window_s: float = WINDOW_S,
                 after_answer_s: float = AFTER_ANSWER_S) -> None:
        self.recognizer = recognizer
        self.asterisk = asterisk
        self.after_answer_s = after_answer_s
        self.step_bytes = int(step_s * RATE) * 2
        self.window_bytes = int(window_s * RATE) * 2

    async def listen(self, ari: AriClient, channel_id: str,
                     answered: asyncio.Event | None = None) -> Verdict | None:
        """The verdict that ends this dial, or None (the audio ended, or ``after_answer_s``
        passed since ``answered`` was set; cancel to stop)."""
        a = self.asterisk
        tap = MediaTap(ari, channel_id, media_host=a.media_host, bind=a.media_bind)
        try:
            audio = await tap.open()
        except (AriError, OSError) as exc:
            log.info("no early media tap on %s (%s): the dial goes on unheard", channel_id, exc)
            return None
        pcm = bytearray()
        last = 0
        loop = asyncio.get_running_loop()
        until: float | None = None  # answered: listening ends then
        try:
            while True:
                if until is None and answered is not None and answered.is_set():
                    until = loop.time() + self.after_answer_s
                if until is None:
                    frame = await audio.frame()
                else:
                    try:
                        frame = await asyncio.wait_for(audio.frame(), until - loop.time())
                    except TimeoutError:
                        return None
                if frame is None:
                    return None
                pcm += frame
                if len(pcm) - last < self.step_bytes:
                    continue
                last = len(pcm)
                window = bytes(pcm[-self.window_bytes:])
                verdict = await classify(window, RATE, self.recognizer,
                                         answered=until is not None, provisional=True)
                if verdict.outcome in ANNOUNCEMENTS:
                    log.info("%s on %s: %s (%s)",
                             "early media" if until is None else "after the answer",
                             channel_id, verdict.outcome, verdict.why)
                    return verdict
        finally:
            await tap.close()
