"""The project's SIP/RTP test caller and agent phone: real SIP over UDP, G.711 μ-law,
RFC 4733 DTMF; the phone registers and answers (``ivr.sim.sipua.uas``)."""

from ivr.sim.sipua.agent import SipCall, SipError, SipUserAgent
from ivr.sim.sipua.rtp import audio_stats, voiced_seconds
from ivr.sim.sipua.uas import IncomingCall, SipPhone

__all__ = [
    "IncomingCall",
    "SipCall",
    "SipError",
    "SipPhone",
    "SipUserAgent",
    "audio_stats",
    "voiced_seconds",
]
