"""``ivr eval intents``: does a caller reach the right bot? Text and audio rows, live path.

Audio rows take the path of a live call's first answer (``ivr/calls/listener.py``): the WAV file is
resampled to 8 kHz, put through a G.711 μ-law round trip (the RTP leg), fed in 20 ms frames to
the same ``Endpointer`` (VAD settings from ``asr``), followed by silence so the utterance ends;
the first utterance found is recognised by the shared recogniser with the hints the dialog's
first question carries (``DialogEngine.start()``'s ``Collect``), and its text is routed by
``dialog.evaluate.route`` (globals, then the catalog's ``IntentMatcher``). The file format and
the verdicts are described in ``dialog/evaluate.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from asr.audio import read_wav
from asr.base import ASRError, AudioError, Recognizer
from asr.endpoint import Endpointer, EndpointSettings, SpeechEnded
from dialog.actions import Collect
from dialog.catalog import Catalog
from dialog.engine import DialogEngine
from dialog.evaluate import (
    EvalRow,
    Outcome,
    Routed,
    holdout_catalog,
    load_rows,
    route,
    summarize,
)
from dialog.nlu.vocabulary import bot_questions, bot_words
from ivr.core.config import Settings
from ivr.telephony.media.rtp import FRAME_SAMPLES, SAMPLE_RATE, ulaw_decode, ulaw_encode

FRAME_BYTES = FRAME_SAMPLES * 2


def first_question_hints(catalog: Catalog) -> str | None:
    """The recogniser hints of the dialog's first question (what a live call passes)."""
    for action in DialogEngine(catalog).start():
        if isinstance(action, Collect):
            return action.hints or None
    return None


def telephone(pcm: bytes) -> bytes:
    """8 kHz 16-bit PCM through a μ-law round trip, as it arrives from the caller's RTP."""
    samples = np.frombuffer(pcm, dtype="<i2")
    return ulaw_decode(ulaw_encode(samples)).astype("<i2").tobytes()


def first_utterance(pcm: bytes, settings: EndpointSettings) -> tuple[SpeechEnded | None, int]:
    """Feed 20 ms frames, then enough silence to end the turn; the first utterance and how
    many the endpointer found in all."""
    ep = Endpointer(settings, SAMPLE_RATE)
    tail = bytes(int((settings.end_silence_ms + 600) * SAMPLE_RATE / 1000) * 2)
    audio = pcm + tail
    found: list[SpeechEnded] = []
    for i in range(0, len(audio) - FRAME_BYTES + 1, FRAME_BYTES):
        found += [e for e in ep.feed(audio[i:i + FRAME_BYTES]) if isinstance(e, SpeechEnded)]
    return (found[0] if found else None), len(found)


@dataclass(slots=True)
class IntentRun:
    outcomes: list[Outcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # rows skipped at run time


async def hear(recognizer: Recognizer, path: str, hints: str | None,
               settings: EndpointSettings) -> tuple[str, float | None, dict[str, Any]]:
    """(recognised text, ASR seconds or None when no speech was found, details) for a WAV
    file; AudioError / ASRError when it cannot be read or recognised."""
    pcm, _sr = read_wav(path, rate=SAMPLE_RATE)
    line = telephone(pcm)
    utt, count = first_utterance(line, settings)
    detail: dict[str, Any] = {"audio_s": round(len(pcm) / 2 / SAMPLE_RATE, 2),
                              "segments": count}
    if utt is None:
        return "", None, detail
    t = time.monotonic()
    tr = await recognizer.transcribe(utt.pcm, SAMPLE_RATE, hints=hints)
    detail |= {"speech_s": round(utt.speech_s, 2), "confidence": round(tr.confidence, 3)}
    return tr.text, time.monotonic() - t, detail


async def run_rows(rows: list[EvalRow], catalog: Catalog, recognizer: Recognizer | None,
                   settings: EndpointSettings, *, hints: str | None,
                   progress: Callable[[int, int], None] | None = None) -> IntentRun:
    """Route every row; audio rows are skipped (with a message) when unreadable or when no
    recogniser is given."""
    run = IntentRun()
    for i, row in enumerate(rows):
        if progress is not None:
            progress(i, len(rows))
        if row.kind == "text":
            run.outcomes.append(Outcome(row, row.input, route(catalog, row.input)))
            continue
        if recognizer is None:
            run.problems.append(f"line {row.line}: audio row skipped (no recogniser)")
            continue
        try:
            text, asr_s, detail = await hear(recognizer, row.input, hints, settings)
        except AudioError as exc:
            run.problems.append(f"line {row.line}: unreadable audio: {exc}")
            continue
        except ASRError as exc:
            run.problems.append(f"line {row.line}: recognition failed: {exc}")
            continue
        routed = (route(catalog, text, heard=True) if asr_s is not None
                  else Routed("no_speech", None, 0.0, None, "no speech found"))
        run.outcomes.append(Outcome(row, text, routed, asr_s, detail))
    return run


def run_file(settings: Settings, path: Path, *, backend: str | None = None,
             holdout: bool = False, progress: Callable[[str], None] | None = None,
             catalog: Catalog | None = None, hints: str | None = None) -> dict[str, Any]:
    """Load, route and summarise an evaluation file: the report ``ivr eval intents`` prints
    (``rows``: one dict per routed row; ``problems``: rows skipped, by line). ``hints``
    replaces the first question's recogniser hints (an experiment: "" for none, "bots" or
    "questions" for ``dialog.nlu.vocabulary``'s two forms, or the words themselves)."""
    say = progress or (lambda _m: None)
    if catalog is None:  # as the server builds it, with nlu.embedder's sentence embeddings
        from handoff.embeddings import intent_catalog

        catalog = intent_catalog(settings)
    rows, problems = load_rows(path, catalog)
    if holdout:
        catalog = holdout_catalog(catalog, [t for r in rows for t in (r.said,) if t])
    recognizer: Recognizer | None = None
    if any(r.kind == "audio" for r in rows):
        from asr.factory import build_recognizer

        try:
            recognizer = build_recognizer(settings.asr, say, backend=backend)
        except ASRError as exc:
            problems.append(f"no recogniser, audio rows skipped: {exc}")
    endpoint = EndpointSettings.from_settings(settings.asr,
                                              no_input_s=settings.dialog.no_input_timeout_s)
    if hints is None:
        hints = first_question_hints(catalog)
    elif hints in ("bots", "questions"):
        bots = catalog.bots.values()
        hints = bot_words(bots) if hints == "bots" else bot_questions(bots)

    def tick(i: int, n: int) -> None:
        if i and i % 25 == 0 and recognizer is not None:
            say(f"{i}/{n} rows")

    async def go() -> IntentRun:
        try:
            return await run_rows(rows, catalog, recognizer, endpoint, hints=hints,
                                  progress=tick)
        finally:
            if recognizer is not None:
                await recognizer.close()

    t = time.monotonic()
    run = asyncio.run(go())
    hints = hints or None
    report = summarize(run.outcomes)
    if not holdout and run.outcomes:  # the same recognised texts against the held-out bots
        held = holdout_catalog(catalog, [r.said for r in rows if r.said])
        again = [replace(o, routed=route(held, o.text, heard=o.row.kind == "audio"))
                 if o.routed.decision != "no_speech" else o for o in run.outcomes]
        report["held_out"] = {k: v for k, v in summarize(again).items()
                              if k not in ("per_bot", "confusions")}
    report |= {
        "file": str(path), "holdout": holdout, "wall_s": round(time.monotonic() - t, 1),
        "embedder": settings.nlu.embedder,
        "asr": {"backend": settings.asr.backend if recognizer else None,
                "initial_prompt": settings.asr.initial_prompt, "hints": hints,
                "beam_size": settings.asr.beam_size},
        "problems": problems + run.problems,
        "rows": [o.as_dict() for o in run.outcomes],
    }  # fmt: skip
    return report


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:5.1f}%"


def print_report(r: dict[str, Any], echo: Callable[[str], object]) -> None:
    for p in r["problems"]:
        echo(f"skipped: {p}")
    if r.get("command"):
        echo(f"$ {r['command']}")
    echo(f"{r['n']} rows: right {_pct(r['accuracy'])}  wrong bot {_pct(r['wrong_rate'])}  "
         f"clarify {_pct(r['clarify_rate'])} ({r['clarify_ok']} offering the right bot)  "
         f"no match {_pct(r['no_match_rate'])}")
    for key in ("by_kind", "by_source"):
        for g, s in r.get(key, {}).items():
            echo(f"  {g or '-':<10} {s['n']:>4} rows: right {_pct(s['accuracy'])}  wrong "
                 f"{_pct(s['wrong_rate'])}  clarify {_pct(s['clarify_rate'])}  no match "
                 f"{_pct(s['no_match_rate'])}")
    h = r.get("held_out")
    if h:
        echo(f"held out (the set's sentences removed from the bots): right {_pct(h['accuracy'])}"
             f"  wrong bot {_pct(h['wrong_rate'])}  clarify {_pct(h['clarify_rate'])}  "
             f"no match {_pct(h['no_match_rate'])}")
    if r.get("embedder", "none") != "none":
        echo(f"matcher: trained layer with {r['embedder']} sentence embeddings")
    if r["asr_mean_s"] is not None:
        echo(f"ASR: mean {r['asr_mean_s']:.2f} s per utterance over {r['asr_utterances']} "
             f"(prompt {r['asr']['initial_prompt']!r}, hints {r['asr']['hints']!r})")
    weak = {b: s for b, s in r["per_bot"].items() if s["accuracy"] < 1.0}
    if weak:
        echo("per bot (below 100%): " + ", ".join(
            f"{b} {s['right']}/{s['n']}" for b, s in sorted(weak.items(),
                                                             key=lambda kv: kv[1]["accuracy"])))
    if r["confusions"]:
        echo("top confusions: " + ", ".join(f"{c['expected']}→{c['got']} x{c['count']}"
                                            for c in r["confusions"]))
