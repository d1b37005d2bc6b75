"""Text helpers of the knowledge base: jieba tokens for keyword search, and passage chunking.

``tokens(text)``: jieba's search-mode segmentation (加油卡 gives 加油 and 加油卡), lower-cased,
Traditional folded to Simplified, punctuation and a short list of stop words dropped, each
token kept once. Tokens are written space-separated into ``kb_passages.tokens`` and matched
with PostgreSQL's ``simple`` text-search configuration (no stemming: the tokens are already
words). jieba builds its dictionary on first use (about a second); call ``warm_up()`` off the
event loop at start.

``chunks(title, body)``: passages of at most ``MAX_CHARS`` characters, split at paragraph and
then sentence boundaries; each passage is embedded with the entry's title in front, so a short
passage still knows what it is about.
"""

from __future__ import annotations

import logging
import re
import threading

from dialog.nlu.text import to_simplified

MAX_CHARS = 220
_SENTENCE = re.compile(r"(?<=[。！？；!?;])")
_WORD = re.compile(r"^[\w\u4e00-\u9fff]+$")
STOP_WORDS = frozenset(
    "的 了 吗 呢 吧 啊 呀 么 嘛 哦 我 你 他 她 它 我们 你们 是 在 有 和 与 及 或 就 都 也 还 "
    "要 想 能 可以 怎么 怎样 如何 什么 为什么 一下 一个 请问 请 您好 你好 谢谢 这个 那个 这 那 "
    "个 给 让 把 被 对 从 到 会 不 没 没有 已经 时候 问 下 上 里 后 前 之 其 该 如 若 则 等"
    .split())
_lock = threading.Lock()
_ready = False


def warm_up() -> None:
    """Load jieba's dictionary (blocking, about a second; idempotent)."""
    global _ready
    with _lock:
        if not _ready:
            import jieba

            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            _ready = True


def tokens(text: str) -> list[str]:
    """Distinct keyword tokens of ``text`` (order of first appearance)."""
    import jieba

    warm_up()
    out: dict[str, None] = {}
    for tok in jieba.lcut_for_search(to_simplified(text).lower()):
        tok = tok.strip()
        if tok and tok not in STOP_WORDS and _WORD.match(tok):
            out[tok] = None
    return list(out)


def tsquery_text(words: list[str]) -> str:
    """An OR ``to_tsquery('simple', ...)`` string of the tokens ('' when none is usable)."""
    safe = [w for w in words if _WORD.match(w)]
    return " | ".join(f"'{w}'" for w in safe)


def chunks(title: str, body: str, max_chars: int = MAX_CHARS) -> list[str]:
    """The body cut into passages of at most ``max_chars`` (a longer sentence stays whole)."""
    pieces: list[str] = []
    for para in (p.strip() for p in re.split(r"\n\s*\n", body.strip())):
        if not para:
            continue
        if len(para) <= max_chars:
            pieces.append(para)
            continue
        current = ""
        for sentence in (s for s in _SENTENCE.split(para) if s.strip()):
            if current and len(current) + len(sentence) > max_chars:
                pieces.append(current.strip())
                current = ""
            current += sentence
        if current.strip():
            pieces.append(current.strip())
    # short neighbours merge, so one entry is rarely more than a few passages
    merged: list[str] = []
    for piece in pieces:
        if merged and len(merged[-1]) + len(piece) + 1 <= max_chars:
            merged[-1] = f"{merged[-1]}\n{piece}"
        else:
            merged.append(piece)
    return merged or [title.strip()]


def embed_text(title: str, passage: str) -> str:
    """What gets embedded for a passage: the title, then the passage."""
    return f"{title.strip()}：{passage.strip()}"
