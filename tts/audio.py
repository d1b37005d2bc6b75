"""Audio helpers: WAV decoding/encoding, resampling, trimming.

Everything leaves this package as Asterisk's "slin": 8 kHz, 16-bit signed little-endian mono PCM.
Inside, audio is a float32 numpy array in [-1, 1].
"""

from __future__ import annotations

import os
import struct
import tempfile
from math import gcd
from pathlib import Path

import numpy as np

SAMPLE_RATE = 8000  # Hz, what Asterisk plays
SAMPLE_WIDTH = 2  # bytes (s16le)

_FMT_PCM = 0x0001
_FMT_FLOAT = 0x0003
_FMT_ALAW = 0x0006
_FMT_ULAW = 0x0007
_FMT_EXTENSIBLE = 0xFFFE


class AudioFormatError(ValueError):
    """Bytes that are not audio we can read."""


# --- decoding -----------------------------------------------------------------------------------


def decode_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Decode a RIFF/WAVE file to (mono float32 samples, sample rate).

    Tolerates what streaming writers produce (espeak-ng --stdout, HTTP TTS servers): RIFF and data
    sizes of 0xFFFFFFFF or otherwise larger than the bytes present. Reads PCM 8/16/24/32-bit,
    IEEE float 32/64-bit, G.711 A-law/mu-law and WAVE_FORMAT_EXTENSIBLE; channels are averaged.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioFormatError("not a RIFF/WAVE file")
    pos = 12
    fmt: tuple[int, int, int, int] | None = None  # format tag, channels, rate, bits
    payload: bytes | None = None
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body_start = pos + 8
        if chunk_id == b"fmt ":
            if size < 16 or body_start + 16 > len(data):
                raise AudioFormatError("WAV fmt chunk too short")
            tag, channels, rate, _byte_rate, _align, bits = struct.unpack_from(
                "<HHIIHH", data, body_start
            )
            if tag == _FMT_EXTENSIBLE and size >= 40 and body_start + 26 <= len(data):
                (tag,) = struct.unpack_from("<H", data, body_start + 24)  # sub-format GUID head
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            # a streamed file carries a placeholder size: take what is there
            payload = data[body_start : min(len(data), body_start + size)]
            break
        pos = body_start + size + (size & 1)
    if fmt is None:
        raise AudioFormatError("WAV file without a fmt chunk")
    if payload is None:
        raise AudioFormatError("WAV file without a data chunk")
    tag, channels, rate, bits = fmt
    if channels < 1 or rate < 1:
        raise AudioFormatError(f"WAV with {channels} channels at {rate} Hz")
    samples = _decode_samples(payload, tag, bits)
    if channels > 1:
        samples = samples[: len(samples) - len(samples) % channels]
        samples = samples.reshape(-1, channels).mean(axis=1)
    return np.ascontiguousarray(samples, dtype=np.float32), rate


def _decode_samples(payload: bytes, tag: int, bits: int) -> np.ndarray:
    if tag == _FMT_PCM:
        if bits == 8:
            return (np.frombuffer(payload, np.uint8).astype(np.float32) - 128.0) / 128.0
        if bits == 16:
            n = len(payload) // 2
            return np.frombuffer(payload[: 2 * n], "<i2").astype(np.float32) / 32768.0
        if bits == 24:
            n = len(payload) // 3
            raw = np.frombuffer(payload[: 3 * n], np.uint8).reshape(-1, 3).astype(np.int32)
            value = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
            value = np.where(value >= 1 << 23, value - (1 << 24), value)
            return value.astype(np.float32) / float(1 << 23)
        if bits == 32:
            n = len(payload) // 4
            return (np.frombuffer(payload[: 4 * n], "<i4") / 2147483648.0).astype(np.float32)
    elif tag == _FMT_FLOAT:
        if bits == 32:
            n = len(payload) // 4
            return np.frombuffer(payload[: 4 * n], "<f4").astype(np.float32)
        if bits == 64:
            n = len(payload) // 8
            return np.frombuffer(payload[: 8 * n], "<f8").astype(np.float32)
    elif tag in (_FMT_ULAW, _FMT_ALAW) and bits == 8:
        table = _ULAW if tag == _FMT_ULAW else _ALAW
        return table[np.frombuffer(payload, np.uint8)]
    raise AudioFormatError(f"unsupported WAV encoding (format 0x{tag:04x}, {bits} bits)")


def _g711_tables() -> tuple[np.ndarray, np.ndarray]:
    codes = np.arange(256, dtype=np.int32)
    # mu-law (ITU-T G.711)
    u = ~codes & 0xFF
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = ((mantissa << 3) + 0x84) << exponent
    ulaw = np.where(u & 0x80, 0x84 - magnitude, magnitude - 0x84)
    # A-law
    a = codes ^ 0x55
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    magnitude = np.where(
        exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0)
    )
    alaw = np.where(a & 0x80, magnitude, -magnitude)
    return (ulaw / 32768.0).astype(np.float32), (alaw / 32768.0).astype(np.float32)


_ULAW, _ALAW = _g711_tables()


def pcm16_to_float(pcm: bytes) -> np.ndarray:
    n = len(pcm) // 2
    return np.frombuffer(pcm[: 2 * n], "<i2").astype(np.float32) / 32768.0


# --- processing ---------------------------------------------------------------------------------


def resample(samples: np.ndarray, rate_in: int, rate_out: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling (polyphase FIR with an anti-aliasing low-pass)."""
    x = np.asarray(samples, dtype=np.float32)
    if rate_in == rate_out or len(x) == 0:
        return x
    g = gcd(rate_in, rate_out)
    up, down = rate_out // g, rate_in // g
    try:
        from scipy.signal import resample_poly
    except ImportError:  # pragma: no cover - scipy is a dependency; keep working without it
        return _resample_numpy(x, rate_in, rate_out)
    return resample_poly(x, up, down).astype(np.float32)


def _resample_numpy(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Fallback: windowed-sinc low-pass below the lower Nyquist, then linear interpolation."""
    cutoff = 0.45 * min(rate_in, rate_out) / rate_in  # cycles per input sample
    taps = 101
    n = np.arange(taps) - (taps - 1) / 2
    kernel = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(taps, 8.0)
    kernel /= kernel.sum()
    y = np.convolve(x, kernel, mode="same") if rate_out < rate_in else x
    n_out = round(len(x) * rate_out / rate_in)
    t = np.arange(n_out) * (rate_in / rate_out)
    return np.interp(t, np.arange(len(y)), y).astype(np.float32)


def trim_silence(
    samples: np.ndarray, rate: int, *, threshold: float = 0.01, pad_s: float = 0.03
) -> np.ndarray:
    """Cut leading and trailing near-silence, keeping ``pad_s`` seconds around the speech."""
    if len(samples) == 0:
        return samples
    loud = np.flatnonzero(np.abs(samples) > threshold)
    if len(loud) == 0:
        return samples[:0]
    pad = int(pad_s * rate)
    return samples[max(0, loud[0] - pad) : loud[-1] + pad + 1]


def silence(seconds: float, rate: int = SAMPLE_RATE) -> np.ndarray:
    return np.zeros(round(seconds * rate), dtype=np.float32)


def to_pcm16(samples: np.ndarray) -> bytes:
    """float [-1, 1] -> s16le bytes (clipped)."""
    x = np.clip(np.nan_to_num(np.asarray(samples, dtype=np.float32)), -1.0, 1.0)
    return (np.round(x * 32767.0)).astype("<i2").tobytes()


def peak(samples: np.ndarray) -> float:
    return float(np.max(np.abs(samples))) if len(samples) else 0.0


# --- WAV output ---------------------------------------------------------------------------------


def wav_header(n_bytes: int, rate: int = SAMPLE_RATE, channels: int = 1, bits: int = 16) -> bytes:
    block = channels * bits // 8
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 36 + n_bytes, b"WAVE",
        b"fmt ", 16, _FMT_PCM, channels, rate, rate * block, block, bits,
        b"data", n_bytes,
    )  # fmt: skip


def wav_bytes(pcm: bytes, rate: int = SAMPLE_RATE) -> bytes:
    """Wrap s16le mono PCM in a canonical 44-byte-header WAV."""
    return wav_header(len(pcm), rate) + pcm


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and a rename.

    The temporary name does not end in .wav, so Asterisk never sees a half-written prompt; the
    mode is set explicitly (mkstemp makes 0600 files, which another user such as Asterisk
    could not read).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
