"""Knowledge suggestions for a screen pop (知识推荐), computed in the background.

The handoff service calls ``Suggester.suggest(pop)`` in a task of its own after the structured
pop is stored: the pop never waits for it. The query is what the caller said (the last
``QUERY_UTTERANCES`` speech turns) after the bot's name, searched in the pop's business line
(and ``general``). ``suggest`` returns ``None`` when the query has not changed since the last
run for that pop (nothing to refresh), else the items, each::

    {"entry_id": "oil-card-loss", "version": 2, "title": "加油卡丢失如何挂失",
     "line": "oil", "passage": "…the passage that matched…", "score": 0.83,
     "why": "语义相似 0.88（第1）；关键词 挂失、加油卡（第1）"}

Failures (database or embedder down, ``timeout_s`` passed) return ``[]`` after counting them:
suggestions are a help, never a reason for a pop to fail.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from handoff.embeddings import EmbeddingError
from handoff.knowledge.repository import KnowledgeBase
from handoff.pop import ScreenPop
from handoff.rules import caller_texts
from ivr.core.promtext import counter_lines
from ivr.core.storage.errors import StorageError

log = logging.getLogger("handoff.knowledge")

QUERY_UTTERANCES = 3
QUERY_MAX_CHARS = 300
REMEMBERED = 2000  # pops whose last query is kept (to skip unchanged refreshes)


def query_for(pop: ScreenPop) -> str:
    parts: list[str] = []
    if pop.bot and pop.bot.get("name"):
        parts.append(str(pop.bot["name"]))
    parts += caller_texts(pop.transcript)[-QUERY_UTTERANCES:]
    if not parts:
        parts.append(pop.reason_label)
    return "；".join(p.strip() for p in parts if p and p.strip())[-QUERY_MAX_CHARS:]


class Suggester:
    def __init__(self, kb: KnowledgeBase, *, k: int = 4, timeout_s: float = 5.0) -> None:
        self.kb = kb
        self.k = k
        self.timeout_s = timeout_s
        self.outcomes: Counter[str] = Counter()  # ok | empty | unchanged | error | timeout
        self.last_s = 0.0
        self._queries: OrderedDict[str, str] = OrderedDict()

    async def suggest(self, pop: ScreenPop) -> list[dict[str, Any]] | None:
        query = query_for(pop)
        if self._queries.get(pop.handoff_id) == query:
            self.outcomes["unchanged"] += 1
            return None
        self._queries[pop.handoff_id] = query
        self._queries.move_to_end(pop.handoff_id)
        while len(self._queries) > REMEMBERED:
            self._queries.popitem(last=False)
        line = pop.line if pop.line in ("oil", "gas") else None
        t = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout_s):
                hits = await self.kb.search(query, line=line, k=self.k)
        except TimeoutError:
            self.outcomes["timeout"] += 1
            log.warning("knowledge suggestions for %s timed out", pop.handoff_id[:8])
            return []
        except (StorageError, EmbeddingError, SQLAlchemyError, OSError) as exc:
            self.outcomes["error"] += 1
            log.warning("knowledge suggestions for %s failed: %s: %s", pop.handoff_id[:8],
                        type(exc).__name__, exc)
            return []
        self.last_s = time.perf_counter() - t
        self.outcomes["ok" if hits else "empty"] += 1
        return [{"entry_id": h.entry_id, "version": h.version, "title": h.title,
                 "line": h.line, "passage": h.passage, "score": h.score, "why": h.why}
                for h in hits]

    def metrics_lines(self) -> list[str]:
        lines = ["# TYPE ivr_kb_suggestions_total counter"]
        lines += counter_lines("ivr_kb_suggestions_total", "outcome", self.outcomes,
                               ("ok", "empty", "unchanged", "timeout", "error", "skipped"))
        lines += ["# TYPE ivr_kb_suggestion_last_seconds gauge",
                  f"ivr_kb_suggestion_last_seconds {self.last_s:.4f}"]
        return lines
