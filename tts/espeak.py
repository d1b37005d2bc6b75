"""espeak-ng back end: robotic but always there (the fallback).

With the ``cmn-latn-pinyin`` voice espeak-ng reads tone-numbered pinyin ("ni3 hao3 ma5"), which is
much better than its own Chinese-character dictionary: pypinyin picks readings by word. Checked
with ``espeak-ng -x``: tone 5 is the neutral tone (``ma5`` -> low, unstressed), an unnumbered
syllable gets tone 1, ``v`` is ü, and espeak applies the third-tone sandhi itself
(``ni3 hao3`` -> 35 214), so pinyin goes in without sandhi. Output is a 22.05 kHz WAV on stdout,
resampled to 8 kHz. Another espeak voice (e.g. ``cmn``) gets the Chinese text as is.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess

import numpy as np

from ivr.core.config import TTSSettings
from tts import audio
from tts.base import ChunkedSynthesizer, LoopLocal, TTSError, TTSUnavailable

_PUNCT_TO_ASCII = {
    "，": ", ",
    "、": ", ",
    "：": ", ",
    "；": ". ",
    "。": ". ",
    "！": "! ",
    "？": "? ",
}


def to_pinyin(text: str) -> str:
    """Normalised Chinese -> 'nin2 hao3, huan1 ying2 ...' (TONE3, neutral tone 5, ü as v)."""
    from pypinyin import Style, lazy_pinyin

    out: list[str] = []
    for item in lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True, v_to_u=False):
        if item and item[-1].isdigit() and item[:-1].isalpha():
            out.append(item)
            continue
        # non-Chinese runs come back as they were: keep the pauses, drop the rest
        for ch in item:
            if ch in _PUNCT_TO_ASCII:
                out.append(_PUNCT_TO_ASCII[ch].strip())
    text = " ".join(out)
    for mark in ",.!?":
        text = text.replace(f" {mark}", mark)
    return text


class EspeakSynthesizer(ChunkedSynthesizer):
    name = "espeak"

    def __init__(
        self,
        settings: TTSSettings,
        *,
        executable: str = "espeak-ng",
        max_processes: int = 4,
        timeout_s: float = 30.0,
    ) -> None:
        path = shutil.which(executable)
        if path is None:
            raise TTSUnavailable(
                f"espeak-ng not found (no {executable!r} on PATH): apt-get install espeak-ng"
            )
        self.executable = path
        self.voice = settings.espeak_voice
        self.speed = settings.speed
        self.rate = max(80, min(450, round(settings.espeak_rate * settings.speed)))
        self.timeout_s = timeout_s
        self._pinyin = "pinyin" in self.voice.lower()
        self._check_voice()
        self._procs = LoopLocal(max_processes)
        super().__init__(workers=2)

    def _check_voice(self) -> None:
        try:
            listing = subprocess.run(
                [self.executable, "--voices"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            raise TTSUnavailable(f"espeak-ng at {self.executable} does not run: {exc}") from exc
        names: set[str] = set()
        for line in listing.splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 5:
                names.update(p.lower() for p in (parts[1], parts[3], parts[4]))
        if self.voice.split("+")[0].lower() not in names:
            raise TTSUnavailable(
                f"espeak-ng has no voice {self.voice!r} "
                "(see espeak-ng --voices; try cmn-latn-pinyin)"
            )

    def command(self) -> list[str]:
        return [self.executable, "-v", self.voice, "-s", str(self.rate), "-b", "1", "--stdout"]

    async def _render(self, chunk: str) -> np.ndarray:
        text = to_pinyin(chunk) if self._pinyin else chunk
        if not text.strip(" ,.!?"):
            raise TTSError(f"espeak TTS: nothing to say in {chunk!r}")
        async with self._procs.get():
            wav = await self._espeak(text)
        samples, rate = audio.decode_wav(wav)
        return await self._run(audio.resample, samples, rate, audio.SAMPLE_RATE)

    async def _espeak(self, text: str) -> bytes:
        proc = await asyncio.create_subprocess_exec(
            *self.command(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(
                proc.communicate((text + "\n").encode("utf-8")), self.timeout_s
            )
        except BaseException as exc:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(BaseException):
                await asyncio.shield(proc.wait())
            if isinstance(exc, TimeoutError):
                raise TTSError(f"espeak-ng timed out after {self.timeout_s:.0f} s") from exc
            raise
        if proc.returncode != 0:
            msg = err.decode("utf-8", "replace").strip() or "no message"
            raise TTSError(f"espeak-ng failed (exit {proc.returncode}): {msg}")
        if len(out) <= 44:
            raise TTSError(f"espeak-ng produced no audio for {text!r}")
        return out
