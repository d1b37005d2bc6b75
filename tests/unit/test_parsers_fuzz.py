"""Every parser of outside input, fuzzed briefly (``ivr drill fuzz`` runs the same targets with
many more inputs): nothing but its documented error escapes. On old main a deeply nested ARI
event (RecursionError) or a duration of 1e400 (OverflowError) escaped and killed the event task,
a padding byte of 0 emptied an RTP payload, and any AGI result became a character."""

from __future__ import annotations

import pytest

from ivr.calls.agi_channel import agi_key
from ivr.telephony.media.external import CallerAudio
from ivr.telephony.media.rtp import FRAME_SAMPLES, RtpPacket
from ivr.tools.fuzz import TARGETS, run_target

ASTERISK = ("127.0.0.1", 40000)


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
def test_nothing_but_the_documented_error_escapes(target: object) -> None:
    result = run_target(target, 150)  # type: ignore[arg-type]
    assert result.examples >= 100 and not result.escaped, result.escaped


def _packet(seq: int, payload: bytes = bytes(FRAME_SAMPLES)) -> bytes:
    return RtpPacket(0, seq, seq * FRAME_SAMPLES, 7, payload).encode()


def test_only_the_first_sender_is_heard() -> None:
    audio = CallerAudio()
    audio._on_packet(_packet(1), ASTERISK)
    audio._on_packet(_packet(2), ("192.0.2.9", 40000))  # injected from elsewhere
    audio._on_packet(_packet(3), ("127.0.0.1", 40002))  # another port
    audio._on_packet(_packet(2), ASTERISK)
    assert audio.stats.foreign == 2 and audio.stats.packets == 2 and audio.frames.qsize() == 2


def test_a_known_asterisk_address_is_required_from_the_first_packet() -> None:
    audio = CallerAudio(sender_host="10.0.0.5")
    audio._on_packet(_packet(1), ASTERISK)
    assert audio.stats.foreign == 1 and audio.frames.empty()
    audio._on_packet(_packet(2), ("10.0.0.5", 12000))
    assert audio.frames.qsize() == 1


@pytest.mark.parametrize("size", [0, 80, 159, 161, 320, 120_000 // 8])
def test_only_20_ms_payloads_become_frames(size: int) -> None:
    audio = CallerAudio()
    audio._on_packet(_packet(1, bytes(size)), ASTERISK)
    assert audio.frames.empty() and audio.stats.bad == 1


def test_bad_padding_is_refused() -> None:
    data = bytearray(_packet(1))
    data[0] |= 0x20  # padding flag; the last byte (0) counts no padding: invalid
    with pytest.raises(ValueError):
        RtpPacket.decode(bytes(data))


@pytest.mark.parametrize(("result", "key"), [
    (ord("1"), "1"), (ord("#"), "#"), (ord("*"), "*"), (0, None), (-1, None),
    (ord("x"), None), (10 ** 9, None), (0x110000, None)])
def test_an_agi_result_is_a_key_or_nothing(result: int, key: str | None) -> None:
    assert agi_key(result) == key
