"""PaddleSpeech TTS (FastSpeech2 + HiFiGAN by default) from local model folders.

The operator unpacks a PaddleSpeech acoustic model (e.g. ``fastspeech2_csmsc``: ``default.yaml``,
``snapshot_iter_*.pdz``, ``speech_stats.npy``, ``phone_id_map.txt``) and a vocoder (e.g.
``hifigan_csmsc``: ``default.yaml``, ``snapshot_iter_*.pdz``, ``feats_stats.npy``) and points
``tts.paddlespeech_am_path`` / ``tts.paddlespeech_voc_path`` at them, naming their types in
``tts.paddlespeech_am`` / ``tts.paddlespeech_voc``. Every file is handed to
``paddlespeech.cli.tts.infer.TTSExecutor`` explicitly, so it loads them and downloads nothing.
``paddlespeech`` (and paddlepaddle) are an optional extra, imported only when this back end is
built.

The executor writes a WAV file (24 kHz for the csmsc models) and keeps its state on itself: calls
are serialised by a lock in this back end's one-worker pool; the working directory is restored
after each call. The model loads at start (a warm-up sentence), not on the first caller's turn.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ivr.core.config import TTSSettings
from tts import audio
from tts.base import ChunkedSynthesizer, Progress, TTSError, TTSUnavailable

log = logging.getLogger("ivr.tts")

WARM_UP = "您好。"


def _one(folder: Path, pattern: str, what: str, *, required: bool = True) -> Path | None:
    found = sorted(folder.glob(pattern))
    if len(found) == 1:
        return found[0]
    if not found and not required:
        return None
    names = ", ".join(p.name for p in found) or "none"
    raise TTSUnavailable(f"{folder}: expected one {what} ({pattern}), found {names}")


def model_files(am_path: Path | None, voc_path: Path | None) -> dict[str, str]:
    """The executor's file arguments from the two unpacked model folders; TTSUnavailable saying
    what is missing."""
    if am_path is None or voc_path is None:
        raise TTSUnavailable(
            "the paddlespeech TTS back end needs tts.paddlespeech_am_path and "
            "tts.paddlespeech_voc_path: unpacked PaddleSpeech acoustic model and vocoder "
            "folders (nothing is downloaded)"
        )
    am, voc = am_path.expanduser(), voc_path.expanduser()
    for folder in (am, voc):
        if not folder.is_dir():
            raise TTSUnavailable(f"PaddleSpeech model folder {folder} does not exist")
    files: dict[str, Path | None] = {
        "am_config": _one(am, "*.yaml", "config"),
        "am_ckpt": _one(am, "*.pdz", "checkpoint"),
        "am_stat": _one(am, "*stats*.npy", "statistics file"),
        "phones_dict": _one(am, "phone_id_map.txt", "phone map"),
        "tones_dict": _one(am, "tone_id_map.txt", "tone map", required=False),
        "speaker_dict": _one(am, "speaker_id_map.txt", "speaker map", required=False),
        "voc_config": _one(voc, "*.yaml", "config"),
        "voc_ckpt": _one(voc, "*.pdz", "checkpoint"),
        "voc_stat": _one(voc, "*stats*.npy", "statistics file"),
    }
    return {k: str(v) for k, v in files.items() if v is not None}


def executor_kwargs(
    text: str, output: Path, *, am: str, voc: str, files: dict[str, str], spk_id: int = 0
) -> dict[str, Any]:
    """The keyword arguments of one ``TTSExecutor()(...)`` call."""
    return {
        "text": text, "output": str(output), "am": am, "voc": voc, "lang": "zh",
        "spk_id": spk_id, "device": "cpu", **files,
    }  # fmt: skip


class PaddleSpeechSynthesizer(ChunkedSynthesizer):
    name = "paddlespeech"

    def __init__(self, settings: TTSSettings, progress: Progress | None = None) -> None:
        self.files = model_files(settings.paddlespeech_am_path, settings.paddlespeech_voc_path)
        self.am = settings.paddlespeech_am
        self.voc = settings.paddlespeech_voc
        self.voice = f"{self.am}+{self.voc}"  # part of the prompt cache key
        try:
            from paddlespeech.cli.tts.infer import TTSExecutor
        except ImportError as exc:
            raise TTSUnavailable(
                f"the paddlespeech TTS back end needs the paddlespeech package (and "
                f"paddlepaddle), which is not installed (pip install -e '.[paddlespeech]'): {exc}"
            ) from exc
        self._tts = TTSExecutor()
        self._lock = threading.Lock()
        super().__init__(workers=1)
        if progress is not None:
            progress(f"Loading PaddleSpeech TTS {self.voice}")
        t = time.monotonic()
        try:
            self._synthesize_file(WARM_UP)
        except TTSError as exc:
            raise TTSUnavailable(f"PaddleSpeech TTS cannot load its models: {exc}") from exc
        log.info("PaddleSpeech TTS %s loaded in %.1f s", self.voice, time.monotonic() - t)

    async def _render(self, chunk: str) -> np.ndarray:
        return await self._run(self._synthesize_file, chunk)

    def _synthesize_file(self, text: str) -> np.ndarray:
        """One chunk (pool thread): the executor's WAV, read back and resampled to 8 kHz."""
        with tempfile.TemporaryDirectory(prefix="ivr-paddle-tts-") as tmp:
            out = Path(tmp) / "out.wav"
            kw = executor_kwargs(text, out, am=self.am, voc=self.voc, files=self.files)
            with self._lock:
                cwd = os.getcwd()
                try:
                    self._tts(**kw)
                except Exception as exc:  # paddle raises anything: say which
                    raise TTSError(f"PaddleSpeech TTS failed: {type(exc).__name__}: {exc}") from exc
                finally:
                    os.chdir(cwd)
            try:
                samples, rate = audio.decode_wav(out.read_bytes())
            except (OSError, audio.AudioFormatError) as exc:
                raise TTSError(f"PaddleSpeech TTS wrote no readable WAV: {exc}") from exc
        return audio.resample(samples, rate, audio.SAMPLE_RATE)
