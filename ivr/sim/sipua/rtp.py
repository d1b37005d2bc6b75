"""RTP for the test caller: G.711 μ-law, RFC 4733 DTMF events, a paced sender and a receiver
that places audio by timestamp (gaps become silence)."""

from __future__ import annotations

import asyncio
import random
import struct
import time
from collections import deque
from collections.abc import Callable

import numpy as np

from ivr.telephony.media.rtp import (
    DTMF_EVENTS,
    FRAME_SAMPLES,
    PT_DTMF,
    PT_PCMU,
    SAMPLE_RATE,
    RtpPacket,
    ulaw_decode,
    ulaw_encode,
)


def dtmf_payload(event: int, duration: int, *, end: bool, volume: int = 10) -> bytes:
    return struct.pack("!BBH", event, (0x80 if end else 0) | (volume & 0x3F), duration)


LOUD_RMS = 300.0  # a 20 ms packet louder than this is speech (or music), not silence


class RtpReceiver:
    """Decoded audio positioned by RTP timestamp, on a wall-clock timeline.

    Asterisk sends no RTP while a channel plays nothing, and its timestamps do not always count
    the pause; so a packet that arrives later than its timestamp says (by more than
    ``REBASE_S``) is placed at its arrival time, and ``pcm()`` pads silence up to now. Bounded:
    beyond ``max_seconds`` (plus a tenth of it, at most ``TRIM_S``: trimmed in one go) the oldest
    audio is dropped (``dropped_samples`` counts it). The buffer grows by doubling, so a packet
    costs the same at the tenth minute of a call as at the first (a simulator runs dozens)."""

    REBASE_S = 0.2
    JITTER_S = 0.06
    TRIM_S = 10.0

    def __init__(self, max_seconds: float = 600.0) -> None:
        self.max_samples = int(max_seconds * SAMPLE_RATE)
        self._buf = np.zeros(SAMPLE_RATE, dtype=np.int16)  # capacity; _len samples used
        self._len = 0
        self._base_ts: int | None = None
        self._offset = 0  # samples dropped from the front
        self.dropped_samples = 0
        self.packets = 0
        self._t0: float | None = None
        self.changed = asyncio.Event()
        # arrival times of loud packets (RMS over LOUD_RMS), newest last: when a reply began
        self.loud_arrivals: deque[float] = deque(maxlen=4096)

    def _wall_pos(self, now: float) -> int:
        assert self._t0 is not None
        return int((now - self._t0) * SAMPLE_RATE) - self._offset

    def add(self, packet: RtpPacket, now: float | None = None) -> None:
        if packet.payload_type != PT_PCMU or not packet.payload:
            return
        now = time.monotonic() if now is None else now
        if self._base_ts is None or self._t0 is None:
            self._base_ts, self._t0 = packet.timestamp, now
        pos = ((packet.timestamp - self._base_ts) & 0xFFFFFFFF) - self._offset
        wall = self._wall_pos(now)
        if pos < wall - int(self.REBASE_S * SAMPLE_RATE) and pos > -self.max_samples:
            # the sender paused: re-anchor its timestamps at this arrival time
            self._base_ts = (self._base_ts - (wall - pos)) & 0xFFFFFFFF
            pos = wall
        if pos < 0 or pos > self.max_samples * 2:
            return  # too old, or a timestamp jump we do not trust
        samples = ulaw_decode(packet.payload)
        if float(np.sqrt(np.mean(samples.astype(np.float32) ** 2))) > LOUD_RMS:
            self.loud_arrivals.append(now)
        end = pos + len(samples)
        if end > self._buf.size:
            grown = np.zeros(max(end, 2 * self._buf.size), dtype=np.int16)
            grown[: self._len] = self._buf[: self._len]
            self._buf = grown
        if pos > self._len:  # a gap: silence (the buffer may hold trimmed audio there)
            self._buf[self._len : pos] = 0
        self._buf[pos:end] = samples
        self._len = max(self._len, end)
        if self._len > self.max_samples + min(int(self.TRIM_S * SAMPLE_RATE),
                                              self.max_samples // 10):
            cut = self._len - self.max_samples
            self._buf[: self.max_samples] = self._buf[cut : self._len]
            self._len = self.max_samples
            self._offset += cut
            self.dropped_samples += cut
        self.packets += 1
        self.changed.set()

    def pcm(self, now: float | None = None, start: int = 0) -> bytes:
        """What was heard until now (a pause in the stream reads as silence); ``start``: from
        that byte on, the same as ``pcm()[start:]`` without copying what comes before."""
        start = max(0, start - start % 2)
        out = self._buf[min(start // 2, self._len) : self._len].astype("<i2").tobytes()
        if self._t0 is not None:
            now = time.monotonic() if now is None else now
            pad = self._wall_pos(now) - int(self.JITTER_S * SAMPLE_RATE) - self._len
            if pad > 0:
                out += bytes(max(0, 2 * min(pad, self.max_samples) - max(0, start - 2 * self._len)))
        return out

    @property
    def seconds(self) -> float:
        return self._len / SAMPLE_RATE


class RtpSender:
    """Sends a 20 ms packet every 20 ms: queued audio, DTMF events, or silence."""

    def __init__(self, send: Callable[[bytes], object]) -> None:
        self._send = send
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)
        self.ts = random.getrandbits(32)
        self._audio = bytearray()  # 8 kHz s16le waiting to be sent
        self._audio_done: list[tuple[int, asyncio.Future[None]]] = []
        self._dtmf: list[tuple[str, int, asyncio.Future[None]]] = []
        self._sent_bytes = 0
        self._silence = ulaw_encode(np.zeros(FRAME_SAMPLES, dtype=np.int16))

    def queue_audio(self, pcm: bytes) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._audio += pcm
        self._audio_done.append((self._sent_bytes + len(self._audio), fut))
        return fut

    def queue_dtmf(self, digit: str, duration_ms: int) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._dtmf.append((digit, duration_ms, fut))
        return fut

    def _packet(
        self, pt: int, payload: bytes, *, marker: bool = False, ts: int | None = None
    ) -> None:
        pkt = RtpPacket(pt, self.seq, self.ts if ts is None else ts, self.ssrc, payload, marker)
        self.seq = (self.seq + 1) & 0xFFFF
        self._send(pkt.encode())

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            if self._dtmf:
                digit, duration_ms, fut = self._dtmf.pop(0)
                next_at = await self._send_dtmf(digit, duration_ms, next_at)
                if not fut.done():
                    fut.set_result(None)
                continue
            frame_bytes = FRAME_SAMPLES * 2
            if self._audio:
                chunk = bytes(self._audio[:frame_bytes]).ljust(frame_bytes, b"\0")
                del self._audio[:frame_bytes]
                self._sent_bytes += min(frame_bytes, len(chunk))
                payload = ulaw_encode(np.frombuffer(chunk, dtype="<i2"))
                while self._audio_done and self._audio_done[0][0] <= self._sent_bytes:
                    _, fut = self._audio_done.pop(0)
                    if not fut.done():
                        fut.set_result(None)
            else:
                payload = self._silence
            self._packet(PT_PCMU, payload)
            self.ts = (self.ts + FRAME_SAMPLES) & 0xFFFFFFFF
            next_at += 0.02
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    async def _send_dtmf(self, digit: str, duration_ms: int, next_at: float) -> float:
        loop = asyncio.get_running_loop()
        event = DTMF_EVENTS[digit.upper()]
        start_ts = self.ts
        frames = max(1, duration_ms // 20)
        for i in range(1, frames + 1):
            self._packet(
                PT_DTMF,
                dtmf_payload(event, i * FRAME_SAMPLES, end=False),
                marker=i == 1,
                ts=start_ts,
            )
            next_at += 0.02
            await asyncio.sleep(max(0.0, next_at - loop.time()))
        for _ in range(3):  # the end packet, sent three times (RFC 4733 2.5.1.4)
            self._packet(
                PT_DTMF, dtmf_payload(event, frames * FRAME_SAMPLES, end=True), ts=start_ts
            )
        self.ts = (start_ts + frames * FRAME_SAMPLES) & 0xFFFFFFFF
        return next_at


def voiced_seconds(pcm: bytes, *, threshold_dbfs: float = -45.0) -> float:
    """Seconds of 20 ms frames louder than ``threshold_dbfs`` (speech or music, not silence)."""
    return audio_stats(pcm, threshold_dbfs=threshold_dbfs)["voiced_s"]


def audio_stats(pcm: bytes, *, threshold_dbfs: float = -45.0) -> dict[str, float]:
    x = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float64)
    n = len(x) // FRAME_SAMPLES
    if n == 0:
        return {
            "duration_s": len(x) / SAMPLE_RATE,
            "rms_dbfs": -120.0,
            "voiced_share": 0.0,
            "voiced_s": 0.0,
        }
    frames = x[: n * FRAME_SAMPLES].reshape(n, FRAME_SAMPLES)
    rms = np.sqrt(np.mean(frames * frames, axis=1)) / 32768.0
    db = 20 * np.log10(np.maximum(rms, 1e-6))
    voiced = int(np.sum(db > threshold_dbfs))
    total_rms = float(np.sqrt(np.mean(x * x))) / 32768.0
    return {
        "duration_s": len(x) / SAMPLE_RATE,
        "rms_dbfs": 20 * float(np.log10(max(total_rms, 1e-6))),
        "voiced_share": voiced / n,
        "voiced_s": voiced * 0.02,
    }
