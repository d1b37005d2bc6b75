"""FunASR in process: Paraformer-zh, streaming Paraformer or SenseVoice from a local model folder.

The operator downloads the model once (ModelScope / Hugging Face, e.g. ``paraformer-zh``,
``paraformer-zh-streaming``, ``SenseVoiceSmall``) and sets ``asr.funasr_model_path`` to the
folder holding its ``config.yaml`` and weights; ``asr.funasr_model_kind`` says which model it is
(``auto``: read from ``config.yaml``). Nothing is downloaded here: the folder is handed to
``funasr.AutoModel`` as a path, with updates disabled. ``funasr`` (and torch) are an optional
extra, imported only when this back end is built.

Decoding (documented ``AutoModel.generate`` API; 16 kHz float32 input):

* Paraformer-zh: ``generate(input=audio, hotword="余额 挂失")``: SeACo-Paraformer takes the
  step's hint words as hot words (space separated); the plain Paraformer ignores them.
* SenseVoice: ``generate(input=audio, language="zh", use_itn=True)``; its ``<|zh|><|NEUTRAL|>
  <|Speech|>...`` tags are removed.
* streaming Paraformer: 600 ms chunks, ``generate(input=chunk, cache=cache, is_final=...,
  chunk_size=[0, 10, 5], encoder_chunk_look_back=4, decoder_chunk_look_back=1)``; each chunk's
  text is an increment of the running hypothesis (the partial results), the last call with
  ``is_final=True`` flushes the rest.

``AutoModel.generate`` merges every call's options into one dictionary kept on the model (cache,
hot words): calls into one model are therefore serialised by a lock, and each call passes every
per-call option (the stale ``cache`` entry of another stream is removed first). Decodes run in a
``DecodePool`` (off the event loop); results are converted to Simplified Chinese.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asr.audio import WHISPER_RATE, FloatArray, check_pcm, check_rate, pcm_to_float, to_16k
from asr.base import (
    ASRError,
    ASRUnavailable,
    AudioError,
    PartialCallback,
    Progress,
    RecognizerStream,
    Transcript,
)
from asr.buffered import BufferedRecognizer, Decoded
from asr.text import hint_words

if TYPE_CHECKING:
    from ivr.core.config import ASRSettings

log = logging.getLogger("asr.funasr_local")

KINDS = ("paraformer", "paraformer_streaming", "sensevoice")
CHUNK_SIZE = [0, 10, 5]  # 600 ms streaming chunks, 300 ms look-ahead (FunASR's default)
CHUNK_SAMPLES = CHUNK_SIZE[1] * 960  # 600 ms at 16 kHz
ENCODER_LOOK_BACK = 4
DECODER_LOOK_BACK = 1
_TAG = re.compile(r"<\|[^|>]*\|>")
_CJK_GAP = re.compile(r"(?<=[\u3400-\u9fff])\s+(?=[\u3400-\u9fff])")
_MODEL_LINE = re.compile(r"^model:\s*['\"]?([\w.\-]+)", re.MULTILINE)


def detect_kind(model_dir: Path) -> str:
    """Which of ``KINDS`` the FunASR model folder holds, from the ``model:`` of its
    ``config.yaml`` (SeacoParaformer/Paraformer, ParaformerStreaming, SenseVoiceSmall)."""
    config = model_dir / "config.yaml"
    if not config.is_file():
        raise ASRUnavailable(f"{model_dir} has no config.yaml: not a FunASR model folder")
    m = _MODEL_LINE.search(config.read_text(encoding="utf-8", errors="replace"))
    name = m.group(1).lower() if m else ""
    if "sensevoice" in name:
        return "sensevoice"
    if "paraformer" in name and ("streaming" in name or "online" in name):
        return "paraformer_streaming"
    if "paraformer" in name:
        return "paraformer"
    raise ASRUnavailable(
        f"{config}: model {name or '(none)'} is not Paraformer, streaming Paraformer or "
        "SenseVoice; set asr.funasr_model_kind if the folder is right"
    )


def check_model_dir(path: Path | None) -> Path:
    if path is None:
        raise ASRUnavailable(
            "the funasr back end needs asr.funasr_model_path: a local FunASR model folder "
            "(Paraformer-zh, paraformer-zh-streaming or SenseVoiceSmall; nothing is downloaded)"
        )
    p = path.expanduser()
    if not p.is_dir():
        raise ASRUnavailable(f"asr.funasr_model_path {p} is not a folder")
    if not any(p.glob("*.pt")) and not any(p.glob("*.pb")) and not any(p.glob("*.onnx")):
        raise ASRUnavailable(f"{p} holds no model weights (model.pt / model.pb)")
    return p


def hotword_string(hints: str | None) -> str | None:
    """The step's hint words as SeACo-Paraformer hot words: ``"余额 挂失 发票"`` (None: none)."""
    words = hint_words(hints)
    return " ".join(words) if words else None


def generate_kwargs(
    kind: str, audio: FloatArray, *, hotword: str | None = None, language: str = "zh",
    cache: dict[str, Any] | None = None, is_final: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """The options of one ``AutoModel.generate`` call for ``kind``."""
    if kind not in KINDS:
        raise ValueError(f"unknown FunASR model kind {kind!r} (one of {', '.join(KINDS)})")
    kw: dict[str, Any] = {"input": audio, "fs": WHISPER_RATE, "disable_pbar": True}
    if kind == "paraformer":
        kw["hotword"] = hotword  # None as well: no stale hot words from an earlier call
    elif kind == "sensevoice":
        kw["language"] = language or "auto"
        kw["use_itn"] = True
    else:
        kw.update(
            cache=cache if cache is not None else {}, is_final=is_final, chunk_size=CHUNK_SIZE,
            encoder_chunk_look_back=ENCODER_LOOK_BACK, decoder_chunk_look_back=DECODER_LOOK_BACK,
        )  # fmt: skip
    return kw


def clean_text(text: str) -> str:
    """A FunASR answer as plain text: SenseVoice tags removed, spaces between Chinese
    characters (older Paraformer output) closed up."""
    text = _TAG.sub("", text)
    return _CJK_GAP.sub("", text).strip()


def parse_result(res: Any) -> str:
    """``generate``'s answer (a list of ``{"key": ..., "text": ...}``) -> the raw text."""
    if res is None:
        return ""
    items = res if isinstance(res, list | tuple) else [res]
    texts: list[str] = []
    for item in items:
        text = item.get("text", "") if isinstance(item, dict) else getattr(item, "text", "")
        if isinstance(text, list | tuple):
            text = " ".join(str(t) for t in text)
        if not isinstance(text, str):
            raise ASRError(f"FunASR returned an unexpected result: {type(item).__name__}")
        texts.append(text)
    return "".join(clean_text(t) for t in texts)


class FunAsrLocalRecognizer(BufferedRecognizer):
    name = "funasr"
    label = "FunASR"
    failures = (Exception,)  # torch/funasr raise anything: say where, as an ASRError

    def __init__(self, settings: ASRSettings, progress: Progress | None = None) -> None:
        super().__init__(settings)
        path = check_model_dir(settings.funasr_model_path)
        kind = settings.funasr_model_kind
        self.kind = detect_kind(path) if kind == "auto" else kind
        self.final_from_stream = self.kind == "paraformer_streaming"  # see ivr/calls/listener.py
        try:
            from funasr import AutoModel
        except ImportError as exc:
            raise ASRUnavailable(
                f"the funasr back end needs the funasr package (and torch), which is not "
                f"installed (pip install -e '.[funasr]'): {exc}"
            ) from exc
        if progress is not None:
            progress(f"Loading FunASR {self.kind} from {path}")
        t = time.monotonic()
        try:
            self.model = AutoModel(
                model=str(path), device="cpu", ncpu=settings.threads, disable_update=True,
                disable_pbar=True, disable_log=True, log_level="WARNING",
            )  # fmt: skip
        except Exception as exc:  # funasr raises anything from a broken folder: say which
            raise ASRUnavailable(f"FunASR cannot load {path}: {type(exc).__name__}: {exc}") from exc
        self.load_s = time.monotonic() - t
        self._lock = threading.Lock()  # generate() keeps per-call options on the model
        log.info("FunASR %s loaded from %s in %.1f s", self.kind, path, self.load_s)

    # -- the interface: the streaming Paraformer decodes chunk by chunk ----------------------

    def open_stream(
        self,
        sample_rate: int = 8000,
        *,
        hints: str | None = None,
        on_partial: PartialCallback | None = None,
    ) -> RecognizerStream:
        if self.kind == "paraformer_streaming":
            return FunAsrStreamingStream(self, sample_rate, on_partial)
        return super().open_stream(sample_rate, hints=hints, on_partial=on_partial)

    async def transcribe(
        self, pcm: bytes, sample_rate: int, *, hints: str | None = None
    ) -> Transcript:
        if self.kind == "paraformer_streaming":  # the whole utterance as one final chunk
            samples = pcm_to_float(pcm, sample_rate)
            return await self._chunk(samples, sample_rate, {}, is_final=True, final=True)
        return await super().transcribe(pcm, sample_rate, hints=hints)

    # -- decoding ----------------------------------------------------------------------------

    def bias(self, hints: str | None) -> str | None:
        """The hint words as SeACo-Paraformer hot words (the other models ignore them)."""
        return hotword_string(hints)

    def _decode(self, samples: FloatArray, sample_rate: int, bias: str | None) -> Decoded:
        """An offline model (``bias``: the hot words); no score (None)."""
        return self._generate(samples, sample_rate, {"hotword": bias}), None

    async def _chunk(
        self, samples: FloatArray, sample_rate: int, cache: dict[str, Any], *, is_final: bool,
        final: bool,
    ) -> Transcript:  # fmt: skip
        """One chunk of the streaming Paraformer (no shortest length: the cache carries on)."""
        audio_s = samples.size / sample_rate
        t = time.monotonic()
        options = {"cache": cache, "is_final": is_final}
        raw = await self._run(self._generate, samples, sample_rate, options, audio_s=audio_s)
        return self._transcript(raw, None, None, audio_s, t, final)

    def _generate(self, samples: FloatArray, sample_rate: int, options: dict[str, Any]) -> str:
        """Runs in a pool thread (resampling included)."""
        audio = to_16k(samples, sample_rate)
        kw = generate_kwargs(self.kind, audio, language=self.settings.language, **options)
        with self._lock:
            shared = getattr(self.model, "kwargs", None)
            if isinstance(shared, dict):
                shared.pop("cache", None)  # another stream's cache would be merged into ours
            res = self.model.generate(**kw)
        return parse_result(res)


class FunAsrStreamingStream:
    """One utterance for the streaming Paraformer: 600 ms chunks decoded in order as they fill
    (each chunk's increment makes a partial), the rest flushed with ``is_final`` at the end.
    Chunks wait for their predecessor (the model's cache is sequential); at most
    ``max_utterance_s`` of audio is taken, so the chunks in flight are bounded too."""

    def __init__(
        self, rec: FunAsrLocalRecognizer, sample_rate: int, on_partial: PartialCallback | None
    ) -> None:
        self.sample_rate = check_rate(sample_rate)
        self._rec = rec
        self._on_partial = on_partial
        self._step = CHUNK_SAMPLES * sample_rate // WHISPER_RATE * 2  # bytes per chunk
        self._max_bytes = int(rec.settings.max_utterance_s * sample_rate) * 2
        self._buf = bytearray()
        self._fed = 0
        self._cache: dict[str, Any] = {}
        self._text = ""
        self._partial: Transcript | None = None
        self._order = asyncio.Lock()  # FIFO: chunks decode in the order they were cut
        self._tasks: list[asyncio.Task[None]] = []
        self._error: ASRError | None = None
        self._done = False
        self._t0 = time.monotonic()
        self.truncated = False

    @property
    def partial(self) -> Transcript | None:
        return self._partial

    async def feed(self, pcm: bytes) -> None:
        if self._done:
            raise ASRError("funasr stream: audio fed after finish/cancel")
        check_pcm(pcm, allow_empty=True)
        room = self._max_bytes - self._fed
        if len(pcm) > room:
            self.truncated = True
            pcm = pcm[: max(0, room)]
        self._fed += len(pcm)
        self._buf += pcm
        while len(self._buf) >= self._step:
            chunk = bytes(self._buf[: self._step])
            del self._buf[: self._step]
            self._tasks.append(asyncio.create_task(self._decode(chunk, is_final=False)))

    async def _decode(self, chunk: bytes, *, is_final: bool) -> None:
        async with self._order:
            if self._error is not None:
                return
            samples = pcm_to_float(chunk, self.sample_rate)
            try:
                t = await self._rec._chunk(samples, self.sample_rate, self._cache,
                                           is_final=is_final, final=is_final)
            except ASRError as exc:
                self._error = exc
                return
            if not t.text:
                return
            self._text += t.text
            if not is_final and not self._done:
                self._partial = Transcript(self._text, 1.0, self._fed / 2 / self.sample_rate,
                                           time.monotonic() - self._t0, t.raw, False)
                if self._on_partial is not None:
                    self._on_partial(self._partial)

    async def finish(self) -> Transcript:
        if self._done:
            raise ASRError("funasr stream: finish called twice")
        if not self._fed:
            await self.cancel()
            raise AudioError("no audio: nothing was fed to the stream")
        self._done = True
        t = time.monotonic()
        rest = bytes(self._buf) or bytes(2 * self.sample_rate // 50)  # at least 20 ms
        self._buf.clear()
        self._tasks.append(asyncio.create_task(self._decode(rest, is_final=True)))
        await asyncio.gather(*self._tasks)
        self._tasks.clear()
        if self._error is not None:
            raise self._error
        audio_s = self._fed / 2 / self.sample_rate
        return Transcript(self._text, 1.0 if self._text else 0.0, audio_s,
                          time.monotonic() - t, self._text, True)

    async def cancel(self) -> None:
        self._done = True
        self._buf.clear()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def __repr__(self) -> str:  # never the audio or the text
        return f"<FunAsrStreamingStream {self._fed / 2 / self.sample_rate:.1f}s>"
