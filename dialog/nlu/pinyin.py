"""Fuzzy (tone-less, confusion-merged) pinyin, so that ASR homophone errors still match.

Syllables come from pypinyin ``lazy_pinyin`` without tones, then are canonicalised so that
initials and finals that southern / casual speakers (and ASR) confuse collapse together:
zh->z, ch->c, sh->s, n->l (initials); ang->an, eng->en, ing->in (finals). Thus 挂失/挂湿
(gua si), 余额/鱼鹅 (yu e) and 销户/笑虎 (xiao hu) give identical syllable lists.
"""

from __future__ import annotations

from functools import lru_cache

from pypinyin import Style, lazy_pinyin

__all__ = ["canonical_syllable", "fuzzy_pinyin"]

_INITIALS = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("n", "l"))
_FINALS = (("ang", "an"), ("eng", "en"), ("ing", "in"))


@lru_cache(maxsize=1024)
def canonical_syllable(syllable: str) -> str:
    """Merge confusable initials and finals of one tone-less syllable (``zhang`` -> ``zan``)."""
    s = syllable.lower().replace("ü", "v")
    for full, short in _INITIALS:
        if s.startswith(full) and len(s) > len(full):
            s = short + s[len(full):]
            break
    for full, short in _FINALS:
        if s.endswith(full):
            s = s[: -len(full)] + short
            break
    return s


def _non_chinese(chunk: str) -> list[str]:
    # Digits survive as one token each; letters, punctuation and spaces are dropped.
    return [ch for ch in chunk if ch.isdigit() and ch.isascii()]


@lru_cache(maxsize=8192)
def _fuzzy(text: str) -> tuple[str, ...]:
    # pypinyin accepts a list-returning ``errors`` callback; its stub says str only.
    syllables = lazy_pinyin(text, style=Style.NORMAL, errors=_non_chinese,  # type: ignore[arg-type]
                            v_to_u=False)
    return tuple(s if s.isdigit() else canonical_syllable(s) for s in syllables if s)


def fuzzy_pinyin(text: str) -> list[str]:
    """Tone-insensitive canonical syllables of ``text``; non-Chinese characters are dropped
    except ASCII digits, which are kept as one token per digit."""
    return list(_fuzzy(text))
