"""Routing evaluation: which bot does a caller's first utterance reach, over a labelled set.

This is the text half of ``ivr eval intents`` (the audio half, telephone line and recogniser,
lives in ``ivr/tools/evalintents.py``; dialog imports nothing from asr/ivr/tts).

Evaluation file (TSV, UTF-8). Lines starting with ``#`` and blank lines are skipped. The first
other line is a header naming the columns; required: ``kind``, ``input``, ``expected``::

    kind    input                       expected        reference (optional)   source (optional)
    text    我的加油卡丢了               fuel_loss
    audio   clips/loss_01.wav           加油卡挂失       我的加油卡丢了           paraphrase

A part of the shipped sets (``dialog/evalsets/dev.tsv``: columns ``bot``, ``source``, ``text``)
is read as it is, every row as text.

``kind`` is ``text`` (``input`` is what the caller said) or ``audio`` (``input`` is a WAV file,
any sample rate, relative to the TSV file's folder); ``expected`` is a bot id or its Chinese
display name. Any other column (``reference``: what an audio row says; ``source``: similar or
paraphrase; ``voice``, ``snr_db``, ...) is carried into the per-row report. A malformed row is
reported with its line number and skipped.

Routing mirrors ``DialogEngine`` in its first state: the safety global (gas smell, leak) goes to
``gas_leak``; the agent global (转人工) is a fall-back to an agent; a business line named
alone (燃气, 加油卡业务: ``dialog.nlu.lines``) gets that line's menu; otherwise the catalog's
``IntentMatcher`` decides match / clarify / no_match. Each row ends in one verdict:
``right`` (matched the expected bot), ``wrong`` (matched another bot), ``clarify`` (the caller
is asked "A or B?", or hears a line's menu; ``clarify_ok`` counts the questions whose two
options include the expected bot) or
``no_match`` (re-prompt, then the DTMF menu; also no speech found and the agent global).
"""

from __future__ import annotations

import csv
import random
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from dialog.catalog import Catalog
from dialog.global_intents import SAFETY_BOT, global_intent
from dialog.nlu.lines import named_line
from dialog.nlu.text import normalize_for_match
from dialog.routing import route_request

EVALSETS_DIR = Path(__file__).with_name("evalsets")
REQUIRED = ("kind", "input", "expected")
SPLIT_SEED = 956100
NO_BOT = "none"  # expected: no bot (out of scope): right when nothing matches
TRAIN_SHARE = 0.3  # of each bot's paraphrases: learnt from (the bots' similar questions)

Decision = Literal["match", "clarify", "confirm", "line", "no_match", "safety", "agent",
                   "no_speech"]
Verdict = Literal["right", "wrong", "clarify", "no_match"]


class EvalFileError(ValueError):
    """The evaluation file as a whole cannot be used (unreadable, no header)."""


@dataclass(frozen=True, slots=True)
class EvalRow:
    line: int
    kind: Literal["text", "audio"]
    input: str  # the text, or the WAV path (resolved against the file's folder)
    expected: str  # bot id
    extra: dict[str, str] = field(default_factory=dict)  # the other columns

    @property
    def said(self) -> str:
        """What the caller said, when known (text rows; audio rows with a reference)."""
        return self.input if self.kind == "text" else self.extra.get("reference", "")


def resolve_bot(catalog: Catalog, value: str) -> str | None:
    """A bot id from an id or a display name (``none``: no bot should take it)."""
    v = value.strip()
    if v in catalog.bots or v == NO_BOT:
        return v
    return next((b.id for b in catalog.bots.values() if b.name == v), None)


def load_rows(path: Path, catalog: Catalog) -> tuple[list[EvalRow], list[str]]:
    """The usable rows of an evaluation file, and one message per skipped row."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalFileError(f"cannot read {path}: {exc}") from exc
    rows: list[EvalRow] = []
    problems: list[str] = []
    header: list[str] | None = None
    shipped = False  # dialog/evalsets' own columns (bot, source, text): text rows
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1)
             if line.strip() and not line.lstrip().startswith("#")]
    for n, cells in zip((n for n, _ in lines), csv.reader((ln for _, ln in lines),
                                                         delimiter="\t", quoting=csv.QUOTE_NONE),
                        strict=True):
        cells = [c.strip() for c in cells]
        if header is None:
            header = [c.lower() for c in cells]
            if header[0] == "bot" and "text" in header:  # dialog/evalsets' own files, as text
                header = [{"bot": "expected", "text": "input"}.get(c, c) for c in header]
                shipped = True
            missing = [c for c in REQUIRED if c not in header and not shipped]
            if missing:
                raise EvalFileError(f"{path}:{n}: the header must name the columns "
                                    f"{', '.join(REQUIRED)} (missing {', '.join(missing)})")
            continue
        if len(cells) < (2 if shipped else len(REQUIRED)) or len(cells) > len(header):
            problems.append(f"{path}:{n}: {len(cells)} columns, the header has {len(header)}")
            continue
        values = dict(zip(header, cells, strict=False))
        if shipped:
            values["kind"] = "text"
        kind, given, expected = values["kind"].lower(), values["input"], values["expected"]
        if kind not in ("text", "audio"):
            problems.append(f"{path}:{n}: kind {values['kind']!r} is neither text nor audio")
            continue
        if not given:
            problems.append(f"{path}:{n}: empty input")
            continue
        bot = resolve_bot(catalog, expected)
        if bot is None:
            problems.append(f"{path}:{n}: expected {expected!r} is no bot id or name")
            continue
        if kind == "audio":
            p = Path(given)
            given = str(p if p.is_absolute() else path.parent / p)
        extra = {k: v for k, v in values.items() if k not in REQUIRED and v}
        rows.append(EvalRow(n, kind, given, bot, extra))  # type: ignore[arg-type]
    if header is None:
        raise EvalFileError(f"{path}: empty (a header with {', '.join(REQUIRED)} expected)")
    return rows, problems


# ---- routing --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Routed:
    decision: Decision
    bot: str | None  # the bot reached (match, safety) or the best candidate (clarify)
    score: float
    layer: str | None
    why: str
    options: tuple[str, ...] = ()  # the two bots a clarify question offers


def route(catalog: Catalog, text: str, *, heard: bool = False) -> Routed:
    """What ``DialogEngine`` does with ``text`` as the answer to its first question
    (``heard``: recognised from speech, as a call's words are)."""
    text = text.strip()
    said = global_intent(text)
    if said == "safety":
        return Routed("safety", SAFETY_BOT, 1.0, "global", "safety global")
    if said == "agent":
        return Routed("agent", None, 0.0, "global", "agent global")
    if said is not None:  # repeat, back, main menu, goodbye: the engine does that, no bot
        return Routed("no_match", None, 0.0, "global", f"{said} global")
    line = named_line(text)
    if line is not None:  # the line's menu (dialog.nlu.lines): a question, like clarify
        return Routed("line", None, 0.0, "line", f"names the {line} line: its menu")
    decided = route_request(catalog, text, heard=heard)
    best = decided.best
    options = decided.options if decided.decision in ("clarify", "confirm") else ()
    if best is None:
        result = decided.result
        top = result.candidates[0] if result.candidates else None
        return Routed("no_match", None, top.score if top else 0.0, top.layer if top else None,
                      f"best {top.intent}: {top.why}" if top else "nothing matched")
    return Routed(decided.decision, best.intent, best.score, best.layer, best.why, options)


def verdict(expected: str, routed: Routed) -> Verdict:
    if expected == NO_BOT:
        return ("wrong" if routed.decision in ("match", "safety") else
                "clarify" if routed.decision in ("clarify", "confirm") else "right")
    if routed.decision in ("match", "safety"):
        return "right" if routed.bot == expected else "wrong"
    if routed.decision in ("clarify", "confirm", "line"):
        return "clarify"
    return "no_match"


def holdout_catalog(catalog: Catalog, texts: Iterable[str]) -> Catalog:
    """The catalog without the similar questions that equal (normalised) any of ``texts``: an
    evaluation set's own sentences then cannot be matched by their exact copy."""
    gone = {normalize_for_match(t) for t in texts if t}
    bots = {k: b.model_copy(update={"similar": [s for s in b.similar
                                                if normalize_for_match(s) not in gone]})
            for k, b in catalog.bots.items()}
    return replace(catalog, bots=bots)


# ---- the report -----------------------------------------------------------------------------
@dataclass(slots=True)
class Outcome:
    row: EvalRow
    text: str  # what was matched (recognised text for audio rows)
    routed: Routed
    asr_s: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)  # speech_s, segments, confidence ...

    @property
    def verdict(self) -> Verdict:
        return verdict(self.row.expected, self.routed)

    def as_dict(self) -> dict[str, Any]:
        r = self.routed
        return {
            "line": self.row.line, "kind": self.row.kind, "input": self.row.input,
            "expected": self.row.expected, **self.row.extra, "text": self.text,
            "decision": r.decision, "bot": r.bot, "score": round(r.score, 4), "layer": r.layer,
            "why": r.why, "options": list(r.options), "verdict": self.verdict,
            "asr_s": None if self.asr_s is None else round(self.asr_s, 3), **self.detail,
        }  # fmt: skip


def _rates(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    n = len(outcomes)
    c = Counter(o.verdict for o in outcomes)
    ok = sum(1 for o in outcomes if o.verdict == "clarify" and o.row.expected in o.routed.options)
    return {
        "n": n, "right": c["right"], "wrong": c["wrong"], "clarify": c["clarify"],
        "clarify_ok": ok, "no_match": c["no_match"],
        "accuracy": c["right"] / n if n else None,
        "wrong_rate": c["wrong"] / n if n else None,
        "clarify_rate": c["clarify"] / n if n else None,
        "no_match_rate": c["no_match"] / n if n else None,
    }  # fmt: skip


def summarize(outcomes: Sequence[Outcome], top: int = 10) -> dict[str, Any]:
    """Overall and per-kind / per-source rates, per-bot accuracy, the top confusions and the
    mean ASR time per audio utterance."""
    out = _rates(outcomes)
    for key, group in (("by_kind", lambda o: o.row.kind),
                       ("by_source", lambda o: o.row.extra.get("source", ""))):
        groups: dict[str, list[Outcome]] = {}
        for o in outcomes:
            groups.setdefault(group(o), []).append(o)
        out[key] = {g: _rates(v) for g, v in sorted(groups.items())}
    per_bot: dict[str, list[Outcome]] = {}
    for o in outcomes:
        per_bot.setdefault(o.row.expected, []).append(o)
    out["per_bot"] = {b: {"n": len(v), "right": sum(o.verdict == "right" for o in v),
                          "accuracy": sum(o.verdict == "right" for o in v) / len(v)}
                      for b, v in sorted(per_bot.items())}
    confusions = Counter(
        (o.row.expected, o.routed.bot if o.verdict == "wrong" else o.verdict)
        for o in outcomes if o.verdict != "right")
    out["confusions"] = [{"expected": e, "got": g, "count": k}
                         for (e, g), k in confusions.most_common(top)]
    asr = [o.asr_s for o in outcomes if o.asr_s is not None]
    out["asr_mean_s"] = statistics.fmean(asr) if asr else None
    out["asr_utterances"] = len(asr)
    return out


# ---- the generated development / test split ------------------------------------------------
@dataclass(frozen=True, slots=True)
class Item:
    bot: str
    source: str  # similar | paraphrase
    text: str
    part: str = ""  # paraphrases: train | dev | test (split_paraphrases)


def read_items(path: Path) -> list[Item]:
    """A ``bot, source, text`` (or ``bot, text``: paraphrase) TSV with a header."""
    items: list[Item] = []
    with path.open(encoding="utf-8") as f:
        rows = [r for r in csv.reader((ln for ln in f if ln.strip() and not ln.startswith("#")),
                                      delimiter="\t", quoting=csv.QUOTE_NONE)]
    if not rows:
        return items
    head = rows[0]
    for r in rows[1:]:
        v = dict(zip(head, r, strict=False))
        items.append(Item(v["bot"], v.get("source", "paraphrase"), v["text"], v.get("part", "")))
    return items


def split_paraphrases(paraphrases: Sequence[Item], seed: int = SPLIT_SEED) -> list[Item]:
    """Each bot's paraphrases, shuffled with a seed per bot and dealt once into parts:
    ``TRAIN_SHARE`` of them (rounded) to ``train`` (they become the bot's similar questions:
    callers' own words to learn from), the rest half to ``dev`` and half (the odd one) to
    ``test``. Written into ``paraphrases.tsv`` once; never re-dealt to improve a figure."""
    out: list[Item] = []
    for bot in sorted({p.bot for p in paraphrases}):
        rng = random.Random(f"{seed}:paraphrases:{bot}")
        para = [p for p in paraphrases if p.bot == bot]
        rng.shuffle(para)
        n_train = round(len(para) * TRAIN_SHARE)
        n_dev = (len(para) - n_train) // 2
        parts = ["train"] * n_train + ["dev"] * n_dev + ["test"] * (len(para) - n_train - n_dev)
        out += [replace(p, source="paraphrase", part=part) for p, part in zip(para, parts,
                                                                              strict=True)]
    return out


def split(catalog: Catalog, paraphrases: Sequence[Item],
          seed: int = SPLIT_SEED) -> dict[str, list[Item]]:
    """The dev and test parts: each bot's dev or test paraphrases (their part as dealt by
    :func:`split_paraphrases`), then its similar questions, shuffled with a seed per bot, half
    and half (the paraphrases of the train part, which the bots now hold as similar
    questions, are in neither). Within a bot, paraphrases come first (so ``--per-bot N``
    always includes the harder ones)."""
    parts: dict[str, list[Item]] = {"dev": [], "test": []}
    train = {(p.bot, p.text) for p in paraphrases if p.part == "train"}
    for bot in sorted(catalog.bots.values(), key=lambda b: b.id):
        rng = random.Random(f"{seed}:{bot.id}")
        sim = [Item(bot.id, "similar", s) for s in dict.fromkeys(bot.similar)
               if (bot.id, s) not in train]
        rng.shuffle(sim)
        cut_s = len(sim) // 2
        for name, half in (("dev", sim[:cut_s]), ("test", sim[cut_s:])):
            para = [Item(p.bot, "paraphrase", p.text) for p in paraphrases
                    if p.bot == bot.id and p.part == name]
            parts[name] += para + half
    return parts


def write_items(path: Path, items: Sequence[Item], comment: str) -> None:
    lines = [f"# {comment}", "bot\tsource\ttext", *(f"{i.bot}\t{i.source}\t{i.text}"
                                                    for i in items)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def pick(items: Sequence[Item], per_bot: int | None) -> list[Item]:
    """The first ``per_bot`` items of each bot (all when None), in file order."""
    seen: Counter[str] = Counter()
    out = []
    for it in items:
        if per_bot is None or seen[it.bot] < per_bot:
            seen[it.bot] += 1
            out.append(it)
    return out
