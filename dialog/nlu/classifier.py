"""The matcher's trained layer: which bot do these words ask for, as a calibrated probability.

The other layers measure how close a request is to *one* question of a bot (the best cosine,
a rule). This one learns from *all* of them at once which words tell the bots apart and which
do not: 没到账 points to the two recharge bots, 燃气 or 油卡 then picks one, while 我想问一下
or 那个 weigh nothing because every bot has them. So a caller who words a request in a way no
question has (symptom first, colloquial, with filler) still lands where the words point.

Features of a sentence (normalised by :func:`~dialog.nlu.text.normalize_for_match`), three
blocks, each L2-normalised and then weighted:

- characters: unigrams, bigrams and trigrams (``CHAR_WEIGHT``);
- fuzzy pinyin syllables (:mod:`dialog.nlu.pinyin`): unigrams and bigrams, so that the
  recogniser's homophones (鱼鹅 for 余额) carry the same evidence (``PINYIN_WEIGHT``);
- optionally a sentence embedding (the catalog's embedder, ``EMBED_WEIGHT``).

Model: multinomial logistic regression with an L2 penalty (``L2``), fitted by L-BFGS on every
bot's standard and similar questions (each bot weighs the same however many questions it has;
the "no bot" class weighs ``NONE_WEIGHT`` bots, so small talk is not pulled to the nearest bot),
and on what the recogniser heard of them (``dialog/nlu/heard.tsv``, ``ivr bots hear``; each
``HEARD_WEIGHT`` of a written question): a caller's words reach the matcher as Whisper writes
them, with mishearings that repeat (相遇 for 余额), which no written question has.

Calibration: one temperature, fitted on out-of-fold logits (``FOLDS``-fold cross-validation
over the same questions, by bot; a heard text in its question's fold) to minimise the log
loss, so that a probability of 0.8 is right about 8 times in 10 on sentences the model has
not seen; ``ivr eval intents`` reports the expected calibration error on the evaluation set.
Nothing is fitted on dev or test.

Training takes well under a second for 34 bots (more with an embedder, which embeds every
question once); classifiers are kept by the content of what they were trained on, so loading
the same catalog again costs nothing.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize, minimize_scalar
from scipy.sparse import csr_matrix, hstack

from dialog.nlu.pinyin import fuzzy_pinyin
from dialog.nlu.text import normalize_for_match, to_simplified

__all__ = ["CHAR_WEIGHT", "EMBED_WEIGHT", "FOLDS", "HEARD_WEIGHT", "L2", "NONE_CLASS",
           "NONE_WEIGHT", "PINYIN_WEIGHT", "IntentClassifier", "train_classifier"]

log = logging.getLogger("dialog.nlu")

Embedder = Callable[[list[str]], list[list[float]]]
Floats = NDArray[np.float64]

CHAR_WEIGHT = 1.0
NONE_CLASS = "_none"  # the class of requests no bot handles (``dialog/nlu/no_bot.txt``)
# "no bot" weighs as much as this many bots: chosen on dev (out-of-scope dev requests taken by a
# bot 5 -> 0 of 40, paraphrases within two turns 94.1 -> 93.6 %; 2 gave 2 of 40 and 93.6 %)
NONE_WEIGHT = 4.0
PINYIN_WEIGHT = 0.7
EMBED_WEIGHT = 5.0
L2 = 1e-3  # per example (mean loss + L2/2 * |W|^2)
FOLDS = 4
# a heard example (the recogniser's text of a question, ``dialog/nlu/heard.tsv``) weighs this much
# of a written question within its class: chosen on dev spoken (0.5, 1 and 2 give 75.0, 75.7
# and 75.0 % within two turns)
HEARD_WEIGHT = 1.0
MIN_DF = 2.0  # questions a feature must occur in (1: twice the training time, same dev figures)
MAXCOR = 10.0  # L-BFGS memory
MAX_ITER = 40  # converged for routing: 40, 80 and 300 give the same dev figures
_CACHE_MAX = 8


def _features(text: str) -> tuple[list[str], list[str]]:
    q = normalize_for_match(text)
    chars = [*q, *(q[i:i + 2] for i in range(len(q) - 1)),
             *(q[i:i + 3] for i in range(len(q) - 2))]
    py = fuzzy_pinyin(q)
    return chars, [*py, *(f"{a}_{b}" for a, b in pairwise(py))]


def _block(rows: Sequence[Sequence[str]], vocab: dict[str, int], weight: float) -> csr_matrix:
    r: list[int] = []
    c: list[int] = []
    v: list[float] = []
    for i, feats in enumerate(rows):
        counts = Counter(f for f in feats if f in vocab)
        norm = math.sqrt(sum(n * n for n in counts.values())) or 1.0
        for f, n in counts.items():
            r.append(i)
            c.append(vocab[f])
            v.append(weight * n / norm)
    return csr_matrix((v, (r, c)), shape=(len(rows), max(1, len(vocab))))


def _softmax(z: Floats) -> Floats:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)


def _fit(x_sparse: csr_matrix, x_dense: Floats | None, y: NDArray[np.int64],
         weights: Floats, k: int) -> tuple[Floats, Floats | None, Floats]:
    """Weighted multinomial logistic regression; returns (W_sparse, W_dense, bias)."""
    d_s = x_sparse.shape[1]
    d_d = 0 if x_dense is None else x_dense.shape[1]
    onehot = np.zeros((len(y), k))
    onehot[np.arange(len(y)), y] = 1.0
    w_sum = float(weights.sum())

    def unpack(theta: Floats) -> tuple[Floats, Floats | None, Floats]:
        ws = theta[: d_s * k].reshape(d_s, k)
        wd = theta[d_s * k: (d_s + d_d) * k].reshape(d_d, k) if d_d else None
        return ws, wd, theta[(d_s + d_d) * k:]

    def loss(theta: Floats) -> tuple[float, Floats]:
        ws, wd, b = unpack(theta)
        z = np.asarray(x_sparse @ ws) + b
        if wd is not None and x_dense is not None:
            z = z + x_dense @ wd
        zmax = z.max(axis=1, keepdims=True)
        logsum = np.log(np.exp(z - zmax).sum(axis=1, keepdims=True)) + zmax
        nll = float((weights * (logsum[:, 0] - (z * onehot).sum(axis=1))).sum()) / w_sum
        g = (np.exp(z - logsum) - onehot) * (weights[:, None] / w_sum)
        grads = [np.asarray(x_sparse.T @ g) + L2 * ws]
        if wd is not None and x_dense is not None:
            grads.append(x_dense.T @ g + L2 * wd)
        grads.append(g.sum(axis=0))
        reg = 0.5 * L2 * (float((ws * ws).sum()) + (float((wd * wd).sum()) if wd is not None
                                                     else 0.0))
        return nll + reg, np.concatenate([a.ravel() for a in grads])

    theta0 = np.zeros((d_s + d_d + 1) * k)
    res = minimize(loss, theta0, jac=True, method="L-BFGS-B",
                   options={"maxiter": int(MAX_ITER), "maxcor": int(MAXCOR)})
    return unpack(np.asarray(res.x, dtype=np.float64))


class IntentClassifier:
    """p(intent | text) over the intents it was trained on; see the module docstring."""

    def __init__(self, intents: Sequence[str], char_vocab: dict[str, int],
                 py_vocab: dict[str, int], w_char: Floats, w_py: Floats,
                 w_dense: Floats | None, bias: Floats, temperature: float,
                 embedder: Embedder | None) -> None:
        self.intents = tuple(intents)
        self._char_vocab = char_vocab
        self._py_vocab = py_vocab
        self._w_char, self._w_py, self._w_dense, self._bias = w_char, w_py, w_dense, bias
        self.temperature = temperature
        self._embedder = embedder

    def logits(self, texts: Sequence[str]) -> Floats:
        feats = [_features(t) for t in texts]
        xc = _block([f[0] for f in feats], self._char_vocab, CHAR_WEIGHT)
        xp = _block([f[1] for f in feats], self._py_vocab, PINYIN_WEIGHT)
        z = np.asarray(xc @ self._w_char) + np.asarray(xp @ self._w_py) + self._bias
        if self._w_dense is not None and self._embedder is not None:
            try:
                z = z + _embed(self._embedder, texts) @ self._w_dense
            except Exception as exc:  # any back end's failure: the words alone
                log.warning("sentence embedder failed (%s): the trained layer uses the words "
                            "alone for this request", exc)
        return np.asarray(z, dtype=np.float64)

    def proba(self, text: str) -> dict[str, float]:
        """Calibrated probability of each intent (they sum to 1)."""
        p = _softmax(self.logits([text]) / self.temperature)[0]
        return {i: float(v) for i, v in zip(self.intents, p, strict=True)}


def _embed(embedder: Embedder, texts: Sequence[str]) -> Floats:
    v = np.asarray(embedder([to_simplified(t) for t in texts]), dtype=np.float64)
    return EMBED_WEIGHT * v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-9)


def _train(examples: Sequence[tuple[str, str]], intents: Sequence[str],
           dense: Floats | None, embedder: Embedder | None,
           source: Sequence[int] = ()) -> IntentClassifier:
    """``source``: for each example after the first ``len(examples) - len(source)`` (the heard
    ones), the row of the question it was heard from (-1: none), whose fold it shares."""
    index = {i: n for n, i in enumerate(intents)}
    y = np.array([index[i] for i, _ in examples], dtype=np.int64)
    n_written = len(y) - len(source)
    raw = np.where(np.arange(len(y)) < n_written, 1.0, HEARD_WEIGHT)
    per: dict[int, float] = {}
    for c, w in zip(y.tolist(), raw.tolist(), strict=True):
        per[c] = per.get(c, 0.0) + w
    weights = np.array([len(y) * w / (len(per) * per[c])
                        for c, w in zip(y.tolist(), raw.tolist(), strict=True)])
    if NONE_CLASS in index:
        weights[y == index[NONE_CLASS]] *= NONE_WEIGHT
    feats = [_features(t) for _, t in examples]
    # features of one question only say nothing another question could share: left out
    char_df = Counter(f for c, _ in feats for f in set(c))
    py_df = Counter(f for _, p in feats for f in set(p))
    char_vocab = {f: n for n, f in enumerate(sorted(f for f, k in char_df.items() if k >= MIN_DF))}
    py_vocab = {f: n for n, f in enumerate(sorted(f for f, k in py_df.items() if k >= MIN_DF))}

    # the design matrix once; each fold takes its rows
    x = hstack([_block([c for c, _ in feats], char_vocab, CHAR_WEIGHT),
                _block([p for _, p in feats], py_vocab, PINYIN_WEIGHT)]).tocsr()

    def fit(rows: NDArray[np.int64]) -> tuple[Floats, Floats | None, Floats]:
        return _fit(x[rows], None if dense is None else dense[rows], y[rows],
                    weights[rows], len(intents))

    # out-of-fold logits for the temperature: each bot's questions dealt round the folds, a
    # heard example in its question's fold (so no fold is scored on what it learnt the sound of)
    fold = np.zeros(len(y), dtype=np.int64)
    seen: Counter[int] = Counter()
    for r, c in enumerate(y.tolist()):
        src = source[r - n_written] if r >= n_written else -1
        if src >= 0:
            fold[r] = fold[src]
            continue
        fold[r] = seen[c] % FOLDS
        seen[c] += 1
    oof = np.zeros((len(y), len(intents)))
    for f in range(FOLDS):
        tr, te = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        if not len(te) or not len(tr):
            continue
        ws, wd, b = fit(tr)
        z = np.asarray(x[te] @ ws) + b
        if wd is not None and dense is not None:
            z = z + dense[te] @ wd
        oof[te] = z

    def nll(log_t: float) -> float:
        p = _softmax(oof / math.exp(log_t))
        return float(-(weights * np.log(p[np.arange(len(y)), y] + 1e-12)).sum())

    temperature = math.exp(float(minimize_scalar(nll, bounds=(-3.0, 3.0),
                                                 method="bounded").x))
    ws, wd, b = fit(np.arange(len(y)))
    nc = len(char_vocab)
    return IntentClassifier(intents, char_vocab, py_vocab, ws[:nc], ws[nc:], wd, b,
                            temperature, embedder)


_cache: dict[str, IntentClassifier] = {}
_lock = threading.Lock()


def _key(examples: Sequence[tuple[str, str]], heard: Sequence[tuple[str, str, str]],
         embedder: Embedder | None) -> str:
    """What a classifier is a function of: its examples, the constants, and the embedder (by
    its ``name`` when it has one, so that another process finds the same file)."""
    who = (getattr(embedder, "name", None) or id(embedder)) if embedder is not None else None
    return hashlib.sha256(repr((sorted(examples), sorted(heard), CHAR_WEIGHT, PINYIN_WEIGHT,
                                EMBED_WEIGHT, L2, FOLDS, MIN_DF, MAX_ITER, NONE_WEIGHT,
                                HEARD_WEIGHT, who)).encode()).hexdigest()


def _save(clf: IntentClassifier, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    arrays: dict[str, Any] = {
        "intents": np.array(clf.intents), "char": np.array(list(clf._char_vocab)),
        "py": np.array(list(clf._py_vocab)), "w_char": clf._w_char, "w_py": clf._w_py,
        "bias": clf._bias, "temperature": np.array(clf.temperature)}
    if clf._w_dense is not None:
        arrays["w_dense"] = clf._w_dense
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _load(path: Path, embedder: Embedder | None) -> IntentClassifier | None:
    try:
        with np.load(path, allow_pickle=False) as f:
            dense = f["w_dense"] if "w_dense" in f.files else None
            if (dense is None) != (embedder is None):
                return None
            return IntentClassifier(
                f["intents"].tolist(), {t: n for n, t in enumerate(f["char"].tolist())},
                {t: n for n, t in enumerate(f["py"].tolist())}, f["w_char"], f["w_py"],
                dense, f["bias"], float(f["temperature"]), embedder)
    except (OSError, ValueError, KeyError):
        return None


def train_classifier(examples: Sequence[tuple[str, str]], *,
                     heard: Sequence[tuple[str, str, str]] = (),
                     embedder: Embedder | None = None) -> IntentClassifier | None:
    """A classifier over ``(intent, text)`` examples (None with fewer than two intents), and
    ``(intent, question, heard text)`` ones (``HEARD_WEIGHT`` each); the same examples and
    embedder give the same classifier: kept in this process and, when the embedder has a
    ``cache_dir``, in ``<cache_dir>/classifier-<key>.npz`` (a restarted server with the same
    bots loads it in milliseconds instead of training for seconds)."""
    intents = sorted({i for i, _ in examples})
    heard = [h for h in heard if h[0] in intents]
    if len(intents) < 2:
        return None
    key = _key(examples, heard, embedder)
    with _lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    folder = getattr(embedder, "cache_dir", None)
    path = Path(folder) / f"classifier-{key[:32]}.npz" if folder else None
    clf = _load(path, embedder) if path is not None and path.exists() else None
    if clf is None:
        rows = {(i, normalize_for_match(t)): r for r, (i, t) in enumerate(examples)}
        source = [rows.get((i, normalize_for_match(q)), -1) for i, q, _h in heard]
        every = [*examples, *((i, h) for i, _q, h in heard)]
        dense = None
        if embedder is not None:
            try:
                dense = _embed(embedder, [t for _, t in every])
            except Exception as exc:  # any back end's failure: the words alone
                log.warning("sentence embedder failed (%s): the trained layer learns from "
                            "the words alone", exc)
                embedder, path = None, None
        clf = _train(every, intents, dense, embedder, source)
        if path is not None:
            try:
                _save(clf, path)
            except OSError as exc:
                log.warning("trained layer not kept in %s: %s", path, exc)
    with _lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.pop(next(iter(_cache)))
        _cache[key] = clf
    return clf
