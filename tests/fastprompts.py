"""Faster menus for the tests' calls: the prompts nearly every call hears (the greeting, the
main menu, the lines' menus, a transfer) rendered by Kokoro at ``FAST_SPEED`` into the test
server's operator-recordings folder (``tts.recordings_dir``: a recording stands in for its
synthesised prompt, ``tts/cache.py``). The calls then spend about 40 % less time listening to
menus. Everything else, and what the simulated callers say (rendered from the server's own
cache), stays at the shipped speed: the recogniser's figures and the inputs proven robust are
measured there. Rendered again when a text or the speed changes (``texts.json``)."""

from __future__ import annotations

import asyncio
import json
import wave
from pathlib import Path

from dialog.catalog import Catalog
from dialog.prompts import P, line_menu_text
from ivr.core.config import Settings
from tts.audio import SAMPLE_RATE, SAMPLE_WIDTH
from tts.base import TTSError

FAST_SPEED = 1.5
FAST_PROMPTS = ("greeting", "route_menu", "confirm_oil", "confirm_gas", "no_match", "no_input",
                "transfer", "transfer_after_errors")
MANIFEST = "texts.json"


def fast_texts() -> dict[str, str]:
    """Prompt id -> text of the prompts rendered fast."""
    catalog = Catalog.load()
    texts = {pid: P[pid] for pid in FAST_PROMPTS}
    for line in ("oil", "gas"):
        texts[f"menu_{line}"] = line_menu_text(catalog, line)
    return texts


def _fresh(folder: Path, want: dict[str, object], ids: list[str]) -> bool:
    try:
        return (json.loads((folder / MANIFEST).read_text(encoding="utf-8")) == want
                and all((folder / f"{pid}.wav").is_file() for pid in ids))
    except (OSError, ValueError):
        return False


def _write(folder: Path, want: dict[str, object], pcms: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for pid, pcm in pcms.items():
        with wave.open(str(folder / f"{pid}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(SAMPLE_WIDTH)
            w.setframerate(SAMPLE_RATE)
            w.writeframes(pcm)
    (folder / MANIFEST).write_text(json.dumps(want, ensure_ascii=False), encoding="utf-8")


async def render_fast_prompts(settings: Settings) -> Path | None:
    """Render the fast prompts into ``settings.tts.recordings_dir`` (an absolute folder); the
    folder, or None when Kokoro is not what this machine synthesises with (then the calls
    hear the synthesised prompts, only slower)."""
    from tts.factory import build_synthesizer

    folder = Path(settings.tts.recordings_dir)
    texts = fast_texts()
    want: dict[str, object] = {"speed": FAST_SPEED, "texts": texts}
    if await asyncio.to_thread(_fresh, folder, want, list(texts)):
        return folder
    fast = settings.tts.model_copy(update={"speed": FAST_SPEED, "fallback": "none"})
    try:
        synth = await asyncio.to_thread(build_synthesizer, fast, None, None)
    except TTSError:  # no Kokoro here: the synthesised prompts, at the shipped speed
        return None
    try:
        if synth.name != "kokoro":
            return None
        pcms = {pid: await synth.synthesize(text) for pid, text in texts.items()}
    finally:
        await synth.close()
    await asyncio.to_thread(_write, folder, want, pcms)
    return folder
