"""Character error rate, the usual ASR figure for Chinese (Simplified, punctuation stripped)."""

from __future__ import annotations

from asr.text import normalize


def edit_distance(ref: str, hyp: str) -> int:
    """Levenshtein distance over characters (substitutions, insertions, deletions)."""
    if len(ref) < len(hyp):
        ref, hyp = hyp, ref
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i]
        for j, h in enumerate(hyp, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h)))
        prev = cur
    return prev[-1]


def cer(reference: str, hypothesis: str) -> float:
    """Edits over reference characters, both normalised (``asr.text.normalize``) first.
    An empty reference scores 0.0 against an empty hypothesis, 1.0 otherwise."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(ref, hyp) / len(ref)
