"""A caller who answers the first question with a business line alone ("燃气", "加油卡业务",
the route menu's own words) wants that line's menu, as if the line's key had been pressed.

The matcher cannot serve such an answer: it names no bot, so it scores low for many of them (or,
worse, "业务" alone leans on a question such as 哪里可以办加油卡业务). A short text made of a
line word and at most a few filler words, nothing else, is that line; anything longer is left
to the matcher (燃气费怎么交 is a request, not a line; 我要办加油卡 asks for a new card).
"""

from __future__ import annotations

import re

from dialog.nlu.text import normalize_for_match

__all__ = ["LINE_WORDS", "named_line"]

LINE_WORDS: dict[str, tuple[str, ...]] = {
    "oil": ("加油卡", "油卡", "加油", "成品油"),
    "gas": ("天然气", "燃气", "煤气", "管道气"),
}
_WORD = {w: line for line, words in LINE_WORDS.items() for w in words}
_LINE_RE = re.compile(
    r"(嗯|啊|哦)?(我|我要|我想|我想问|我想问一下|问一下|问|是|关于)?"
    r"(?P<word>" + "|".join(sorted(_WORD, key=len, reverse=True)) + r")"
    r"(的)?(业务|方面|的事|的事情|事情|问题)?(吧|啊|呀|哦|嗯)?"
)


def named_line(text: str) -> str | None:
    """``oil`` / ``gas`` when ``text`` names a business line and nothing more, else None."""
    m = _LINE_RE.fullmatch(normalize_for_match(text))
    return _WORD[m.group("word")] if m else None
