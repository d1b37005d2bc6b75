"""The prompt cache: rendered prompts as 8 kHz 16-bit mono WAV files Asterisk plays.

Files live flat in ``settings.cache_dir``, which is mounted as Asterisk's ``sounds/ivr``; a prompt
``<cache_dir>/<name>.wav`` is played as ``sound:ivr/<name>`` (callers use ``path.stem``).

* Synthesised prompts: ``<name>`` is a SHA-256 of (back end, voice, speed, text), so a change of
  any of them renders anew and identical requests share one file.
* Operator recordings: ``<recordings_dir>/<prompt_id>.wav`` (any common WAV encoding, rate or
  channel count) wins over synthesis for that prompt id; it is converted once into
  ``rec-<prompt_id>-<stamp>.wav`` in the cache and converted again when the recording changes.

Files are written atomically (temporary file + rename) and never when synthesis failed; at most
one render per file runs at a time, concurrent requests wait for it.

Fixed and per-call prompts: both are synthesised under a hash name, so the cache tells them
apart by a manifest, ``<cache_dir>/fixed-prompts.txt``: every prompt that went through
:meth:`PromptCache.prerender` (the engine's and the bots' fixed prompts) is listed there. A hash
file not listed was rendered on demand for one call (texts with balances, amounts, dates): personal
data, removed after ``retention.prompts_days`` (:func:`dynamic_prompt_files`). Recordings
(``rec-*``) and published fixed names are never hash-named, so never dynamic.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path

import numpy as np

from ivr.core.config import TTSSettings
from tts import audio
from tts.base import Progress, Synthesizer, TTSError

log = logging.getLogger("ivr.tts")

KEY_VERSION = 1  # bump when text preparation changes what a key sounds like
_PROMPT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_MIN_BYTES = int(0.1 * audio.SAMPLE_RATE) * audio.SAMPLE_WIDTH  # 100 ms
FIXED_MANIFEST = "fixed-prompts.txt"
_HASH_NAME = re.compile(r"[0-9a-f]{40}")


class PromptCache:
    def __init__(self, synthesizer: Synthesizer, settings: TTSSettings) -> None:
        self.synth = synthesizer
        self.cache_dir = Path(settings.cache_dir)
        rec = Path(settings.recordings_dir)
        self.recordings_dir = rec if rec.is_absolute() else self.cache_dir.parent / rec
        self.default_speed = float(settings.speed)
        self.renders = 0  # syntheses done by this cache (misses)
        self._inflight: dict[str, asyncio.Future[Path]] = {}

    # -- names -----------------------------------------------------------------------------------

    def name_for(self, text: str) -> str:
        """The cache key of a synthesised ``text`` (file name without .wav, ``sound:ivr/<key>``)."""
        speed = float(getattr(self.synth, "speed", self.default_speed))
        payload = json.dumps(
            [KEY_VERSION, self.synth.name, self.synth.voice, round(speed, 3), text.strip()],
            ensure_ascii=False,
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:40]

    def path_for(self, text: str) -> Path:
        return self.cache_dir / f"{self.name_for(text)}.wav"

    def recording_for(self, prompt_id: str) -> Path | None:
        """The operator recording for ``prompt_id`` if there is one."""
        if not _PROMPT_ID.fullmatch(prompt_id) or ".." in prompt_id:
            log.warning("ignoring recording lookup for odd prompt id %r", prompt_id)
            return None
        path = self.recordings_dir / f"{prompt_id}.wav"
        return path if path.is_file() else None

    # -- lookups ---------------------------------------------------------------------------------

    async def get(self, text: str, prompt_id: str | None = None) -> Path:
        """The WAV file to play for ``text`` (or for the operator recording of ``prompt_id``).

        Renders on a miss. Raises TTSError when synthesis fails (nothing is written then).
        """
        if prompt_id:
            recording = self.recording_for(prompt_id)
            if recording is not None:
                try:
                    return await self._get_recording(prompt_id, recording)
                except TTSError as exc:
                    log.warning("recording %s unusable, synthesising instead: %s", recording, exc)
        if not isinstance(text, str) or not text.strip():
            raise TTSError("prompt cache: cannot render empty text")
        name = self.name_for(text)
        path = self.cache_dir / f"{name}.wav"
        if _usable(path):
            return path
        return await self._once(name, lambda: self._render(text, path))

    async def prerender(
        self, texts: Iterable[str] | Mapping[str, str], progress: Progress | None = None
    ) -> dict[str, Path]:
        """Make sure every prompt is in the cache; returns text (or prompt id) -> file.

        ``texts`` may be a mapping prompt_id -> text, so operator recordings apply.
        ``progress`` is called once per prompt with a line saying what was done.
        """
        items = list(texts.items()) if isinstance(texts, Mapping) else [(None, t) for t in texts]
        done: dict[str, Path] = {}
        try:
            for i, (prompt_id, text) in enumerate(items, 1):
                hit = prompt_id is None and _usable(self.path_for(text))
                path = await self.get(text, prompt_id)
                done[prompt_id if prompt_id is not None else text] = path
                if progress is not None:
                    state = "cached" if hit else "ready"
                    progress(f"prompt {i}/{len(items)} {state}: {path.name} {text[:30]}")
        finally:  # fixed prompts: never purged as per-call ones (also when stopped midway)
            names = {p.stem for p in done.values()}
            await asyncio.to_thread(remember_fixed, self.cache_dir, names)
        return done

    async def publish(self, name: str, text: str | None, prompt_id: str | None = None) -> Path:
        """A prompt under a fixed name (``<cache_dir>/<name>.wav``, ``sound:ivr/<name>``) for
        Asterisk configuration that names its file (queues.conf periodic-announce); ``text``
        None removes it. Replaced atomically."""
        if not _PROMPT_ID.fullmatch(name) or ".." in name:
            raise TTSError(f"odd fixed prompt name {name!r}")
        target = self.cache_dir / f"{name}.wav"
        if text is None:
            target.unlink(missing_ok=True)
            return target
        source = await self.get(text, prompt_id)
        data = await asyncio.to_thread(source.read_bytes)
        await asyncio.to_thread(audio.write_atomic, target, data)
        return target

    # -- internals -------------------------------------------------------------------------------

    async def _once(self, name: str, make: Callable[[], Awaitable[Path]]) -> Path:
        """Run ``make`` once per name at a time; concurrent callers share its result."""
        fut = self._inflight.get(name)
        if fut is None:
            fut = asyncio.ensure_future(make())
            self._inflight[name] = fut

            def _done(f: asyncio.Future[Path], name: str = name) -> None:
                if self._inflight.get(name) is f:
                    del self._inflight[name]
                if not f.cancelled():
                    f.exception()  # retrieved here; every awaiting caller re-raises it

            fut.add_done_callback(_done)
        # a caller that gives up (hangs up) does not cancel the render for the others
        return await asyncio.shield(fut)

    async def _render(self, text: str, path: Path) -> Path:
        if _usable(path):  # another process rendered it meanwhile
            return path
        self.renders += 1
        try:
            pcm = await self.synth.synthesize(text)
        except TTSError:
            raise
        except Exception as exc:
            raise TTSError(f"{self.synth.name} TTS failed for {text!r}: {exc}") from exc
        _check_pcm(pcm, f"{self.synth.name} TTS for {text!r}")
        await asyncio.to_thread(audio.write_atomic, path, audio.wav_bytes(pcm))
        log.debug("rendered %s (%.1f s) for %r", path.name, len(pcm) / 16000, text)
        return path

    async def _get_recording(self, prompt_id: str, source: Path) -> Path:
        name = f"rec-{prompt_id}-{_stamp(prompt_id, source)}"
        path = self.cache_dir / f"{name}.wav"
        if _usable(path):
            return path
        return await self._once(
            name, lambda: asyncio.to_thread(self._convert, prompt_id, source, path)
        )

    def _convert(self, prompt_id: str, source: Path, path: Path) -> Path:
        try:
            samples, rate = audio.decode_wav(source.read_bytes())
        except (OSError, audio.AudioFormatError) as exc:
            raise TTSError(f"cannot read recording {source}: {exc}") from exc
        pcm = audio.to_pcm16(audio.resample(samples, rate, audio.SAMPLE_RATE))
        _check_pcm(pcm, f"recording {source}")
        audio.write_atomic(path, audio.wav_bytes(pcm))
        for old in self.cache_dir.glob(f"rec-{prompt_id}-*.wav"):  # earlier takes
            if old != path:
                old.unlink(missing_ok=True)
        log.info("using operator recording %s for prompt %s", source, prompt_id)
        return path


def fixed_names(cache_dir: Path) -> set[str] | None:
    """Names listed as fixed prompts; None when there is no manifest (nothing is known)."""
    try:
        text = (Path(cache_dir) / FIXED_MANIFEST).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return {line.strip() for line in text.splitlines() if line.strip()}


def remember_fixed(cache_dir: Path, names: Iterable[str]) -> None:
    """Add ``names`` to the manifest of fixed prompts (written atomically; created even when
    empty, so a cache without fixed prompts is known to have none)."""
    known = fixed_names(cache_dir)
    merged = (known or set()) | set(names)
    if known is not None and merged == known:
        return
    audio.write_atomic(Path(cache_dir) / FIXED_MANIFEST,
                       "".join(f"{n}\n" for n in sorted(merged)).encode("utf-8"))


def dynamic_prompt_files(cache_dir: Path) -> list[Path] | None:
    """Hash-named prompts not in the manifest: rendered on demand for one call. None when
    there is no manifest yet (then no file is known to be per-call, and none may be removed)."""
    fixed = fixed_names(cache_dir)
    if fixed is None:
        return None
    return sorted(p for p in Path(cache_dir).glob("*.wav")
                  if _HASH_NAME.fullmatch(p.stem) and p.stem not in fixed)


def _stamp(prompt_id: str, source: Path) -> str:
    """Changes when the recording is replaced (size or modification time)."""
    st = source.stat()
    return hashlib.sha256(f"{prompt_id}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]


def _usable(path: Path) -> bool:
    try:
        return path.stat().st_size > 44 + _MIN_BYTES // 2
    except OSError:
        return False


def _check_pcm(pcm: bytes, what: str) -> None:
    if not isinstance(pcm, bytes | bytearray):
        raise TTSError(f"{what}: expected PCM bytes, got {type(pcm).__name__}")
    if len(pcm) % 2:
        raise TTSError(f"{what}: odd byte count {len(pcm)}, not 16-bit PCM")
    if len(pcm) < _MIN_BYTES:
        raise TTSError(f"{what}: audio too short ({len(pcm) / 16000:.3f} s)")
    samples = np.frombuffer(pcm, "<i2")
    if int(np.max(np.abs(samples.astype(np.int32)))) < 64:
        raise TTSError(f"{what}: audio is silent")
