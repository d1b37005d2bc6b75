"""``KnowledgeBase``: entries, the review workflow (标注 → 审核 → 入库), feedback and search.

- ``propose(draft, author)``: a new version of an entry (a new entry when ``entry_id`` is
  unset), status ``proposed``; not searchable.
- ``approve(row_id, reviewer, reason)``: refused (``SelfReview``) when the reviewer wrote the
  proposal: every entry is seen by two people (only the file importer approves its own). Chunks
  and embeds the version (off the event loop), then in one transaction retires the entry's
  approved version (its passages deleted) and makes this one ``approved`` with its passages:
  from then on it is what search finds.
- ``reject(row_id, reviewer, reason)``: ``rejected``, with the reason (required).
- ``import_approved(draft, source)``: what ``ivr kb import`` does per entry: a new version
  proposed and approved at once by the ``importer`` role (reviewer ``importer``, reason
  ``imported from FILE``); an entry whose approved version has the same text is left alone.
- ``feedback(...)``: an agent's useful/wrong mark on a suggestion.

Every version stays in ``kb_entries``; nothing is updated in place but status and review fields.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from handoff.embeddings import EmbeddingPool
from handoff.knowledge.search import Hit, TokenStats, hybrid_search
from handoff.knowledge.tables import (
    APPROVED,
    PROPOSED,
    REJECTED,
    RETIRED,
    VERDICTS,
    KbEntryRow,
    KbFeedbackRow,
    KbPassageRow,
)
from handoff.knowledge.text import chunks, embed_text, tokens
from ivr.core.lines import LINES
from ivr.core.privacy import mask_digits_in_text
from ivr.core.storage.db import SessionFactory

IMPORTER = "importer"
_ENTRY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_LONG_DIGITS = re.compile(r"\d{11,}")  # card, ID and phone numbers (956100 stays)


def scrub(text: str) -> str:
    """Long digit runs typed from a call (a card or ID number) kept by their last 4 only."""
    return _LONG_DIGITS.sub(lambda m: "*" * (len(m.group()) - 4) + m.group()[-4:], text)
MAX_TITLE, MAX_BODY, MAX_TAGS = 200, 8000, 20


class KnowledgeError(ValueError):
    """Bad input or a request the entry's state does not allow (message in Chinese)."""


class EntryNotFound(KnowledgeError, LookupError):
    pass


class EntryStateError(KnowledgeError):
    """The version is not in a state that allows the step (e.g. approving it twice)."""


class SelfReview(KnowledgeError, PermissionError):
    """A reviewer tried to approve their own proposal."""


@dataclass(frozen=True)
class EntryDraft:
    line: str
    title: str
    body: str
    tags: tuple[str, ...] = ()
    entry_id: str | None = None  # None: a new entry
    note: str | None = None
    handoff_id: str | None = None
    source: str | None = None


@dataclass
class _Passages:
    texts: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    vectors: np.ndarray | None = None


def validate(draft: EntryDraft) -> EntryDraft:
    """The draft cleaned up, or ``KnowledgeError`` naming the first bad field."""
    line, title, body = draft.line.strip(), draft.title.strip(), draft.body.strip()
    if line not in LINES:
        raise KnowledgeError(f"业务线必须是 {'/'.join(LINES)} 之一，收到 {line!r}")
    if not title or len(title) > MAX_TITLE:
        raise KnowledgeError(f"标题不能为空，且不超过 {MAX_TITLE} 字")
    if not body or len(body) > MAX_BODY:
        raise KnowledgeError(f"正文不能为空，且不超过 {MAX_BODY} 字")
    tags = tuple(dict.fromkeys(t.strip() for t in draft.tags if t.strip()))
    if len(tags) > MAX_TAGS or any(len(t) > 64 for t in tags):
        raise KnowledgeError(f"标签最多 {MAX_TAGS} 个，每个不超过 64 字")
    entry_id = draft.entry_id.strip() if draft.entry_id else None
    if entry_id is not None and not _ENTRY_ID.match(entry_id):
        raise KnowledgeError(f"条目编号只能含字母、数字、- _ .，不超过 64 位：{entry_id!r}")
    return EntryDraft(line, title, body, tags, entry_id or None, draft.note, draft.handoff_id,
                      draft.source)


class KnowledgeBase:
    def __init__(self, sessions: SessionFactory, pool: EmbeddingPool | None) -> None:
        self.sessions = sessions
        self.pool = pool  # None: keyword search only, passages stored without embeddings
        self.stats = TokenStats()  # keyword document frequencies (search.py)

    # ---- workflow ---------------------------------------------------------------------
    async def propose(self, draft: EntryDraft, author: str) -> KbEntryRow:
        d = validate(draft)
        if d.source is None:  # from the desktop: what an agent typed during a call
            d = replace(d, title=scrub(d.title), body=scrub(d.body),
                        note=mask_digits_in_text(d.note) if d.note else None)
        entry_id = d.entry_id or f"kb-{uuid.uuid4().hex[:10]}"
        for _attempt in range(3):  # two proposals for one entry at once: next version
            try:
                async with self.sessions() as s, s.begin():
                    last = await s.scalar(select(func.max(KbEntryRow.version))
                                          .where(KbEntryRow.entry_id == entry_id))
                    if d.entry_id and last is None and d.source is None:
                        raise EntryNotFound(f"没有编号为 {entry_id} 的知识条目")
                    row = KbEntryRow(
                        entry_id=entry_id, version=(last or 0) + 1, line=d.line, title=d.title,
                        body=d.body, tags=list(d.tags), status=PROPOSED, author=author,
                        note=d.note, source=d.source or "desktop", handoff_id=d.handoff_id)
                    s.add(row)
            except IntegrityError:
                continue
            return row
        raise KnowledgeError("该条目正被同时修改，请稍后重试")

    async def approve(self, row_id: int, reviewer: str, reason: str | None = None
                      ) -> KbEntryRow:
        row = await self.get(row_id)
        if row.status != PROPOSED:
            raise EntryStateError(f"只有待审核的条目可以批准（当前状态 {row.status}）")
        if row.author == reviewer and reviewer != IMPORTER:
            raise SelfReview("不能批准自己提交的知识，请由其他审核人审核")
        passages = await self._passages(row)
        async with self.sessions() as s, s.begin():
            row = await s.get(KbEntryRow, row_id, with_for_update=True)  # type: ignore[assignment]
            if row is None or row.status != PROPOSED:
                raise EntryStateError("该条目已被其他审核人处理")
            now = datetime.now(UTC)
            current = (await s.scalars(select(KbEntryRow).where(
                KbEntryRow.entry_id == row.entry_id, KbEntryRow.status == APPROVED)
                .with_for_update())).all()
            for old in current:
                old.status, old.retired_at = RETIRED, now
                await s.execute(delete(KbPassageRow).where(KbPassageRow.row_id == old.id))
            await s.flush()
            row.status, row.reviewer, row.reason, row.reviewed_at = (
                APPROVED, reviewer, reason or None, now)
            await s.flush()
            for i, (ptext, ptok) in enumerate(zip(passages.texts, passages.tokens, strict=True)):
                s.add(KbPassageRow(
                    row_id=row.id, entry_id=row.entry_id, version=row.version, line=row.line,
                    ordinal=i, text=ptext, tokens=ptok,
                    tsv=func.to_tsvector("simple", ptok),
                    embedding=None if passages.vectors is None else passages.vectors[i].tolist()))
        self.stats.invalidate()
        return row

    async def reject(self, row_id: int, reviewer: str, reason: str) -> KbEntryRow:
        if not reason or not reason.strip():
            raise KnowledgeError("驳回必须填写原因")
        async with self.sessions() as s, s.begin():
            row = await s.get(KbEntryRow, row_id, with_for_update=True)
            if row is None:
                raise EntryNotFound(f"没有编号为 {row_id} 的知识版本")
            if row.status != PROPOSED:
                raise EntryStateError(f"只有待审核的条目可以驳回（当前状态 {row.status}）")
            row.status, row.reviewer, row.reason, row.reviewed_at = (
                REJECTED, reviewer, reason.strip(), datetime.now(UTC))
        return row

    async def import_approved(self, draft: EntryDraft) -> tuple[str, KbEntryRow | None]:
        """("added" | "updated" | "unchanged", the approved row)."""
        d = validate(draft)
        if d.entry_id:
            async with self.sessions() as s:
                cur = await s.scalar(select(KbEntryRow).where(
                    KbEntryRow.entry_id == d.entry_id, KbEntryRow.status == APPROVED))
            if cur is not None and (cur.line, cur.title, cur.body, tuple(cur.tags)) == (
                    d.line, d.title, d.body, d.tags):
                return "unchanged", cur
            outcome = "updated" if cur is not None else "added"
        else:
            outcome = "added"
        row = await self.propose(d, IMPORTER)
        return outcome, await self.approve(row.id, IMPORTER, f"imported from {d.source}")

    async def feedback(self, *, entry_id: str, version: int | None, agent: str, verdict: str,
                       handoff_id: str | None = None, comment: str | None = None
                       ) -> KbFeedbackRow:
        if verdict not in VERDICTS:
            raise KnowledgeError(f"评价必须是 {'/'.join(VERDICTS)} 之一")
        if comment is not None and len(comment) > 2000:
            raise KnowledgeError("备注不超过 2000 字")
        async with self.sessions() as s, s.begin():
            exists = await s.scalar(select(func.count()).select_from(KbEntryRow)
                                    .where(KbEntryRow.entry_id == entry_id))
            if not exists:
                raise EntryNotFound(f"没有编号为 {entry_id} 的知识条目")
            fb = KbFeedbackRow(entry_id=entry_id, version=version, handoff_id=handoff_id,
                               agent=agent, verdict=verdict,
                               comment=mask_digits_in_text(comment) if comment else None)
            s.add(fb)
        return fb

    # ---- reading ------------------------------------------------------------------------
    async def get(self, row_id: int) -> KbEntryRow:
        async with self.sessions() as s:
            row = await s.get(KbEntryRow, row_id)
        if row is None:
            raise EntryNotFound(f"没有编号为 {row_id} 的知识版本")
        return row

    async def inbox(self, limit: int = 100) -> list[KbEntryRow]:
        """Proposals waiting for review, oldest first."""
        async with self.sessions() as s:
            return list((await s.scalars(select(KbEntryRow).where(KbEntryRow.status == PROPOSED)
                                         .order_by(KbEntryRow.id).limit(limit))).all())

    async def versions(self, entry_id: str) -> list[KbEntryRow]:
        async with self.sessions() as s:
            return list((await s.scalars(select(KbEntryRow).where(
                KbEntryRow.entry_id == entry_id).order_by(KbEntryRow.version))).all())

    async def approved(self, entry_id: str) -> KbEntryRow | None:
        async with self.sessions() as s:
            return await s.scalar(select(KbEntryRow).where(
                KbEntryRow.entry_id == entry_id, KbEntryRow.status == APPROVED))

    async def counts(self) -> dict[str, int]:
        async with self.sessions() as s:
            rows = (await s.execute(select(KbEntryRow.status, func.count())
                                    .group_by(KbEntryRow.status))).all()
            passages = await s.scalar(select(func.count()).select_from(KbPassageRow))
        out = {str(status): int(n) for status, n in rows}
        out["passages"] = int(passages or 0)
        return out

    async def search(self, query: str, *, line: str | None = None, k: int = 5) -> list[Hit]:
        if line is not None and line not in LINES:
            raise KnowledgeError(f"业务线必须是 {'/'.join(LINES)} 之一")
        query = query.strip()[:500]
        if not query:
            return []
        async with self.sessions() as s, s.begin():
            return await hybrid_search(s, self.pool, query, line=line, k=k, stats=self.stats)

    # ---- passages -------------------------------------------------------------------------
    async def _passages(self, row: KbEntryRow) -> _Passages:
        texts = chunks(row.title, row.body)
        head = f"{row.title} {' '.join(row.tags or [])}"
        toks = await asyncio.to_thread(
            lambda: [" ".join(tokens(f"{head}\n{t}")) for t in texts])
        vectors = None
        if self.pool is not None:
            vectors = await self.pool.embed([embed_text(row.title, t) for t in texts],
                                            kind="passage")
        return _Passages(texts, toks, vectors)


def entry_dict(row: KbEntryRow) -> dict[str, object]:
    """One version as the API shows it."""
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {"id": row.id, "entry_id": row.entry_id, "version": row.version, "line": row.line,
            "title": row.title, "body": row.body, "tags": list(row.tags or []),
            "status": row.status, "author": row.author, "note": row.note,
            "reviewer": row.reviewer, "reason": row.reason, "source": row.source,
            "handoff_id": row.handoff_id, "created_at": iso(row.created_at),
            "reviewed_at": iso(row.reviewed_at), "retired_at": iso(row.retired_at)}
