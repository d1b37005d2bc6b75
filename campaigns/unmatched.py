"""What callers said that no bot caught: the utterances the router did not match, grouped by
meaning, and one of them added to a bot as a similar question (a draft, for review).

- **Which utterances** (``unmatched``): every ``intent`` step of the calls in a China date
  range whose decision was not a match (no match, clarify, confirm) or whose best score was
  below ``LOW_SCORE``, from the calls' paths (texts already masked there), counted per exact
  text in PostgreSQL; only calls whose figures show a no-match or clarify are read.
- **Grouping** (``cluster``): by sentence embedding (the matcher's embedder, cosine similarity
  at least ``SAME_MEANING``), greedily from the most frequent text: a cluster is a text and the
  ones close to it; without an embedder, one cluster per exact text.
- **Adding** (``add_similar``): the bot's newest version with the text appended to its
  ``similar:`` list, stored as the bot's next draft (``dialog.lifecycle``) under the person's
  name; it reaches callers only once tested and published (``ivr bots publish``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from campaigns.inbound import day_bounds
from dialog.lifecycle.repository import BotVersions, LifecycleError
from dialog.scenario import parse_bot
from ivr.core.storage.db import SessionFactory
from ivr.core.storage.errors import StorageError

LOW_SCORE = 0.5
SAME_MEANING = 0.86
MAX_TEXTS = 2000
MAX_TEXT_CHARS = 100

_SQL = """
    SELECT e.value->'detail'->>'text' AS text,
           mode() WITHIN GROUP (ORDER BY e.value->'detail'->>'decision') AS decision,
           count(*) AS n
    FROM calls c CROSS JOIN LATERAL jsonb_array_elements(c.path) e
    WHERE c.started_at >= :a AND c.started_at < :b AND (:line = '' OR c.line = :line)
      AND (c.no_match > 0 OR c.clarify > 0)
      AND e.value->>'step' = 'intent'
      AND (e.value->'detail'->>'decision' <> 'match'
           OR coalesce((e.value->'detail'->>'score')::float, 0) < :low)
      AND length(coalesce(e.value->'detail'->>'text', '')) BETWEEN 2 AND :chars
    GROUP BY 1 ORDER BY n DESC LIMIT :limit"""


@dataclass
class Cluster:
    text: str  # the most frequent text of the group
    count: int = 0  # times said, all texts of the group
    examples: list[tuple[str, int]] = field(default_factory=list)  # (text, times), by times

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "count": self.count,
                "examples": [{"text": t, "count": n} for t, n in self.examples[:10]],
                "variants": len(self.examples)}


async def unmatched(sessions: SessionFactory, first: date, last: date, line: str = "",
                    limit: int = MAX_TEXTS) -> list[tuple[str, str, int]]:
    """(text, most common decision, times said), most said first."""
    a, b = day_bounds(first, last)
    try:
        async with sessions() as s:
            rows = (await s.execute(text(_SQL), {"a": a, "b": b, "line": line, "low": LOW_SCORE,
                                                 "chars": MAX_TEXT_CHARS, "limit": limit})).all()
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        raise StorageError(f"unmatched utterances: {type(exc).__name__}: {exc}") from exc
    return [(str(t), str(d or ""), int(n)) for t, d, n in rows]


def cluster(said: Sequence[tuple[str, int]],
            embed: Callable[[list[str]], Any] | None,
            threshold: float = SAME_MEANING) -> list[Cluster]:
    """Group texts of the same meaning; ``said`` is (text, times), most said first."""
    if not said:
        return []
    texts = [t for t, _ in said]
    vectors = np.asarray(embed(texts), dtype=np.float32) if embed is not None else None
    clusters: list[Cluster] = []
    heads: list[int] = []  # the index of each cluster's first (most said) text
    for i, (t, n) in enumerate(said):
        home = None
        if vectors is not None and heads:
            sims = vectors[heads] @ vectors[i]
            best = int(np.argmax(sims))
            if float(sims[best]) >= threshold:
                home = best
        if home is None:
            clusters.append(Cluster(t))
            heads.append(i)
            home = len(clusters) - 1
        clusters[home].count += n
        clusters[home].examples.append((t, n))
    return sorted(clusters, key=lambda c: -c.count)


def with_similar(yaml_text: str, question: str) -> str:
    """``yaml_text`` with ``question`` appended to its top-level ``similar:`` list (the rest of
    the file, comments included, as it was)."""
    lines = yaml_text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.rstrip() == "similar:")
    except StopIteration:
        raise LifecycleError("this bot has no similar: list") from None
    last = start
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if line.startswith("  - "):
            last = i
        elif line.strip() and not line.startswith((" ", "#")):
            break  # the next top-level key
    item = f"  - {json.dumps(question, ensure_ascii=False)}"  # a JSON string is YAML
    return "\n".join([*lines[:last + 1], item, *lines[last + 1:]]) + "\n"


async def add_similar(versions: BotVersions, bot_id: str, question: str, *,
                      author: str) -> int:
    """The bot's next draft with ``question`` among its similar questions; its version."""
    question = " ".join(question.split())
    if not 2 <= len(question) <= MAX_TEXT_CHARS:
        raise LifecycleError(f"相似问长度应为2到{MAX_TEXT_CHARS}个字")
    newest = await versions.newest(bot_id)
    if newest is None:
        raise LifecycleError(f"没有机器人 {bot_id}")
    spec = parse_bot(newest.yaml_text, f"{bot_id} v{newest.version}")
    if question in spec.similar or question == spec.standard:
        raise LifecycleError("这句话已经是该机器人的相似问")
    imported = await versions.import_text(
        with_similar(newest.yaml_text, question), f"ops:{bot_id}", author=author,
        note=f"来电未识别说法加为相似问：{question}")
    return int(imported.row.version)
