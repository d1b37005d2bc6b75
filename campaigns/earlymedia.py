"""Listening to a survey call before anyone answers: the network's early media, classified.

While a dial rings, ``EarlyMedia.listen`` taps the dialing channel as the inbound calls are
tapped (``ivr.telephony.media.external.MediaTap``: a snoop that hears what the far end sends,
183 Session Progress audio included, bridged to an externalMedia RTP socket of ours) and, every
``step_s`` of audio, classifies the last ``window_s`` (``campaigns.carrier.classify``,
provisional: words still being said decide only when telling). It returns the first verdict
that ends the dial (an announcement: vacant, suspended, unreachable, busy) and otherwise runs
until it is cancelled (the call was answered, or hung up). A coloured ring-back ends nothing
(it is not an answer: the dial rings on). A tap that cannot be set up (the
channel already gone, an Asterisk that refuses the snoop) is logged and the dial goes on as
before, without listening: listening never costs a call.
"""

from __future__ import annotations

import logging

from campaigns.carrier import ANNOUNCEMENTS, Transcriber, Verdict, classify
from ivr.core.config import AsteriskSettings
from ivr.telephony.ari.client import AriClient, AriError
from ivr.telephony.media.external import MediaTap

log = logging.getLogger("campaigns.earlymedia")

RATE = 8000
STEP_S = 1.0  # classify after each second of new audio
WINDOW_S = 10.0  # the last seconds classified (an announcement said once fits)


class EarlyMedia:
    def __init__(self, recognizer: Transcriber, asterisk: AsteriskSettings, *,
                 step_s: float = STEP_S, window_s: float = WINDOW_S) -> None:
        self.recognizer = recognizer
        self.asterisk = asterisk
        self.step_bytes = int(step_s * RATE) * 2
        self.window_bytes = int(window_s * RATE) * 2

    async def listen(self, ari: AriClient, channel_id: str) -> Verdict | None:
        """The verdict that ends this dial, or None (the audio ended; cancel to stop)."""
        a = self.asterisk
        tap = MediaTap(ari, channel_id, media_host=a.media_host, bind=a.media_bind)
        try:
            audio = await tap.open()
        except (AriError, OSError) as exc:
            log.info("no early media tap on %s (%s): the dial goes on unheard", channel_id, exc)
            return None
        pcm = bytearray()
        last = 0
        try:
            while True:
                frame = await audio.frame()
                if frame is None:
                    return None
                pcm += frame
                if len(pcm) - last < self.step_bytes:
                    continue
                last = len(pcm)
                window = bytes(pcm[-self.window_bytes:])
                verdict = await classify(window, RATE, self.recognizer, answered=False,
                                         provisional=True)
                if verdict.outcome in ANNOUNCEMENTS:
                    log.info("early media on %s: %s (%s)", channel_id, verdict.outcome,
                             verdict.why)
                    return verdict
        finally:
            await tap.close()
