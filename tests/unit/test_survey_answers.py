"""The survey's understanding of answers as customers say them (``ivr eval survey`` as text),
and the answers file's own checks. Spoken, the same set is a measurement (README), not a test."""

from __future__ import annotations

from pathlib import Path

import pytest

from campaigns.survey import load_survey
from campaigns.surveydialog import wants_no_calls
from ivr.tools.evalsurvey import hints_for, judge, judge_texts, read_answers


async def test_every_shipped_answer_is_understood_as_text() -> None:
    spec = load_survey("satisfaction")
    rows = read_answers()
    assert len(rows) >= 60 and {r.question for r in rows} == {
        "consent", "csat", "nps", "resolved"}
    report = await judge_texts(spec, rows)
    wrong = [(v.row.text, v.got, v.row.expected) for v in report.verdicts
             if v.result != "right"]
    assert not wrong, wrong


@pytest.mark.parametrize(("text", "dnc"), [
    ("别再给我打电话了", True), ("不用再打了", True), ("以后不要再来电", True),
    ("不要在打了", True),  # 在 for 再: how the recogniser often writes it
    ("拉黑吧", True), ("我不要打分", False), ("不用了", False), ("不要了", False),
])
def test_do_not_call_as_said(text: str, dnc: bool) -> None:
    assert wants_no_calls(text) is dnc


async def test_verdicts_and_hints() -> None:
    spec = load_survey("satisfaction")
    assert await judge(spec, "consent", "嗯，行吧") == "yes"
    assert await judge(spec, "csat", "我也说不好") == "none"  # asked again, not guessed
    assert await judge(spec, "resolved", "没有") == "no"
    # 在 for 再, as Whisper base writes it: asked again, never read as a score of 1
    assert await judge(spec, "csat", "你在说一遍") == "repeat"
    assert await judge(spec, "nps", "等一下，八分吧") == "8"
    assert hints_for(spec, "consent") and "满意" in (hints_for(spec, "csat") or "")
    with pytest.raises(ValueError, match="no question"):
        await judge(spec, "nosuch", "可以")


def test_bad_answers_file(tmp_path: Path) -> None:
    bad = tmp_path / "a.tsv"
    bad.write_text("question\texpected\ttext\nconsent\tyes\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"a.tsv:2: three"):
        read_answers(bad)
    bad.write_text("q\te\tt\n", encoding="utf-8")
    with pytest.raises(ValueError, match="header"):
        read_answers(bad)
