"""``ivr bots hear``: what the recogniser makes of each bot's own questions, for the trained layer.

Whisper base at 8 kHz hears many requests wrong in ways that repeat (存了 as 顺了, 余额 as 鱼鹅):
a matcher trained only on written questions has never seen them. This tool says every bot's
standard and similar questions through the same path as a spoken evaluation (``ivr eval
synth``'s Kokoro voices, speeds, telephone band, noise and μ-law, but its own seed, so no
rendering equals an evaluation's), recognises each through the live path (endpointer, then the
shared recogniser with the first question's hints) and writes ``dialog/nlu/heard.tsv``:
``bot``, ``said`` (the question as written) and ``heard``.

The trained layer learns each heard text as one more example of its bot while the question it
was said from is still that bot's (``dialog.catalog.heard_examples``): a question removed, or
held out by an evaluation, takes its heard text with it, so nothing an evaluation scores was
learnt from its own sound. Nothing here runs on a call: the file is written offline and
shipped; a bot changed later has fewer heard examples until the tool runs again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from asr.base import ASRError, AudioError, Recognizer
from asr.endpoint import EndpointSettings
from dialog.catalog import HEARD_FILE, Catalog, no_bot_examples
from dialog.evaluate import Item
from dialog.nlu.classifier import NONE_CLASS
from dialog.nlu.text import normalize_for_match
from ivr.core.config import Settings
from ivr.tools.evalintents import first_question_hints, hear
from ivr.tools.evalsynth import render

# not evalsynth.DEFAULT_SEED (8): the evaluation's renderings of a sentence are never these
HEAR_SEED = 31
# two of the evaluation's four voices (a woman's, a man's): the spoken evaluation's rows in the
# other two measure what the heard examples give a voice they were not made from
HEAR_VOICES = ("jf_alpha", "jm_kumo")


def questions(catalog: Catalog) -> list[Item]:
    """Every bot's standard and similar questions and the "no bot" examples, once each
    (normalised), in file order."""
    seen: set[tuple[str, str]] = set()
    items: list[Item] = []
    asked = [(bot.id, q) for bot in catalog.bots.values() for q in (bot.standard, *bot.similar)]
    for bot_id, q in [*asked, *((NONE_CLASS, t) for t in no_bot_examples())]:
        key = (bot_id, normalize_for_match(q))
        if q.strip() and key not in seen:
            seen.add(key)
            items.append(Item(bot_id, "question", q))
    return items


async def hear_questions(settings: Settings, catalog: Catalog, recognizer: Recognizer,
                         items: Sequence[Item], *, seed: int = HEAR_SEED,
                         progress: Callable[[str], None] | None = None
                         ) -> list[tuple[str, str, str]]:
    """(bot, said, heard) for every item; an item with no speech found or that cannot be
    recognised is left out."""
    say = progress or (lambda _m: None)
    plans, paths = await render(items, settings, seed=seed, voices=HEAR_VOICES, progress=say)
    endpoint = EndpointSettings.from_settings(settings.asr)
    hints = first_question_hints(catalog)
    out: list[tuple[str, str, str]] = []
    t = time.monotonic()
    for i, (p, path) in enumerate(zip(plans, paths, strict=True)):
        if i and i % 50 == 0:
            say(f"heard {i}/{len(plans)} ({time.monotonic() - t:.0f} s)")
        try:
            text, asr_s, _detail = await hear(recognizer, str(path), hints, endpoint)
        except (AudioError, ASRError):
            continue
        text = " ".join(text.split())
        if asr_s is not None and text:
            out.append((p.item.bot, p.item.text, text))
    return out


def write_heard(rows: Sequence[tuple[str, str, str]], command: str, backend: str,
                path: Path = HEARD_FILE) -> None:
    """The TSV the catalog reads (a header comment says how it was made)."""
    day = datetime.now(UTC).date().isoformat()
    lines = [f"# written by `{command}` on {day}: each bot question said through the spoken "
             f"evaluation's path (seed {HEAR_SEED}, voices {' '.join(HEAR_VOICES)}) and "
             f"recognised by {backend}",
             "bot\tsaid\theard"]
    lines += [f"{b}\t{s}\t{h}" for b, s, h in rows
              if "\t" not in s + h and "\n" not in s + h]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)
