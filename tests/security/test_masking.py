"""Masking holds however a personal number is written (property-based, ``hypothesis``).

Card numbers (16-19 digits), mobiles (11 digits starting with 1), ID numbers (17 digits and a
check character that may be ``X``) and PINs (6 digits) are rendered digit by digit in random
scripts (ASCII, full-width, any Unicode decimal digit, Chinese small and financial numerals
with the ``幺``/``两`` variants), with random separators between digits, inside random Chinese
text. After ``mask_digits_in_text`` no run of 6 or more of the number's digits survives, and
masking again changes nothing.
"""

from __future__ import annotations

import re
import sys
import unicodedata

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ivr.core.privacy import RedactingFilter, mask_digits_in_text, mask_json

SMALL = {0: "〇零", 1: "一幺", 2: "二两", 3: "三", 4: "四", 5: "五", 6: "六", 7: "七", 8: "八",
         9: "九"}
FINANCIAL = "零壹贰叁肆伍陆柒捌玖"
# the zero of every Unicode decimal-digit (Nd) block
ND_ZEROS = [cp for cp in range(sys.maxunicode + 1)
            if unicodedata.category(chr(cp)) == "Nd" and unicodedata.decimal(chr(cp)) == 0]
SEPARATORS = ["", "", "", " ", "  ", "\t", "\u3000", "\u00a0", "\u200b", "，", "、", ".", ",",
              "-", "/", " - ", "， ", " 、", "．", "／", "－"]
# filler: no digit of any kind, no X, no currency sign or unit (see the amount exception)
FILLER = "请帮我查询卡号是的电话身份证密码您好谢谢用户说一下好吗啊，。！？：；（） 　\t"
FILLER = "".join(ch for ch in FILLER if ch not in "一")

_VALUES = {**{ch: d for d, chars in SMALL.items() for ch in chars},
           **{ch: d for d, ch in enumerate(FINANCIAL)}}


def value_of(ch: str) -> str | None:
    """The digit a character stands for (``X`` for the ID check letter), else None."""
    if ch in "Xx":
        return "X"
    if ch in _VALUES:
        return str(_VALUES[ch])
    d = unicodedata.digit(ch, None)
    return None if d is None else str(d)


def digits_of(text: str) -> str:
    return "".join(v for ch in text if (v := value_of(ch)) is not None)


@st.composite
def digit_char(draw: st.DrawFn, d: int) -> str:
    script = draw(st.sampled_from(["ascii", "fullwidth", "nd", "small", "financial"]))
    if script == "ascii":
        return str(d)
    if script == "fullwidth":
        return chr(0xFF10 + d)
    if script == "nd":
        return chr(draw(st.sampled_from(ND_ZEROS)) + d)
    if script == "small":
        return draw(st.sampled_from(SMALL[d]))
    return FINANCIAL[d]


@st.composite
def personal_number(draw: st.DrawFn) -> str:
    """The number's digits (``X`` allowed last), canonical ASCII."""
    kind = draw(st.sampled_from(["card", "phone", "id", "pin"]))
    digits = st.integers(0, 9).map(str)
    if kind == "card":
        n = draw(st.integers(16, 19))
        return "".join(draw(st.lists(digits, min_size=n, max_size=n)))
    if kind == "phone":
        return "1" + "".join(draw(st.lists(digits, min_size=10, max_size=10)))
    if kind == "id":
        body = "".join(draw(st.lists(digits, min_size=17, max_size=17)))
        return body + draw(st.sampled_from("0123456789X"))
    return "".join(draw(st.lists(digits, min_size=6, max_size=6)))


@st.composite
def rendered(draw: st.DrawFn) -> tuple[str, str]:
    """(canonical digits, the number as written)."""
    number = draw(personal_number())
    parts = []
    for i, ch in enumerate(number):
        if i:
            parts.append(draw(st.sampled_from(SEPARATORS)))
        parts.append(draw(st.sampled_from("Xx")) if ch == "X" else draw(digit_char(int(ch))))
    return number, "".join(parts)


def _documented_exception(written: str) -> bool:
    """Renderings the module leaves alone on purpose (a dotted IPv4 address)."""
    m = re.fullmatch(r"([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})", written)
    return m is not None and all(int(g) <= 255 for g in m.groups())


filler = st.text(alphabet=FILLER, max_size=12)
FAST = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def _assert_no_leak(number: str, masked: str) -> None:
    visible = digits_of(masked)
    assert len(visible) <= 4, (number, masked)
    for i in range(len(number) - 5):
        assert number[i:i + 6] not in visible, (number, masked)
    if len(number) >= 10 and visible:
        assert number.endswith(visible), (number, masked)  # only the tail stays visible


@FAST
@given(rendered(), filler, filler)
def test_no_run_of_six_digits_survives(num: tuple[str, str], before: str, after: str) -> None:
    number, written = num
    assume(not _documented_exception(written))
    text = before + written + after
    masked = mask_digits_in_text(text)
    _assert_no_leak(number, masked)
    assert mask_digits_in_text(masked) == masked  # idempotent


@FAST
@given(st.lists(st.tuples(rendered(), filler), min_size=2, max_size=4))
def test_several_numbers_in_one_text(items: list[tuple[tuple[str, str], str]]) -> None:
    assume(not any(_documented_exception(w) for (_, w), _ in items))
    text = "".join(w + "|" + f for (_, w), f in items)  # "|": never a separator
    masked = mask_digits_in_text(text)
    segments = masked.split("|")
    for i, ((number, _), _f) in enumerate(items):
        # a number's visible tail is in its own segment or, at worst, the next filler's
        _assert_no_leak(number, segments[i])
    assert mask_digits_in_text(masked) == masked


@FAST
@given(rendered(), filler)
def test_logs_and_json_mask_the_same(num: tuple[str, str], before: str) -> None:
    number, written = num
    assume(not _documented_exception(written))
    _assert_no_leak(number, mask_json({"path": [before + written]})["path"][0])
    import logging
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "heard %s", (written,), None)
    RedactingFilter().filter(record)
    _assert_no_leak(number, record.getMessage())


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("卡号6222，0212，3456，7890", "卡号****，****，****，7890"),
        ("6222、0212.3456\t7890", "****、****.****\t7890"),
        ("6222  0212\u30003456 7890", "****  ****\u3000**** 7890"),
        ("陆贰贰贰零贰壹贰叁肆伍陆柒捌玖零", "************柒捌玖零"),
        ("六二二八幺两三四五六七八", "********五六七八"),
        ("٦٢٢٢٠٢١٢٣٤٥٦٧٨٩٠", "************٧٨٩٠"),
        ("身份证后六位12345X", "身份证后六位******"),
        ("尾号12345x号", "尾号******号"),
        ("1732480000.1", "*******000.1"),  # 11 digits: a mobile's shape, not a unique id
        ("2026-11-24-1234", "****-**-**-1234"),  # not a date: more digits follow
    ],
)
def test_examples_masked(text: str, masked: str) -> None:
    assert mask_digits_in_text(text) == masked


@pytest.mark.parametrize(
    "text",
    ["金额1280.50元", "应缴￥1280.50", "按2键", "分机12345", "2026-11-24 10:30:00 来电",
     "2026/11/24", "channel 1732480000.42", "ari 127.0.0.1:8088",
     "call 550e8400-e29b-41d4-a716-446655440000"],
)
def test_not_personal_data_is_left_alone(text: str) -> None:
    assert mask_digits_in_text(text) == text


def test_ids_stay_readable_but_a_card_glued_to_letters_does_not() -> None:
    handoff = "a8485f51212c4123456789ab0d1e2f3a"  # uuid4().hex with a run of 9 digits
    text = f"handoff {handoff} on PJSIP/caller-00000012;1, card abc6222021234567890"
    masked = mask_digits_in_text(text)
    assert handoff in masked and "PJSIP/caller-00000012;1" in masked
    assert "6222021234567890" not in masked and masked.endswith("abc************7890")
