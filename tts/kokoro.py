"""Kokoro-82M back end (the default): int8 ONNX on onnxruntime, Mandarin phonemes from misaki.

Pipeline per chunk (kokoro-onnx conventions): misaki's ``zh`` G2P (legacy/v1.0 phoneme set:
pinyin -> IPA with tone arrows) -> token ids via ``vocab.json`` (unknown symbols dropped) ->
ONNX inputs ``tokens`` = [[0, *ids, 0]], ``style`` = the voice's style row ``len(ids) - 1``,
``speed`` -> 24 kHz float audio -> anti-aliased polyphase resampling to 8 kHz.

The packaged voices are Kokoro's Japanese ones (``jm_kumo`` by default); fed Mandarin phonemes
they speak Mandarin with an accent. onnxruntime runs with few intra-op threads, no spinning, and
one session shared by a small bounded pool, so synthesis leaves CPU to the calls in progress.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from ivr.core.config import TTSSettings
from tts import audio
from tts.base import ChunkedSynthesizer, Progress, TTSError, TTSUnavailable
from tts.kokoro_model import PIP_HINT, KokoroModelError, locate

log = logging.getLogger("ivr.tts")

MODEL_RATE = 24000
MAX_TOKENS = 510  # the model's context is 512 including the two pad tokens


def default_threads() -> tuple[int, int]:
    """(intra-op threads per inference, concurrent inferences) for this machine."""
    cpus = os.cpu_count() or 1
    intra = 2 if cpus >= 2 else 1
    return intra, max(1, min(4, cpus // (2 * intra)))


class KokoroSynthesizer(ChunkedSynthesizer):
    name = "kokoro"

    def __init__(
        self,
        settings: TTSSettings,
        progress: Progress | None = None,
        *,
        intra_op_threads: int | None = None,
        workers: int | None = None,
    ) -> None:
        say = progress or (lambda _m: None)
        t0 = time.monotonic()
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise TTSUnavailable(f"Kokoro-82M needs onnxruntime ({PIP_HINT}): {exc}") from exc
        try:
            import jieba
            from misaki import zh
        except ImportError as exc:
            raise TTSUnavailable(
                f"Kokoro-82M needs misaki[zh] for Mandarin ({PIP_HINT}): {exc}"
            ) from exc

        self.voice = settings.voice
        self.speed = float(settings.speed)
        if not 0.5 <= self.speed <= 2.0:
            raise TTSUnavailable(f"Kokoro speed must be between 0.5 and 2.0, not {self.speed}")
        files = locate(settings.model_dir, self.voice, progress)
        self.model_path = files.model
        t_files = time.monotonic()

        default_intra, default_workers = default_threads()
        self.intra_op_threads = intra_op_threads or default_intra
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.intra_op_threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # idle pool threads must not spin: other calls need the cores
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(
                str(files.model), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise KokoroModelError(f"onnxruntime cannot load {files.model}: {exc}") from exc
        names = {i.name for i in self._session.get_inputs()}
        if names != {"tokens", "style", "speed"}:
            raise KokoroModelError(
                f"unexpected Kokoro model inputs {sorted(names)} in {files.model}"
            )
        self._vocab = files.vocab
        self._style = files.style
        t_session = time.monotonic()

        if not jieba.dt.initialized:  # keep jieba's dictionary cache next to the model, quietly
            jieba.setLogLevel(logging.WARNING)
            jieba.dt.tmp_dir = str(Path(files.model).parent)
        self._g2p = zh.ZHG2P()
        super().__init__(workers=workers or default_workers)
        try:
            self._synth_sync("您好。")  # warm up jieba, pypinyin and the ONNX graph
        except Exception as exc:
            self._executor.shutdown(wait=False)
            raise KokoroModelError(f"Kokoro-82M failed its warm-up run: {exc}") from exc
        t_ready = time.monotonic()
        self.load_seconds = t_ready - t0
        self.timings = {
            "files_s": t_files - t0,
            "session_s": t_session - t_files,
            "warmup_s": t_ready - t_session,
        }
        say(
            f"Kokoro-82M loaded in {self.load_seconds:.1f} s (voice {self.voice}, "
            f"{self.intra_op_threads} threads x {self.workers} worker(s))"
        )

    # -- rendering (in the pool) -----------------------------------------------------------------

    def phonemize(self, chunk: str) -> str:
        phonemes, _ = self._g2p(chunk)
        return str(phonemes or "").strip()

    def tokenize(self, phonemes: str) -> list[int]:
        unknown = {c for c in phonemes if c not in self._vocab}
        if unknown:
            log.debug(
                "kokoro: dropping phonemes not in the vocabulary: %s", "".join(sorted(unknown))
            )
        return [self._vocab[c] for c in phonemes if c in self._vocab]

    def _pieces(self, phonemes: str) -> list[list[int]]:
        """Token lists of at most MAX_TOKENS, split at spaces/punctuation when too long."""
        tokens = self.tokenize(phonemes)
        if len(tokens) <= MAX_TOKENS:
            return [tokens] if tokens else []
        pieces: list[list[int]] = []
        current = ""
        for word in phonemes.split(" "):
            candidate = f"{current} {word}".strip()
            if current and len(self.tokenize(candidate)) > MAX_TOKENS:
                pieces.append(self.tokenize(current))
                current = word
            else:
                current = candidate
        if current:
            pieces.append(self.tokenize(current))
        return [t[:MAX_TOKENS] for t in pieces if t]

    def _infer(self, tokens: list[int]) -> np.ndarray:
        style = self._style[min(len(tokens), len(self._style)) - 1].reshape(1, -1)
        feeds: dict[str, Any] = {
            "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
            "style": np.ascontiguousarray(style, dtype=np.float32),
            "speed": np.array([self.speed], dtype=np.float32),
        }
        out = self._session.run(None, feeds)[0]
        return np.asarray(out, dtype=np.float32).ravel()

    def _synth_sync(self, chunk: str) -> np.ndarray:
        pieces = self._pieces(self.phonemize(chunk))
        if not pieces:
            raise TTSError(f"kokoro TTS: no phonemes for {chunk!r}")
        wave24 = np.concatenate([self._infer(t) for t in pieces])
        return audio.resample(wave24, MODEL_RATE, audio.SAMPLE_RATE)

    async def _render(self, chunk: str) -> np.ndarray:
        return await self._run(self._synth_sync, chunk)
