"""Faults a drill injects into the server's dependencies (``ivr drill redis|postgres|llm|asr``).

- ``FaultProxy``: a TCP proxy on loopback in front of one dependency (PostgreSQL, Redis, the LLM
  endpoint), reached over TCP or a unix socket; the server is given the proxy's address instead.
  Its mode decides what the server meets:

  * ``up``: bytes pass both ways untouched;
  * ``slow``: every chunk either way is held ``delay_s`` first (a dependency that answers late,
    or, with a delay beyond every deadline, one that hangs);
  * ``down``: the listener is closed and every open connection cut: connecting is refused at
    once, as from a host whose service has stopped. ``up`` again listens on the same port.

- ``FaultyRecognizer``: the loaded recogniser wrapped the same way (``up``, ``slow``: each
  decode ``delay_s`` late; ``down``: each decode fails as a back end that cannot be reached).
  The recogniser runs in the server process, so there is no wire to cut.

Only loopback: the proxy listens on 127.0.0.1 and connects to the address it was given.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from asr.base import ASRUnavailable, Recognizer, RecognizerStream, Transcript

log = logging.getLogger("ivr.sim.faults")

Mode = Literal["up", "slow", "down"]
CHUNK = 65536


@dataclass(frozen=True)
class Upstream:
    """Where the proxy connects: a TCP host and port, or a unix socket path."""

    host: str = ""
    port: int = 0
    path: str = ""

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.path:
            return await asyncio.open_unix_connection(self.path)
        return await asyncio.open_connection(self.host, self.port)

    def __str__(self) -> str:
        return self.path or f"{self.host}:{self.port}"


class FaultProxy:
    def __init__(self, name: str, upstream: Upstream) -> None:
        self.name = name
        self.upstream = upstream
        self.mode: Mode = "up"
        self.delay_s = 0.0
        self.port = 0
        self.connections = 0  # accepted since the start
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        """Listen on 127.0.0.1 (a free port the first time, the same one after); the port."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def set(self, mode: Mode, delay_s: float = 0.0) -> None:
        if mode == "down":
            await self._stop_listening()
            self._cut_all()
        elif self._server is None:
            await self.start()
        self.mode, self.delay_s = mode, delay_s if mode == "slow" else 0.0
        log.info("fault proxy %s (-> %s): %s%s", self.name, self.upstream, mode,
                 f" {delay_s:.1f} s" if mode == "slow" else "")

    async def close(self) -> None:
        await self._stop_listening()
        self._cut_all()
        pipes = list(self._pipes)
        for task in pipes:
            task.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)

    async def _stop_listening(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)

    def _cut_all(self) -> None:
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        self._writers.add(writer)
        up_writer: asyncio.StreamWriter | None = None
        try:
            if self.mode == "slow" and self.delay_s > 0:  # late even when it cannot connect
                await asyncio.sleep(self.delay_s)
            up_reader, up_writer = await self.upstream.open()
            self._writers.add(up_writer)
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:  # close(): asyncio's server callback would log it
            return
        finally:
            self._pipes.discard(task)
            for w in (writer, up_writer):
                if w is not None:
                    self._writers.discard(w)
                    with contextlib.suppress(Exception):
                        w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(CHUNK):
                if self.mode == "slow" and self.delay_s > 0:
                    await asyncio.sleep(self.delay_s)
                writer.write(data)
                await writer.drain()
        finally:
            with contextlib.suppress(Exception):
                writer.transport.abort()


def upstream_of_url(url: str, *, default_port: int) -> Upstream:
    """The address a URL names: ``unix:///p/redis.sock``, ``redis://h:p``, ``http://h:p/v1``,
    or PostgreSQL's ``postgresql+asyncpg://u@/db?host=/dir`` (socket ``/dir/.s.PGSQL.<port>``)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return Upstream(path=parts.path)
    query = dict(parse_qsl(parts.query))
    if not parts.hostname and query.get("host", "").startswith("/"):
        return Upstream(path=f"{query['host']}/.s.PGSQL.{parts.port or default_port}")
    return Upstream(host=parts.hostname or "127.0.0.1", port=parts.port or default_port)


def url_through(url: str, port: int) -> str:
    """``url`` pointed at the proxy on 127.0.0.1:``port`` (user, password, path and the rest of
    the query kept; a unix socket URL becomes ``redis://``)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"redis://127.0.0.1:{port}/{dict(parse_qsl(parts.query)).get('db', '0')}"
    auth = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "host"])
    return urlunsplit((parts.scheme, f"{auth}127.0.0.1:{port}", parts.path, query,
                       parts.fragment))


class FaultyRecognizer:
    """A recogniser with a fault switch (see the module docstring)."""

    def __init__(self, inner: Recognizer) -> None:
        self.inner = inner
        self.mode: Mode = "up"
        self.delay_s = 0.0
        self.name = inner.name
        self.load_s = inner.load_s

    def set(self, mode: Mode, delay_s: float = 0.0) -> None:
        self.mode, self.delay_s = mode, delay_s if mode == "slow" else 0.0
        log.info("recogniser fault: %s%s", mode, f" {delay_s:.1f} s" if mode == "slow" else "")

    async def _fault(self) -> None:
        if self.mode == "down":
            raise ASRUnavailable("drill: the recogniser cannot be reached")
        if self.mode == "slow":
            await asyncio.sleep(self.delay_s)

    def open_stream(self, sample_rate: int = 8000, **kwargs: Any) -> RecognizerStream:
        return _FaultyStream(self, self.inner.open_stream(sample_rate, **kwargs))

    async def transcribe(self, pcm: bytes, sample_rate: int, **kwargs: Any) -> Transcript:
        await self._fault()
        return await self.inner.transcribe(pcm, sample_rate, **kwargs)

    async def close(self) -> None:
        await self.inner.close()


class _FaultyStream:
    def __init__(self, owner: FaultyRecognizer, inner: RecognizerStream) -> None:
        self.owner, self.inner = owner, inner
        self.sample_rate = inner.sample_rate

    @property
    def partial(self) -> Transcript | None:
        return self.inner.partial

    async def feed(self, pcm: bytes) -> None:
        await self.inner.feed(pcm)

    async def finish(self) -> Transcript:
        await self.owner._fault()
        return await self.inner.finish()

    async def cancel(self) -> None:
        await self.inner.cancel()
