"""A client for the FunASR runtime websocket server (funasr-wss-server / -2pass, or the Python
funasr_wss_server.py): the recognition runs there, this side only frames audio and results.

The protocol (FunASR runtime/docs/websocket_protocol.md), one connection per utterance:

1. client -> server, text: ``{"mode": "2pass"|"online"|"offline", "wav_name": ..., "wav_format":
   "pcm", "audio_fs": 8000|16000, "is_speaking": true, "chunk_size": [5, 10, 5],
   "chunk_interval": 10, "hotwords": "{\\"余额\\": 20}", "itn": true}`` (hotwords: a JSON object
   serialised into a string, word -> weight);
2. client -> server, binary: 16-bit mono PCM, in messages of ``chunk_size[1] * 60 /
   chunk_interval`` ms (60 ms by default: the Python server counts messages, not bytes);
3. client -> server, text: ``{"is_speaking": false}`` at the end of the utterance;
4. server -> client, text: ``{"mode": "2pass-online"|"2pass-offline"|"online"|"offline",
   "wav_name": ..., "text": ..., "is_final": bool, ...}``. "online" texts are increments of the
   running hypothesis; "offline" texts are corrected sentences that replace the increments since
   the previous sentence. ``is_final`` is not reliable across servers (the C++ offline server
   sends false, the Python one sends ``is_speaking``), so after the end message the result is
   final at ``is_final``, at an "offline"-mode message, once the server has been quiet for
   ``SETTLE_S`` after a "2pass-offline" sentence, or at the timeout (the 2pass servers send
   nothing for an utterance without speech).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

from asr.audio import check_pcm, check_rate
from asr.base import ASRError, ASRUnavailable, AudioError, PartialCallback, Transcript
from asr.text import hint_words, to_simplified

if TYPE_CHECKING:
    from ivr.core.config import ASRSettings

log = logging.getLogger("asr.funasr_ws")

CHUNK_SIZE = (5, 10, 5)  # 600 ms streaming chunks, 300 ms look-back and look-ahead
CHUNK_INTERVAL = 10
SETTLE_S = 0.3
END_MESSAGE = json.dumps({"is_speaking": False})


def message_ms(
    chunk_size: tuple[int, int, int] = CHUNK_SIZE, interval: int = CHUNK_INTERVAL
) -> int:
    return chunk_size[1] * 60 // interval


def init_message(
    *,
    mode: str,
    sample_rate: int,
    wav_name: str,
    hotwords: dict[str, int] | None = None,
    itn: bool = True,
    chunk_size: tuple[int, int, int] = CHUNK_SIZE,
    chunk_interval: int = CHUNK_INTERVAL,
) -> str:
    """The first message of a connection (JSON text)."""
    return json.dumps(
        {
            "mode": mode,
            "wav_name": wav_name,
            "wav_format": "pcm",
            "audio_fs": sample_rate,
            "is_speaking": True,
            "chunk_size": list(chunk_size),
            "chunk_interval": chunk_interval,
            "encoder_chunk_look_back": 4,
            "decoder_chunk_look_back": 0,
            "hotwords": json.dumps(hotwords, ensure_ascii=False) if hotwords else "",
            "itn": itn,
        },
        ensure_ascii=False,
    )


@dataclass(frozen=True, slots=True)
class ServerResult:
    mode: str
    text: str
    is_final: bool


def parse_result(data: str) -> ServerResult:
    """One server message; ASRError when it is not a FunASR result."""
    try:
        msg = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ASRError(f"FunASR sent a message that is not JSON: {data[:80]!r}") from exc
    if not isinstance(msg, dict) or not isinstance(msg.get("text", ""), str):
        raise ASRError(f"FunASR sent an unexpected message: {data[:80]!r}")
    return ServerResult(str(msg.get("mode", "")), msg.get("text", ""), bool(msg.get("is_final")))


class ResultAssembler:
    """Sentences ("offline" results) plus the running "online" increments since the last one."""

    def __init__(self) -> None:
        self.sentences = ""
        self.online = ""
        self.messages = 0

    def add(self, r: ServerResult) -> None:
        self.messages += 1
        if r.mode.endswith("online"):
            self.online += r.text
        else:
            self.sentences += r.text
            self.online = ""

    @property
    def text(self) -> str:
        return self.sentences + self.online


class FunAsrWsRecognizer:
    name = "funasr_ws"
    final_from_stream = True  # a listener's partial stream also gives the (2pass) final

    def __init__(self, settings: ASRSettings) -> None:
        if not settings.funasr_ws_url:
            raise ASRUnavailable("the funasr_ws back end needs asr.funasr_ws_url (ws://host:port)")
        if not settings.funasr_ws_url.startswith(("ws://", "wss://")):
            raise ASRUnavailable("asr.funasr_ws_url must start with ws:// or wss://")
        self.settings = settings
        self.url = settings.funasr_ws_url
        self.load_s = 0.0
        self._session: aiohttp.ClientSession | None = None
        self._ssl = settings.funasr_ws_verify_tls  # aiohttp: False skips certificate checks

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    def open_stream(
        self,
        sample_rate: int = 8000,
        *,
        hints: str | None = None,
        on_partial: PartialCallback | None = None,
    ) -> FunAsrWsStream:
        weight = self.settings.funasr_hotword_weight
        hotwords = {w: weight for w in hint_words(hints)}
        return FunAsrWsStream(self, sample_rate, hotwords, on_partial)

    async def transcribe(
        self, pcm: bytes, sample_rate: int, *, hints: str | None = None
    ) -> Transcript:
        check_rate(sample_rate)
        check_pcm(pcm)
        stream = self.open_stream(sample_rate, hints=hints)
        try:
            await stream.feed(pcm)
            return await stream.finish()
        finally:
            await stream.cancel()

    async def connect(self) -> aiohttp.ClientWebSocketResponse:
        s = self.settings
        try:
            return await self._http().ws_connect(
                self.url, protocols=("binary",), ssl=self._ssl, heartbeat=None,
                timeout=aiohttp.ClientWSTimeout(ws_close=s.funasr_ws_timeout_s),
                max_msg_size=1 << 20,
            )  # fmt: skip
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise ASRError(f"cannot reach the FunASR server at {self.url}: {exc}") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class FunAsrWsStream:
    """One utterance over one websocket connection (opened in the background at once)."""

    def __init__(
        self,
        rec: FunAsrWsRecognizer,
        sample_rate: int,
        hotwords: dict[str, int],
        on_partial: PartialCallback | None,
    ) -> None:
        self.sample_rate = check_rate(sample_rate)
        self._rec = rec
        self._hotwords = hotwords
        self._on_partial = on_partial
        self._step = sample_rate * message_ms() // 1000 * 2  # bytes per audio message
        self._buf = bytearray()
        self._sent_bytes = 0
        self._results = ResultAssembler()
        self._partial: Transcript | None = None
        self._final = asyncio.Event()
        self._last_message = 0.0
        self._ended = False
        self._closed = False
        self._t0 = time.monotonic()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._connecting = asyncio.create_task(self._open())
        self._connecting.add_done_callback(_consume)
        self._reader: asyncio.Task[None] | None = None

    @property
    def partial(self) -> Transcript | None:
        return self._partial

    async def _open(self) -> aiohttp.ClientWebSocketResponse:
        ws = await asyncio.wait_for(self._rec.connect(), self._rec.settings.funasr_ws_timeout_s)
        self._ws = ws
        await ws.send_str(
            init_message(
                mode=self._rec.settings.funasr_ws_mode, sample_rate=self.sample_rate,
                wav_name=uuid.uuid4().hex[:12], hotwords=self._hotwords,
            )
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read(ws))
        return ws

    async def _socket(self) -> aiohttp.ClientWebSocketResponse:
        try:
            return await self._connecting
        except TimeoutError as exc:
            raise ASRError(f"FunASR server {self._rec.url} did not answer in time") from exc
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise ASRError(f"FunASR connection lost: {exc}") from exc

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            try:
                r = parse_result(msg.data)
            except ASRError as exc:
                log.warning("%s", exc)
                continue
            self._results.add(r)
            self._last_message = time.monotonic()
            if self._ended and (r.is_final or r.mode == "offline"):
                self._final.set()
            elif r.text and not self._ended:
                self._partial = self._transcript(final=False)
                if self._on_partial is not None:
                    self._on_partial(self._partial)
        self._final.set()  # the server closed the connection

    def _transcript(self, *, final: bool) -> Transcript:
        raw = self._results.text
        text = to_simplified(raw).strip()
        audio_s = (self._sent_bytes + len(self._buf)) / 2 / self.sample_rate
        elapsed = time.monotonic() - self._t0
        return Transcript(text, 1.0 if text else 0.0, audio_s, elapsed, raw, final)

    async def feed(self, pcm: bytes) -> None:
        if self._ended or self._closed:
            raise ASRError("funasr_ws stream: audio fed after finish/cancel")
        check_pcm(pcm, allow_empty=True)
        self._buf += pcm
        if len(self._buf) >= self._step:
            ws = await self._socket()
            await self._send_audio(ws, whole_only=True)

    async def _send_audio(self, ws: aiohttp.ClientWebSocketResponse, *, whole_only: bool) -> None:
        while len(self._buf) >= self._step or (self._buf and not whole_only):
            chunk = bytes(self._buf[: self._step])
            del self._buf[: self._step]
            try:
                await ws.send_bytes(chunk)
            except (aiohttp.ClientError, ConnectionError) as exc:
                raise ASRError(f"FunASR connection lost: {exc}") from exc
            self._sent_bytes += len(chunk)

    async def finish(self) -> Transcript:
        if self._ended:
            raise ASRError("funasr_ws stream: finish called twice")
        if not self._buf and not self._sent_bytes:
            await self.cancel()
            raise AudioError("no audio: nothing was fed to the stream")
        ws = await self._socket()
        await self._send_audio(ws, whole_only=False)
        self._t0 = time.monotonic()  # elapsed: end of audio -> final
        self._ended = True
        self._last_message = time.monotonic()
        try:
            await ws.send_str(END_MESSAGE)
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise ASRError(f"FunASR connection lost: {exc}") from exc
        await self._wait_final()
        result = self._transcript(final=True)
        await self.cancel()
        return result

    async def _wait_final(self) -> None:
        deadline = time.monotonic() + self._rec.settings.funasr_ws_timeout_s
        while not self._final.is_set():
            now = time.monotonic()
            settled = self._results.sentences and now - self._last_message >= SETTLE_S
            if settled or now >= deadline:
                if not settled:
                    log.warning("FunASR gave no final result in time; using what it sent")
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._final.wait(), min(0.1, deadline - now))

    async def cancel(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._ended = True
        if not self._connecting.done():
            self._connecting.cancel()
        with contextlib.suppress(asyncio.CancelledError, ASRError, TimeoutError):
            await self._connecting
        if self._ws is not None and not self._ws.closed:
            with contextlib.suppress(aiohttp.ClientError, ConnectionError):
                await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    def __repr__(self) -> str:  # never the audio or the text
        return f"<FunAsrWsStream {self._rec.url} sent={self._sent_bytes}B>"


def _consume(task: asyncio.Future[Any]) -> None:
    """Mark a background connect's failure as retrieved (``feed``/``finish`` re-raise it)."""
    if not task.cancelled():
        task.exception()
