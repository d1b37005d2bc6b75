"""Recognised text: Traditional -> Simplified, punctuation stripped for matching, hint words.

Whisper often answers Mandarin in Traditional characters; everything downstream (NLU, CER)
works on Simplified, converted with OpenCC's ``t2s`` table.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache

from opencc import OpenCC

_SPLIT_HINTS = re.compile(r"[\s,，、;；|]+")
_LOCK = threading.Lock()  # the pure-Python OpenCC keeps state while converting


@lru_cache(maxsize=1)
def _t2s() -> OpenCC:
    return OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional -> Simplified Chinese (other scripts pass through)."""
    if not text:
        return text
    with _LOCK:
        return str(_t2s().convert(text))


def strip_punctuation(text: str) -> str:
    """Drop punctuation, symbols and whitespace (any script): the text matching and CER use.

    Letters and digits stay (``50%`` -> ``50``); full-width letters and digits become ASCII.
    """
    text = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in text if unicodedata.category(ch)[0] in "LN")


def normalize(text: str) -> str:
    """Simplified, punctuation stripped, Latin letters lower-cased: the form CER compares."""
    return strip_punctuation(to_simplified(text)).lower()


def hint_words(hints: str | None) -> list[str]:
    """``"余额 挂失，发票"`` -> ``["余额", "挂失", "发票"]`` (order kept, duplicates dropped)."""
    if not hints:
        return []
    seen: dict[str, None] = {}
    for word in _SPLIT_HINTS.split(hints):
        if word:
            seen.setdefault(word, None)
    return list(seen)
