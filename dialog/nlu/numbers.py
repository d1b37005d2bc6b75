"""Chinese numerals (三百五十, 一千零五, 两万) and spoken money amounts (一百二十八元五角)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from dialog.nlu.text import SPOKEN_DIGITS, to_halfwidth, to_simplified

__all__ = ["NUMERAL_CHARS", "chinese_number_to_int", "parse_amount"]

_SMALL_UNITS = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
_BIG_UNITS = {"万": 10_000, "萬": 10_000, "亿": 100_000_000, "億": 100_000_000}
NUMERAL_CHARS = "".join(SPOKEN_DIGITS) + "".join(_SMALL_UNITS) + "".join(_BIG_UNITS)


def chinese_number_to_int(text: str) -> int:
    """Parse a Chinese (or Arabic, or mixed) integer numeral.

    ``三百五十`` -> 350, ``十二`` -> 12, ``拾`` -> 10, ``一千零五`` -> 1005, ``两万`` -> 20000,
    ``一二三`` -> 123 (digits read one by one), ``3万`` -> 30000. The colloquial elision
    ``三百五`` (= 350) and ``一万二`` (= 12000) is understood. Raises ``ValueError`` otherwise.
    """
    s = to_halfwidth(text).strip().replace(",", "")
    if not s:
        raise ValueError("empty numeral")
    if s.isdigit():
        return int(s)
    if all(c in SPOKEN_DIGITS or c.isdigit() for c in s):
        return int("".join(SPOKEN_DIGITS.get(c, c) for c in s))
    total = 0  # completed 万/亿 groups
    section = 0  # value below the current big unit
    digit: int | None = None  # pending digit not yet multiplied by a unit
    last_unit = 1  # unit just applied, for the elision 三百五 = 350
    zero_seen = False
    i = 0
    while i < len(s):
        c = s[i]
        if c.isdigit():  # Arabic run inside Chinese text: 3万, 12万5千
            j = i
            while j < len(s) and s[j].isdigit():
                j += 1
            digit, i = int(s[i:j]), j
            continue
        if c in SPOKEN_DIGITS:
            d = int(SPOKEN_DIGITS[c])
            if d == 0:
                zero_seen = True
                digit = None
            else:
                if digit is not None:
                    raise ValueError(f"two digits in a row in {text!r}")
                digit = d
        elif c in _SMALL_UNITS:
            unit = _SMALL_UNITS[c]
            section += (1 if digit is None else digit) * unit
            digit, last_unit, zero_seen = None, unit, False
        elif c in _BIG_UNITS:
            unit = _BIG_UNITS[c]
            section += digit or 0
            if section == 0 and not total:
                section = 1  # a bare 万 means 一万
            if unit > 10_000 and total:  # 一万亿: scale what came before
                total = (total + section) * unit
            else:
                total += section * unit
            section, digit, last_unit, zero_seen = 0, None, unit, False
        else:
            raise ValueError(f"not a numeral character {c!r} in {text!r}")
        i += 1
    if digit is not None:
        if not zero_seen and last_unit >= 100 and i == len(s):
            section += digit * (last_unit // 10)  # 三百五 -> 350, 一万二 -> 12000
        else:
            section += digit
    return total + section


_NUM = rf"(?:\d+(?:\.\d+)?|[{NUMERAL_CHARS}]+)"
_D1 = rf"[\d{''.join(SPOKEN_DIGITS)}]"
_YUAN_RE = re.compile(
    rf"(?P<yuan>{_NUM})\s*(?:块钱|块|元|圆)"
    rf"(?:\s*(?P<jiao>{_D1}{{1,2}})\s*(?P<junit>角|毛)?)?"
    rf"(?:\s*(?P<fen>{_D1})\s*分)?"
)
_JIAO_RE = re.compile(rf"(?P<jiao>{_D1})\s*(?:角|毛)(?:\s*(?P<fen>{_D1})\s*分?)?")
_CURRENCY_RE = re.compile(rf"(?:¥|￥|rmb|人民币)\s*(?P<num>{_NUM})", re.IGNORECASE)
_BARE_RE = re.compile(_NUM)


def _num(token: str) -> Decimal:
    token = token.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", token):
        return Decimal(token)
    return Decimal(chinese_number_to_int(token))


def _digit(token: str | None) -> int:
    return 0 if not token else int(SPOKEN_DIGITS.get(token, token))


def parse_amount(text: str) -> Decimal | None:
    """Money amount in yuan, or None.

    ``三百五十块`` -> 350, ``一百二十八元五角`` -> 128.5, ``¥128.50`` -> 128.50,
    ``128块5`` -> 128.5, ``128块50`` -> 128.50, ``两块五毛三分`` -> 2.53, ``五毛`` -> 0.5.
    Without a unit or currency sign the first number in the text is taken (``充了一百``).
    """
    s = to_halfwidth(to_simplified(text)).replace(",", "").replace("，", "")
    try:
        m = _YUAN_RE.search(s)
        if m:
            amount = _num(m.group("yuan"))
            jiao = m.group("jiao")
            if jiao:
                digits = "".join(SPOKEN_DIGITS.get(c, c) for c in jiao)
                if len(digits) == 2 and not m.group("junit"):  # 128块50: cents
                    amount += Decimal(digits) / 100
                elif len(digits) == 1:
                    amount += Decimal(digits) / 10
                else:
                    return None
            amount += Decimal(_digit(m.group("fen"))) / 100
            return amount
        m = _CURRENCY_RE.search(s)
        if m:
            return _num(m.group("num"))
        m = _JIAO_RE.search(s)
        if m:
            return Decimal(_digit(m.group("jiao"))) / 10 + Decimal(_digit(m.group("fen"))) / 100
        for m in _BARE_RE.finditer(s):
            token = m.group(0)
            if len(token) == 1 and not token.isdigit():
                continue  # a lone 一 in 查一下 is not an amount
            return _num(token)
    except (ValueError, InvalidOperation):
        return None
    return None
