"""``ivr eval rescore``: would the recogniser's own scores pick the right bot among the matcher's?

A measurement, not a part of the product (issue 19's "forced-alignment rescoring"): for each
audio row of an ``ivr bench speech --json`` report, the caller's first utterance is cut as a live
call cuts it (``evalintents.first_utterance``), encoded once by Whisper (a window of the
utterance + 1 s, whole seconds), and the matcher's ``bots`` best candidates for the recognised
text are scored in one batched ``align`` call over that encoding: each candidate bot's standard
question and its ``phrases - 1`` similar questions nearest the recognised text (character
overlap); a bot's acoustic score is its best phrase's mean token log-probability. The set's own
sentences are removed from the bots first (``holdout_catalog``), so no row is scored against
its own words.

Reported: how often the right bot is among the candidates; the matcher's best, the acoustic
best and their sum (matcher score + ``weight`` x acoustic margin to the best) right, over every
row and over the rows routing left unsure (a question or no match); and what it costs per turn
(the encoding and the batch, p50 / p95 / max), on this machine's cores.
"""

from __future__ import annotations

import functools
import json
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from asr.audio import pcm_to_float, read_wav, to_16k
from asr.endpoint import EndpointSettings
from asr.whisper import window_frames
from dialog.catalog import Catalog
from dialog.evaluate import EVALSETS_DIR, holdout_catalog, read_items, route
from dialog.nlu.normalize import normalize_for_match
from ivr.core.config import Settings
from ivr.telephony.media.rtp import SAMPLE_RATE
from ivr.tools.evalintents import first_utterance, telephone

WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 1.0)  # the sums reported (0: the matcher alone)


def _grams(text: str) -> set[str]:
    t = normalize_for_match(text)
    return set(t) | {t[i:i + 2] for i in range(len(t) - 1)}


def nearest_phrases(catalog: Catalog, bot: str, text: str, n: int) -> list[str]:
    """The bot's standard question and its ``n - 1`` similar questions nearest ``text``."""
    spec = catalog.bots[bot]
    heard = _grams(text)
    ranked = sorted(spec.similar, key=lambda q: -len(heard & _grams(q)) / math.sqrt(
        len(_grams(q)) or 1))
    return [spec.standard, *ranked[:n - 1]]


class AlignScorer:
    """Whisper base (the embedded model) scoring phrases against one encoded utterance."""

    def __init__(self, settings: Settings) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        from asr.models import ensure_whisper_base

        path = ensure_whisper_base(settings.asr.model_dir, None)
        self.model = WhisperModel(str(path), device="cpu", compute_type="int8",
                                  cpu_threads=settings.asr.threads)
        self.tokenizer = Tokenizer(self.model.hf_tokenizer, True, task="transcribe",
                                   language="zh")

    def score(self, pcm_8k: bytes, phrases: list[str]) -> list[float]:
        """Mean token log-probability of each phrase given the utterance."""
        import ctranslate2

        audio = to_16k(pcm_to_float(pcm_8k, SAMPLE_RATE), SAMPLE_RATE)
        frames = window_frames(audio.size, 1.0) or 3000  # the utterance + 1 s, whole seconds
        padded = np.pad(audio, (0, max(0, frames * 160 - audio.size)))[:frames * 160]
        features = self.model.feature_extractor(padded)[:, :frames]
        encoded = np.array(self.model.model.encode(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None]))))
        batch = ctranslate2.StorageView.from_array(
            np.ascontiguousarray(np.repeat(encoded, len(phrases), axis=0)))
        aligned = self.model.model.align(
            batch, self.tokenizer.sot_sequence, [self.tokenizer.encode(p) for p in phrases],
            [audio.size // 160] * len(phrases))
        return [float(np.mean(np.log(np.maximum(np.array(a.text_token_probs), 1e-9))))
                for a in aligned]


def run(settings: Settings, report_path: Path, part: str, *, bots: int = 5, phrases: int = 4,
        catalog: Catalog | None = None,
        progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    say = progress or (lambda _m: None)
    reports = json.loads(report_path.read_text(encoding="utf-8"))["reports"]
    rows = reports[part]["rows"]
    if catalog is None:
        from handoff.embeddings import intent_catalog

        catalog = intent_catalog(settings)
    items = read_items(EVALSETS_DIR / f"{part.split('/')[0]}.tsv")
    catalog = holdout_catalog(catalog, [i.text for i in items])
    endpoint = EndpointSettings.from_settings(settings.asr,
                                              no_input_s=settings.dialog.no_input_timeout_s)
    scorer = AlignScorer(settings)
    out: list[dict[str, Any]] = []
    for n, row in enumerate(rows):
        if n and n % 25 == 0:
            say(f"{n}/{len(rows)} rows")
        pcm, _sr = read_wav(row["input"], rate=SAMPLE_RATE)
        utt, _count = first_utterance(telephone(pcm), endpoint)
        text = row.get("text") or ""
        result = catalog.matcher.match(text) if text else None
        top = list(result.candidates[:bots]) if result else []
        if utt is None or not top:
            out.append({"expected": row["expected"], "candidates": []})
            continue
        seqs = [(c.intent, p) for c in top
                for p in nearest_phrases(catalog, c.intent, text, phrases)]
        t = time.monotonic()
        lps = scorer.score(utt.pcm, [p for _, p in seqs])
        cost = time.monotonic() - t
        acoustic: dict[str, float] = {}
        for (bot, _p), lp in zip(seqs, lps, strict=True):
            acoustic[bot] = max(acoustic.get(bot, -1e9), lp)
        out.append({"expected": row["expected"], "text": text,
                    "decision": route(catalog, text).decision,
                    "candidates": [[c.intent, round(c.score, 4), round(acoustic[c.intent], 4)]
                                   for c in top],
                    "cost_s": round(cost, 4), "sequences": len(seqs)})
    return summarize(out) | {"report": str(report_path), "part": part, "bots": bots,
                             "phrases": phrases, "rows": out}


def _pick(cands: list[list[Any]], weight: float) -> str:
    best = max(c[2] for c in cands)
    return str(max(cands, key=lambda c: c[1] + weight * (c[2] - best))[0])


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    scored = [r for r in rows if r["candidates"]]
    unsure = [r for r in scored if r["decision"] != "match"]
    costs = sorted(r["cost_s"] for r in scored)

    def right(rs: list[dict[str, Any]], fn: Callable[[list[list[Any]]], str]) -> int:
        return sum(fn(r["candidates"]) == r["expected"] for r in rs)

    def acoustic_best(c: list[list[Any]]) -> str:
        return str(max(c, key=lambda x: x[2])[0])

    return {
        "n": len(rows), "scored": len(scored), "unsure": len(unsure),
        "in_candidates": sum(r["expected"] in [c[0] for c in r["candidates"]] for r in scored),
        "acoustic_right": right(scored, acoustic_best),
        "acoustic_right_unsure": right(unsure, acoustic_best),
        "sum_right": {str(w): right(scored, functools.partial(_pick, weight=w))
                      for w in WEIGHTS},
        "sum_right_unsure": {str(w): right(unsure, functools.partial(_pick, weight=w))
                             for w in WEIGHTS},
        "cost_ms": {"p50": round(1000 * statistics.median(costs)) if costs else None,
                    "p95": round(1000 * costs[int(0.95 * (len(costs) - 1))]) if costs else None,
                    "max": round(1000 * costs[-1]) if costs else None},
        "sequences": max((r["sequences"] for r in scored), default=0),
    }  # fmt: skip


def print_summary(r: dict[str, Any], echo: Callable[[str], object]) -> None:
    echo(f"{r['part']}: {r['scored']} of {r['n']} rows scored ({r['bots']} bots x "
         f"{r['phrases']} phrases: at most {r['sequences']} sequences a turn); right bot among the "
         f"candidates {r['in_candidates']}")
    echo(f"  right at the top, all rows: matcher {r['sum_right']['0.0']}, acoustic "
         f"{r['acoustic_right']}, sum " + ", ".join(
             f"w={w} {v}" for w, v in r["sum_right"].items() if w != "0.0"))
    echo(f"  right at the top, the {r['unsure']} rows routing left unsure: matcher "
         f"{r['sum_right_unsure']['0.0']}, acoustic {r['acoustic_right_unsure']}, sum "
         + ", ".join(f"w={w} {v}" for w, v in r["sum_right_unsure"].items() if w != "0.0"))
    c = r["cost_ms"]
    echo(f"  cost a turn (encoding + batch): p50 {c['p50']} ms, p95 {c['p95']} ms, "
         f"max {c['max']} ms")
