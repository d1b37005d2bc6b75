"""Self-correction: what a caller asks for is what they say after they correct themselves.

Callers change their mind mid-sentence (我想补卡，不对，先把丢的那张挂失; 我想查余额…不是，我是想问
户主能不能改). Every word before the correction is what they do *not* want, yet it carries the
strongest words (补卡, 余额) and a rule would fire on them. :func:`intended` keeps the words after
the last correction marker, when enough is left to be a request; the matcher scores that.

Markers: 说错了, 我是说, 应该是 anywhere; 不是 directly followed by 我是/我就/我想/我要 (不是，
我是想问…); 不对 (不对不对), 不是, 哦不/噢不/哦不是 only as a word of their own, between pauses
(spaces or punctuation, as a recogniser or a chat writes them): 金额不对 is a complaint, not a
correction, and a 不是 inside words is part of the request (是不是停气了, 不是我的卡).

A clause that only says what the caller does not want is left out too, when it begins with 不是
and more follows (不是燃气啊，是加油卡…; 我不是要挂失啊，卡就在我手上，就是不打算用了): its words
name the neighbouring business. A 不是 followed by a person is a claim and stays (不是我刷的).
"""

from __future__ import annotations

import re

__all__ = ["MIN_REST", "intended"]

_PAUSE = r"[\s,，。.…!！?？、~～]"
_WORD = _PAUSE.replace("[", "[^", 1)  # any character but a pause
_MARKER = re.compile(rf"(?:^|{_PAUSE})(?:(?:[哦噢喔]?不对)+|[哦噢喔]?不是|[哦噢喔]不)(?={_PAUSE})"
                     rf"|说错了|我是说|应该是|不是{_PAUSE}*(?=我是|我就|我想|我要)")
MIN_REST = 3  # characters after the marker for it to count as the request
# a clause that says what the caller does not want, before what they do: 不是燃气啊，是加油卡;
# 我不是要挂失啊，卡就在我手上…; 不是插卡的问题，表自己…  (not 是不是…, nor 不是我刷的: a claim)
_NOT_CLAUSE = re.compile(rf"(?:^|(?<={_PAUSE}))[我也就]{{0,2}}不是(?![我你他她本]|{_PAUSE})"
                         rf"{_WORD}{{1,10}}{_PAUSE}+(?=\S)")


def _said(text: str) -> int:
    """Characters said (pauses not counted)."""
    return len(re.sub(_PAUSE, "", text))


def intended(text: str) -> str:
    """The part of a request after its last self-correction (else all of it), without a
    clause that only says what is not wanted."""
    last = None
    for m in _MARKER.finditer(text):
        if _said(text[m.end():]) >= MIN_REST:
            last = m
    meant = text[last.end():] if last is not None else text
    kept = _NOT_CLAUSE.sub("", meant)
    return kept if _said(kept) >= MIN_REST else meant
