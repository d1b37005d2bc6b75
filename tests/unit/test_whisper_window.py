"""The encoder window a Whisper decode reads (``asr.whisper``): the utterance plus a margin, at
least the configured window; a shorter one while other calls' decodes wait."""

from __future__ import annotations

from asr.whisper import shortest_window, window_frames
from ivr.core.config import ASRSettings


def test_the_window_covers_the_utterance() -> None:
    assert window_frames(3 * 16000, 20.0) == 2000  # a short request: the 20 s window
    assert window_frames(25 * 16000, 20.0) == 2600  # a long one: itself + 1 s
    assert window_frames(40 * 16000, 20.0) == 3000  # never past Whisper's 30 s
    assert window_frames(3 * 16000, 0.0) is None and window_frames(3 * 16000, 30.0) is None
    assert window_frames(12 * 16000, 10.0) == 1300  # busy: still the whole utterance


def test_a_shorter_window_only_while_decodes_wait() -> None:
    s = ASRSettings(encoder_window_s=20.0, busy_encoder_window_s=10.0)
    assert shortest_window(s, pending=1, workers=2) == 20.0  # alone
    assert shortest_window(s, pending=2, workers=2) == 20.0  # both workers busy, none waiting
    assert shortest_window(s, pending=3, workers=2) == 10.0  # one waits behind
    off = ASRSettings(encoder_window_s=20.0, busy_encoder_window_s=0.0)
    assert shortest_window(off, pending=5, workers=2) == 20.0
    wider = ASRSettings(encoder_window_s=10.0, busy_encoder_window_s=15.0)
    assert shortest_window(wider, pending=5, workers=2) == 10.0  # never wider than usual
    full = ASRSettings(encoder_window_s=0.0, busy_encoder_window_s=10.0)
    assert shortest_window(full, pending=5, workers=2) == 10.0  # full window otherwise
