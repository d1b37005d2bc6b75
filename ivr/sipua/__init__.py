"""The project's SIP/RTP test caller: real SIP over UDP, G.711 μ-law, RFC 4733 DTMF."""

from ivr.sipua.agent import SipCall, SipError, SipUserAgent
from ivr.sipua.rtp import audio_stats, voiced_seconds

__all__ = ["SipCall", "SipError", "SipUserAgent", "audio_stats", "voiced_seconds"]
