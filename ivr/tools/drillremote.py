"""``ivr drill remote-asterisk``: Asterisk on another host, as compose and production run it.

The drill makes a private test link: a network namespace of its own (``ip netns``) joined to this
host by a veth pair, 10.77.0.1 here and 10.77.0.2 there. The managed Asterisk runs inside that
namespace (``asterisk.netns``), so to the server it is really another host: every address comes
from settings (SIP, ARI and AMI at 10.77.0.2; the caller's audio sent to ``asterisk.media_host``
10.77.0.1, FastAGI dialled at ``agi.advertise_host`` 10.77.0.1 and taken only from
``agi.allow_from`` 10.77.0.2). Nothing listens on loopback for it; a hard-coded 127.0.0.1
anywhere breaks the calls.

Two calls from the test caller (on this host, 10.77.0.1): one speaks a request through ARI, and
passes when the recogniser got the caller's audio (a ``speech`` step with words in the record);
one goes through FastAGI (956101) and passes when its menu key is taken. The link and the
namespace are always removed afterwards (and a stale one from an interrupted run first).
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ivr.core.config import Settings

NETNS = "ivr-drill-ast"
HOST_IF, PEER_IF = "ivr-drill-h", "ivr-drill-a"
HOST_IP, ASTERISK_IP = "10.77.0.1", "10.77.0.2"


def run_ip(*args: str, check: bool = True) -> None:
    res = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and res.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {res.stderr.strip()}")


def _remove() -> None:
    run_ip("link", "del", HOST_IF, check=False)  # takes its peer with it
    run_ip("netns", "del", NETNS, check=False)


@contextlib.contextmanager
def remote_link() -> Iterator[tuple[str, str, str]]:
    """The namespace and its link, removed on the way out: yields (namespace, this host's
    address, Asterisk's address)."""
    _remove()
    try:
        run_ip("netns", "add", NETNS)
        run_ip("link", "add", HOST_IF, "type", "veth", "peer", "name", PEER_IF)
        run_ip("link", "set", PEER_IF, "netns", NETNS)
        run_ip("addr", "add", f"{HOST_IP}/30", "dev", HOST_IF)
        run_ip("link", "set", HOST_IF, "up")
        run_ip("-n", NETNS, "addr", "add", f"{ASTERISK_IP}/30", "dev", PEER_IF)
        run_ip("-n", NETNS, "link", "set", PEER_IF, "up")
        run_ip("-n", NETNS, "link", "set", "lo", "up")
        yield NETNS, HOST_IP, ASTERISK_IP
    finally:
        _remove()


def remote_settings(settings: Settings, netns: str, host_ip: str, ast_ip: str, *,
                    instance: str = "remote", web_port: int | None = None) -> Settings:
    """``settings`` with Asterisk moved to ``ast_ip`` inside ``netns``."""
    a = settings.asterisk.model_copy(update={
        "netns": netns, "instance": instance, "bind_host": ast_ip, "http_bind": ast_ip,
        "ami_bind": ast_ip, "ami_host": ast_ip, "ami_permit": f"{host_ip}/255.255.255.255",
        "ari_url": f"http://{ast_ip}:{settings.asterisk.ari_url.rsplit(':', 1)[-1]}",
        "media_host": host_ip, "media_bind": host_ip,
        # its own view of the prompts: stopping it unmounts this, not another instance's
        "sounds_subdir": f"{settings.asterisk.sounds_subdir}-{instance}"})
    # FastAGI takes connections only from the addresses it is told (Asterisk's, here)
    agi = settings.agi.model_copy(update={"host": host_ip, "advertise_host": host_ip,
                                          "allow_from": [f"{ast_ip}/32"]})
    web_s = settings.web.model_copy(update={"port": web_port or settings.web.port})
    # the dialer's customer trunk points at this host's loopback: not part of this drill
    dialer = settings.dialer.model_copy(update={"in_server": False})
    return settings.model_copy(deep=True, update={"asterisk": a, "agi": agi, "web": web_s,
                                                  "dialer": dialer})


@dataclass
class RemoteReport:
    speech_call: bool = False
    heard: str = ""  # what the recogniser made of the caller's request
    agi_call: bool = False
    failures: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return dict(self.__dict__)


async def remote_calls(app: web.Application, settings: Settings, *,
                       echo: Any = print) -> RemoteReport:
    from ivr.sim.demo import listen_until_quiet
    from ivr.sim.sipua import SipUserAgent
    from ivr.tools.drillvoice import LONG_UTTERANCES, rendered
    from ivr.web.keys import REPO

    a = settings.asterisk
    repo = app[REPO]
    report = RemoteReport()
    ua = SipUserAgent(server_host=a.bind_host, server_port=a.sip_port, username="caller",
                      password=a.caller_password.get_secret_value(), local_host=a.media_host)
    await ua.start()
    try:
        (text, pcm, _), = await rendered(app, LONG_UTTERANCES[:1])
        since = time.time()
        call = await ua.call("956100")
        _, voiced = await listen_until_quiet(call)
        await call.play(pcm)
        _, replied = await listen_until_quiet(call)
        await call.hangup()
        row = await repo.closed_since(since)
        speech = [s["detail"] for s in (row.path if row else []) if s["step"] == "speech"]
        report.heard = str(speech[0].get("text", "")) if speech else ""
        report.speech_call = bool(voiced >= 2.0 and replied >= 1.0 and report.heard)
        if not report.speech_call:
            report.failures.append(f"speech call: greeting {voiced:.1f} s, reply {replied:.1f} "
                                   f"s voiced, heard {report.heard!r} (said {text})")
        echo(f"  speech call over ARI: heard {report.heard!r}")

        since = time.time()
        call = await ua.call("956101")
        _, voiced = await listen_until_quiet(call)
        await call.send_dtmf("2")
        await listen_until_quiet(call)  # the gas menu
        await call.hangup()
        row = await repo.closed_since(since)
        choices = [s["detail"].get("choice") for s in (row.path if row else [])
                   if s["step"] == "menu"]
        report.agi_call = bool(voiced >= 2.0 and choices[:1] == ["gas"]
                               and row is not None and row.transport == "agi")
        if not report.agi_call:
            report.failures.append(f"FastAGI call: greeting {voiced:.1f} s, menu {choices}, "
                                   f"transport {row.transport if row else None}")
        echo(f"  keys call over FastAGI: menu {choices}")
    finally:
        await ua.close()
    return report
