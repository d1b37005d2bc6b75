"""A small SIP user agent (UAC) over asyncio UDP: calls, digest auth, RTP, DTMF, BYE."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import wave
from pathlib import Path

from ivr.sim.sipua.message import (
    SipMessage,
    SipParseError,
    authorization,
    header_param,
    parse_challenge,
    parse_message,
    sdp_offer,
    sdp_remote_audio,
    uac_route_set,
    uri_of,
)
from ivr.sim.sipua.rtp import RtpPacket, RtpReceiver, RtpSender

log = logging.getLogger("ivr.sim.sipua")


class SipError(RuntimeError):
    """A call could not be set up (the final status line is in the message)."""


def _token(n: int = 8) -> str:
    return secrets.token_hex(n)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: object) -> None:
        self.on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.on_datagram(data, addr)  # type: ignore[operator]


class SipCall:
    def __init__(self, ua: SipUserAgent, call_id: str, extension: str) -> None:
        self.ua = ua
        self.call_id = call_id
        self.extension = extension
        self.local_tag = _token(4)
        self.remote_tag = ""
        self.remote_target = ""
        # the proxies that asked to stay in the dialog (Record-Route, reversed: RFC 3261 12.1.2);
        # in-dialog requests carry them as Route headers
        self.route_set: list[str] = []
        self.cseq = 1
        self.receiver = RtpReceiver()
        self.sender: RtpSender | None = None
        self._rtp: _Udp | None = None
        self._rtp_task: asyncio.Task[None] | None = None
        self._remote_rtp: tuple[str, int] | None = None
        self.rtp_port = 0
        self.answered = asyncio.get_running_loop().create_future()
        self._ended = asyncio.Event()
        self.ended_by_remote = False

    @property
    def remote_media(self) -> tuple[str, int] | None:
        """Where the far end's audio comes from (its SDP answer): the box that took the call."""
        return self._remote_rtp

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    async def open_rtp(self) -> None:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_datagram_endpoint(
            lambda: _Udp(self._on_rtp), local_addr=(self.ua.local_host, 0)
        )
        self._rtp = proto
        assert proto.transport is not None
        self.rtp_port = proto.transport.get_extra_info("sockname")[1]

    def _on_rtp(self, data: bytes, _addr: tuple[str, int]) -> None:
        try:
            self.receiver.add(RtpPacket.decode(data))
        except ValueError:
            return

    def start_media(self, remote: tuple[str, int]) -> None:
        self._remote_rtp = remote
        assert self._rtp is not None and self._rtp.transport is not None
        transport = self._rtp.transport
        self.sender = RtpSender(lambda pkt: transport.sendto(pkt, remote))
        self._rtp_task = asyncio.create_task(self.sender.run(), name=f"rtp-{self.call_id[:8]}")

    async def play(self, pcm: bytes) -> None:
        if self.sender is None or self.ended:
            raise SipError("call not connected")
        await self.sender.queue_audio(pcm)

    async def send_dtmf(self, digits: str, *, duration_ms: int = 160, gap_ms: int = 120) -> None:
        if self.sender is None or self.ended:
            raise SipError("call not connected")
        for digit in digits:
            await self.sender.queue_dtmf(digit, duration_ms)
            await asyncio.sleep(gap_ms / 1000)

    def heard(self, start: int = 0) -> bytes:
        """The audio heard so far (8 kHz s16le), from byte ``start`` on."""
        return self.receiver.pcm(start=start)

    def save_heard(self, path: str | Path) -> None:
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(self.heard())

    async def wait_until_heard_seconds(self, seconds: float, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.receiver.seconds < seconds:
            if time.monotonic() > deadline:
                raise TimeoutError(f"heard only {self.receiver.seconds:.1f} s")
            await asyncio.sleep(0.05)

    async def hangup(self) -> None:
        if self.ended:
            return
        self.cseq += 1
        req = self.ua.request("BYE", self.remote_target, self, self.cseq)
        with contextlib.suppress(TimeoutError):
            await self.ua.transact(req, timeout=4.0)
        self.end(by_remote=False)

    async def wait_hangup(self, timeout: float) -> None:
        await asyncio.wait_for(self._ended.wait(), timeout)

    def end(self, *, by_remote: bool) -> None:
        if self.ended:
            return
        self.ended_by_remote = by_remote
        self._ended.set()
        if self._rtp_task is not None:
            self._rtp_task.cancel()
        if self._rtp is not None and self._rtp.transport is not None:
            self._rtp.transport.close()
        self.ua.calls.pop(self.call_id, None)


class SipUserAgent:
    def __init__(
        self,
        *,
        server_host: str,
        server_port: int,
        username: str,
        password: str,
        local_host: str = "127.0.0.1",
        display_name: str | None = None,
        local_port: int = 0,
    ) -> None:
        self.server = (server_host, server_port)
        self.username = username
        self.password = password
        self.local_host = local_host
        self.display_name = display_name or username
        self.local_port = local_port  # 0: any free port (a fixed one for a static trunk)
        self._udp: _Udp | None = None
        self._pending: dict[str, asyncio.Queue[SipMessage]] = {}  # branch -> responses
        self.calls: dict[str, SipCall] = {}

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_datagram_endpoint(
            lambda: _Udp(self._on_datagram), local_addr=(self.local_host, self.local_port)
        )
        self._udp = proto
        assert proto.transport is not None
        self.local_port = proto.transport.get_extra_info("sockname")[1]

    async def close(self) -> None:
        for call in list(self.calls.values()):
            with contextlib.suppress(SipError, OSError):
                await call.hangup()
        if self._udp is not None and self._udp.transport is not None:
            self._udp.transport.close()

    # ---- framing and transactions ------------------------------------------------
    def _send(self, msg: SipMessage, addr: tuple[str, int] | None = None) -> None:
        assert self._udp is not None and self._udp.transport is not None
        self._udp.transport.sendto(msg.encode(), addr or self.server)

    def request(
        self,
        method: str,
        uri: str,
        call: SipCall,
        cseq: int,
        *,
        body: bytes = b"",
        auth: str | None = None,
    ) -> SipMessage:
        host = self.server[0]
        headers = [
            (
                "Via",
                f"SIP/2.0/UDP {self.local_host}:{self.local_port};rport;branch=z9hG4bK{_token()}",
            ),
            ("Max-Forwards", "70"),
            ("From", f'"{self.display_name}" <sip:{self.username}@{host}>;tag={call.local_tag}'),
            (
                "To",
                f"<sip:{call.extension}@{host}>"
                + (f";tag={call.remote_tag}" if call.remote_tag else ""),
            ),
            ("Call-ID", call.call_id),
            ("CSeq", f"{cseq} {method}"),
            ("Contact", f"<sip:{self.username}@{self.local_host}:{self.local_port}>"),
            ("User-Agent", "ivr956100-test-caller"),
        ]
        if call.remote_tag:
            headers += [("Route", r) for r in call.route_set]
        if auth:
            headers.append(auth)  # type: ignore[arg-type]
        if body:
            headers.append(("Content-Type", "application/sdp"))
        return SipMessage(f"{method} {uri} SIP/2.0", headers, body)

    async def transact(
        self, req: SipMessage, *, timeout: float = 8.0, final_only: bool = True,
        addr: tuple[str, int] | None = None,
    ) -> SipMessage:
        """Send a request (to ``addr``, by default the server), retransmitting (Timer A) until
        a response; return the final one."""
        branch = header_param(req.get("via"), "branch") or ""
        responses: asyncio.Queue[SipMessage] = asyncio.Queue()
        self._pending[branch] = responses
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        interval, provisional = 0.5, False
        try:
            self._send(req, addr)
            while True:
                left = deadline - loop.time()
                if left <= 0:
                    raise TimeoutError(f"no final response to {req.method}")
                wait = left if provisional else min(interval, left)
                try:
                    resp = await asyncio.wait_for(responses.get(), wait)
                except TimeoutError:
                    if not provisional:
                        self._send(req, addr)
                        interval = min(interval * 2, 4.0)
                    continue
                if resp.status < 200:
                    provisional = True
                    if not final_only:
                        return resp
                    continue
                return resp
        finally:
            self._pending.pop(branch, None)

    def _on_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        if data.strip() == b"":
            return  # keep-alive
        try:
            msg = parse_message(data)
        except SipParseError as exc:
            log.warning("ignoring malformed SIP datagram: %s", exc)
            return
        if msg.is_response:
            branch = header_param(msg.get("via"), "branch") or ""
            q = self._pending.get(branch)
            if q is not None:
                q.put_nowait(msg)
            elif msg.status == 200 and msg.method == "INVITE":
                self._ack_2xx(msg)  # a retransmitted 200: ACK it again
            return
        self._on_request(msg, addr)

    def _reply(
        self, req: SipMessage, status: str, addr: tuple[str, int], body: bytes = b""
    ) -> None:
        headers = [
            (k, v) for k, v in req.headers if k.lower() in ("via", "from", "to", "call-id", "cseq")
        ]
        resp = SipMessage(f"SIP/2.0 {status}", headers, body)
        if body:
            resp.headers.append(("Content-Type", "application/sdp"))
        self._send(resp, addr)

    def _on_request(self, req: SipMessage, addr: tuple[str, int]) -> None:
        call = self.calls.get(req.get("call-id"))
        method = req.method
        if method == "BYE":
            self._reply(req, "200 OK", addr)
            if call is not None:
                call.end(by_remote=True)
        elif method == "ACK":
            return
        elif method == "INVITE" and call is not None:  # re-INVITE: keep our media as it is
            self._reply(req, "200 OK", addr, sdp_offer(self.local_host, call.rtp_port, 1))
        elif method in ("OPTIONS", "NOTIFY", "INFO", "UPDATE"):
            self._reply(req, "200 OK", addr)
        elif method == "CANCEL":
            self._reply(req, "200 OK", addr)
        else:
            self._reply(req, "501 Not Implemented", addr)

    def _ack_2xx(self, resp: SipMessage) -> None:
        call = self.calls.get(resp.get("call-id"))
        if call is None:
            return
        self._send(self.request("ACK", call.remote_target, call, resp.cseq))

    # ---- calls --------------------------------------------------------------
    async def call(self, extension: str, *, timeout: float = 15.0) -> SipCall:
        host = self.server[0]
        uri = f"sip:{extension}@{host}:{self.server[1]}"
        call = SipCall(self, f"{_token(12)}@{self.local_host}", extension)
        await call.open_rtp()
        self.calls[call.call_id] = call
        body = sdp_offer(self.local_host, call.rtp_port, int(time.time()))
        auth: tuple[str, str] | None = None
        try:
            for _attempt in range(3):
                req = self.request("INVITE", uri, call, call.cseq, body=body, auth=auth)  # type: ignore[arg-type]
                resp = await self.transact(req, timeout=timeout)
                if resp.status in (401, 407) and auth is None:
                    self._ack_non_2xx(req, resp)
                    name = "WWW-Authenticate" if resp.status == 401 else "Proxy-Authenticate"
                    challenge = parse_challenge(resp.get(name))
                    header = "Authorization" if resp.status == 401 else "Proxy-Authorization"
                    auth = (
                        header,
                        authorization(
                            challenge,
                            username=self.username,
                            password=self.password,
                            method="INVITE",
                            uri=uri,
                            cnonce=_token(4),
                        ),
                    )
                    call.cseq += 1
                    continue
                if resp.status >= 300:
                    self._ack_non_2xx(req, resp)
                    raise SipError(f"INVITE {extension}: {resp.start}")
                call.remote_tag = header_param(resp.get("to"), "tag") or ""
                call.remote_target = uri_of(resp.get("contact")) or uri
                call.route_set = uac_route_set(resp)
                self._send(self.request("ACK", call.remote_target, call, call.cseq))
                call.start_media(sdp_remote_audio(resp.body))
                call.answered.set_result(None)
                return call
            raise SipError(f"INVITE {extension}: authentication failed")
        except BaseException:
            call.end(by_remote=False)
            raise

    def _ack_non_2xx(self, req: SipMessage, resp: SipMessage) -> None:
        """ACK for a failure response: same branch as the INVITE, To with the response's tag."""
        headers = [
            (k, v)
            for k, v in req.headers
            if k.lower() in ("via", "from", "call-id", "max-forwards")
        ]
        headers.append(("To", resp.get("to")))
        headers.append(("CSeq", f"{req.cseq} ACK"))
        uri = req.start.split(" ")[1]
        self._send(SipMessage(f"ACK {uri} SIP/2.0", headers))
