"""Run a real Asterisk 22 for development and tests.

Debian stable lacks Asterisk 22, so we build a Debian *sid* root with debootstrap (cached outside
the repository, by default ~/.cache/ivr/sid-root), copy our configuration into it, mount /proc,
/dev and the prompt cache, and run ``chroot ROOT asterisk -f``. Needs root (chroot and mount).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

from ivr.core.config import Settings
from ivr.core.sounds import DIALPLAN_PROMPTS, QUEUE_CALLBACK

log = logging.getLogger("ivr.asterisk")

CONF_DIR = Path(__file__).with_name("conf")
SID_PACKAGES = ("asterisk", "asterisk-modules", "asterisk-moh-opsound-wav", "sip-tester")
SOUNDS_DIR_IN_ROOT = Path("usr/share/asterisk/sounds")

Progress = Callable[[str], None]


class AsteriskError(RuntimeError):
    """Asterisk could not be built, configured, started or stopped."""


def render_configs(settings: Settings) -> dict[str, str]:
    """Our configuration files with the ``@@NAME@@`` markers filled from the settings."""
    a = settings.asterisk
    http_port = a.ari_url.split("://", 1)[-1].rstrip("/").partition(":")[2] or "8088"
    values = {
        "SIP_HOST": a.bind_host,
        "SIP_PORT": str(a.sip_port),
        "RTP_START": str(a.rtp_start),
        "RTP_END": str(a.rtp_end),
        "HTTP_HOST": a.http_bind,
        "HTTP_PORT": http_port,
        "ARI_USER": a.ari_user,
        "ARI_PASSWORD": a.ari_password.get_secret_value(),
        "ARI_APP": a.ari_app,
        "AMI_HOST": a.ami_bind,
        "AMI_PERMIT": a.ami_permit,
        "AMI_PORT": str(a.ami_port),
        "AMI_USER": a.ami_user,
        "AMI_SECRET": a.ami_secret.get_secret_value(),
        "CALLER_PASSWORD": a.caller_password.get_secret_value(),
        "CARRIER_HOST": a.carrier_host or a.bind_host,
        "CARRIER_PORT": str(a.carrier_port),
        "AGENT_PASSWORD": a.agent_password.get_secret_value(),
        "AGI_HOST": settings.agi.dial_host,
        "AGI_PORT": str(settings.agi.port),
        "QUEUE_MAX_WAIT": str(settings.handoff.queue_max_wait_s),
        # ivr/calls/queue_exit.py: the periodic "press 1 for a callback" (rendered by our TTS)
        "QUEUE_ANNOUNCE": f"{a.sounds_subdir}/{QUEUE_CALLBACK}",
        # the failsafe's own words, server down (dialog/prompts.py DIALPLAN_PROMPTS)
        "FAILSAFE_HOLD": f"{a.sounds_subdir}/{DIALPLAN_PROMPTS['failsafe_hold']}",
        "FAILSAFE_SORRY": f"{a.sounds_subdir}/{DIALPLAN_PROMPTS['failsafe_sorry']}",
        "DIAL_ENDPOINT": settings.dialer.endpoint,
        "INSTANCE": a.instance,
    }
    out: dict[str, str] = {}
    for path in sorted(CONF_DIR.glob("*.conf")):
        text = path.read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace(f"@@{key}@@", value)
        if "@@" in text:
            raise AsteriskError(
                f"{path.name}: unfilled marker near {text[text.index('@@') :][:30]!r}"
            )
        out[path.name] = text
    return out


def root_ready(root: Path) -> bool:
    return (root / "usr/sbin/asterisk").exists() and (root / ".ivr-root-complete").exists()


def build_root(settings: Settings, progress: Progress | None = None) -> Path:
    """Build the Debian sid root with Asterisk 22 once (about a minute); cached afterwards."""
    root = settings.asterisk.root_dir
    if root_ready(root):
        return root
    say = progress or (lambda _m: None)
    if os.geteuid() != 0:
        raise AsteriskError("building the Asterisk root needs root (debootstrap, chroot)")
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise AsteriskError("debootstrap is missing: apt-get install debootstrap")
    tmp = root.with_name(root.name + ".building")
    if tmp.exists():
        _unmount_all(tmp)
        shutil.rmtree(tmp)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    say(f"building Debian sid root with Asterisk 22 in {root} (first time only, ~1-2 min)")
    import subprocess

    cmd = [
        debootstrap,
        "--variant=minbase",
        "--include=" + ",".join(SID_PACKAGES),
        "sid",
        str(tmp),
        settings.asterisk.debian_mirror,
    ]
    started = time.monotonic()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        tail: list[str] = []
        stage = ""
        for line in proc.stdout:
            line = line.rstrip()
            tail = [*tail[-20:], line]
            # one progress line per debootstrap stage (retrieving, extracting, installing, ...)
            words = line[3:].split() if line.startswith("I: ") else []
            if words and words[0] != stage:
                stage = words[0]
                say(f"debootstrap: {line[3:]}")
        rc = proc.wait()
    if rc != 0:
        raise AsteriskError("debootstrap failed:\n" + "\n".join(tail))
    (tmp / ".ivr-root-complete").write_text(" ".join(SID_PACKAGES) + "\n")
    if root.exists():
        shutil.rmtree(root)
    tmp.rename(root)
    say(f"Asterisk root ready in {time.monotonic() - started:.0f} s")
    return root


def _mounted() -> set[str]:
    with open("/proc/self/mounts", encoding="utf-8") as f:
        return {line.split()[1] for line in f if len(line.split()) > 1}


def _mount(args: list[str], target: Path) -> None:
    import subprocess

    if str(target) in _mounted():
        return
    target.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", *args, str(target)], capture_output=True, text=True)
    if res.returncode != 0:
        raise AsteriskError(f"mount {' '.join(args)} {target}: {res.stderr.strip()}")


def _unmount_all(root: Path) -> None:
    import subprocess

    prefix = str(root.resolve()) + "/"
    for target in sorted((m for m in _mounted() if m.startswith(prefix)), reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True)


def _unmount(target: Path) -> None:
    import subprocess

    if str(target) in _mounted():
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


class ManagedAsterisk:
    """One Asterisk process in the sid root, owned by this object."""

    def __init__(self, settings: Settings, progress: Progress | None = None) -> None:
        self.settings = settings
        self.root = settings.asterisk.root_dir
        self.progress = progress or (lambda _m: None)
        self.proc: asyncio.subprocess.Process | None = None
        self.log_path = settings.asterisk.run_dir / "asterisk.log"
        self._log_file: object | None = None

    @property
    def sounds_dir(self) -> Path:
        """Where our prompt cache appears inside Asterisk (sound:ivr/<name>)."""
        return self.root / SOUNDS_DIR_IN_ROOT / self.settings.asterisk.sounds_subdir

    @property
    def conf_path(self) -> str:
        """asterisk.conf of this instance, as Asterisk sees it inside the root."""
        return f"/etc/asterisk-{self.settings.asterisk.instance}/asterisk.conf"

    def prepare(self) -> None:
        build_root(self.settings, self.progress)
        instance = self.settings.asterisk.instance
        etc = self.root / f"etc/asterisk-{instance}"
        etc.mkdir(exist_ok=True)
        for old in etc.glob("*.conf"):
            old.unlink()
        for name, text in render_configs(self.settings).items():
            (etc / name).write_text(text, encoding="utf-8")
        for d in (
            f"var/run/asterisk-{instance}",
            f"var/spool/asterisk-{instance}",
            f"var/log/asterisk-{instance}",
            f"var/lib/asterisk/db-{instance}",
        ):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        cache = self.settings.tts.cache_dir
        cache.mkdir(parents=True, exist_ok=True)
        _mount(["-t", "proc", "proc"], self.root / "proc")
        _mount(["--bind", "/dev"], self.root / "dev")
        _mount(["--bind", str(cache)], self.sounds_dir)

    async def start(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            return
        await asyncio.to_thread(self.prepare)
        if await self._cli_ok():
            log.warning("an Asterisk from an earlier run is still up in %s: stopping it", self.root)
            await self._cli("core stop now")
            await self._wait_cli_down(10)
        await asyncio.to_thread(self._kill_strays)
        self.settings.asterisk.run_dir.mkdir(parents=True, exist_ok=True)
        logf = await asyncio.to_thread(open, self.log_path, "ab")
        self._log_file = logf
        netns = self.settings.asterisk.netns
        self.proc = await asyncio.create_subprocess_exec(
            *(["ip", "netns", "exec", netns] if netns else []),
            "chroot",
            str(self.root),
            "/usr/sbin/asterisk",
            "-f",
            "-n",
            "-C",
            self.conf_path,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=logf,
            stderr=logf,
            start_new_session=True,
        )
        started = time.monotonic()
        try:
            await self.wait_ready(self.settings.asterisk.start_timeout_s)
        except BaseException:
            await self.stop()
            raise
        log.info("Asterisk up (pid %s) in %.1f s", self.proc.pid, time.monotonic() - started)

    async def wait_ready(self, timeout: float) -> None:
        """Wait until ARI answers with our credentials."""
        a = self.settings.asterisk
        url = a.ari_url.rstrip("/") + "/ari/asterisk/info"
        headers = {
            "Authorization": aiohttp.encode_basic_auth(
                a.ari_user, a.ari_password.get_secret_value()
            )
        }
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.returncode is not None:
                    raise AsteriskError(
                        f"Asterisk exited with {self.proc.returncode}; see {self.log_path}"
                    )
                with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                    async with http.get(
                        url, headers=headers, timeout=aiohttp.ClientTimeout(2)
                    ) as r:
                        if r.status == 200:
                            return
                await asyncio.sleep(0.2)
        raise AsteriskError(
            f"ARI did not answer at {url} within {timeout:.0f} s; see {self.log_path}"
        )

    async def stop(self, *, unmount: bool = True) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.returncode is None:
            await self._cli("core stop now")
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                log.warning("Asterisk did not stop in 10 s: killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        if self._log_file is not None:
            self._log_file.close()  # type: ignore[attr-defined]
            self._log_file = None
        if unmount:
            # /proc and /dev stay mounted: other instances may share the root
            await asyncio.to_thread(_unmount, self.sounds_dir)

    async def restart(self) -> None:
        await self.stop(unmount=False)
        await self.start()

    async def cli(self, command: str) -> str:
        """Run an Asterisk CLI command (asterisk -rx) and return its output."""
        rc, out = await self._cli(command)
        if rc != 0:
            raise AsteriskError(f"asterisk -rx {command!r} failed: {out.strip()}")
        return out

    async def _cli(self, command: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            "chroot",
            str(self.root),
            "/usr/sbin/asterisk",
            "-C",
            self.conf_path,
            "-rx",
            command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        return proc.returncode or 0, out.decode(errors="replace")

    async def _cli_ok(self) -> bool:
        ctl = self.root / f"var/run/asterisk-{self.settings.asterisk.instance}/asterisk.ctl"
        if not ctl.exists():
            return False
        rc, out = await self._cli("core show version")
        return rc == 0 and "Asterisk" in out

    def _kill_strays(self) -> None:
        """Kill Asterisks in our root with our config that our control socket cannot reach (left
        by a killed run whose run directory is gone): they would hold the SIP and ARI ports, and
        ARI answering would be mistaken for our own process being ready."""
        root = self.root.resolve()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if Path(os.readlink(entry / "root")) != root:
                    continue
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:  # gone meanwhile, or not ours to inspect
                continue
            if argv and argv[0].endswith(b"asterisk") and self.conf_path.encode() in argv:
                log.warning("killing a stray Asterisk (pid %s) left in %s", entry.name, root)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(entry.name), signal.SIGKILL)
                for _ in range(50):  # its ports are free once it is gone
                    if not (entry / "cmdline").exists() or not (entry / "cmdline").read_bytes():
                        break
                    time.sleep(0.1)

    async def _wait_cli_down(self, timeout: float) -> None:
        for _ in range(int(timeout / 0.2)):  # polling another process: no event to wait on
            if not await self._cli_ok():
                return
            await asyncio.sleep(0.2)
