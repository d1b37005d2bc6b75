"""The domain vocabulary of the published bots: candidate recogniser hints for the first question.

Whisper (``initial_prompt``) and FunASR (hotwords) recognise a word better when they have seen
it in the context. At the hotline's first question the caller names a business, so the words
that name the businesses are the context. Two forms: ``bot_questions`` (every standard
question) and ``bot_words`` (each bot's display name and standard question,
segmented by jieba, Chinese words of two or more characters, each word once, taken round robin
(every bot's first word, then every bot's second ...) so that a recogniser that must cut the
list to its prompt budget still has words of every bot.
Words found in a quarter or more of the bots' questions (怎么, 查询, 加油卡, 燃气: the
configured lead-in already has the common domain words) carry no information and are left out).

Measured with ``ivr eval intents --hints bots|questions`` on the spoken dev set (Whisper base,
8 kHz, after the former domain lead-in; texts routed with the current matcher): right bot
64.0% without hints, 61.8% with ``bot_words``, 65.4% with ``bot_questions``, but wrong bot
4.4% -> 7.4% and 8.1%: Whisper base copies listed words into what it hears. So the dialog
sends no hints at its first question; these stay for back ends with real hotword biasing
(FunASR) and for measuring.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Protocol

__all__ = ["bot_questions", "bot_words", "route_vocabulary"]

class Bot(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def standard(self) -> str: ...
    @property
    def similar(self) -> Sequence[str]: ...


_CHINESE = re.compile(r"[\u4e00-\u9fff]{2,}")
GENERIC_SHARE = 0.25


def _words(text: str) -> list[str]:
    import jieba

    if not jieba.dt.initialized:
        jieba.setLogLevel(logging.WARNING)
    return [w for w in jieba.lcut(text) if _CHINESE.fullmatch(w)]


@lru_cache(maxsize=8)
def _vocabulary(bots: tuple[tuple[str, str, tuple[str, ...]], ...]) -> tuple[str, ...]:
    df: Counter[str] = Counter()
    for name, standard, similar in bots:
        df.update({w for t in (name, standard, *similar) for w in _words(t)})
    limit = GENERIC_SHARE * len(bots)
    per_bot = [[w for w in dict.fromkeys((*_words(name), *_words(standard))) if df[w] < limit]
               for name, standard, _ in bots]
    out: dict[str, None] = {}
    for rank in range(max((len(p) for p in per_bot), default=0)):
        for words in per_bot:  # round robin: a budget cut leaves every bot its first words
            if rank < len(words):
                out.setdefault(words[rank])
    return tuple(out)


def route_vocabulary(bots: Iterable[tuple[str, str, Sequence[str]]]) -> list[str]:
    """Distinctive words of ``(name, standard, similar questions)`` per bot, in bot order."""
    return list(_vocabulary(tuple((n, s, tuple(sim)) for n, s, sim in bots)))


def bot_words(bots: Iterable[Bot]) -> str:
    """The distinctive words of the bots, as recogniser hints (``、`` separated)."""
    return "、".join(route_vocabulary((b.name, b.standard, b.similar) for b in bots))


def bot_questions(bots: Iterable[Bot]) -> str:
    """The bots' standard questions, as recogniser hints (``，`` separated)."""
    return "，".join(dict.fromkeys(b.standard for b in bots))
