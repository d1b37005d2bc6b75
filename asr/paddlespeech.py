"""PaddleSpeech ASR in process (``paddlespeech.cli.asr.infer.ASRExecutor``) from a local model.

The operator unpacks a PaddleSpeech ASR model (e.g. the ``conformer_wenetspeech`` archive) and
sets ``asr.paddlespeech_model_path`` to that folder and ``asr.paddlespeech_model`` to its model
type. The executor gets an explicit ``config`` (``model.yaml``, else the one ``conf/*.yaml`` that
is not a preprocessing file) and ``ckpt_path`` (the one ``*.pdparams``, without its suffix, as
the executor wants it): with both given it loads them instead of downloading a pretrained model.
``paddlespeech`` (and paddlepaddle) are an optional extra, imported only when this back end is
built.

The executor reads a 16 kHz WAV file and keeps its state on itself, and it changes the working
directory to the model folder while it loads: the model is loaded once at start (a warm-up
decode of silence, the working directory restored after), and decodes are serialised by a lock
and run in a ``DecodePool``. Hot words are not supported by this back end (ignored).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
import wave
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asr.audio import WHISPER_RATE, FloatArray, float_to_pcm, pcm_to_float, to_16k
from asr.base import ASRError, ASRUnavailable, Progress
from asr.buffered import BufferedRecognizer, Decoded

if TYPE_CHECKING:
    from ivr.core.config import ASRSettings

log = logging.getLogger("asr.paddlespeech")

_NOT_MODEL_CONFIGS = ("preprocess", "tuning", "decode", "augmentation", "augment")


def model_files(folder: Path | None) -> tuple[Path, Path]:
    """(config yaml, checkpoint path without ``.pdparams``) in an unpacked PaddleSpeech model
    folder; ASRUnavailable saying what is missing or ambiguous."""
    if folder is None:
        raise ASRUnavailable(
            "the paddlespeech back end needs asr.paddlespeech_model_path: an unpacked "
            "PaddleSpeech ASR model folder (nothing is downloaded)"
        )
    root = folder.expanduser()
    if not root.is_dir():
        raise ASRUnavailable(f"asr.paddlespeech_model_path {root} is not a folder")
    config = root / "model.yaml"
    if not config.is_file():
        found = [
            p for p in sorted((root / "conf").glob("*.yaml"))
            if not any(word in p.stem for word in _NOT_MODEL_CONFIGS)
        ]  # fmt: skip
        if len(found) != 1:
            names = ", ".join(p.name for p in found) or "none"
            raise ASRUnavailable(
                f"{root}: expected model.yaml or exactly one model config in conf/ (found {names})"
            )
        config = found[0]
    ckpts = sorted(root.rglob("*.pdparams"))
    if len(ckpts) != 1:
        names = ", ".join(str(p.relative_to(root)) for p in ckpts) or "none"
        raise ASRUnavailable(f"{root}: expected exactly one *.pdparams checkpoint (found {names})")
    return config, ckpts[0].with_suffix("")


def executor_kwargs(
    wav: Path, *, model: str, config: Path, ckpt: Path, lang: str = "zh"
) -> dict[str, Any]:
    """The keyword arguments of one ``ASRExecutor()(...)`` call."""
    return {
        "audio_file": str(wav), "model": model, "lang": lang, "sample_rate": WHISPER_RATE,
        "config": str(config), "ckpt_path": str(ckpt), "force_yes": True, "device": "cpu",
    }  # fmt: skip


def parse_result(res: Any) -> str:
    """The executor's answer (a str; some versions a list of str) -> raw text."""
    if res is None:
        return ""
    if isinstance(res, list | tuple):
        return "".join(parse_result(r) for r in res)
    if not isinstance(res, str):
        raise ASRError(f"PaddleSpeech returned an unexpected result: {type(res).__name__}")
    return res.strip()


def write_wav16k(path: Path, samples: FloatArray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(WHISPER_RATE)
        w.writeframes(float_to_pcm(samples))


class PaddleSpeechRecognizer(BufferedRecognizer):
    name = "paddlespeech"
    label = "PaddleSpeech"

    def __init__(self, settings: ASRSettings, progress: Progress | None = None) -> None:
        super().__init__(settings)
        self.config, self.ckpt = model_files(settings.paddlespeech_model_path)
        try:
            from paddlespeech.cli.asr.infer import ASRExecutor
        except ImportError as exc:
            raise ASRUnavailable(
                f"the paddlespeech back end needs the paddlespeech package (and paddlepaddle), "
                f"which is not installed (pip install -e '.[paddlespeech]'): {exc}"
            ) from exc
        if progress is not None:
            progress(f"Loading PaddleSpeech {settings.paddlespeech_model} from {self.config}")
        self._executor = ASRExecutor()
        self._lock = threading.Lock()
        t = time.monotonic()
        try:  # load now (the first call loads), not on the first caller's words
            self._recognise(to_16k(pcm_to_float(bytes(3200), 16000), 16000))
        except ASRError as exc:
            raise ASRUnavailable(f"PaddleSpeech cannot load {self.config}: {exc}") from exc
        self.load_s = time.monotonic() - t
        log.info("PaddleSpeech %s loaded in %.1f s", settings.paddlespeech_model, self.load_s)

    def _decode(self, samples: FloatArray, sample_rate: int, bias: str | None) -> Decoded:
        """Hints are not supported (``bias`` is None); no score (None)."""
        return self._recognise(to_16k(samples, sample_rate)), None

    def _recognise(self, audio: FloatArray) -> str:
        """One decode (pool thread): a temporary 16 kHz WAV through the executor."""
        s = self.settings
        with tempfile.TemporaryDirectory(prefix="ivr-paddle-") as tmp:
            wav = Path(tmp) / "utterance.wav"
            write_wav16k(wav, audio)
            kw = executor_kwargs(wav, model=s.paddlespeech_model, config=self.config,
                                 ckpt=self.ckpt, lang=s.language or "zh")
            with self._lock:
                cwd = os.getcwd()
                try:
                    res = self._executor(**kw)
                except SystemExit as exc:  # the executor exits on a bad sample rate
                    raise ASRError(f"PaddleSpeech refused the audio (exit {exc.code})") from exc
                except Exception as exc:  # paddle raises anything: say which
                    raise ASRError(f"PaddleSpeech failed: {type(exc).__name__}: {exc}") from exc
                finally:
                    os.chdir(cwd)  # the executor moves into the model folder while loading
        return parse_result(res)
