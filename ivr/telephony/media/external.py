"""The caller's audio, out of Asterisk: ARI externalMedia (RTP, G.711 μ-law, over loopback UDP).

Per call: a snoop channel on the caller's channel (``spy=in``: what the caller says, never what
the IVR plays) in a bridge with an ``UnicastRTP`` externalMedia channel that sends that audio to
a UDP socket of ours. The caller's own channel stays out of any bridge, so prompts played on it
do not pause the audio (a channel playing in a bridge stops feeding the bridge: no barge-in),
and the recogniser never hears the IVR. Frames come out as 20 ms of 16-bit PCM at 8 kHz.

Only Asterisk is heard: packets from another address than the first sender (or than
``sender_host`` when given) are dropped, and only 20 ms μ-law payloads (160 bytes) become frames.
Jitter and loss: packets are put back in order within a small window by sequence number; a
missing packet becomes 20 ms of silence (up to ``MAX_GAP_FRAMES``), duplicates and late packets
are dropped. Overflow policy: the frame queue is bounded (``QUEUE_FRAMES``, 10 s); when the
consumer stalls the oldest frames are dropped and counted, the socket is never blocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass

from ivr.telephony.ari.client import AriClient, AriError
from ivr.telephony.media.rtp import FRAME_SAMPLES, PT_PCMU, RtpPacket, ulaw_decode

log = logging.getLogger("ivr.telephony.media")

QUEUE_FRAMES = 500  # 10 s of 20 ms frames
REORDER_WINDOW = 4
MAX_GAP_FRAMES = 10
SILENCE = bytes(FRAME_SAMPLES * 2)


@dataclass
class MediaStats:
    packets: int = 0
    frames: int = 0
    lost: int = 0
    late: int = 0
    dropped: int = 0  # frames dropped because the consumer stalled
    bad: int = 0  # not RTP / not PCMU / not a 20 ms frame
    foreign: int = 0  # from another address than Asterisk's (the first sender, latched)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, stream: CallerAudio) -> None:
        self.stream = stream

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.stream._on_packet(data, addr)


class CallerAudio:
    """Receives one call's RTP; ``await frame()`` gives the next 20 ms of PCM (None at end)."""

    def __init__(self, sender_host: str | None = None) -> None:
        self.sender_host = sender_host  # only packets from this address (None: any, latched)
        self._sender: tuple[str, int] | None = None  # the first accepted sender, latched
        self.frames: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE_FRAMES)
        self.stats = MediaStats()
        self._transport: asyncio.DatagramTransport | None = None
        self._next_seq: int | None = None
        self._pending: dict[int, bytes] = {}
        self.port = 0

    async def bind(self, host: str = "127.0.0.1") -> int:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=(host, 0)
        )
        self._transport = transport
        self.port = int(transport.get_extra_info("sockname")[1])
        return self.port

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self._put(None)

    async def frame(self) -> bytes | None:
        return await self.frames.get()

    # ---- receiving -------------------------------------------------------------------------
    def _on_packet(self, data: bytes, addr: tuple[str, int] | None = None) -> None:
        if addr is not None and not self._from_asterisk(addr[:2]):
            self.stats.foreign += 1
            return
        try:
            packet = RtpPacket.decode(data)
        except ValueError:
            self.stats.bad += 1
            return
        if packet.payload_type != PT_PCMU or len(packet.payload) != FRAME_SAMPLES:
            self.stats.bad += 1  # 20 ms of μ-law is 160 bytes: nothing else becomes a frame
            return
        self.stats.packets += 1
        seq = packet.seq
        if self._next_seq is None:
            self._next_seq = seq
        ahead = (seq - self._next_seq) & 0xFFFF
        if ahead >= 0x8000:  # behind what was already delivered: late or duplicate
            self.stats.late += 1
            return
        self._pending[seq] = packet.payload
        if ahead >= REORDER_WINDOW:  # waited long enough: the missing ones are lost
            self._skip_to((seq - REORDER_WINDOW + 1) & 0xFFFF)
        self._drain()

    def _from_asterisk(self, addr: tuple[str, int]) -> bool:
        if self.sender_host is not None and addr[0] != self.sender_host:
            return False
        if self._sender is None:
            self._sender = addr
        return addr == self._sender

    def _skip_to(self, seq: int) -> None:
        assert self._next_seq is not None
        missing = (seq - self._next_seq) & 0xFFFF
        if missing > 50:  # a jump (new stream, long outage): start again from here
            self.stats.lost += missing
            self._pending = {k: v for k, v in self._pending.items()
                             if (k - seq) & 0xFFFF < 0x8000}
            self._next_seq = seq
            return
        for i in range(missing):
            s = (self._next_seq + i) & 0xFFFF
            if s in self._pending:
                self._emit(ulaw_decode(self._pending.pop(s)).tobytes())
            else:
                self.stats.lost += 1
                if i < MAX_GAP_FRAMES:
                    self._emit(SILENCE)
        self._next_seq = seq

    def _drain(self) -> None:
        while self._next_seq is not None and self._next_seq in self._pending:
            self._emit(ulaw_decode(self._pending.pop(self._next_seq)).tobytes())
            self._next_seq = (self._next_seq + 1) & 0xFFFF

    def _emit(self, pcm: bytes) -> None:
        self.stats.frames += 1
        self._put(pcm)

    def _put(self, item: bytes | None) -> None:
        if self.frames.full():
            self.frames.get_nowait()
            self.stats.dropped += 1
        self.frames.put_nowait(item)


class MediaTap:
    """The bridge + externalMedia plumbing of one call, over ARI. ``media_host``: this server's
    address as Asterisk reaches it (``asterisk.media_host``); ``bind``: where the socket binds
    (default ``media_host``). Only packets from ``sender_host`` (Asterisk's address, when
    known) are taken; the first sender is latched either way."""

    def __init__(self, ari: AriClient, channel_id: str, *, media_host: str = "127.0.0.1",
                 bind: str = "", sender_host: str | None = None) -> None:
        self.ari = ari
        self.channel_id = channel_id
        self.media_host = media_host
        self.bind_host = bind or media_host
        self.audio = CallerAudio(sender_host)
        self.bridge_id = f"ivr-{uuid.uuid4().hex[:16]}"
        self.external_id = f"ivr-em-{uuid.uuid4().hex[:16]}"
        self.snoop_id = f"ivr-snoop-{uuid.uuid4().hex[:16]}"
        self.opened = False

    async def open(self) -> CallerAudio:
        port = await self.audio.bind(self.bind_host)
        try:
            await self.ari.request("POST", f"/bridges/{self.bridge_id}", type="mixing")
            await self.ari.request("POST", f"/channels/{self.channel_id}/snoop",
                                   snoopId=self.snoop_id, spy="in", whisper="none",
                                   app=self.ari.app)
            await self.ari.request(
                "POST", "/channels/externalMedia", channelId=self.external_id,
                app=self.ari.app, external_host=f"{self.media_host}:{port}", format="ulaw",
                encapsulation="rtp", transport="udp", connection_type="client",
                direction="both",
            )
            await self._add_to_bridge(f"{self.snoop_id},{self.external_id}")
        except AriError:
            await self.close()
            raise
        self.opened = True
        return self.audio

    async def _add_to_bridge(self, channels: str, attempts: int = 40) -> None:
        """The new channels enter our Stasis app a moment after they are created: until then
        Asterisk answers 422 (not in Stasis). Retry for up to about 2 s."""
        for attempt in range(attempts):
            try:
                await self.ari.request("POST", f"/bridges/{self.bridge_id}/addChannel",
                                       channel=channels)
                return
            except AriError as exc:
                if exc.status != 422 or attempt == attempts - 1:
                    raise
                await asyncio.sleep(0.05)

    async def close(self) -> None:
        """Tear down (idempotent; parts already gone are ignored)."""
        self.audio.close()
        for method, path in (("DELETE", f"/channels/{self.external_id}"),
                             ("DELETE", f"/channels/{self.snoop_id}"),
                             ("DELETE", f"/bridges/{self.bridge_id}")):
            with contextlib.suppress(AriError, OSError):
                await self.ari.request(method, path)
        self.opened = False
        s = self.audio.stats
        log.debug("media of %s closed: %d packets, %d lost, %d late, %d dropped", self.channel_id,
                  s.packets, s.lost, s.late, s.dropped)


def is_media_channel(name: str) -> bool:
    """Channels we create for media enter our Stasis app too; they are not calls."""
    return name.startswith(("UnicastRTP/", "Snoop/", "WebSocket/", "AudioSocket/"))
