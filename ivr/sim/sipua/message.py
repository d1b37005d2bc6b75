"""SIP message framing (RFC 3261) and digest authentication (RFC 2617, MD5)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

COMPACT = {
    "v": "via",
    "f": "from",
    "t": "to",
    "i": "call-id",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
    "k": "supported",
}


class SipParseError(ValueError):
    pass


@dataclass
class SipMessage:
    start: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def is_response(self) -> bool:
        return self.start.startswith("SIP/2.0 ")

    @property
    def status(self) -> int:
        return int(self.start.split(" ", 2)[1]) if self.is_response else 0

    @property
    def method(self) -> str:
        if self.is_response:
            return self.get("cseq").split()[-1]
        return self.start.split(" ", 1)[0]

    @property
    def cseq(self) -> int:
        return int(self.get("cseq").split()[0])

    def get(self, name: str, default: str = "") -> str:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def encode(self) -> bytes:
        lines = [self.start]
        lines += [f"{k}: {v}" for k, v in self.headers if k.lower() != "content-length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


def parse_message(data: bytes) -> SipMessage:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise SipParseError("no end of headers")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SipParseError("headers are not UTF-8") from exc
    lines = text.split("\r\n")
    start = lines[0].strip()
    if not (start.startswith("SIP/2.0 ") or start.endswith(" SIP/2.0")):
        raise SipParseError(f"not a SIP start line: {start[:60]!r}")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # folded header
            k, v = headers[-1]
            headers[-1] = (k, v + " " + line.strip())
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise SipParseError(f"bad header line {line[:60]!r}")
        name = name.strip()
        headers.append((COMPACT.get(name.lower(), name), value.strip()))
    msg = SipMessage(start, headers, body)
    length = msg.get("content-length")
    if length.isdigit():
        msg.body = body[: int(length)]
    return msg


def header_param(value: str, name: str) -> str | None:
    m = re.search(rf";\s*{re.escape(name)}=([^;>\s,]+)", value)
    return m.group(1) if m else None


def uri_of(value: str) -> str:
    """The URI inside a From/To/Contact value."""
    m = re.search(r"<([^>]+)>", value)
    return m.group(1) if m else value.split(";")[0].strip()


def parse_challenge(value: str) -> dict[str, str]:
    scheme, _, rest = value.partition(" ")
    if scheme.lower() != "digest":
        raise SipParseError(f"unsupported auth scheme {scheme!r}")
    return {k.lower(): v.strip('"') for k, v in re.findall(r'(\w+)=("[^"]*"|[^,\s]+)', rest)}


def _md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


def digest_response(
    *,
    username: str,
    password: str,
    realm: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None = None,
    nc: str = "00000001",
    cnonce: str = "",
) -> str:
    ha1 = _md5(f"{username}:{realm}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    if qop:
        return _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _md5(f"{ha1}:{nonce}:{ha2}")


def authorization(
    challenge: dict[str, str], *, username: str, password: str, method: str, uri: str, cnonce: str
) -> str:
    realm, nonce = challenge.get("realm", ""), challenge.get("nonce", "")
    qop = None
    if "qop" in challenge:
        qop = "auth" if "auth" in challenge["qop"].split(",") else None
    resp = digest_response(
        username=username,
        password=password,
        realm=realm,
        method=method,
        uri=uri,
        nonce=nonce,
        qop=qop,
        cnonce=cnonce,
    )
    parts = [
        f'username="{username}"',
        f'realm="{realm}"',
        f'nonce="{nonce}"',
        f'uri="{uri}"',
        f'response="{resp}"',
        "algorithm=MD5",
    ]
    if qop:
        parts += [f"qop={qop}", "nc=00000001", f'cnonce="{cnonce}"']
    if "opaque" in challenge:
        parts.append(f'opaque="{challenge["opaque"]}"')
    return "Digest " + ", ".join(parts)


def sdp_offer(host: str, rtp_port: int, session_id: int) -> bytes:
    return (
        "v=0\r\n"
        f"o=- {session_id} 1 IN IP4 {host}\r\n"
        "s=ivr-test-caller\r\n"
        f"c=IN IP4 {host}\r\n"
        "t=0 0\r\n"
        f"m=audio {rtp_port} RTP/AVP 0 101\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        "a=fmtp:101 0-16\r\n"
        "a=ptime:20\r\n"
        "a=sendrecv\r\n"
    ).encode()


def uac_route_set(resp: SipMessage) -> list[str]:
    """The route set a caller keeps from the 2xx to its INVITE: the Record-Route entries
    reversed (RFC 3261 12.1.2), one per proxy that asked to stay in the dialog."""
    return [r.strip() for v in reversed(resp.get_all("record-route"))
            for r in reversed(v.split(",")) if r.strip()]


def sdp_remote_audio(body: bytes) -> tuple[str, int]:
    """(address, port) of the remote audio stream in an SDP answer."""
    text = body.decode(errors="replace")
    host = re.search(r"^c=IN IP4 (\S+)", text, re.M)
    media = re.search(r"^m=audio (\d+)", text, re.M)
    if not host or not media:
        raise SipParseError("SDP without audio address")
    return host.group(1), int(media.group(1))
