"""Redis: the configured REDIS_URL, or a private ``redis-server`` on a unix socket.

The embedded server is Debian's ``/usr/bin/redis-server`` (package ``redis-server``), started as
a child process with ``port 0`` (no TCP at all), a unix socket ``redis.sock`` (mode 700) inside
``settings.embedded_dir``, and no persistence by default (``save ""``, ``appendonly no``): Redis
holds live state only (active calls, queue positions), PostgreSQL holds the record. Pass
``appendonly=True`` to keep an append-only file in the same directory across restarts.

If a Redis already answers on that socket (left by an earlier run, or started by another
process of ours), it is reused and not stopped by us.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ivr.core.config import RedisSettings
from ivr.core.privacy import mask_url_password
from ivr.core.storage.errors import EmbeddedServerError, RedisUnavailableError

log = logging.getLogger("ivr.core.storage.redis")

DEFAULT_BINARY = "/usr/bin/redis-server"
SOCKET_NAME = "redis.sock"
_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux, including the NUL


async def connect_redis(
    url: str, *, decode_responses: bool = True, timeout_s: float = 5.0
) -> aioredis.Redis:
    """A client for ``url`` (``redis://``, ``rediss://`` or ``unix://``), checked with PING.

    Raises ``RedisUnavailableError`` (naming the URL, password hidden) when Redis does not answer.
    Responses are ``str`` unless ``decode_responses=False``.
    """
    try:
        client = aioredis.from_url(
            url, decode_responses=decode_responses, socket_connect_timeout=timeout_s,
            socket_timeout=timeout_s, health_check_interval=30,
        )
    except ValueError as exc:
        raise RedisUnavailableError(
            f"REDIS_URL is not a valid Redis URL: {mask_url_password(url)}: {exc}"
        ) from exc
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        raise RedisUnavailableError(
            f"Redis does not answer at {mask_url_password(url)}: {type(exc).__name__}: {exc}"
        ) from exc
    return client


async def _pings(url: str) -> bool:
    client = aioredis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0)
    try:
        return bool(await client.ping())
    except (RedisError, OSError):
        return False
    finally:
        await client.aclose()


class EmbeddedRedis:
    """A private redis-server for development and tests. ``url`` is ``unix:///.../redis.sock``."""

    def __init__(
        self,
        settings: RedisSettings,
        *,
        binary: str | Path | None = None,
        appendonly: bool = False,
        start_timeout_s: float = 10.0,
    ) -> None:
        self.dir = settings.embedded_dir.expanduser().resolve()
        self.binary = Path(binary) if binary else None
        self.appendonly = appendonly
        self.start_timeout_s = start_timeout_s
        self.socket_path = self.dir / SOCKET_NAME
        self._proc: asyncio.subprocess.Process | None = None
        self._owned = False
        self._short_dir: Path | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def log_path(self) -> Path:
        return self.dir / "redis.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _find_binary(self) -> Path:
        if self.binary is not None:
            candidate: str | None = str(self.binary)
        else:
            candidate = DEFAULT_BINARY if Path(DEFAULT_BINARY).exists() else None
            candidate = candidate or shutil.which("redis-server")
        if candidate is None or not Path(candidate).is_file():
            raise EmbeddedServerError(
                f"embedded Redis: {candidate or 'redis-server'} not found. Install it with "
                f"`apt-get install redis-server`, or set REDIS_URL to an existing Redis"
            )
        return Path(candidate)

    def _prepare_dir(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self.dir.chmod(0o700)
        except OSError as exc:
            raise EmbeddedServerError(f"embedded Redis: cannot use {self.dir}: {exc}") from exc
        if len(str(self.socket_path).encode()) > _MAX_SOCKET_PATH:
            # too long for a unix socket: put the socket in a short private temp directory
            self._short_dir = Path(tempfile.mkdtemp(prefix="ivr-redis-"))
            self.socket_path = self._short_dir / SOCKET_NAME
            log.info("Redis socket path too long under %s; using %s", self.dir, self.socket_path)

    def _command(self, binary: Path) -> list[str]:
        return [
            str(binary),
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.dir),
            "--daemonize", "no",
            "--logfile", str(self.log_path),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appenddirname", "appendonly",
        ]

    async def start(self) -> str:
        """Start redis-server (or reuse one answering on our socket); return ``url``."""
        if self._proc is not None and self._proc.returncode is None:
            return self.url
        t = time.monotonic()
        binary = self._find_binary()
        self._prepare_dir()
        if self.socket_path.exists() and await _pings(self.url):
            log.info("reusing the Redis already answering on %s", self.socket_path)
            self._owned = False
            return self.url
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self._command(binary),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # our stop() shuts it down, after the app is done with it
            )
        except OSError as exc:
            raise EmbeddedServerError(f"embedded Redis: cannot run {binary}: {exc}") from exc
        self._owned = True
        await self._wait_ready()
        log.info("embedded Redis ready in %.2f s (%s)", time.monotonic() - t, self.socket_path)
        return self.url

    async def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._proc.returncode is not None:
                break
            if self.socket_path.exists() and await _pings(self.url):
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._proc.wait(), 0.02)
        exited = self._proc.returncode is not None
        stderr = b""
        if exited and self._proc.stderr is not None:
            stderr = await self._proc.stderr.read()
        else:
            await self._terminate()
        status = self._proc.returncode
        self._proc, self._owned = None, False
        tail = "\n".join([stderr.decode(errors="replace").strip(), self._log_tail()]).strip()
        what = (f"exited at start (exit status {status})" if exited
                else f"did not answer PING within {self.start_timeout_s:.0f} s (stopped it)")
        raise EmbeddedServerError(
            f"embedded Redis on {self.socket_path} {what}; log {self.log_path}:\n{tail}"
        )

    def _log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def _terminate(self, timeout_s: float = 5.0) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout_s)
        except TimeoutError:
            log.warning("redis-server (pid %s) ignored SIGTERM; killing it", proc.pid)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def stop(self) -> None:
        """Shut down the redis-server we started (not a reused one). Idempotent."""
        if self._owned:
            await self._terminate()
            self._owned = False
        self._proc = None
        if self._short_dir is not None:
            shutil.rmtree(self._short_dir, ignore_errors=True)
            self._short_dir = None
