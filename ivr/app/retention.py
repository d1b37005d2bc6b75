"""Retention of personal data (PIPL): what is purged, when, and how.

Decides, per ``settings.retention`` (days; 0 keeps forever), relative to ``now``:

- ``calls`` older than ``calls_days`` (by ``started_at``) are deleted with their journal
  (``path`` is a column of the row).
- ``tickets`` and ``work_orders`` older than ``tickets_days`` (by ``created_at``, whatever
  their status) are deleted.
- ``callback_tasks`` older than ``callbacks_days`` (by ``requested_at``) are deleted.
- Survey answers are **anonymised, not deleted**: the campaign report counts scores (CSAT,
  NPS, response rates) over whole campaigns, and deleting old answers would change the
  figures of finished campaigns. So the free text of answers older than ``surveys_days``
  (``campaign_answers.text``, an ASR transcript that may hold anything the customer said) is
  set NULL and the score kept; contacts created before the limit and no longer being dialed
  (not ``pending``/``dialing``) lose their personal fields: ``phone`` becomes
  ``anon-<id>`` (the column is NOT NULL and unique per campaign), ``name`` NULL, ``fields``
  ``{}``. Their attempts and answers stay linked to the anonymous row, so counts stay right.
  Do-not-call entries are never purged: a wish not to be called is kept as its legal basis.
- Per-call rendered prompts (hash-named files not in the cache's fixed-prompt manifest,
  ``tts.cache.dynamic_prompt_files``) older than ``prompts_days`` (file mtime) are removed;
  fixed prompts, recordings and published names never are. Without a manifest (a cache not
  yet pre-rendered by this version) no prompt file is removed.

Rows go in bounded batches (``batch_size`` rows per statement, one transaction each, rows
locked by another transaction skipped until the next run), so a purge never holds long locks.
``run_daily`` repeats the purge inside the server; a failure is logged and tried again at the
next run. ``forget`` (one customer's data, ``ivr privacy forget``) is in ``ivr.app.forget``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, String, cast, delete, func, literal, select, update

from campaigns.tables import Answer, Contact
from dialog.backends.tables import WorkOrderRow
from handoff.ticket_tables import CallbackTaskRow, TicketRow
from ivr.core.config import Settings
from ivr.core.storage.db import SessionFactory
from ivr.core.storage.models import Call
from tts.cache import dynamic_prompt_files

log = logging.getLogger("ivr.app.retention")

PROMPT_FILES = "prompt files"


@dataclass
class PurgeReport:
    """What a purge removed (or, dry run, would remove): label -> count, in order."""

    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False

    def lines(self) -> list[str]:
        verb = "would be " if self.dry_run else ""
        out = [f"{label}: {n} {verb}{_VERBS.get(label, 'deleted')}"
               for label, n in self.counts.items()]
        return out + self.notes


_VERBS = {"campaign_answers": "anonymised (free text blanked, scores kept)",
          "campaign_contacts": "anonymised (phone, name, fields)",
          PROMPT_FILES: "removed"}


@dataclass(frozen=True)
class _Rule:
    label: str
    table: Any  # the mapped class; every table here has an ``id`` primary key
    days: int
    condition: Callable[[datetime], ColumnElement[bool]]
    values: dict[str, Any] | None = None  # None: delete; else: update these columns


def _rules(settings: Settings) -> list[_Rule]:
    r = settings.retention
    return [
        _Rule("calls", Call, r.calls_days, lambda c: Call.started_at < c),
        _Rule("tickets", TicketRow, r.tickets_days, lambda c: TicketRow.created_at < c),
        _Rule("work_orders", WorkOrderRow, r.tickets_days,
              lambda c: WorkOrderRow.created_at < c),
        _Rule("callback_tasks", CallbackTaskRow, r.callbacks_days,
              lambda c: CallbackTaskRow.requested_at < c),
        _Rule("campaign_answers", Answer, r.surveys_days,
              lambda c: (Answer.answered_at < c) & Answer.text.is_not(None),
              {"text": None}),
        _Rule("campaign_contacts", Contact, r.surveys_days,
              lambda c: (Contact.created_at < c) & Contact.status.not_in(("pending", "dialing"))
              & Contact.phone.not_like("anon-%"),
              {"phone": literal("anon-") + cast(Contact.id, String),
               "name": None, "fields": {}}),
    ]


async def purge(sessions: SessionFactory, settings: Settings, cache_dir: Path,
                now: datetime | None = None, *, dry_run: bool = False) -> PurgeReport:
    """Apply every retention limit once (see the module docstring); ``dry_run`` counts only."""
    now = now or datetime.now(UTC)
    report = PurgeReport(dry_run=dry_run)
    batch = settings.retention.batch_size
    for rule in _rules(settings):
        if rule.days <= 0:
            report.notes.append(f"{rule.label}: kept forever (limit 0)")
            continue
        condition = rule.condition(now - timedelta(days=rule.days))
        if dry_run:
            async with sessions() as session:
                n = await session.scalar(
                    select(func.count()).select_from(rule.table).where(condition))
            report.counts[rule.label] = int(n or 0)
        else:
            report.counts[rule.label] = await _in_batches(sessions, rule, condition, batch)
    days = settings.retention.prompts_days
    if days <= 0:
        report.notes.append(f"{PROMPT_FILES}: kept forever (limit 0)")
    else:
        removed = await asyncio.to_thread(
            _expired_prompts, Path(cache_dir), (now - timedelta(days=days)).timestamp(), dry_run)
        if removed is None:
            report.notes.append(f"{PROMPT_FILES}: no fixed-prompt manifest yet, none removed")
        else:
            report.counts[PROMPT_FILES] = removed
    return report


async def _in_batches(sessions: SessionFactory, rule: _Rule,
                      condition: ColumnElement[bool], batch: int) -> int:
    table = rule.table
    total = 0
    while True:
        ids = (select(table.id).where(condition).limit(batch)
               .with_for_update(skip_locked=True).scalar_subquery())
        stmt: Any = (delete(table) if rule.values is None
                     else update(table).values(**rule.values))
        async with sessions() as session, session.begin():
            result = await session.execute(stmt.where(table.id.in_(ids)))
        n = int(getattr(result, "rowcount", 0) or 0)
        total += n
        if n < batch:
            return total


def _expired_prompts(cache_dir: Path, before: float, dry_run: bool) -> int | None:
    files = dynamic_prompt_files(cache_dir) if cache_dir.is_dir() else []
    if files is None:
        return None
    n = 0
    for path in files:
        try:
            if path.stat().st_mtime >= before:
                continue
            if not dry_run:
                os.unlink(path)
        except FileNotFoundError:  # removed meanwhile (another purge)
            continue
        n += 1
    return n


async def run_daily(sessions: SessionFactory, settings: Settings, cache_dir: Path, *,
                    first_s: float | None = None, interval_s: float | None = None) -> None:
    """Purge after ``first_s``, then every ``interval_s``, until cancelled. A failed run is
    logged and tried again at the next one; it never ends the loop."""
    r = settings.retention
    await asyncio.sleep(r.first_run_s if first_s is None else first_s)
    while True:
        try:
            report = await purge(sessions, settings, cache_dir)
            log.info("retention purge: %s", "; ".join(report.lines()) or "nothing to do")
        except asyncio.CancelledError:
            raise
        except Exception:  # database down, disk error...: the next run tries again
            log.exception("retention purge failed; next try in %.0f s",
                          r.interval_s if interval_s is None else interval_s)
        await asyncio.sleep(r.interval_s if interval_s is None else interval_s)
