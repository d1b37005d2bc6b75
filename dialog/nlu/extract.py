"""Slot extractors for caller answers. Each returns ``(value, None)`` or ``(None, reason)``
where the reason is a short Chinese sentence the IVR can say back to the caller."""

from __future__ import annotations

import re
from collections.abc import Callable

from dialog.nlu.text import SPOKEN_DIGITS, to_halfwidth, to_simplified

__all__ = [
    "CARD_LENGTHS",
    "extract_card_number",
    "extract_digits",
    "extract_id_tail",
    "extract_phone",
    "extract_yes_no",
    "luhn_valid",
    "validate_resident_id",
]

CARD_LENGTHS = (19, 16)  # fuel-card numbers as printed on the card

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_X_WORDS = ("艾克斯", "爱克斯", "埃克斯", "叉", "x", "X")


def _digit_stream(text: str, *, keep_x: bool = False) -> str:
    """Every digit in the answer, in order (spoken digits included, separators ignored).

    In a slot answer the caller is reading a number, so even a lone 一 or 两 is a digit here.
    """
    s = to_halfwidth(to_simplified(text))
    if keep_x:
        for w in _X_WORDS:
            s = s.replace(w, "X")
    out = []
    for ch in s:
        if ch.isdigit() and ch.isascii():
            out.append(ch)
        elif ch in SPOKEN_DIGITS:
            out.append(SPOKEN_DIGITS[ch])
        elif keep_x and ch == "X":
            out.append(ch)
    return "".join(out)


def extract_digits(text: str, min_len: int, max_len: int) -> tuple[str | None, str | None]:
    """All digits the caller said, if their count is within ``[min_len, max_len]``."""
    digits = _digit_stream(text)
    if not digits:
        return None, "没有听清号码，请再说一遍。"
    if len(digits) < min_len:
        return None, f"号码位数不够，应该是{_span(min_len, max_len)}位，请再说一遍。"
    if len(digits) > max_len:
        return None, f"号码位数太多，应该是{_span(min_len, max_len)}位，请再说一遍。"
    return digits, None


def _span(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}到{hi}"


def luhn_valid(number: str) -> bool:
    """Luhn (mod 10) check, for card schemes known to use it. Not applied by default: fuel-card
    numbers are issuer-specific and no public checksum is known for them."""
    if not number.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def extract_card_number(
    text: str, *, lengths: tuple[int, ...] = CARD_LENGTHS,
    checksum: Callable[[str], bool] | None = None,
) -> tuple[str | None, str | None]:
    """A fuel-card number: 19 or 16 digits (``lengths``); ``checksum`` optionally validates it
    (none by default - pass e.g. :func:`luhn_valid` where an issuer is known to use Luhn)."""
    digits = _digit_stream(text)
    if not digits:
        return None, "没有听清卡号，请再说一遍。"
    if len(digits) not in lengths:
        want = "或".join(str(n) for n in lengths)
        return None, f"卡号应该是{want}位，您说了{len(digits)}位，请再说一遍。"
    if checksum is not None and not checksum(digits):
        return None, "卡号好像不对，请核对后再说一遍。"
    return digits, None


_MOBILE_RE = re.compile(r"1[3-9]\d{9}")
_LANDLINE_RE = re.compile(r"0\d{2,3}-?\d{7,8}")


def extract_phone(text: str) -> tuple[str | None, str | None]:
    """A mobile (``1[3-9]`` + 9 digits) or landline (``0`` + 2-3 digit area code + 7-8 digits)
    number. A +86/86 prefix is dropped; a landline keeps its dash if the caller gave one."""
    s = to_halfwidth(to_simplified(text))
    s = "".join(SPOKEN_DIGITS.get(ch, ch) for ch in s)
    s = re.sub(r"[\s()（）]", "", s).replace("杠", "-").replace("—", "-")
    s = re.sub(r"^(?:\+?86-?)(?=1[3-9]\d{9}$)", "", re.sub(r"[^\d+-]", "", s))
    flat = s.replace("-", "")
    if _MOBILE_RE.fullmatch(flat):
        return flat, None
    if _LANDLINE_RE.fullmatch(s) or _LANDLINE_RE.fullmatch(flat):
        return (s if _LANDLINE_RE.fullmatch(s) else flat), None
    if not flat:
        return None, "没有听清电话号码，请再说一遍。"
    if flat.startswith("1"):
        return None, "手机号码应该是11位，请再说一遍。"
    return None, "电话号码好像不对，请说手机号码，或者区号加座机号码。"


def extract_id_tail(text: str, n: int) -> tuple[str | None, str | None]:
    """The last ``n`` characters of an 18-character resident ID; ``X`` only as the final
    character (spoken as 叉 or 艾克斯 too). Returned upper-case."""
    chars = _digit_stream(text, keep_x=True)
    if not chars:
        return None, f"没有听清，请说身份证号码的后{n}位。"
    if "X" in chars[:-1]:
        return None, "只有最后一位可能是X，请再说一遍。"
    if len(chars) != n:
        return None, f"请说身份证号码的后{n}位，您说了{len(chars)}位。"
    return chars, None


def validate_resident_id(id18: str) -> bool:
    """GB 11643-1999 check: 17 digits then the ISO 7064 mod 11-2 check character (0-9 or X)."""
    s = id18.strip().upper()
    if len(s) != 18 or not s[:17].isdigit() or not (s[17].isdigit() or s[17] == "X"):
        return False
    total = sum(int(c) * w for c, w in zip(s[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == s[17]


# Longest match wins while scanning; polarity None = neutral (question, uncertainty), which
# also shields its parts (是不是 must not count as 是 + 不是).
_YES_NO_LEXICON: dict[str, bool | None] = {
    **dict.fromkeys(("是不是", "对不对", "好不好", "行不行", "可不可以", "要不要", "是吗",
                     "对吗", "不确定", "不知道", "不清楚", "不一定", "说不好", "不好说"), None),
    **dict.fromkeys(("不是", "不对", "错了", "不用", "不要", "否", "不行", "不需要", "不可以",
                     "不好", "不正确", "不确认", "不同意", "搞错", "弄错", "不", "没有", "别",
                     "算了", "no", "不用了", "没帮助", "没有帮助", "没解决", "没有解决",
                     "还是不行", "失败了", "还是失败", "没成功", "不成功", "没用"), False),
    **dict.fromkeys(("是", "对", "好的", "好", "没错", "没问题", "确认", "确定", "嗯", "可以",
                     "行", "正确", "同意", "需要", "要", "没错儿", "不错", "对的", "是的",
                     "ok", "okay", "yes", "恩", "好啊", "对啊", "有帮助", "有用", "解决了",
                     "成功了", "好了", "可以了", "行了", "明白了", "知道了", "清楚了"), True),
}
_YES_NO_MAX = max(map(len, _YES_NO_LEXICON))
_FILLERS = frozenset(("嗯", "恩"))
# 是 followed by these (or by nothing) answers; followed by other words or digits it is the
# copula of a sentence (我卡号是…, 我是张三) and agrees to nothing
_AFTER_YES = frozenset("的啊呀吧呢嘛了滴,.!?;:，。！？；：、 ")


def extract_yes_no(text: str) -> bool | None:
    """True for an agreement (是/对/好的/没错/确认/嗯/可以), False for a refusal (不是/不对/错了/
    不用/不要/否), None when unclear.

    Phrases are found by longest match (没错 is yes, 不错 is yes, 是不是 is a question).
    Several refusals (不是不对, 不对不对) stay a refusal; a mix takes the caller's last word
    (是的，不对不对 -> False), since callers correct themselves; a leading 嗯 is a filler when
    something else follows; 是 inside a sentence is its copula, not a yes (不需要，我卡号是…
    is a refusal). Questions and 不确定/不知道 give None.
    """
    s = to_halfwidth(to_simplified(text)).lower()
    found: list[tuple[str, bool | None]] = []
    i = 0
    while i < len(s):
        for size in range(min(_YES_NO_MAX, len(s) - i), 0, -1):
            word = s[i:i + size]
            if word in _YES_NO_LEXICON:
                after = s[i + size:i + size + 1]
                if not (word == "是" and after and after not in _AFTER_YES):
                    found.append((word, _YES_NO_LEXICON[word]))
                i += size
                break
        else:
            i += 1
    if any(p is None for _, p in found):
        return None
    polar = [p for _, p in found]
    meaningful = [p for w, p in found if w not in _FILLERS]
    if meaningful:
        polar = meaningful
    if not polar:
        return None
    if all(p is False for p in polar):
        return False
    if all(p is True for p in polar):
        return True
    return polar[-1]
