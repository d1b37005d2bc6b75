"""What a survey call's first seconds sound like, before any words are read: tones, music, speech.

Chinese networks signal with a 450 Hz tone (YD/T 1970 / GB 3380): ring-back 1 s on, 4 s off;
busy 0.35 s on, 0.35 s off; congestion 0.7 s on, 0.7 s off. Coloured ring-back (彩铃) is music
instead of that tone. This module measures 20 ms frames of 8 or 16 kHz 16-bit PCM:

- **tone frames**: the 450 Hz Goertzel power is most of the frame's power;
- **cadence**: runs of tone frames and of quiet between them, matched to ring-back or busy;
- **music**: sound that goes on without the pauses speech has. Speech drops 20 dB or more below
  its own level between words and phrases every second or so; music (and a held tone) rarely
  does. ``music`` needs at least 2 s of sound with under 6 % of such dips and no tone;
- **speech**: any other sound (what the recogniser should read).

It decides nothing about the call: ``campaigns.carrier`` does, with the recogniser's words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FRAME_S = 0.02
TONE_HZ = 450.0
SILENCE_DBFS = -50.0  # below: a quiet frame, whatever the line's noise
ABOVE_FLOOR_DB = 12.0  # a sound frame is this far above the line's noise floor
CONTINUOUS_DBFS = -40.0  # a window whose quietest frames are this loud never pauses
FLAT = 0.25  # spectral flatness under this: structured sound (voice, music, tone), not hiss
TONE_SHARE = 0.6  # of a frame's power at 450 Hz: a tone frame
MUSIC_MIN_S = 2.0
MUSIC_MAX_DIPS = 0.06


@dataclass(frozen=True)
class AudioFacts:
    seconds: float
    sound_s: float  # frames above the silence floor
    tone_s: float
    speech_s: float  # sound that is neither tone nor music
    cadence: str | None  # "ringback", "busy", "congestion" or None
    music: bool
    dips: float  # share of quiet frames within the sound's span (speech 0.15+, music ~0)
    trailing_quiet_s: float = 0.0  # quiet at the end of the window (an utterance has ended)

    @property
    def silent(self) -> bool:
        return self.sound_s < 0.3


def _frames(pcm: bytes, rate: int) -> np.ndarray:
    n = int(rate * FRAME_S)
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float64) / 32768
    count = len(samples) // n
    return samples[: count * n].reshape(count, n)


def _runs(flags: np.ndarray) -> list[tuple[bool, int]]:
    """(value, length in frames) of each run."""
    out: list[tuple[bool, int]] = []
    for f in flags.tolist():
        if out and out[-1][0] == f:
            out[-1] = (f, out[-1][1] + 1)
        else:
            out.append((f, 1))
    return out


def _cadence(tone: np.ndarray) -> str | None:
    runs = [(on, n * FRAME_S) for on, n in _runs(tone)]
    inner = runs[1:-1] if len(runs) > 2 else []  # the first and last runs may be cut
    ons = [s for on, s in inner if on]
    offs = [s for on, s in inner if not on]
    if len(ons) >= 2 and all(0.25 <= s <= 0.5 for s in ons) and \
            all(0.25 <= s <= 0.5 for s in offs):
        return "busy"
    if len(ons) >= 2 and all(0.55 <= s <= 0.85 for s in ons) and \
            all(0.55 <= s <= 0.85 for s in offs):
        return "congestion"
    whole_ons = [s for on, s in runs if on]
    if any(0.8 <= s <= 1.3 for s in whole_ons) and all(s <= 1.3 for s in whole_ons) and \
            (any(3.0 <= s <= 4.6 for on, s in runs if not on) or len(runs) <= 3):
        return "ringback"
    return None


def analyse(pcm: bytes, rate: int = 8000) -> AudioFacts:
    frames = _frames(pcm, rate)
    if not len(frames):
        return AudioFacts(0.0, 0.0, 0.0, 0.0, None, False, 0.0, 0.0)
    power = np.mean(frames ** 2, axis=1) + 1e-12
    db = 10 * np.log10(power)
    floor = float(np.percentile(db, 5))  # the line's own noise, in its quietest frames
    spectrum = np.abs(np.fft.rfft(frames * np.hanning(frames.shape[1]), axis=1)) ** 2 + 1e-12
    flatness = np.exp(np.mean(np.log(spectrum), axis=1)) / np.mean(spectrum, axis=1)
    if floor > CONTINUOUS_DBFS:  # never quiet: only structured sound counts, not hiss
        sound = flatness < FLAT
    else:
        sound = db > max(SILENCE_DBFS, floor + ABOVE_FLOOR_DB)
    # Goertzel power at 450 Hz, as a share of the frame's power (Parseval)
    n = frames.shape[1]
    w = 2 * math.pi * TONE_HZ / rate
    tone_amp = np.abs(frames @ np.exp(-1j * w * np.arange(n))) ** 2 * 2 / (n * n)
    tone = sound & (tone_amp / power > TONE_SHARE)
    rest = sound & ~tone
    dips, music = 0.0, False
    idx = np.flatnonzero(rest)
    if len(idx):
        span = slice(idx[0], idx[-1] + 1)
        dips = float(np.mean(~sound[span]))
        music = ((idx[-1] + 1 - idx[0]) * FRAME_S >= MUSIC_MIN_S and dips < MUSIC_MAX_DIPS
                 and float(np.mean(rest[span])) > 0.8)
    rest_s = float(np.sum(rest)) * FRAME_S
    heard = np.flatnonzero(sound)
    trailing = (len(sound) - 1 - int(heard[-1])) if len(heard) else len(sound)
    return AudioFacts(
        seconds=len(frames) * FRAME_S, sound_s=float(np.sum(sound)) * FRAME_S,
        tone_s=float(np.sum(tone)) * FRAME_S, speech_s=0.0 if music else rest_s,
        cadence=_cadence(tone) if tone.any() else None, music=music, dips=round(dips, 3),
        trailing_quiet_s=trailing * FRAME_S)
