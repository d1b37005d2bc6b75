"""The parsers' fuzz targets: every parser of outside input, what it may raise, and the
inputs to try (``hypothesis`` strategies). ``ivr drill fuzz`` runs each with many examples and
prints figures; ``tests/unit/test_parsers_fuzz.py`` runs the same targets briefly in CI.

Decides the contract: a parser given anything returns a value or raises its documented error
type; nothing else escapes (no RecursionError, OverflowError, KeyError...), and the RTP receiver
only ever emits 20 ms frames whatever arrives.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.repo import parse_rows
from campaigns.survey import SurveyError, parse_survey
from dialog.scenario import ScenarioError, parse_bot
from ivr.calls.agi_channel import agi_key
from ivr.telephony.ami import to_queue_event
from ivr.telephony.ari.events import MalformedEvent, parse_event
from ivr.telephony.media.external import CallerAudio
from ivr.telephony.media.rtp import FRAME_SAMPLES, RtpPacket

_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=30)
_EVENT_TYPES = st.sampled_from(["StasisStart", "StasisEnd", "ChannelDtmfReceived",
                                "ChannelHangupRequest", "ChannelDestroyed", "PlaybackFinished",
                                "ChannelStateChange", "Other"])


def _ari_messages() -> st.SearchStrategy[str]:
    events = st.builds(lambda kind, body: json.dumps({**body, "type": kind}, default=str),
                       _EVENT_TYPES, st.dictionaries(
                           st.sampled_from(["channel", "digit", "duration_ms", "cause",
                                            "playback", "args", "timestamp"]), _json))
    nested = st.integers(1, 5000).map(lambda n: "[" * n + "]" * n)
    return events | nested | st.text(max_size=200) | st.sampled_from([
        '{"type": "ChannelDtmfReceived", "channel": {"id": "a"}, "digit": "1", '
        '"duration_ms": 1e400}'])


def _rtp_stream(packets: list[bytes]) -> None:
    audio = CallerAudio()
    for data in packets:
        audio._on_packet(data, ("127.0.0.1", 4000))
    while not audio.frames.empty():
        frame = audio.frames.get_nowait()
        if frame is not None and len(frame) != FRAME_SAMPLES * 2:
            raise AssertionError(f"a frame of {len(frame)} bytes")


def _rtp_packets() -> st.SearchStrategy[list[bytes]]:
    good = st.builds(lambda seq, payload: RtpPacket(0, seq, 0, 1, payload).encode(),
                     st.integers(0, 0xFFFF), st.binary(min_size=0, max_size=400))
    return st.lists(good | st.binary(max_size=300), max_size=40)


def _yaml_text() -> st.SearchStrategy[str]:
    return st.text(max_size=300) | st.builds(
        lambda d: json.dumps(d, ensure_ascii=False), _json)  # JSON is YAML too


@dataclass(frozen=True)
class FuzzTarget:
    name: str
    strategy: st.SearchStrategy[Any]
    call: Callable[[Any], object]
    allowed: tuple[type[BaseException], ...] = ()


TARGETS: tuple[FuzzTarget, ...] = (
    FuzzTarget("ari-event", _ari_messages(), parse_event, (MalformedEvent,)),
    FuzzTarget("rtp-packet", st.binary(max_size=400), RtpPacket.decode, (ValueError,)),
    FuzzTarget("rtp-stream", _rtp_packets(), _rtp_stream),
    FuzzTarget("ami-message", st.dictionaries(
        st.sampled_from(["Event", "Queue", "Channel", "Uniqueid", "ChanVariable", "Interface"]),
        _json) | _json, to_queue_event),
    FuzzTarget("agi-digit", st.integers(-(2 ** 70), 2 ** 70), agi_key),
    FuzzTarget("csv-import", st.text(max_size=400) | st.just("phone\n" + "x" * 140_000),
               parse_rows, (ValueError,)),
    FuzzTarget("bot-yaml", _yaml_text(), parse_bot, (ScenarioError,)),
    FuzzTarget("survey-yaml", _yaml_text(), parse_survey, (SurveyError,)),
)


@dataclass
class FuzzResult:
    name: str
    examples: int = 0
    escaped: list[str] = field(default_factory=list)  # what escaped, shrunk (empty: held)
    seconds: float = 0.0


def run_target(target: FuzzTarget, examples: int) -> FuzzResult:
    result = FuzzResult(target.name)

    @settings(max_examples=examples, database=None, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(target.strategy)
    def check(value: Any) -> None:
        result.examples += 1
        try:
            target.call(value)
        except target.allowed:
            pass

    started = time.perf_counter()
    try:
        check()
    except Exception as exc:  # what escaped is the finding
        result.escaped.append(f"{type(exc).__name__}: {str(exc)[:160]}")
    result.seconds = time.perf_counter() - started
    return result
