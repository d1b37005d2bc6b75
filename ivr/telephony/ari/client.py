"""ARI client over aiohttp: REST calls plus the events websocket, reconnecting with backoff.

Framing (``events.parse_event``) is kept apart from connect/reconnect (``AriClient.run``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import aiohttp

from ivr.core.config import AsteriskSettings
from ivr.telephony.ari.events import AriEvent, ChannelInfo, MalformedEvent, parse_event

log = logging.getLogger("ivr.telephony.ari")

EventHandler = Callable[[AriEvent], Awaitable[None]]
StateHandler = Callable[[bool], Awaitable[None]]


class AriError(RuntimeError):
    def __init__(self, status: int, method: str, path: str, body: str) -> None:
        super().__init__(f"ARI {method} {path} -> {status}: {body[:200]}")
        self.status = status


class ChannelGone(AriError):
    """404: the channel (or playback) no longer exists, usually because the caller hung up."""


# ids that may stand in a REST path: channel ids (Asterisk's 1732480000.42 or ours, survey-...),
# playback and bridge ids; never a slash, never a dot segment (``../../bridges/x``)
_PATH_SEGMENT = re.compile(r"[A-Za-z0-9_:@+-][A-Za-z0-9._:@+-]{0,127}")


class InvalidId(AriError):
    """An id that cannot stand in an ARI URL (from a peer we do not trust): refused unsent."""

    def __init__(self, path: str) -> None:
        super().__init__(400, "-", path, "invalid id in path")


def check_path(path: str) -> None:
    """Raise ``InvalidId`` unless every segment of ``path`` is a plain id (no ``..``)."""
    segments = path.split("/")
    if segments[0] != "" or not all(_PATH_SEGMENT.fullmatch(s) for s in segments[1:]):
        raise InvalidId(path[:80])


class AriClient:
    def __init__(
        self, settings: AsteriskSettings, http: aiohttp.ClientSession | None = None
    ) -> None:
        self.settings = settings
        self.base = settings.ari_url.rstrip("/") + "/ari"
        self.app = settings.ari_app
        self._headers = {
            "Authorization": aiohttp.encode_basic_auth(
                settings.ari_user, settings.ari_password.get_secret_value()
            )
        }
        self._http = http
        self._own_http = http is None
        self.connected = asyncio.Event()
        self.reconnects = 0
        self.malformed_events = 0
        self.epoch = 0  # connections made so far: a change means events may have been missed
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    async def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
            self._own_http = True
        return self._http

    async def close(self) -> None:
        if self._own_http and self._http is not None:
            await self._http.close()

    # ---- REST --------------------------------------------------------------
    async def request(self, method: str, path: str, **params: Any) -> Any:
        check_path(path)
        http = await self._session()
        query = {
            k: (str(v).lower() if isinstance(v, bool) else v)
            for k, v in params.items()
            if v is not None
        }
        url = f"{self.base}{path}"
        if query:
            url += "?" + urlencode(query)
        async with http.request(method, url, headers=self._headers) as resp:
            text = await resp.text()
            if resp.status == 404:
                raise ChannelGone(resp.status, method, path, text)
            if resp.status >= 400:
                raise AriError(resp.status, method, path, text)
            if not text:
                return None
            return await resp.json(content_type=None)

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/answer")

    async def play(self, channel_id: str, media: str, playback_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/play/{playback_id}", media=media)

    async def stop_playback(self, playback_id: str) -> None:
        await self.request("DELETE", f"/playbacks/{playback_id}")

    async def playback_playing(self, playback_id: str) -> bool:
        """Whether a playback still exists (asked when its events may have been missed)."""
        try:
            await self.request("GET", f"/playbacks/{playback_id}")
        except ChannelGone:
            return False
        return True

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self.request("DELETE", f"/channels/{channel_id}", reason=reason)

    async def set_var(self, channel_id: str, name: str, value: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/variable", variable=name, value=value)

    async def get_var(self, channel_id: str, name: str) -> str:
        """A channel variable or dialplan function (``QUEUE_MEMBER(q,logged)``) on a channel."""
        body = await self.request("GET", f"/channels/{channel_id}/variable", variable=name)
        return str(body.get("value", "")) if isinstance(body, dict) else ""

    async def continue_in_dialplan(
        self, channel_id: str, context: str, extension: str, priority: int = 1
    ) -> None:
        await self.request(
            "POST",
            f"/channels/{channel_id}/continue",
            context=context,
            extension=extension,
            priority=priority,
        )

    async def start_moh(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/moh")

    async def stop_moh(self, channel_id: str) -> None:
        await self.request("DELETE", f"/channels/{channel_id}/moh")

    async def app_registered(self, app: str | None = None) -> bool:
        """Whether a process holds the events websocket of ``app`` (ours by default)."""
        try:
            await self.request("GET", f"/applications/{app or self.app}")
        except ChannelGone:  # 404: no such application registered
            return False
        return True

    async def channels(self) -> list[ChannelInfo]:
        data = await self.request("GET", "/channels")
        return [ChannelInfo.from_json(c) for c in data or []]

    async def info(self) -> dict[str, Any]:
        return dict(await self.request("GET", "/asterisk/info"))

    # ---- events ------------------------------------------------------------
    async def run(self, on_event: EventHandler, on_state: StateHandler | None = None) -> None:
        """Receive events for ever, reconnecting with capped exponential backoff and jitter.

        Each event is handed to ``on_event``; a handler error is logged and does not stop the
        stream. Cancel the task to stop.
        """
        delay = 0.2
        ws_base = self.base.replace("http://", "ws://").replace("https://", "wss://")
        url = f"{ws_base}/events?" + urlencode({"app": self.app, "subscribeAll": "false"})
        while True:
            try:
                http = await self._session()
                async with http.ws_connect(url, headers=self._headers, heartbeat=20) as ws:
                    log.info("ARI events connected (app %s)", self.app)
                    self._ws = ws
                    self.epoch += 1
                    self.connected.set()
                    delay = 0.2
                    if on_state is not None:
                        await on_state(True)
                    async for msg in ws:
                        if msg.type == aiohttp.WSMsgType.TEXT:
                            await self._dispatch(msg.data, on_event)
                        elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE):
                            break
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                log.debug("ARI websocket: %s", exc)
            self._ws = None
            if self.connected.is_set():
                self.connected.clear()
                self.reconnects += 1
                log.warning("ARI events disconnected; reconnecting (calls continue)")
                if on_state is not None:
                    await on_state(False)
            await asyncio.sleep(delay * (0.8 + 0.4 * random.random()))
            delay = min(delay * 2, 5.0)

    async def drop_events(self) -> bool:
        """Close the events websocket now (the ``ari-blip`` drill's fault); ``run`` reconnects
        by itself. False when none was open."""
        ws = self._ws
        if ws is None or ws.closed:
            return False
        await ws.close()
        return True

    async def _dispatch(self, data: str, on_event: EventHandler) -> None:
        try:
            event = parse_event(data)
        except MalformedEvent as exc:
            self.malformed_events += 1
            log.warning("ignoring malformed ARI event: %s", exc)
            return
        try:
            await on_event(event)
        except Exception:
            log.exception("ARI event handler failed for %s", event.type)
