"""An agent's phone for tests and demos: REGISTER with digest auth (refreshed before it
expires), and answering the calls Asterisk places to it (UAS).

Incoming INVITE -> 100 Trying, 180 Ringing; ``progress()`` sends 183 Session Progress with our
SDP (early media, before an answer); ``answer()`` sends 200 OK with our SDP and
retransmits it (Timer G) until the ACK; a CANCEL before that gets 200 and 487; BYE works both
ways (ours goes to where the INVITE came from). Ringing calls wait in a bounded queue
(``max_ringing``); beyond that an INVITE is refused with 486 Busy Here. Built on
``SipUserAgent``: the caller side is unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time

from ivr.sim.sipua.agent import SipCall, SipError, SipUserAgent, _token
from ivr.sim.sipua.message import (
    SipMessage,
    authorization,
    header_param,
    parse_challenge,
    sdp_offer,
    sdp_remote_audio,
    uri_of,
)

log = logging.getLogger("ivr.sim.sipua.uas")

T1, T2 = 0.5, 4.0  # RFC 3261 timers (retransmission of our 200 OK)


def _user(uri: str) -> str:
    m = re.match(r"sips?:([^@;>]+)@", uri)
    return m.group(1) if m else ""


class IncomingCall(SipCall):
    """A call offered to the phone: ringing until ``answer()`` or ``reject()``."""

    def __init__(self, phone: SipPhone, invite: SipMessage, addr: tuple[str, int]) -> None:
        from_ = invite.get("from")
        super().__init__(phone, invite.get("call-id"), _user(uri_of(from_)))
        self.phone = phone
        self.invite = invite
        self.addr = addr
        self.remote_tag = header_param(from_, "tag") or ""
        self.remote_target = uri_of(invite.get("contact")) or uri_of(from_)
        self.caller_number = self.extension
        name = re.match(r'\s*"([^"]*)"', from_)
        self.caller_name = name.group(1) if name else ""
        self.offered_at = time.monotonic()  # the INVITE arrived
        self.ringing_at: float | None = None
        self.answered_at: float | None = None
        self.cancelled = False
        self._acked = asyncio.Event()
        self._last: SipMessage | None = None  # resent when the INVITE is retransmitted

    def respond(self, status: str, body: bytes = b"") -> SipMessage:
        code = int(status.split()[0])
        req = self.invite
        to = req.get("to")
        if code > 100 and "tag=" not in to:
            to += f";tag={self.local_tag}"
        headers = [(k, v) for k, v in req.headers if k.lower() in ("via", "record-route")]
        headers += [("From", req.get("from")), ("To", to), ("Call-ID", self.call_id),
                    ("CSeq", req.get("cseq"))]
        if 100 < code < 300:
            headers.append(("Contact", f"<sip:{self.phone.username}@{self.phone.local_host}:"
                                       f"{self.phone.local_port}>"))
        headers.append(("User-Agent", "ivr956100-test-agent"))
        if body:
            headers.append(("Content-Type", "application/sdp"))
        resp = SipMessage(f"SIP/2.0 {status}", headers, body)
        self._last = resp
        self.phone._send(resp, self.addr)
        return resp

    def resend_last(self) -> None:
        if self._last is not None:
            self.phone._send(self._last, self.addr)

    def progress(self) -> None:
        """183 Session Progress with our SDP: early media (a carrier's announcement, a
        coloured ring-back) flows before any answer, as Chinese networks send it."""
        if self.ended:
            raise SipError("the call was cancelled")
        if self.sender is None:
            self.start_media(sdp_remote_audio(self.invite.body))
        self.respond("183 Session Progress",
                     sdp_offer(self.phone.local_host, self.rtp_port, int(time.time())))

    async def answer(self, timeout: float = 8.0) -> None:
        """Answer with 200 OK and SDP, retransmitted until Asterisk ACKs it."""
        if self.ended:
            raise SipError("the call was cancelled before it was answered")
        if self.sender is None:  # else: early media started it
            self.start_media(sdp_remote_audio(self.invite.body))
        self.respond("200 OK", sdp_offer(self.phone.local_host, self.rtp_port, int(time.time())))
        loop = asyncio.get_running_loop()
        deadline, interval = loop.time() + timeout, T1
        while not self._acked.is_set():
            left = deadline - loop.time()
            if left <= 0 or self.ended:
                self.end(by_remote=False)
                raise SipError("no ACK for our 200 OK")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._acked.wait(), min(interval, left))
            if not self._acked.is_set():
                self.resend_last()
                interval = min(interval * 2, T2)
        self.answered_at = time.monotonic()
        if not self.answered.done():
            self.answered.set_result(None)

    def reject(self, status: str = "486 Busy Here") -> None:
        if not self.answered.done() and not self.ended:
            self.respond(status)
            self.end(by_remote=False)

    async def hangup(self) -> None:
        """BYE when answered (sent where the INVITE came from); a decline while ringing."""
        if self.ended:
            return
        if not self.answered.done():
            self.reject("603 Decline")
            return
        self.cseq += 1
        req = self.ua.request("BYE", self.remote_target, self, self.cseq)
        with contextlib.suppress(TimeoutError):
            await self.ua.transact(req, timeout=4.0, addr=self.addr)
        self.end(by_remote=False)

    def on_ack(self) -> None:
        self._acked.set()

    def on_cancel(self) -> None:
        self.cancelled = True
        self.respond("487 Request Terminated")
        self.end(by_remote=True)


class SipPhone(SipUserAgent):
    """A registered phone that can also place calls (``call()`` of ``SipUserAgent``)."""

    def __init__(self, *, server_host: str, server_port: int, username: str, password: str,
                 local_host: str = "127.0.0.1", display_name: str | None = None,
                 max_ringing: int = 4, local_port: int = 0) -> None:
        super().__init__(server_host=server_host, server_port=server_port, username=username,
                         password=password, local_host=local_host, display_name=display_name,
                         local_port=local_port)
        self.incoming: asyncio.Queue[IncomingCall] = asyncio.Queue(max_ringing)
        self.registered = False
        self.expires = 0  # what the registrar granted
        self._reg_call_id = f"{_token(10)}@{local_host}"
        self._reg_tag = _token(4)
        self._reg_cseq = 0
        self._refresher: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- registration ---------------------------------------------------------------
    def _register_request(self, uri: str, expires: int, auth: str | None) -> SipMessage:
        host = self.server[0]
        self._reg_cseq += 1
        contact = f"<sip:{self.username}@{self.local_host}:{self.local_port}>"
        headers = [
            ("Via", f"SIP/2.0/UDP {self.local_host}:{self.local_port};rport;"
                    f"branch=z9hG4bK{_token()}"),
            ("Max-Forwards", "70"),
            ("From", f'"{self.display_name}" <sip:{self.username}@{host}>;tag={self._reg_tag}'),
            ("To", f"<sip:{self.username}@{host}>"),
            ("Call-ID", self._reg_call_id),
            ("CSeq", f"{self._reg_cseq} REGISTER"),
            ("Contact", contact),
            ("Expires", str(expires)),
            ("User-Agent", "ivr956100-test-agent"),
        ]
        if auth:
            headers.append(("Authorization", auth))
        return SipMessage(f"REGISTER {uri} SIP/2.0", headers)

    async def register(self, expires: int = 300, *, refresh: bool = True,
                       timeout: float = 8.0) -> int:
        """Register (answering the digest challenge); returns the granted expiry in seconds.
        With ``refresh`` a task registers again at 80 % of it until ``unregister()``."""
        uri = f"sip:{self.server[0]}:{self.server[1]}"
        auth: str | None = None
        for _attempt in range(2):
            resp = await self.transact(self._register_request(uri, expires, auth),
                                       timeout=timeout)
            if resp.status in (401, 407) and auth is None:
                name = "WWW-Authenticate" if resp.status == 401 else "Proxy-Authenticate"
                auth = authorization(parse_challenge(resp.get(name)), username=self.username,
                                     password=self.password, method="REGISTER", uri=uri,
                                     cnonce=_token(4))
                continue
            if resp.status != 200:
                raise SipError(f"REGISTER {self.username}: {resp.start}")
            granted = header_param(resp.get("contact"), "expires") or resp.get("expires")
            self.expires = int(granted) if str(granted).isdigit() else expires
            self.registered = expires > 0
            if refresh and self.registered and self._refresher is None:
                self._refresher = asyncio.create_task(self._refresh(expires),
                                                      name=f"register-{self.username}")
            return self.expires
        raise SipError(f"REGISTER {self.username}: authentication failed")

    async def _refresh(self, expires: int) -> None:
        while True:
            await asyncio.sleep(max(5.0, self.expires * 0.8))
            try:
                await self.register(expires, refresh=False)
            except (SipError, TimeoutError) as exc:
                log.warning("re-REGISTER of %s failed (%s); trying again", self.username, exc)
                self.expires = 10  # try again soon

    async def unregister(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None
        if self.registered:
            with contextlib.suppress(SipError, TimeoutError):
                await self.register(0, refresh=False, timeout=3.0)
            self.registered = False

    # ---- incoming calls -----------------------------------------------------------------
    async def next_call(self, timeout: float) -> IncomingCall:
        """The next call ringing on this phone (cancelled ones are skipped)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            call = await asyncio.wait_for(self.incoming.get(), max(0.0, deadline - loop.time()))
            if not call.ended:
                return call

    def _on_request(self, req: SipMessage, addr: tuple[str, int]) -> None:
        call = self.calls.get(req.get("call-id"))
        method = req.method
        if method == "INVITE" and call is None:
            self._on_invite(req, addr)
            return
        if isinstance(call, IncomingCall) and not call.answered.done():
            if method == "INVITE":
                call.resend_last()  # a retransmission of the INVITE we are ringing for
                return
            if method == "CANCEL":
                self._reply(req, "200 OK", addr)
                call.on_cancel()
                return
        if isinstance(call, IncomingCall) and method == "ACK":
            call.on_ack()
            return
        super()._on_request(req, addr)

    def _on_invite(self, req: SipMessage, addr: tuple[str, int]) -> None:
        call = IncomingCall(self, req, addr)
        if self.incoming.full():
            call.respond("486 Busy Here")
            call.end(by_remote=False)
            return
        self.calls[call.call_id] = call
        call.respond("100 Trying")
        task = asyncio.create_task(self._ring(call), name=f"ring-{call.call_id[:8]}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ring(self, call: IncomingCall) -> None:
        await call.open_rtp()
        if call.ended:
            return
        call.respond("180 Ringing")
        call.ringing_at = time.monotonic()
        try:
            self.incoming.put_nowait(call)
        except asyncio.QueueFull:
            call.reject("486 Busy Here")

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for call in list(self.calls.values()):
            if isinstance(call, IncomingCall):
                call.reject("480 Temporarily Unavailable")
        await self.unregister()
        await super().close()
