"""The test caller's framing and codecs (its calls through Asterisk are in test_call_flow)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from ivr.sim.sipua.message import (
    SipParseError,
    digest_response,
    parse_challenge,
    parse_message,
    sdp_offer,
    sdp_remote_audio,
    uac_route_set,
)
from ivr.sim.sipua.rtp import (
    PT_PCMU,
    RtpPacket,
    RtpReceiver,
    audio_stats,
    dtmf_payload,
    ulaw_decode,
    ulaw_encode,
)


def test_sip_message_round_trip_and_compact_headers() -> None:
    raw = (
        b"SIP/2.0 200 OK\r\nv: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKx;rport=5070\r\n"
        b"f: <sip:caller@127.0.0.1>;tag=a\r\nt: <sip:956100@127.0.0.1>;tag=b\r\n"
        b"i: abc@127.0.0.1\r\nCSeq: 2 INVITE\r\nl: 4\r\n\r\nbodyEXTRA"
    )
    msg = parse_message(raw)
    assert msg.is_response and msg.status == 200 and msg.method == "INVITE" and msg.cseq == 2
    assert msg.get("Call-ID") == "abc@127.0.0.1" and msg.body == b"body"
    again = parse_message(msg.encode())
    assert again.get_all("via") == msg.get_all("via") and again.body == b"body"
    assert again.get("content-length") == "4"


def test_caller_keeps_the_proxies_route_set_reversed() -> None:
    resp = parse_message(
        b"SIP/2.0 200 OK\r\nRecord-Route: <sip:10.0.0.2;lr>, <sip:10.0.0.3;lr>\r\n"
        b"Record-Route: <sip:10.78.0.1:5080;lr>\r\nCall-ID: a\r\nCSeq: 2 INVITE\r\n\r\n")
    assert uac_route_set(resp) == ["<sip:10.78.0.1:5080;lr>", "<sip:10.0.0.3;lr>",
                                   "<sip:10.0.0.2;lr>"]
    assert uac_route_set(parse_message(b"SIP/2.0 200 OK\r\nCall-ID: a\r\n\r\n")) == []


@pytest.mark.parametrize(
    "bad", [b"hello", b"GET / HTTP/1.1\r\n\r\n", b"SIP/2.0 200 OK\r\nnocolon\r\n\r\n"]
)
def test_malformed_sip_is_rejected(bad: bytes) -> None:
    with pytest.raises(SipParseError):
        parse_message(bad)


def test_digest_matches_rfc2617_example() -> None:
    # RFC 2617 section 3.5 (HTTP example; the algorithm is the one SIP uses)
    resp = digest_response(
        username="Mufasa",
        password="Circle Of Life",
        realm="testrealm@host.com",
        method="GET",
        uri="/dir/index.html",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        qop="auth",
        nc="00000001",
        cnonce="0a4f113b",
    )
    assert resp == "6629fae49393a05397450978507c4ef1"
    ch = parse_challenge(
        'Digest realm="asterisk",nonce="1/abc",opaque="x",algorithm=MD5,qop="auth"'
    )
    assert ch["realm"] == "asterisk" and ch["qop"] == "auth" and ch["opaque"] == "x"


def test_sdp_offer_and_answer() -> None:
    offer = sdp_offer("127.0.0.1", 40000, 1).decode()
    assert "m=audio 40000 RTP/AVP 0 101" in offer and "telephone-event/8000" in offer
    assert sdp_remote_audio(b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 10002 RTP/AVP 0\r\n") == (
        "127.0.0.1",
        10002,
    )


def test_ulaw_round_trip_is_close() -> None:
    x = (np.sin(np.arange(800) / 8) * 12000).astype(np.int16)
    y = ulaw_decode(ulaw_encode(x))
    assert np.max(np.abs(y.astype(int) - x)) < 400
    assert ulaw_encode(np.zeros(1, dtype=np.int16)) == b"\xff"


def test_dtmf_packet_layout() -> None:
    assert dtmf_payload(5, 320, end=False) == bytes([5, 10, 1, 64])
    assert dtmf_payload(11, 1280, end=True)[1] & 0x80


def test_receiver_places_by_timestamp_and_fills_gaps() -> None:
    rx = RtpReceiver()
    frame = ulaw_encode(np.full(160, 8000, dtype=np.int16))
    rx.add(RtpPacket(PT_PCMU, 1, 1000, 7, frame), now=0.0)
    rx.add(RtpPacket(PT_PCMU, 3, 1320, 7, frame), now=0.04)  # seq 2 lost: 20 ms of silence
    pcm = np.frombuffer(rx.pcm(now=0.06), dtype="<i2")
    assert len(pcm) == 480 and not pcm[160:320].any() and pcm[:160].all()
    # a pause with no packets reads as silence up to now
    assert len(rx.pcm(now=1.0)) // 2 > 7000
    assert audio_stats(rx.pcm(now=0.06))["voiced_s"] == pytest.approx(0.04)


def test_receiver_is_bounded() -> None:
    rx = RtpReceiver(max_seconds=0.1)
    frame = ulaw_encode(np.full(160, 1000, dtype=np.int16))
    for i in range(20):
        rx.add(RtpPacket(PT_PCMU, i, i * 160, 7, frame), now=i * 0.02)
    assert rx.seconds <= 0.11 and rx.dropped_samples > 0  # a tenth over, trimmed in one go


def tone(seconds: float = 1.0, hz: float = 800.0) -> bytes:
    t = np.arange(int(8000 * seconds)) / 8000
    return (np.sin(2 * np.pi * hz * t) * 9000).astype("<i2").tobytes()


async def test_phone_answers_a_call_and_bye_works_both_ways() -> None:
    """The agent phone (UAS) against the test caller directly: 180, 200 with SDP, ACK, media
    both ways; the phone hangs up the first call, the caller the second."""
    from ivr.sim.sipua import SipPhone, SipUserAgent, voiced_seconds

    phone = SipPhone(server_host="127.0.0.1", server_port=9, username="agent1", password="x")
    await phone.start()
    caller = SipUserAgent(server_host="127.0.0.1", server_port=phone.local_port,
                          username="caller", password="x", display_name="Test Caller")
    await caller.start()
    try:
        for phone_hangs_up in (True, False):
            placing = asyncio.create_task(caller.call("agent1", timeout=5))
            incoming = await phone.next_call(timeout=3)
            assert incoming.caller_number == "caller" and incoming.caller_name == "Test Caller"
            assert incoming.ringing_at is not None and not incoming.answered.done()
            await incoming.answer()
            call = await placing
            await call.play(tone())
            await incoming.play(tone())
            await asyncio.sleep(0.2)
            assert voiced_seconds(incoming.heard()) > 0.6
            assert voiced_seconds(call.heard()) > 0.6
            if phone_hangs_up:
                await incoming.hangup()
                await call.wait_hangup(3)
                assert call.ended_by_remote and not incoming.ended_by_remote
            else:
                await call.hangup()
                await incoming.wait_hangup(3)
                assert incoming.ended_by_remote
            assert not phone.calls and not caller.calls
    finally:
        await caller.close()
        await phone.close()


async def test_phone_refuses_calls_beyond_its_ringing_queue() -> None:
    from ivr.sim.sipua import SipError, SipPhone, SipUserAgent

    phone = SipPhone(server_host="127.0.0.1", server_port=9, username="agent1", password="x",
                     max_ringing=1)
    await phone.start()
    caller = SipUserAgent(server_host="127.0.0.1", server_port=phone.local_port,
                          username="caller", password="x")
    await caller.start()
    try:
        first = asyncio.create_task(caller.call("agent1", timeout=5))
        await asyncio.sleep(0.2)
        with pytest.raises(SipError, match="486"):
            await caller.call("agent1", timeout=3)
        ringing = await phone.next_call(timeout=1)
        ringing.reject("603 Decline")
        with pytest.raises(SipError, match="603"):
            await first
    finally:
        await caller.close()
        await phone.close()
