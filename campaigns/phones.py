"""Chinese phone numbers: validate and normalise for the campaign tables.

Stored form (as campaigns/tables.py documents): country prefix (``+86``, ``0086``, ``86``)
dropped, separators dropped; mobiles are 11 digits ``1[3-9]x{9}``; landlines keep their area code
with its leading 0: ``0`` + 2-3 digit area code + 7-8 digit local number (``01062221234``).
Display with :func:`masked` (never log the full number).
"""

from __future__ import annotations

import re

from ivr.core.privacy import mask_number

_SEPARATORS = re.compile(r"[\s\-()（）.－—]")
_MOBILE = re.compile(r"1[3-9]\d{9}")
# 010, 02x (2-digit area codes after 0) take 8-digit numbers; 0xxx take 7 or 8
_LANDLINE = re.compile(r"0(?:10|2\d)\d{8}|0[3-9]\d{2}\d{7,8}")
_FULLWIDTH = str.maketrans("０１２３４５６７８９＋", "0123456789+")


class PhoneError(ValueError):
    """A value that is not a Chinese mobile or landline number (message in Chinese)."""


def normalise(raw: str) -> str:
    """``+86 138-0013-8000`` -> ``13800138000``; ``(010) 6222-1234`` -> ``01062221234``.

    Raises :class:`PhoneError` for anything else.
    """
    s = _SEPARATORS.sub("", (raw or "").strip().translate(_FULLWIDTH))
    if not s:
        raise PhoneError("号码为空")
    if s.startswith("+"):
        if not s.startswith("+86"):
            raise PhoneError("不是中国号码")
        s = s[3:]
    elif s.startswith("0086"):
        s = s[4:]
    elif s.startswith("86") and len(s) in (13, 12, 11) and not _MOBILE.fullmatch(s):
        s = s[2:]
    if not s.isdigit():
        raise PhoneError("号码含非数字字符")
    if _MOBILE.fullmatch(s):
        return s
    if not s.startswith("0") and 9 <= len(s) <= 11 and _LANDLINE.fullmatch("0" + s):
        s = "0" + s  # +86 10 6222 1234: the trunk 0 is dropped after the country code
    if _LANDLINE.fullmatch(s):
        return s
    if s.startswith("1"):
        raise PhoneError("号码格式不正确：手机号码应为13至19开头的11位数字")
    raise PhoneError("号码格式不正确（手机11位，固话需带区号）")


def is_valid(raw: str) -> bool:
    try:
        normalise(raw)
    except PhoneError:
        return False
    return True


def masked(phone: str) -> str:
    """Display form for logs and pages without permission: ``138****8000``."""
    return mask_number(phone)
