"""``ivr eval rescore``'s bookkeeping (ivr/tools/evalrescore.py): which phrases are scored and
how the matcher's and the recogniser's scores are summed; the model itself is not loaded."""

from __future__ import annotations

from typing import Any

from ivr.tools.evalrescore import nearest_phrases, summarize
from tests.catalogs import shipped_catalog


def test_a_candidate_is_scored_by_its_standard_and_the_questions_nearest_what_was_heard() -> None:
    catalog = shipped_catalog()
    phrases = nearest_phrases(catalog, "fuel_balance", "油卡里还剩多少钱", 3)
    assert phrases[0] == catalog.bots["fuel_balance"].standard and len(phrases) == 3
    assert all(p in catalog.bots["fuel_balance"].similar for p in phrases[1:])
    assert any("剩" in p or "多少钱" in p for p in phrases[1:])


def row(expected: str, decision: str, *cands: tuple[str, float, float]) -> dict[str, Any]:
    return {"expected": expected, "decision": decision, "candidates": [list(c) for c in cands],
            "cost_s": 0.4, "sequences": 4 * len(cands)}


def test_the_sum_lets_a_clear_acoustic_margin_overturn_a_close_matcher_call() -> None:
    rows = [row("a", "clarify", ("b", 0.60, -2.0), ("a", 0.58, -0.5)),
            row("a", "match", ("a", 0.90, -1.0), ("b", 0.30, -0.2)),
            {"expected": "c", "candidates": []}]
    s = summarize(rows)
    assert (s["n"], s["scored"], s["unsure"], s["in_candidates"]) == (3, 2, 1, 2)
    assert s["sum_right"]["0.0"] == 1  # the matcher alone: only the sure match
    assert s["acoustic_right"] == 1  # the recogniser alone: only the close call
    assert s["sum_right"]["0.1"] == 2 and s["sum_right_unsure"]["0.1"] == 1
    assert s["cost_ms"]["p50"] == 400 and s["sequences"] == 8
