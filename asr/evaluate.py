"""Accuracy and speed of a recogniser on a manifest of recordings; VAD and endpointer timings.

A manifest is a TSV file with a header row and at least the columns ``name`` and ``transcript``
(an empty transcript: the file counts for speed only). Its audio is ``<name>.wav`` beside the
manifest (16 kHz) and ``<name>_8k.wav`` (the telephone version), or the file named in an
optional ``path`` column. CER is over Simplified characters with punctuation stripped
(``asr.metrics``); the real-time factor is decode time over audio time.
"""

from __future__ import annotations

import asyncio
import csv
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from asr.audio import read_wav
from asr.base import AudioError, Recognizer
from asr.endpoint import Endpointer, EndpointSettings
from asr.metrics import edit_distance
from asr.text import normalize
from asr.vad import make_vad

RATES = {"8k": 8000, "16k": 16000}
FRAME_MS = 20


@dataclass(frozen=True, slots=True)
class Recording:
    name: str
    transcript: str
    path_16k: Path | None
    path_8k: Path | None

    def path(self, rate: str) -> Path | None:
        return self.path_8k if rate == "8k" else self.path_16k


def load_manifest(manifest: Path) -> list[Recording]:
    """The recordings a manifest lists; AudioError when it cannot be used."""
    try:
        with manifest.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise AudioError(f"cannot read the manifest {manifest}: {exc}") from exc
    if not rows or "name" not in rows[0] or "transcript" not in rows[0]:
        raise AudioError(f"{manifest}: a TSV with a header and columns name, transcript expected")
    base = manifest.parent
    out = []
    for row in rows:
        name = (row["name"] or "").strip()
        if not name:
            continue
        given = (row.get("path") or "").strip()
        p16 = base / given if given else base / f"{name}.wav"
        p8 = base / f"{name}_8k.wav"
        out.append(
            Recording(
                name,
                (row["transcript"] or "").strip(),
                p16 if p16.is_file() else None,
                p8 if p8.is_file() else None,
            )
        )
    return out


@dataclass(slots=True)
class FileResult:
    name: str
    rate: str
    audio_s: float
    decode_s: float
    reference: str
    hypothesis: str
    confidence: float
    errors: int | None  # character edits against the reference (None: no reference)
    ref_chars: int

    @property
    def cer(self) -> float | None:
        return None if self.errors is None or not self.ref_chars else self.errors / self.ref_chars

    @property
    def rtf(self) -> float:
        return self.decode_s / self.audio_s if self.audio_s else 0.0


@dataclass(slots=True)
class EvalReport:
    backend: str
    load_s: float
    files: list[FileResult] = field(default_factory=list)

    def summary(self, rate: str) -> dict[str, Any]:
        fs = [f for f in self.files if f.rate == rate]
        scored = [f for f in fs if f.errors is not None]
        chars = sum(f.ref_chars for f in scored)
        audio = sum(f.audio_s for f in fs)
        return {
            "rate": rate,
            "files": len(fs),
            "scored": len(scored),
            "ref_chars": chars,
            "cer": sum(f.errors or 0 for f in scored) / chars if chars else None,
            "audio_s": audio,
            "decode_s": sum(f.decode_s for f in fs),
            "rtf": sum(f.decode_s for f in fs) / audio if audio else None,
        }

    def as_dict(self) -> dict[str, Any]:
        rates = sorted({f.rate for f in self.files}, key=list(RATES).index)
        return {
            "backend": self.backend,
            "load_s": self.load_s,
            "overall": [self.summary(r) for r in rates],
            "files": [asdict(f) | {"cer": f.cer, "rtf": f.rtf} for f in self.files],
        }


async def evaluate(
    recognizer: Recognizer, recordings: list[Recording], rates: list[str], *, warmup: bool = True
) -> EvalReport:
    """Transcribe each recording at each rate, one at a time (the RTF of a single call)."""
    report = EvalReport(recognizer.name, recognizer.load_s)
    todo = [(r, rate, p) for r in recordings for rate in rates if (p := r.path(rate)) is not None]
    if warmup and todo:  # the first decode pays one-time costs; leave them out of the RTF
        pcm, sr = read_wav(todo[0][2])
        await recognizer.transcribe(pcm[: sr * 2], sr)
    for rec, rate, path in todo:
        pcm, sr = read_wav(path, rate=RATES[rate])
        t = time.monotonic()
        result = await recognizer.transcribe(pcm, sr)
        decode_s = time.monotonic() - t
        ref = normalize(rec.transcript)
        hyp = normalize(result.text)
        errors = edit_distance(ref, hyp) if ref else None
        audio_s = len(pcm) / 2 / sr
        row = FileResult(
            rec.name, rate, audio_s, decode_s, rec.transcript, result.text,
            result.confidence, errors, len(ref),
        )  # fmt: skip
        report.files.append(row)
    return report


def vad_timing(paths: list[Path], rate: int = 8000) -> dict[str, dict[str, float]]:
    """Per 20 ms frame: microseconds of each VAD and of the whole endpointer (Silero)."""
    audio = b"".join(read_wav(p, rate=rate)[0] for p in paths)
    frame = rate * FRAME_MS // 1000 * 2
    frames = [audio[i : i + frame] for i in range(0, len(audio) - frame + 1, frame)]
    out: dict[str, dict[str, float]] = {}
    for kind in ("silero", "energy"):
        vad = make_vad(kind, rate)
        if vad.name != kind:
            continue
        ep = Endpointer(EndpointSettings(vad=kind), rate, vad)
        per: list[float] = []
        for f in frames:
            t = time.perf_counter()
            ep.feed(f)
            per.append(time.perf_counter() - t)
        out[kind] = {
            "frames": len(per),
            "mean_us": statistics.fmean(per) * 1e6,
            "p99_us": sorted(per)[int(0.99 * (len(per) - 1))] * 1e6,
            "max_us": max(per) * 1e6,
        }
    return out


async def concurrency(
    recognizer: Recognizer, paths: list[Path], streams: int, rate: int = 8000
) -> dict[str, float]:
    """``streams`` utterances finishing at once (calls sharing the recogniser): wall time, and
    each utterance's latency from submission to text (queueing in the bounded pool included)."""
    clips = [read_wav(p, rate=rate)[0] for p in paths]
    jobs = [clips[i % len(clips)] for i in range(streams)]

    async def one(pcm: bytes) -> float:
        t = time.monotonic()
        await recognizer.transcribe(pcm, rate)
        return time.monotonic() - t

    t0 = time.monotonic()
    latencies = await asyncio.gather(*(one(p) for p in jobs))
    wall = time.monotonic() - t0
    audio = sum(len(p) for p in jobs) / 2 / rate
    return {
        "streams": streams,
        "audio_s": audio,
        "wall_s": wall,
        "throughput_x": audio / wall if wall else 0.0,
        "latency_p50_s": statistics.median(latencies),
        "latency_max_s": max(latencies),
    }
