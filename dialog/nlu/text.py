"""Text clean-up shared by the whole NLU layer: Traditional->Simplified, width folding,
punctuation stripping and spoken digit runs (幺三八 -> 138)."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from opencc import OpenCC

__all__ = [
    "SPOKEN_DIGITS",
    "normalize_for_match",
    "spoken_digits_to_str",
    "strip_punct",
    "to_halfwidth",
    "to_simplified",
]

#: Characters a caller uses when reading digits aloud, mapped to the digit.
SPOKEN_DIGITS: dict[str, str] = {
    "零": "0", "〇": "0", "洞": "0", "○": "0",
    "一": "1", "幺": "1", "壹": "1",
    "二": "2", "两": "2", "贰": "2",
    "三": "3", "叁": "3",
    "四": "4", "肆": "4",
    "五": "5", "伍": "5",
    "六": "6", "陆": "6",
    "七": "7", "柒": "7",
    "八": "8", "捌": "8",
    "九": "9", "玖": "9",
}
# Digits that are never ordinary words in a hotline call: converted even when alone.
_ALWAYS_DIGIT = frozenset("幺洞")
# A spoken digit run next to one of these is a Chinese numeral (一百, 零五 in 一千零五), not a
# string of digits read one by one.
_NUMERAL_UNITS = frozenset("十拾百佰千仟万萬亿億点點")

_DIGIT_CLASS = "".join(SPOKEN_DIGITS) + "0-9"
_RUN_RE = re.compile(f"[{_DIGIT_CLASS}](?:[ \\t\u3000]*[{_DIGIT_CLASS}])*")


@lru_cache(maxsize=1)
def _t2s() -> OpenCC:
    return OpenCC("t2s")


@lru_cache(maxsize=4096)
def to_simplified(text: str) -> str:
    """Traditional -> Simplified Chinese (OpenCC t2s); ASR often answers in Traditional."""
    if not text or text.isascii():
        return text
    return str(_t2s().convert(text))


def to_halfwidth(text: str) -> str:
    """Fold full-width ASCII (ＡＢＣ１２３，) and the ideographic space to half-width."""
    out = []
    for ch in text:
        code = ord(ch)
        if code == 0x3000:
            out.append(" ")
        elif 0xFF01 <= code <= 0xFF5E:
            out.append(chr(code - 0xFEE0))
        else:
            out.append(ch)
    return "".join(out)


def strip_punct(text: str) -> str:
    """Remove punctuation, symbols, whitespace and control characters (any script)."""
    return "".join(ch for ch in text if unicodedata.category(ch)[0] not in "PSZC")


def spoken_digits_to_str(text: str) -> str:
    """Turn runs of spoken digits into Arabic digits, leaving other text alone.

    A run is two or more digit characters (spoken or Arabic, spaces between them allowed and
    dropped): ``"卡号是幺三八 零零一二"`` -> ``"卡号是1380012"``, ``"九零零一"`` -> ``"9001"``.
    A single 一/二/三 stays as it is (``查一下`` must not become ``查1下``) unless it is 幺/洞 or
    touches an Arabic digit. Runs adjacent to a numeral unit (十百千万亿点) are Chinese numbers
    (``一千零五``), left for :func:`chinese_number_to_int`.
    """

    def repl(m: re.Match[str]) -> str:
        run = m.group(0)
        chars = [c for c in run if not c.isspace()]
        before = text[m.start() - 1] if m.start() > 0 else ""
        after = text[m.end()] if m.end() < len(text) else ""
        if before in _NUMERAL_UNITS or after in _NUMERAL_UNITS:
            return run
        if len(chars) < 2 and not (chars[0] in _ALWAYS_DIGIT or chars[0].isdigit()):
            return run
        return "".join(SPOKEN_DIGITS.get(c, c) for c in chars)

    return _RUN_RE.sub(repl, text)


@lru_cache(maxsize=8192)
def normalize_for_match(text: str) -> str:
    """Canonical form used for matching: simplified, half-width, lower-case, spoken digit runs
    as digits, punctuation and spaces removed."""
    s = to_halfwidth(to_simplified(text)).lower()
    s = spoken_digits_to_str(s)
    return strip_punct(s)
