"""``ivr eval dialogs``: simulated callers through the dialog engine (``dialog.simulate``):
task success within two turns, mean turns to the right bot, wrong-bot rate, by source. The
requests are a set's words (text), or what the recogniser heard of them (the audio rows of an
``ivr eval intents`` / ``ivr bench speech`` JSON report: spoken requests, with the answers to
yes/no and either/or questions taken as said)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dialog.evaluate import EvalFileError, holdout_catalog, load_rows
from dialog.simulate import Dialog, simulate_set, summarize_dialogs
from ivr.core.config import Settings
from ivr.tools.botshear import HEAR_VOICES


def heard_rows(path: Path, part: str | None
               ) -> tuple[list[tuple[str, str, str]], list[str], list[str]]:
    """The audio rows of an ``ivr eval intents --json`` or ``ivr bench speech --json`` report
    (``part``: that report of bench speech, e.g. ``test/audio``), as what was heard: the
    requests of spoken dialogs whose answers (yes/no, keys) are taken as said; then the
    problems, and each row's voice ("" when the report has none)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EvalFileError(f"cannot read {path}: {exc}") from exc
    reports = data.get("reports", {"": data})
    chosen = [r for name, r in reports.items() if part is None or name == part]
    if not chosen:
        raise EvalFileError(f"{path}: no report {part!r} (there are {', '.join(reports)})")
    rows = [row for r in chosen for row in r.get("rows", []) if row.get("kind") == "audio"]
    out = [(row["expected"], row.get("source", ""), row.get("text") or "") for row in rows]
    return out, ([] if out else [f"{path}: no audio rows"]), [row.get("voice", "") for row in rows]


def run_dialogs(settings: Settings, path: Path, *, holdout: bool = False,
                source: str | None = None, part: str | None = None,
                llm: bool = False) -> dict[str, Any]:
    """``llm``: the engine asks ``settings.llm``'s endpoint when routing is unsure, within
    ``nlu.llm_budget_ms`` (``dialog.nlu.llmchoice``); its figures are in the report."""
    from dialog.nlu.llmchoice import LlmIntentChooser
    from handoff.embeddings import intent_catalog

    catalog = intent_catalog(settings)  # the matcher callers get (nlu.embedder)
    heard = path.suffix == ".json"
    voices: list[str] = []
    if heard:  # what the recogniser heard: a report of eval intents/bench speech
        triples, problems, voices = heard_rows(path, part)
    else:
        rows, problems = load_rows(path, catalog)
        texts = [r for r in rows if r.kind == "text" or r.said]
        triples = [(r.expected, r.extra.get("source", ""), r.said) for r in texts]
    if source:
        if voices:  # typed rows have none
            voices = [v for v, t in zip(voices, triples, strict=True) if t[1] == source]
        triples = [t for t in triples if t[1] == source]
    if holdout:
        catalog = holdout_catalog(catalog, [t[2] for t in triples])
    adviser = (LlmIntentChooser(settings.llm, budget_s=settings.nlu.llm_budget_ms / 1000)
               if llm else None)
    if llm and not settings.llm.base_url:
        raise EvalFileError("--llm needs llm.base_url (an OpenAI-compatible endpoint)")

    async def go() -> list[Dialog]:
        try:
            return await simulate_set(catalog, triples, adviser=adviser, heard=heard)
        finally:
            if adviser is not None:
                await adviser.close()

    dialogs: list[Dialog] = asyncio.run(go())
    advice: dict[str, Any] | None = None
    if adviser is not None:
        took = sorted(adviser.answered_s)
        advice = {"model": settings.llm.model, "budget_ms": settings.nlu.llm_budget_ms,
                  "asked": sum(adviser.stats.values()), **dict(adviser.stats),
                  "answered_ms_p50": round(1000 * took[len(took) // 2]) if took else None,
                  "answered_ms_max": round(1000 * took[-1]) if took else None}
    by_source: dict[str, Any] = {}
    for name in dict.fromkeys(d.source for d in dialogs):
        by_source[name or "-"] = summarize_dialogs([d for d in dialogs if d.source == name])
    by_voice: dict[str, Any] = {}  # the voices the heard examples were made from, the others
    if any(voices):
        made = [d for d, v in zip(dialogs, voices, strict=True) if v in HEAR_VOICES]
        other = [d for d, v in zip(dialogs, voices, strict=True) if v not in HEAR_VOICES]
        by_voice = {"heard voices": summarize_dialogs(made),
                    "other voices": summarize_dialogs(other)}
    return {"file": str(path), "holdout": holdout, "problems": problems,
            "all": summarize_dialogs(dialogs), "by_source": by_source, "by_voice": by_voice,
            "embedder": settings.nlu.embedder, "llm": advice,
            "dialogs": [d.as_dict() for d in dialogs]}


def _line(name: str, s: dict[str, Any]) -> str:
    if not s.get("n"):
        return f"{name:<11} no callers"
    turns = f"{s['mean_turns']:.2f}" if s["mean_turns"] is not None else "-"
    return (f"{name:<11} {s['n']:4} callers: within 2 turns {100 * s['success_2']:5.1f}%  "
            f"at all {100 * s['success']:5.1f}%  first turn {100 * s['success_1']:5.1f}%  "
            f"wrong bot {100 * s['wrong']:4.1f}%  agent {100 * s['agent']:4.1f}%  "
            f"mean turns {turns}")


def print_dialogs(report: dict[str, Any], echo: Callable[[str], None]) -> None:
    for p in report["problems"]:
        echo(f"skipped: {p}")
    echo(_line("all", report["all"]))
    if advice := report.get("llm"):
        echo(f"LLM when unsure ({advice['model']}, budget {advice['budget_ms']} ms): asked "
             f"{advice['asked']}, picked {advice.get('ok', 0)}, no pick {advice.get('none', 0)}, "
             f"late {advice.get('late', 0)}, failed {advice.get('error', 0)}; answered in "
             f"{advice['answered_ms_p50']} ms (p50), {advice['answered_ms_max']} ms (max)")
    if len(report["by_source"]) > 1:
        for name, s in report["by_source"].items():
            echo(_line(name, s))
    for name, s in report.get("by_voice", {}).items():  # dialog/nlu/heard.tsv's voices or not
        echo(_line(name, s))
    wrong = [d for d in report["dialogs"] if d["end"] == "wrong"][:10]
    if wrong:
        echo("wrong bots (first 10):")
        for d in wrong:
            echo(f"  {d['expected']} -> {d['reached']}: {' / '.join(d['said'])}")
