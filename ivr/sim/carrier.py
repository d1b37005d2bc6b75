"""What a survey call meets on a Chinese network, as audio: the simulated far ends of issue 23.

Each ``Scene`` is one call's first seconds as the dialer would hear them, 8 kHz 16-bit PCM after
a G.711 μ-law round trip, with what it really is:

- **announcements** (空号, 停机, 关机 / 无法接通 / 不在服务区, 正在通话中) in the three
  carriers' wordings, spoken by a TTS voice, often twice, after 0-1.5 s of quiet or a ring, as
  early media (before an answer) or after a fake answer;
- **network tones** at 450 Hz: ring-back (1 s on, 4 s off), busy (0.35 / 0.35);
- **coloured ring-back** (彩铃): synthesised music (chords, a melody, a beat), half of them
  with words over it (an advert, a greeting, a lyric: spoken by a TTS voice, not sung); and
  ``ringback_spoken``: those words alone, without music (a spoken 彩铃: the dial must ring on);
- **people**: 喂 / 你好 / 哪位 after an answer, a person who says nothing, or a ring-back tone
  and then a person; **answering machines** (留言 greetings).

Noise (pink, 20-35 dB SNR) and levels are drawn from a generator seeded per scene, so a set is
the same on every run. ``speak(text, voice)`` renders the words (Kokoro in the benchmark).
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from ivr.telephony.media.rtp import ulaw_decode, ulaw_encode

RATE = 8000
Speak = Callable[[str, str], Awaitable[bytes]]

WORDS: dict[str, tuple[str, ...]] = {
    "vacant": ("您好，您拨打的号码是空号，请查证后再拨。",
               "对不起，您拨打的号码不存在，请查证后再拨。",
               "您拨打的电话号码是空号，请核对后再拨。"),
    "suspended": ("您好，您拨打的电话已停机。",
                  "对不起，您拨打的用户已停机。",
                  "您拨打的号码已暂停服务。"),
    "unreachable": ("您好，您拨打的电话已关机。",
                    "对不起，您拨打的用户暂时无法接通，请稍后再拨。",
                    "您拨打的电话不在服务区，请稍后再拨。"),
    "busy": ("您好，您拨打的电话正在通话中，请稍后再拨。",
             "对不起，您拨打的用户正忙，请稍后再拨。",
             "您拨打的电话正在通话中，请稍后再拨。"),
    "machine": ("您好，您拨打的用户暂时无法接听您的电话，请在提示音后留言，留言结束后请挂机。",
                "您好，我现在不方便接电话，有事请留言，我会尽快回复您。",
                "您好，这里是机主的小秘书，机主暂时不能接听，请您留言。"),
    # coloured ring-back with words: what a 彩铃 says over its music
    "ringback_music": ("您好，欢迎致电，电话正在为您接通，请稍候。",
                       "中国石油，为您加油，为美好生活加油。", "春暖花开，愿你每天都有好心情。",
                       "感谢您的耐心等待，精彩彩铃，一路相伴。"),
    "human": ("喂？", "喂，你好。", "哪位？", "喂，你好，哪位啊？", "你好，请讲。", "喂，什么事？",
              "谁啊？", "你打错了吧？", "我在开车呢，你说。", "喂，我是，你哪里？"),
}


@dataclass(frozen=True)
class Scene:
    kind: str  # what it really is: an outcome of campaigns.carrier, "ringing" or
    # "ringback_spoken" (both: nothing decided, the dial rings on)
    answered: bool  # heard after an answer (else early media, before one)
    pcm: bytes
    text: str = ""  # the words in it
    voice: str = ""

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / RATE


def tone(on_s: float, off_s: float, seconds: float, *, level: float = 0.25,
         start_on: bool = True) -> np.ndarray:
    """450 Hz on/off as Chinese networks play it."""
    t = np.arange(int(seconds * RATE)) / RATE
    period = on_s + off_s
    phase = (t if start_on else t + on_s) % period
    return level * np.sin(2 * math.pi * 450.0 * t) * (phase < on_s)


def music(seconds: float, rng: random.Random) -> np.ndarray:
    """A coloured ring-back: chords under a melody and a beat, without pauses."""
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    root = rng.choice((196.0, 220.0, 246.9, 261.6))
    out = np.zeros(n)
    beat = 60.0 / rng.choice((88, 100, 112, 126))
    step = int(beat / 2 * RATE)
    scale = (0, 2, 4, 7, 9, 12)
    for start in range(0, n, step):
        end = min(n, start + step)
        seg = t[start:end] - t[start]
        f = root * 2 ** (rng.choice(scale) / 12) * 2
        env = np.minimum(1.0, seg / 0.02) * np.exp(-seg * 1.5)
        out[start:end] += 0.18 * env * (np.sin(2 * math.pi * f * seg)
                                        + 0.3 * np.sin(4 * math.pi * f * seg))
    chord = (0, 4, 7) if rng.random() < 0.5 else (0, 3, 7)
    for semis in chord:
        f = root * 2 ** (semis / 12)
        out += 0.07 * (np.sin(2 * math.pi * f * t) + 0.4 * np.sin(6 * math.pi * f * t))
    beat_n = int(beat * RATE)
    noise = np.random.default_rng(rng.randrange(2**32)).standard_normal(n)
    kick = np.zeros(n)
    for start in range(0, n, beat_n):
        seg = np.arange(min(int(0.08 * RATE), n - start))
        kick[start:start + seg.size] = np.exp(-seg / (0.015 * RATE))
    return out + 0.08 * noise * kick


def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n + 2000)
    spectrum = np.fft.rfft(white)
    spectrum /= np.sqrt(np.arange(1, spectrum.size + 1))
    x = np.fft.irfft(spectrum, white.size)[2000:]
    return x / (np.sqrt(np.mean(x * x)) or 1.0)


def line(x: np.ndarray, rng: random.Random) -> bytes:
    """Pink noise at 20-35 dB under the signal's level, then the μ-law round trip."""
    gen = np.random.default_rng(rng.randrange(2**32))
    loud = x[np.abs(x) > 0.02]
    level = float(np.sqrt(np.mean(loud * loud))) if loud.size else 0.05
    snr = rng.uniform(20.0, 35.0)
    y = x + _pink(x.size, gen) * level * 10 ** (-snr / 20)
    pcm = (np.clip(y, -1.0, 32767 / 32768) * 32767).astype("<i2")
    return ulaw_decode(ulaw_encode(pcm)).astype("<i2").tobytes()


def _quiet(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE))


def _pcm(raw: bytes, gain: float) -> np.ndarray:
    x = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return x * (gain / peak) if peak else x


async def scene(kind: str, index: int, speak: Speak, voices: list[str], *,
                seed: int = 23) -> Scene:
    """Scene ``index`` of ``kind`` (an outcome, or "ringing": a ring-back tone only)."""
    rng = random.Random(f"{seed}:{kind}:{index}")
    voice = rng.choice(voices) if voices else ""
    gain = rng.uniform(0.25, 0.6)
    if kind == "ringing":
        x = tone(1.0, 4.0, 6.0, start_on=rng.random() < 0.7)
        return Scene(kind, False, line(x, rng))
    if kind == "ringback_music":
        seconds = rng.uniform(4.0, 6.0)
        if rng.random() < 0.5:
            return Scene(kind, False, line(music(seconds, rng) * gain * 1.5, rng))
        text = rng.choice(WORDS[kind])
        words = _pcm(await speak(text, voice), gain * rng.uniform(0.7, 1.2))
        start = int(rng.uniform(0.3, 1.0) * RATE)
        x = music(max(seconds, (start + words.size) / RATE + 0.5), rng) * gain * 1.5
        x[start:start + words.size] += words  # over the music, which runs on under them
        return Scene(kind, False, line(x, rng), text, voice)
    if kind == "ringback_spoken":  # a greeting or an advert, said (twice, sometimes) unanswered
        text = rng.choice(WORDS["ringback_music"])
        words = _pcm(await speak(text, voice), gain)
        parts = [_quiet(rng.uniform(0.2, 1.0)), words]
        if rng.random() < 0.5:
            parts += [_quiet(0.8), words]
        return Scene(kind, False, line(np.concatenate([*parts, _quiet(0.5)]), rng), text, voice)
    if kind == "busy" and rng.random() < 0.3:  # the tone, no words
        return Scene(kind, rng.random() < 0.5, line(tone(0.35, 0.35, 4.0), rng))
    if kind == "human" and rng.random() < 0.25:  # says nothing: waits for us
        return Scene(kind, True, line(_quiet(3.0), rng))
    text = rng.choice(WORDS[kind])
    words = _pcm(await speak(text, voice), gain)
    if kind == "human":
        lead = _quiet(rng.uniform(0.2, 1.0))
        x = np.concatenate([lead, words, _quiet(2.0)])
        return Scene(kind, True, line(x, rng), text, voice)
    answered = kind == "machine" or rng.random() < 0.3  # mostly early media
    parts = [_quiet(rng.uniform(0.0, 1.5))]
    if not answered and rng.random() < 0.3:  # a ring first, then the announcement
        parts = [tone(1.0, 4.0, 1.0), _quiet(rng.uniform(0.3, 1.0))]
    parts.append(words)
    if kind != "machine" and rng.random() < 0.5:  # said twice
        parts += [_quiet(0.6), words]
    parts.append(_quiet(0.5))
    return Scene(kind, answered, line(np.concatenate(parts), rng), text, voice)
