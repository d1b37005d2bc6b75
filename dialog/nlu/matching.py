"""Intent matching for the hotline's top-level menu: which business does the caller want?

Each intent (:class:`IntentSpec`) has a standard question, colloquial similar questions,
optional rules (:mod:`dialog.nlu.rules`) and keywords. A query is normalised with
:func:`~dialog.nlu.text.normalize_for_match` and scored per intent by independent layers,
each in [0, 1] and each with a readable ``why``:

``rule``
    1.0 when one of the intent's rules matches. A rule whose positive part matches but whose
    negation guard fires *vetoes* the intent altogether (解除挂失 is never 挂失).
``similar``
    Character unigram+bigram TF-IDF cosine against the standard and similar questions (max
    over questions; IDF counts *intents*, so words every intent shares weigh ~nothing;
    the cosine is multiplied by ``COSINE_GAIN`` = 1.25, capped at 1), or containment: a query
    that contains a question or keyword scores
    ``0.8 + 0.2 * len(phrase) / len(query)`` (1.0 for an exact match).
``pinyin``
    The same two measures on fuzzy pinyin syllables (:mod:`dialog.nlu.pinyin`; unigrams +
    bigrams), catching ASR homophone errors (鱼鹅 for 余额), scaled by 0.95 so that an exact
    character match wins a tie.
``semantic``
    The trained layer (:mod:`dialog.nlu.classifier`): the calibrated probability that the
    request asks for the intent, learnt from every intent's questions at once (characters,
    pinyin and, with an ``embedder``, sentence embeddings), with a "no bot" class trained on
    ``no_bot`` sentences (requests no intent handles).

An intent's score is the maximum over its layers, plus ``AGREE_BONUS`` (0.05) when at least
two layers each score >= ``AGREE_FLOOR`` (0.5), capped at 1.0; the candidate's ``layer`` is
the strongest one. Decision, with ``s1``/``s2`` the best scores of the two best intents:
``match`` when ``s1 >= threshold`` and ``s1 - s2 >= clarify_margin``; ``clarify`` when both
are ``>= 0.8 * threshold`` and ``s1 - s2 < clarify_margin``, or when ``s1`` itself is only
``>= UNSURE_FLOOR * threshold`` (unsure: ask "A or B?" with the two best rather than guess or
give up); otherwise ``no_match``.

The trained layer also checks the word layers, so that a word never wins alone against the
sense of the whole request (measured with ``ivr eval intents`` and ``ivr eval dialogs`` on
``dialog/evalsets/dev.tsv``; figures in the README):

- a rule does not count when the trained layer gives its intent less than ``RULE_DOUBT`` while
  another intent gets ``RULE_CONTRARY`` or more (strong contrary evidence);
- a match that the trained layer gives less than ``AGREE_P`` is disputed: no match when it
  finds "no bot" likelier (and no rule matched), else a question: "A or B?" with its own
  choice as B, or a yes/no question when it has none other. On the recogniser's words
  (``heard``) a match needs even odds (``HEARD_AGREE_P``, 0.5): a rule or a sound-alike
  fires on a misheard word as readily as on a said one (on dev spoken, wrong bots 4.4 % ->
  1.5 %; figures in the README);
- a match on the trained layer alone below ``SEMANTIC_SURE`` is asked first (yes/no);
- an either/or question offers after the best only candidates the trained layer gives at
  least ``PLAUSIBLE`` (none left: a yes/no question about the best).

What the caller says after correcting themselves is what is scored
(:mod:`dialog.nlu.correction`: 我想补卡，不对，先挂失 is 先挂失).

**A caller's earlier tries** at the same request (not understood, or a 不是 to a question about
it) are evidence too: ``match(prior=...)`` takes the trained layer's probabilities of those
tries (``MatchResult.proba``; a bot the caller said no to at 0) and weighs each bot's
probability for the new try by them (``combine_evidence``). Two hearings of one request that
lean to the same bot make it surer; one heard as nothing in particular changes nothing. And a
retry enters a bot on the trained layer from ``RETRY_SURE`` (0.75) instead of
``SEMANTIC_SURE``: the caller has already been asked once. Chosen on dev spoken (``ivr eval
dialogs speech.json --holdout --part dev/audio``; figures in the README).
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix

from dialog.nlu.classifier import NONE_CLASS, IntentClassifier, train_classifier
from dialog.nlu.correction import intended
from dialog.nlu.pinyin import fuzzy_pinyin
from dialog.nlu.rules import Rule, compile_rule
from dialog.nlu.text import normalize_for_match

__all__ = [
    "AGREE_BONUS",
    "AGREE_FLOOR",
    "Candidate",
    "Embedder",
    "IntentMatcher",
    "IntentSpec",
    "MatchResult",
    "combine_evidence",
    "leave_one_out_accuracy",
    "without_rules",
]

Embedder = Callable[[list[str]], list[list[float]]]
Layer = Literal["rule", "similar", "pinyin", "semantic"]

AGREE_FLOOR = 0.5
AGREE_BONUS = 0.05
CONTAIN_BASE = 0.8
PINYIN_WEIGHT = 0.95
COSINE_GAIN = 1.25  # calibrates cosine so a clear paraphrase reaches ~0.6
CLARIFY_FLOOR = 0.8  # of threshold
UNSURE_FLOOR = 0.85  # of threshold: a best score this high (but below it) asks "A or B?"
MAX_CANDIDATES = 5
RULE_DOUBT = 0.1  # a rule's intent this unlikely to the trained layer ...
RULE_CONTRARY = 0.5  # ... while another intent is this likely: the rule does not count
SEMANTIC_SURE = 0.9  # the trained layer alone enters a bot from here; below, it asks first
PLAUSIBLE = 0.05  # of the trained layer: an either/or question's second option at least this likely
AGREE_P = 0.3  # a match the trained layer gives less than this is disputed (a question)
HEARD_AGREE_P = 0.5  # the same for the recogniser's words: a match needs even odds
NONE_VETO = 0.3  # "no bot" at least this likely (and likeliest) makes a disputed match none
PRIOR_WEIGHT = 0.5  # an earlier try's evidence counts this much against the new try's
RETRY_SURE = 0.75  # with earlier tries: the trained layer alone enters a bot from here
PRIOR_FLOOR = 0.05  # the least weight: a bot said no to (0) is unlikely, not ruled out


@dataclass(frozen=True)
class IntentSpec:
    id: str
    name: str
    standard: str
    similar: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class Candidate:
    intent: str
    score: float
    layer: str  # rule | similar | pinyin | semantic
    why: str


@dataclass(frozen=True)
class MatchResult:
    decision: Literal["match", "clarify", "no_match"]
    best: Candidate | None
    candidates: tuple[Candidate, ...]
    # the trained layer's probabilities (with ``prior``, combined): evidence for the next try
    proba: Mapping[str, float] = field(default_factory=dict)


def _char_features(text: str) -> list[str]:
    return list(text) + [text[i:i + 2] for i in range(len(text) - 1)]


def _pinyin_features(syllables: Sequence[str]) -> list[str]:
    return list(syllables) + [f"{a}_{b}" for a, b in pairwise(syllables)]


class _Tfidf:
    """Cosine similarity of a query against fixed documents (L2-normalised TF-IDF rows)."""

    def __init__(self, docs: Sequence[Sequence[str]], groups: Sequence[int]) -> None:
        # Document frequency counts intents, not questions: a feature found in every intent
        # (我想, 一下) carries almost no weight however many questions repeat it.
        seen: dict[str, set[int]] = {}
        for doc, g in zip(docs, groups, strict=True):
            for f in doc:
                seen.setdefault(f, set()).add(g)
        n = len(set(groups))
        self.vocab = {f: i for i, f in enumerate(sorted(seen))}
        self.idf = np.array([math.log((1 + n) / len(seen[f])) for f in sorted(seen)])
        self.oov_idf = math.log(1 + n)
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        for r, doc in enumerate(docs):
            counts = Counter(doc)
            w = {self.vocab[f]: c * self.idf[self.vocab[f]] for f, c in counts.items()}
            norm = math.sqrt(sum(v * v for v in w.values())) or 1.0
            for c, v in w.items():
                rows.append(r)
                cols.append(c)
                vals.append(v / norm)
        self.matrix = csr_matrix((vals, (rows, cols)), shape=(len(docs), max(1, len(self.vocab))))

    def scores(self, features: Sequence[str]) -> NDArray[np.float64]:
        q = np.zeros(self.matrix.shape[1])
        norm2 = 0.0
        for f, c in Counter(features).items():
            i = self.vocab.get(f)
            if i is None:
                norm2 += (c * self.oov_idf) ** 2  # unknown words still dilute the query
            else:
                q[i] = c * self.idf[i]
                norm2 += q[i] ** 2
        if norm2 == 0.0:
            return np.zeros(self.matrix.shape[0])
        return np.asarray(self.matrix @ q, dtype=np.float64) / math.sqrt(norm2)


@dataclass
class _Layer:
    score: float = 0.0
    why: str = ""


class IntentMatcher:
    """Scores a caller's utterance against intents; see the module docstring."""

    def __init__(self, intents: Sequence[IntentSpec], *, threshold: float = 0.6,
                 clarify_margin: float = 0.08, embedder: Embedder | None = None,
                 semantic: bool = True, no_bot: Sequence[str] = (),
                 heard: Sequence[tuple[str, str, str]] = ()) -> None:
        self.intents = tuple(intents)
        self.threshold = threshold
        self.clarify_margin = clarify_margin
        self._rules: list[list[Rule]] = [[compile_rule(r) for r in it.rules]
                                         for it in self.intents]
        # Flattened phrases; _owner maps each to its intent, _is_keyword marks keywords (which
        # only count by containment, not by cosine).
        texts: list[str] = []
        owner: list[int] = []
        is_kw: list[bool] = []
        for k, it in enumerate(self.intents):
            # a question with a self-correction is learnt as what is scored (its intended part)
            for raw in dict.fromkeys(intended(q) for q in (it.standard, *it.similar)):
                texts.append(raw)
                owner.append(k)
                is_kw.append(False)
            for raw in dict.fromkeys(it.keywords):
                texts.append(raw)
                owner.append(k)
                is_kw.append(True)
        self._texts = texts
        self._owner = np.array(owner, dtype=np.int64)
        self._is_kw = np.array(is_kw, dtype=bool)
        self._norm = [normalize_for_match(t) for t in texts]
        self._pinyin = [tuple(fuzzy_pinyin(t)) for t in self._norm]
        self._pinyin_str = [f" {' '.join(p)} " for p in self._pinyin]
        ex = [i for i in range(len(texts)) if not is_kw[i]]
        self._char = _Tfidf([_char_features(self._norm[i]) for i in ex], [owner[i] for i in ex])
        self._py = _Tfidf([_pinyin_features(self._pinyin[i]) for i in ex], [owner[i] for i in ex])
        self._ex_index = np.array(ex, dtype=np.int64)
        # Examples are contiguous per intent: one reduceat group per intent that has any.
        ex_owner = self._owner[self._ex_index]
        change = np.flatnonzero(np.diff(ex_owner)) + 1 if len(ex) else np.zeros(0, np.int64)
        self._starts = np.concatenate(([0], change)).astype(np.int64) if len(ex) else change
        self._ends = np.append(self._starts[1:], len(ex)).astype(np.int64)
        self._group_owner = ex_owner[self._starts] if len(ex) else self._starts
        self._emb: NDArray[np.float64] | None = None
        self.classifier: IntentClassifier | None = None
        self._written: list[tuple[str, str]] = []
        self._heard_rows: list[tuple[str, str, str]] = []
        self._embedder = embedder
        self._heard_model: IntentClassifier | None = None
        self._heard_lock = threading.Lock()
        if semantic and ex:
            self._written = ([(self.intents[owner[i]].id, texts[i]) for i in ex]
                             + [(NONE_CLASS, t) for t in no_bot])
            self.classifier = train_classifier(self._written, embedder=embedder)
            self._heard_rows = self._heard(heard, no_bot)
        self._index_of = {it.id: k for k, it in enumerate(self.intents)}

    @property
    def heard_classifier(self) -> IntentClassifier | None:
        """The trained layer for recognised speech: also learnt from what the recogniser heard
        of the questions (the written one when nothing was heard). Trained on first use, so
        that typed-only users (web chat, a bot's tests) never pay for it; a server warms it
        (``warm``) before callers do."""
        if not self._heard_rows or self.classifier is None:
            return self.classifier
        if self._heard_model is not None:  # trained: no lock on a caller's turn
            return self._heard_model
        with self._heard_lock:
            if self._heard_model is None:
                self._heard_model = train_classifier(self._written, heard=self._heard_rows,
                                                     embedder=self._embedder)
            return self._heard_model or self.classifier

    def warm(self) -> None:
        """Train whatever is trained on first use now (blocking: call it off the event loop)."""
        _ = self.heard_classifier

    def _heard(self, heard: Sequence[tuple[str, str, str]],
               no_bot: Sequence[str]) -> list[tuple[str, str, str]]:
        """The recogniser's hearing of each question still asked (``(bot, said, heard)``,
        ``dialog.catalog.heard_examples``) as one more example of its bot (or of "no bot"):
        a question removed or held out takes its heard text with it."""
        asked = {(it.id, normalize_for_match(q)) for it in self.intents
                 for q in (it.standard, *it.similar)}
        asked |= {(NONE_CLASS, normalize_for_match(t)) for t in no_bot}
        out = []
        for bot, said, h in heard:
            words = intended(h)
            if words.strip() and (bot, normalize_for_match(said)) in asked:
                out.append((bot, intended(said), words))
        return out

    # ---- scoring -----------------------------------------------------------------------
    def _layers(self, q: str, exclude: int | None) -> dict[int, dict[str, _Layer]]:
        n = len(self.intents)
        out: dict[int, dict[str, _Layer]] = {k: {} for k in range(n)}

        def offer(k: int, layer: str, score: float, why: str) -> None:
            cur = out[k].setdefault(layer, _Layer())
            if score > cur.score:
                cur.score, cur.why = score, why

        qpy = fuzzy_pinyin(q)
        qpy_str = f" {' '.join(qpy)} "
        per_example = {
            "similar": np.minimum(1.0, self._char.scores(_char_features(q)) * COSINE_GAIN),
            "pinyin": np.minimum(1.0, self._py.scores(_pinyin_features(qpy)) * COSINE_GAIN)
            * PINYIN_WEIGHT,
        }
        for layer, scores in per_example.items():
            if exclude is not None:
                scores = np.where(self._ex_index == exclude, 0.0, scores)
            best = np.maximum.reduceat(scores, self._starts) if len(scores) else np.zeros(0)
            what = {"similar": "char cosine", "pinyin": "pinyin cosine"}[layer]
            for g in np.flatnonzero(best > 0).tolist():
                lo, hi = int(self._starts[g]), int(self._ends[g])
                src = self._texts[int(self._ex_index[lo + int(np.argmax(scores[lo:hi]))])]
                offer(int(self._group_owner[g]), layer, float(best[g]),
                      f"{what} {best[g]:.2f} with '{src}'")
        for i, phrase in enumerate(self._norm):
            if i == exclude or not phrase or len(phrase) < 2:
                continue
            k = int(self._owner[i])
            kind = "keyword" if self._is_kw[i] else "question"
            if phrase in q:
                score = CONTAIN_BASE + (1 - CONTAIN_BASE) * len(phrase) / len(q)
                offer(k, "similar", score, f"contains {kind} '{self._texts[i]}'")
            elif len(self._pinyin[i]) >= 2 and self._pinyin_str[i] in qpy_str:
                score = CONTAIN_BASE + (1 - CONTAIN_BASE) * len(self._pinyin[i]) / len(qpy)
                offer(k, "pinyin", score * PINYIN_WEIGHT,
                      f"sounds like {kind} '{self._texts[i]}' ({self._pinyin_str[i].strip()})")
        return out

    def _disputed(self, top: tuple[Candidate, ...], proba: dict[str, float], p_none: float,
                  allowed: set[int]) -> MatchResult:
        """A match the trained layer does not share: no bot when it finds "no bot" likelier
        (unless a rule matched), else a question: "A or B?" with its own choice, or a yes/no."""
        best = top[0]
        ids = {self.intents[k].id for k in allowed}
        mine = max((p for i, p in proba.items() if i in ids), default=0.0)
        if p_none >= mine and best.layer != "rule" and p_none >= NONE_VETO:
            return MatchResult("no_match", None, top)
        alt = max(ids, key=lambda i: proba.get(i, 0.0))
        if alt == best.intent:
            return MatchResult("clarify", best, (best,))
        other = Candidate(alt, best.score, "semantic",
                          f"trained layer p={proba.get(alt, 0.0):.2f} (against {best.why})")
        return MatchResult("clarify", best, (best, other, *(c for c in top[1:]
                                                            if c.intent != alt)))

    @staticmethod
    def _contrary(intent: str, proba: dict[str, float]) -> bool:
        """Strong contrary evidence against ``intent``: the trained layer finds it (nearly)
        impossible and another bot likely."""
        if not proba:
            return False
        other = max((p for i, p in proba.items() if i not in (intent, NONE_CLASS)), default=0.0)
        return proba.get(intent, 0.0) < RULE_DOUBT and other >= RULE_CONTRARY

    def match(self, text: str, *, only: Collection[str] | None = None,
              heard: bool = False, prior: Mapping[str, float] | None = None) -> MatchResult:
        """Decide which intent ``text`` asks for; ``only`` restricts to these intent ids;
        ``heard``: the text is the recogniser's (a call), not typed; ``prior``: the
        evidence of the caller's earlier tries at the same request (``MatchResult.proba``),
        combined with the trained layer's (``combine_evidence``)."""
        return self._match(text, only=only, exclude=None, heard=heard, prior=prior)

    def _match(self, text: str, *, only: Collection[str] | None,
               exclude: int | None, heard: bool = False,
               prior: Mapping[str, float] | None = None) -> MatchResult:
        text = intended(text)  # 我想补卡，不对，先挂失: what follows the correction
        q = normalize_for_match(text)
        if not q:
            return MatchResult("no_match", None, (), dict(prior or {}))
        clf = self.heard_classifier if heard else self.classifier
        proba = clf.proba(text) if clf is not None else {}
        if prior and proba:
            proba = combine_evidence(proba, prior)
        sure = RETRY_SURE if prior else SEMANTIC_SURE
        agree = HEARD_AGREE_P if heard else AGREE_P
        return replace(self._decide(text, q, only, exclude, proba, sure, agree), proba=proba)

    def _decide(self, text: str, q: str, only: Collection[str] | None, exclude: int | None,
                proba: dict[str, float], sure: float, agree: float) -> MatchResult:
        allowed = (set(range(len(self.intents))) if only is None
                   else {self._index_of[i] for i in only if i in self._index_of})
        layers = self._layers(q, exclude)
        p_none = proba.get(NONE_CLASS, 0.0)
        cands: list[Candidate] = []
        for k in allowed:
            rules = self._rules[k]
            if any(r.vetoes(q, normalized=True) for r in rules):
                continue
            intent = self.intents[k].id
            contrary = self._contrary(intent, proba)
            hit = next((r for r in rules if r.matches(q, normalized=True)), None)
            if hit is not None and not contrary:
                layers[k]["rule"] = _Layer(1.0, f"rule '{hit.source}'")
            p = proba.get(intent, 0.0)
            if p > 0:
                layers[k]["semantic"] = _Layer(p, f"trained layer p={p:.2f}")
            scored = [(lay.score, name, lay.why) for name, lay in layers[k].items()
                      if lay.score > 0]
            if not scored:
                continue
            score, name, why = max(scored)
            if sum(1 for s, _, _ in scored if s >= AGREE_FLOOR) >= 2:
                score = min(1.0, score + AGREE_BONUS)
                why += f" (+{AGREE_BONUS} layers agree)"
            cands.append(Candidate(intent, round(score, 4), name, why))
        cands.sort(key=lambda c: -c.score)
        top = tuple(cands[:MAX_CANDIDATES])
        if not top:
            return MatchResult("no_match", None, ())
        # the very words of one intent's standard or similar question: that intent, however
        # close the others come (a curated phrase is the strongest evidence there is)
        exact = {int(self._owner[i]) for i, phrase in enumerate(self._norm)
                 if phrase == q and i != exclude and not self._is_kw[i]}
        if len(exact) == 1:
            k = exact.pop()
            own = next((c for c in cands if c.intent == self.intents[k].id), None)
            if own is not None:
                best = Candidate(own.intent, 1.0, "similar", f"exactly the question '{text}'")
                return MatchResult("match", best, (best, *(c for c in top if c is not own)))
        s1 = top[0].score
        s2 = top[1].score if len(top) > 1 else 0.0
        if s1 >= self.threshold and s1 - s2 >= self.clarify_margin:
            if proba and proba.get(top[0].intent, 0.0) < agree:
                return self._disputed(top, proba, p_none, allowed)
            if top[0].layer == "semantic" and s1 < sure:
                return MatchResult("clarify", top[0], top[:1])  # yes/no: 您是要…吗？
            return MatchResult("match", top[0], top)
        floor = CLARIFY_FLOOR * self.threshold
        if s2 >= floor and s1 - s2 < self.clarify_margin:
            return self._question(top, proba)
        if UNSURE_FLOOR * self.threshold <= s1 < self.threshold and len(top) > 1:
            # unsure: ask "A or B?" rather than guess or give up
            return self._question(top, proba)
        return MatchResult("no_match", None, top)

    @staticmethod
    def _question(top: tuple[Candidate, ...], proba: dict[str, float]) -> MatchResult:
        """An either/or question offers only what the trained layer finds plausible: the best,
        and after it only candidates with at least ``PLAUSIBLE`` (alone: a yes/no question)."""
        if proba:
            top = (top[0], *(c for c in top[1:] if proba.get(c.intent, 0.0) >= PLAUSIBLE))
        return MatchResult("clarify", top[0], top)


def combine_evidence(proba: Mapping[str, float], prior: Mapping[str, float]) -> dict[str, float]:
    """The trained layer's probabilities of a new try, each bot's weighed by what the earlier
    tries gave it against an even share, raised to ``PRIOR_WEIGHT`` and at least
    ``PRIOR_FLOOR``, renormalised. Two hearings that lean to the same bot make it surer; an
    earlier try heard as nothing in particular (an even spread, or "no bot": a mishearing is
    not a request for no bot) changes nothing; "no bot" itself is weighed by the new try alone.
    """
    bots = {i: p for i, p in prior.items() if i != NONE_CLASS}
    total = sum(bots.values())
    if total <= 0 or not bots:
        return dict(proba)
    even = total / len(bots)
    out = {i: p if i == NONE_CLASS
           else p * max((bots.get(i, even) / even) ** PRIOR_WEIGHT, PRIOR_FLOOR)
           for i, p in proba.items()}
    norm = sum(out.values())
    return {i: p / norm for i, p in out.items()} if norm > 0 else dict(proba)


def leave_one_out_accuracy(
    intents: Sequence[IntentSpec], **matcher_kwargs: Any,
) -> tuple[float, list[tuple[str, str, str]]]:
    """Hold out each similar question in turn and match it against everything else.

    Returns ``(accuracy, errors)`` with errors as ``(text, expected_id, got)`` where ``got``
    is the matched intent id, or ``"clarify"`` / ``"no_match"``. Rules and keywords stay in
    place (they are part of the deployed intent). The index is built once and the held-out
    question is masked out of it (IDF statistics still include it, a negligible leak).
    """
    matcher = IntentMatcher(intents, **{"semantic": False, **matcher_kwargs})
    total = 0
    errors: list[tuple[str, str, str]] = []
    for i, raw in enumerate(matcher._texts):
        k = int(matcher._owner[i])
        spec = matcher.intents[k]
        if matcher._is_kw[i] or raw == spec.standard or raw not in spec.similar:
            continue
        total += 1
        result = matcher._match(raw, only=None, exclude=i)
        got = result.best.intent if result.decision == "match" and result.best else result.decision
        if got != spec.id:
            errors.append((raw, spec.id, got))
    return (1.0 - len(errors) / total if total else 1.0), errors


def without_rules(intents: Sequence[IntentSpec]) -> list[IntentSpec]:
    """The intents stripped of rules and keywords, to measure the similar-question layers."""
    return [replace(it, rules=(), keywords=()) for it in intents]
