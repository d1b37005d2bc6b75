"""PCM checks and conversions shared by the recognisers, the VAD and the evaluation.

Everything inside ``asr`` takes 16-bit signed little-endian mono PCM at 8000 Hz (the telephone
line) or 16000 Hz; anything else is refused with an ``AudioError`` that says what was wrong.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy.signal import firwin, lfilter, resample_poly

from asr.base import AudioError

SUPPORTED_RATES = (8000, 16000)
WHISPER_RATE = 16000

FloatArray = NDArray[np.float32]


def check_rate(sample_rate: int) -> int:
    if sample_rate not in SUPPORTED_RATES:
        raise AudioError(
            f"unsupported sample rate {sample_rate!r} Hz: 16-bit mono PCM at 8000 or 16000 Hz"
        )
    return sample_rate


def check_pcm(pcm: bytes, *, allow_empty: bool = False) -> None:
    if not isinstance(pcm, bytes | bytearray | memoryview):
        raise AudioError(f"PCM must be bytes, not {type(pcm).__name__}")
    if len(pcm) % 2:
        raise AudioError(f"PCM must be whole 16-bit samples: {len(pcm)} bytes is an odd count")
    if not allow_empty and len(pcm) == 0:
        raise AudioError("no audio: the PCM is empty")


def pcm_to_float(pcm: bytes, sample_rate: int) -> FloatArray:
    """16-bit little-endian mono PCM -> float32 in [-1, 1]; AudioError for broken input."""
    check_rate(sample_rate)
    check_pcm(pcm)
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def to_16k(samples: FloatArray, sample_rate: int) -> FloatArray:
    """Whole-utterance resampling to Whisper's 16 kHz (polyphase, anti-aliased)."""
    if sample_rate == WHISPER_RATE:
        return samples
    return np.asarray(resample_poly(samples, WHISPER_RATE, sample_rate), dtype=np.float32)


def float_to_pcm(samples: FloatArray) -> bytes:
    clipped = np.clip(samples, -1.0, 32767 / 32768)
    return (clipped * 32768.0).astype("<i2").tobytes()


class Upsampler2x:
    """Streaming 8 -> 16 kHz for the VAD: zero-stuffing and a low-pass FIR whose state carries
    across blocks, so block edges add no clicks. About 1 ms of delay."""

    def __init__(self, taps: int = 31) -> None:
        self._fir = (2.0 * firwin(taps, 0.5)).astype(np.float64)
        self._zi = np.zeros(taps - 1)

    def __call__(self, block: FloatArray) -> FloatArray:
        stuffed = np.zeros(block.size * 2)
        stuffed[::2] = block
        out, self._zi = lfilter(self._fir, 1.0, stuffed, zi=self._zi)
        return np.asarray(out, dtype=np.float32)

    def reset(self) -> None:
        self._zi[:] = 0.0


def read_wav(path: str | Path, *, rate: int | None = None) -> tuple[bytes, int]:
    """A WAV file as 16-bit mono PCM: (pcm, sample_rate). Stereo is mixed down; a rate other than
    8000/16000 (or other than ``rate`` when given) is resampled. AudioError when unreadable."""
    p = Path(path)
    try:
        with wave.open(str(p), "rb") as w:
            channels, width, sr = w.getnchannels(), w.getsampwidth(), w.getframerate()
            frames = w.readframes(w.getnframes())
    except (OSError, EOFError, wave.Error) as exc:
        raise AudioError(f"cannot read {p} as a PCM WAV file: {exc}") from exc
    if width != 2:
        raise AudioError(f"{p}: {8 * width}-bit samples; 16-bit PCM WAV expected")
    x = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
    if channels > 1:
        x = x.reshape(-1, channels).mean(axis=1).astype(np.float32)
    target = rate or (sr if sr in SUPPORTED_RATES else WHISPER_RATE)
    check_rate(target)
    if sr != target:
        x = np.asarray(resample_poly(x, target, sr), dtype=np.float32)
    return float_to_pcm(x), target
