"""A channel's ears over ARI: the caller's side of a channel (a snoop + externalMedia tap,
``ivr.telephony.media.external``) through the endpointer into the shared recogniser
(``ivr.calls.listener``).
Used by the inbound calls, the FastAGI calls, the survey dialer (``ivr up`` and
``ivr campaigns run``) and live assist during agent calls."""

from __future__ import annotations

from asr.base import Recognizer
from asr.endpoint import EndpointSettings
from ivr.calls.listener import Listener
from ivr.core.config import Settings
from ivr.telephony.ari.client import AriClient
from ivr.telephony.media.external import MediaTap


def tap_listener(ari: AriClient, channel_id: str, recognizer: Recognizer, settings: Settings,
                 *, live: bool = False) -> Listener:
    """``live``: for the agent call (no partials, no early ends: plain utterances)."""
    a = settings.asterisk
    tap = MediaTap(ari, channel_id, media_host=a.media_host, bind=a.media_bind)
    return Listener(
        tap.open, tap.close, recognizer,
        EndpointSettings.from_settings(settings.asr,
                                       no_input_s=settings.dialog.no_input_timeout_s),
        partial_interval_s=0.0 if live else settings.asr.partial_interval_s,
        confirm_by_text=settings.asr.barge_in_confirm == "text",
        early_end=settings.asr.early_end and not live,
        decode_deadline_s=None if live else settings.asr.decode_deadline_s,
    )
