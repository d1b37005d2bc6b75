"""Kamailio, the SIP front of several Asterisk boxes: its configuration, and one run of it.

``render_kamailio`` fills ``kamailio.conf`` (next to this module) and the dispatcher list from
the settings (section ``kamailio``): production installs Debian's ``kamailio`` package and runs
it on the rendered file (``ivr cluster render``); ``ManagedKamailio`` runs the same file for
development and drills (``ivr cluster up``), in the foreground and owned by this process.

What it decides: a new INVITE goes to a box chosen by a hash of its Call-ID among the boxes in
the rotation (dispatcher set 1); a box that misses its OPTIONS probe leaves the rotation and
comes back when it answers again; an INVITE a box does not answer at all within
``failover_ms`` goes to the next box. ``rotation()`` reads which boxes are in (``kamcmd``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import time
from pathlib import Path

from ivr.core.config import KamailioSettings

TEMPLATE = Path(__file__).with_name("kamailio.conf")
BINARY = "/usr/sbin/kamailio"
KAMCMD = "/usr/sbin/kamcmd"
SET_ID = 1


class KamailioError(RuntimeError):
    """Kamailio could not be configured, started or asked."""


def paths(k: KamailioSettings) -> dict[str, Path]:
    run = k.run_dir
    return {"cfg": run / "kamailio.cfg", "list": run / "dispatcher.list",
            "ctl": run / "kamailio_ctl", "pid": run / "kamailio.pid", "log": run / "kamailio.log"}


def _check_box(uri: str) -> str:
    if not re.fullmatch(r"sip:[A-Za-z0-9.\-\[\]:]+", uri):
        raise KamailioError(f"kamailio.boxes: {uri!r} is not a SIP URI like sip:10.0.0.11:5060")
    return uri


def render_kamailio(k: KamailioSettings, *, debug: int = 1) -> dict[str, str]:
    """The rendered files by name: ``kamailio.cfg`` and ``dispatcher.list``."""
    if not k.boxes:
        raise KamailioError("kamailio.boxes is empty: name at least one Asterisk box")
    p = paths(k)
    values = {
        "DEBUG": str(debug), "LISTEN": k.listen_host, "PORT": str(k.sip_port),
        "CTL": str(p["ctl"]), "LIST": str(p["list"]), "FAILOVER_MS": str(k.failover_ms),
        "PROBE_S": str(k.probe_interval_s), "PROBE_THRESHOLD": str(k.probe_threshold),
    }
    text = TEMPLATE.read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", value)
    if "@@" in text:
        raise KamailioError(f"kamailio.conf: unfilled marker near {text[text.index('@@'):][:30]!r}")
    boxes = "".join(f"{SET_ID} {_check_box(uri)} 0 0 box={i}\n"
                    for i, uri in enumerate(k.boxes, 1))
    return {"kamailio.cfg": text, "dispatcher.list": "# set uri flags priority attrs\n" + boxes}


def write_config(k: KamailioSettings) -> Path:
    """Render into ``run_dir``; returns the configuration file's path."""
    k.run_dir.mkdir(parents=True, exist_ok=True)
    for name, text in render_kamailio(k).items():
        (k.run_dir / name).write_text(text, encoding="utf-8")
    return paths(k)["cfg"]


async def check_config(cfg: Path) -> None:
    """``kamailio -c``: the file parses and every module loads."""
    proc = await asyncio.create_subprocess_exec(
        BINARY, "-c", "-f", str(cfg), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise KamailioError(f"kamailio -c {cfg}: {out.decode(errors='replace')[-800:]}")


class ManagedKamailio:
    """One Kamailio process on the rendered file, owned by this object."""

    def __init__(self, k: KamailioSettings) -> None:
        self.k = k
        self.paths = paths(k)
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, timeout_s: float = 15.0) -> None:
        if shutil.which(BINARY) is None:
            raise KamailioError(f"{BINARY} is missing: apt-get install kamailio "
                                "(scripts/bootstrap.sh does)")
        cfg = await asyncio.to_thread(write_config, self.k)
        await check_config(cfg)
        self._kill_stale()
        self.paths["ctl"].unlink(missing_ok=True)
        logf = self.paths["log"].open("ab")
        try:
            # -DD: stay in the foreground (its children are ours), -E: log to stderr
            self.proc = await asyncio.create_subprocess_exec(
                BINARY, "-DD", "-E", "-f", str(cfg), "-P", str(self.paths["pid"]),
                "-m", "64", "-M", "8", stdin=asyncio.subprocess.DEVNULL, stdout=logf,
                stderr=logf, start_new_session=True)
        finally:
            logf.close()
        deadline = time.monotonic() + timeout_s
        while not self.paths["ctl"].exists():
            if self.proc.returncode is not None:
                raise KamailioError(f"kamailio exited ({self.proc.returncode}); see "
                                    f"{self.paths['log']}")
            if time.monotonic() > deadline:
                await self.stop()
                raise KamailioError(f"kamailio not ready in {timeout_s:.0f} s; see "
                                    f"{self.paths['log']}")
            await asyncio.sleep(0.1)

    def _kill_stale(self) -> None:
        """A Kamailio left by a killed run holds the port: its process group goes."""
        with contextlib.suppress(OSError, ValueError):
            pid = int(self.paths["pid"].read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"kamailio" in cmdline and str(self.paths["cfg"]).encode() in cmdline:
                os.killpg(os.getpgid(pid), signal.SIGKILL)
                time.sleep(0.3)

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        self.paths["ctl"].unlink(missing_ok=True)

    async def rotation(self) -> dict[str, bool]:
        """Each box's URI and whether it is in the rotation now (``kamcmd dispatcher.list``)."""
        proc = await asyncio.create_subprocess_exec(
            KAMCMD, "-s", f"unix:{self.paths['ctl']}", "dispatcher.list",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise KamailioError(f"kamcmd dispatcher.list: {out.decode(errors='replace')}")
        return parse_rotation(out.decode(errors="replace"))


def parse_rotation(text: str) -> dict[str, bool]:
    """``dispatcher.list`` output → {uri: active}. Flags start with A (active), I (inactive)
    or D (disabled); a P after them means probing."""
    found: dict[str, bool] = {}
    for m in re.finditer(r"URI:\s*(\S+)\s+FLAGS:\s*(\S+)", text):
        found[m.group(1)] = m.group(2).startswith("A")
    return found
