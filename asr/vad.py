"""Voice activity detection: a speech probability per short window of audio.

* ``SileroVad``: Silero VAD v6 (MIT), the ONNX export that ships inside the faster-whisper wheel
  (``faster_whisper/assets/silero_vad_v6.onnx``: the [whisper] extra), on onnxruntime. It runs at
  16 kHz on 512-sample windows (32 ms) with 64 samples of context; 8 kHz telephone audio is
  upsampled on the fly (256 samples in per window). The LSTM state is per stream: one
  ``SileroVad`` per call, while the ONNX session is loaded once and shared.
* ``EnergyVad``: the fallback when onnxruntime or the model is missing: level above an adaptive
  noise floor, mapped to a pseudo-probability.

Both are cheap enough to run on the event loop (well under a millisecond per 32 ms window).
"""

from __future__ import annotations

import importlib.util
import logging
import math
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from asr.audio import FloatArray, Upsampler2x, check_rate
from asr.base import ASRUnavailable

log = logging.getLogger("asr.vad")

SILERO_FILE = "silero_vad_v6.onnx"
SILERO_RATE = 16000
SILERO_WINDOW = 512
SILERO_CONTEXT = 64
# Silero's recurrent state drifts through long silence: after 20 s of it, half the phases of a
# window grid started 不要再打了 0.9 s late (not 0.3 s), and the preroll no longer held 不要.
# So the state starts afresh after this much quiet (well below any speech probability).
SILERO_QUIET_RESET_S = 1.0
SILERO_QUIET_PROB = 0.05


class Vad(Protocol):
    name: str
    sample_rate: int
    window: int  # samples per decision at ``sample_rate``

    def __call__(self, window: FloatArray) -> float:
        """Speech probability (0..1) of exactly ``window`` float samples in [-1, 1]."""
        ...

    def reset(self) -> None: ...


def silero_model_path() -> Path:
    spec = importlib.util.find_spec("faster_whisper")
    if spec is None or spec.origin is None:
        raise ASRUnavailable(
            "Silero VAD comes with faster-whisper, which is not installed: "
            "pip install -e '.[whisper]'"
        )
    path = Path(spec.origin).parent / "assets" / SILERO_FILE
    if not path.is_file():
        raise ASRUnavailable(f"the installed faster-whisper has no {SILERO_FILE} ({path})")
    return path


@lru_cache(maxsize=1)
def _silero_session() -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ASRUnavailable("Silero VAD needs onnxruntime, which is not installed") from exc
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.enable_cpu_mem_arena = False
    opts.log_severity_level = 3
    return ort.InferenceSession(
        str(silero_model_path()), sess_options=opts, providers=["CPUExecutionProvider"]
    )


class SileroVad:
    name = "silero"

    def __init__(self, sample_rate: int = 8000) -> None:
        self.sample_rate = check_rate(sample_rate)
        self.window = SILERO_WINDOW * sample_rate // SILERO_RATE
        self._session = _silero_session()
        self._upsample = Upsampler2x() if sample_rate != SILERO_RATE else None
        self._reset_after = max(1, round(SILERO_QUIET_RESET_S * sample_rate / self.window))
        self.reset()

    def reset(self) -> None:
        self._quiet = 0  # windows in a row below SILERO_QUIET_PROB
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(SILERO_CONTEXT, dtype=np.float32)
        if self._upsample is not None:
            self._upsample.reset()

    def __call__(self, window: FloatArray) -> float:
        if window.shape != (self.window,):
            raise ValueError(f"a VAD window is {self.window} samples, got {window.shape}")
        x = self._upsample(window) if self._upsample is not None else window
        inp = np.concatenate([self._context, x.astype(np.float32, copy=False)])[None, :]
        out, self._h, self._c = self._session.run(None, {"input": inp, "h": self._h, "c": self._c})
        self._context = inp[0, -SILERO_CONTEXT:]
        prob = float(np.asarray(out).ravel()[0])
        self._quiet = self._quiet + 1 if prob < SILERO_QUIET_PROB else 0
        if self._quiet >= self._reset_after:
            self.reset()
        return prob


class EnergyVad:
    """Level above an adaptive noise floor. The floor follows quiet windows at once and rises
    slowly (``rise_db_s``) through loud ones, so a steady hum stops counting as speech."""

    name = "energy"

    def __init__(
        self,
        sample_rate: int = 8000,
        *,
        margin_db: float = 12.0,
        min_level_db: float = -50.0,
        rise_db_s: float = 3.0,
    ) -> None:
        self.sample_rate = check_rate(sample_rate)
        self.window = 256 * sample_rate // 8000
        self.margin_db = margin_db
        self.min_level_db = min_level_db
        self._rise = rise_db_s * self.window / sample_rate
        self.reset()

    def reset(self) -> None:
        self._floor = -70.0

    def __call__(self, window: FloatArray) -> float:
        if window.shape != (self.window,):
            raise ValueError(f"a VAD window is {self.window} samples, got {window.shape}")
        level = 10.0 * math.log10(float(np.mean(np.square(window, dtype=np.float64))) + 1e-12)
        self._floor = level if level < self._floor else min(level, self._floor + self._rise)
        if level < self.min_level_db:
            return 0.0
        margin = level - max(self._floor, -70.0) - self.margin_db
        return 1.0 / (1.0 + math.exp(-margin / 2.0))


def make_vad(kind: str = "silero", sample_rate: int = 8000) -> Vad:
    """The VAD asked for; Silero falls back to the energy detector (with a warning) when the
    model cannot be loaded here."""
    if kind == "energy":
        return EnergyVad(sample_rate)
    if kind != "silero":
        raise ValueError(f"unknown VAD {kind!r} (silero or energy)")
    try:
        return SileroVad(sample_rate)
    except ASRUnavailable as exc:
        _warn_fallback(str(exc))
        return EnergyVad(sample_rate)


@lru_cache(maxsize=1)
def _warn_fallback(reason: str) -> None:
    log.warning("Silero VAD unavailable (%s): using the energy detector", reason)
