"""``BotVersions``: the stored versions of the bots and the moves between their states.

    import (draft) --test passes--> tested --publish--> published --next publish--> retired
                                                            ^--------- rollback ---------'

Every import is a new version (numbered per bot from 1), unless its text is the same as the
bot's newest version. Text that does not parse is refused with ``ScenarioError`` (file, line
and field) and nothing is stored. At most one version per bot is published; publishing retires
the previous one, which is kept so that a rollback can publish it again.

Refused moves raise ``LifecycleError`` (a message for the operator); database failures raise
``StorageError``. Writes to one bot's versions take a per-bot advisory lock, so two operators
(or two processes) cannot publish or number versions of the same bot at once.
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import func, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from dialog.catalog import menu_key_problems
from dialog.lifecycle.tables import (
    DRAFT,
    PUBLISHED,
    RETIRED,
    TESTED,
    BotPublicationRow,
    BotVersionRow,
)
from dialog.scenario import BotSpec, ScenarioError, parse_bot
from ivr.core.storage.db import SessionFactory
from ivr.core.storage.errors import StorageError

log = logging.getLogger("dialog.lifecycle")

_DB_ERRORS = (SQLAlchemyError, OSError, TimeoutError)
# pg_advisory_xact_lock(key, hashtext(bot_id)): per-bot writes; bot id '' guards the seed
_LOCK_KEY = 95610003

Listener = Callable[[], Awaitable[object]]
T = TypeVar("T")


class LifecycleError(ValueError):
    """A lifecycle move that is not allowed (unknown version, untested draft, ...)."""


def sha256_text(text_: str) -> str:
    return hashlib.sha256(text_.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Imported:
    row: BotVersionRow
    created: bool  # False: the text equals the bot's newest version, nothing stored


@dataclass(frozen=True)
class ImportOutcome:
    """One file of a folder import: its new (or unchanged) version, or why it was refused."""

    path: Path
    imported: Imported | None = None
    error: str | None = None


class BotVersions:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions
        self._listeners: list[Listener] = []

    def on_publish(self, listener: Listener) -> None:
        """Call ``listener()`` after every publish and rollback made through this object."""
        self._listeners.append(listener)

    async def _notify(self) -> None:
        for listener in self._listeners:
            await listener()

    # ---- plumbing (dialog.lifecycle.review uses it too) ----------------------------------
    async def transaction(self, op: str, fn: Callable[[AsyncSession], Awaitable[T]],
                          *, lock: str | None = None) -> T:
        """``fn(session)`` in one transaction (under the bot's advisory lock when ``lock``)."""
        try:
            async with self._sessions() as session, session.begin():
                if lock is not None:
                    await session.execute(text("SELECT pg_advisory_xact_lock(:k, hashtext(:b))"),
                                          {"k": _LOCK_KEY, "b": lock})
                return await fn(session)
        except _DB_ERRORS as exc:
            raise StorageError(f"bot_versions.{op} failed: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    async def _get(session: AsyncSession, bot_id: str, version: int) -> BotVersionRow:
        row = (await session.execute(select(BotVersionRow).where(
            BotVersionRow.bot_id == bot_id, BotVersionRow.version == version))).scalar_one_or_none()
        if row is None:
            raise LifecycleError(f"bot {bot_id!r} has no version {version}")
        return row

    @staticmethod
    async def get_in(session: AsyncSession, bot_id: str, version: int) -> BotVersionRow:
        """``get`` inside a caller's transaction (``transaction(op, fn)``)."""
        return await BotVersions._get(session, bot_id, version)

    @staticmethod
    async def _newest(session: AsyncSession, bot_id: str) -> BotVersionRow | None:
        return (await session.execute(
            select(BotVersionRow).where(BotVersionRow.bot_id == bot_id)
            .order_by(BotVersionRow.version.desc()).limit(1))).scalar_one_or_none()

    # ---- reads -------------------------------------------------------------------------
    async def get(self, bot_id: str, version: int) -> BotVersionRow:
        return await self.transaction("get", lambda s: self._get(s, bot_id, version))

    async def newest(self, bot_id: str) -> BotVersionRow | None:
        return await self.transaction("newest", lambda s: self._newest(s, bot_id))

    async def versions(self, bot_id: str) -> list[BotVersionRow]:
        async def q(s: AsyncSession) -> list[BotVersionRow]:
            stmt = (select(BotVersionRow).where(BotVersionRow.bot_id == bot_id)
                    .order_by(BotVersionRow.version))
            return list((await s.execute(stmt)).scalars())
        return await self.transaction("versions", q)

    async def published(self) -> list[BotVersionRow]:
        """The published version of every bot, by bot id."""
        async def q(s: AsyncSession) -> list[BotVersionRow]:
            stmt = (select(BotVersionRow).where(BotVersionRow.state == PUBLISHED)
                    .order_by(BotVersionRow.bot_id))
            return list((await s.execute(stmt)).scalars())
        return await self.transaction("published", q)

    async def overview(self) -> list[tuple[str, int | None, int, str]]:
        """Per bot: (bot id, published version or None, newest version, newest state)."""
        async def q(s: AsyncSession) -> list[tuple[str, int | None, int, str]]:
            stmt = (select(BotVersionRow.bot_id, BotVersionRow.version, BotVersionRow.state)
                    .order_by(BotVersionRow.bot_id, BotVersionRow.version))
            out: dict[str, tuple[str, int | None, int, str]] = {}
            for bot_id, version, state in (await s.execute(stmt)).all():
                published = version if state == PUBLISHED else (
                    out[bot_id][1] if bot_id in out else None)
                out[bot_id] = (bot_id, published, version, state)
            return list(out.values())
        return await self.transaction("overview", q)

    async def fingerprint(self) -> int:
        """Changes whenever any bot is published, rolled back or seeded (one indexed MAX)."""
        async def q(s: AsyncSession) -> int:
            value = (await s.execute(select(func.max(BotPublicationRow.id)))).scalar_one()
            return int(value or 0)
        return await self.transaction("fingerprint", q)

    async def publications(self, bot_id: str) -> list[BotPublicationRow]:
        async def q(s: AsyncSession) -> list[BotPublicationRow]:
            stmt = (select(BotPublicationRow).where(BotPublicationRow.bot_id == bot_id)
                    .order_by(BotPublicationRow.id))
            return list((await s.execute(stmt)).scalars())
        return await self.transaction("publications", q)

    async def diff(self, bot_id: str, a: int, b: int) -> str:
        """Unified diff of version ``a``'s YAML to version ``b``'s ('' when equal)."""
        old, new = await self.get(bot_id, a), await self.get(bot_id, b)
        return "".join(difflib.unified_diff(
            old.yaml_text.splitlines(keepends=True), new.yaml_text.splitlines(keepends=True),
            fromfile=f"{bot_id} v{a} ({old.state})", tofile=f"{bot_id} v{b} ({new.state})"))

    # ---- import ------------------------------------------------------------------------
    async def import_text(self, yaml_text: str, source: str = "<bot>", *,
                          author: str | None = None, note: str | None = None) -> Imported:
        """Store ``yaml_text`` as the bot's next draft; ``ScenarioError`` (nothing stored) when
        it does not parse."""
        spec = parse_bot(yaml_text, source)
        digest = sha256_text(yaml_text)

        async def q(s: AsyncSession) -> Imported:
            newest = await self._newest(s, spec.id)
            if newest is not None and newest.sha256 == digest:
                return Imported(newest, created=False)
            row = BotVersionRow(
                bot_id=spec.id, version=(newest.version + 1) if newest else 1,
                yaml_text=yaml_text, sha256=digest, state=DRAFT, author=author, note=note,
                source=source[-300:])
            s.add(row)
            await s.flush()
            await s.refresh(row)
            return Imported(row, created=True)

        imported = await self.transaction("import", q, lock=spec.id)
        if imported.created:
            log.info("bot %s: version %d imported from %s", spec.id, imported.row.version, source)
        return imported

    async def import_path(self, path: Path, *, author: str | None = None,
                          note: str | None = None) -> list[ImportOutcome]:
        """Import one file, or every ``*.yaml`` of a folder (each file on its own: a bad file is
        refused, the others are imported)."""
        outcomes = []
        for file, content, error in await asyncio.to_thread(read_bot_files, path):
            if content is None:
                outcomes.append(ImportOutcome(file, error=error))
                continue
            try:
                imported = await self.import_text(content, str(file), author=author, note=note)
            except ScenarioError as exc:
                outcomes.append(ImportOutcome(file, error=str(exc)))
                continue
            outcomes.append(ImportOutcome(file, imported=imported))
        return outcomes

    # ---- test, publish, rollback -------------------------------------------------------
    async def record_test(self, bot_id: str, version: int, summary: dict[str, Any]
                          ) -> BotVersionRow:
        """Keep a test run's summary; a draft whose run passed (``summary["ok"]``) becomes
        tested. A failed run leaves the state as it was."""
        async def q(s: AsyncSession) -> BotVersionRow:
            row = await self._get(s, bot_id, version)
            values: dict[str, Any] = {"test_summary": summary}
            if summary.get("ok"):
                values["tested_at"] = func.now()
                if row.state == DRAFT:
                    values["state"] = TESTED
            await s.execute(update(BotVersionRow).where(BotVersionRow.id == row.id)
                            .values(**values))
            await s.refresh(row)
            return row
        return await self.transaction("record_test", q, lock=bot_id)

    async def publish(self, bot_id: str, version: int | None = None, *,
                      author: str | None = None) -> BotVersionRow:
        """Publish a tested version (default: the newest); the published one is retired."""
        async def q(s: AsyncSession) -> BotVersionRow:
            if version is None:
                newest = await self._newest(s, bot_id)
                if newest is None:
                    raise LifecycleError(f"no bot {bot_id!r}")
                row = newest
            else:
                row = await self._get(s, bot_id, version)
            if row.state == DRAFT:
                raise LifecycleError(f"{bot_id} v{row.version} is a draft: its tests must pass "
                                     f"before it is published")
            if row.state == RETIRED:
                raise LifecycleError(f"{bot_id} v{row.version} is retired: use rollback to "
                                     f"publish it again")
            return await self._make_published(s, row, "publish", author)
        return await self._publish_and_notify("publish", q, bot_id)

    async def rollback(self, bot_id: str, to: int, *, author: str | None = None
                       ) -> BotVersionRow:
        """Publish an earlier version again (a retired one, or a tested one)."""
        async def q(s: AsyncSession) -> BotVersionRow:
            row = await self._get(s, bot_id, to)
            if row.state == DRAFT:
                raise LifecycleError(f"{bot_id} v{to} is a draft that never passed its tests")
            return await self._make_published(s, row, "rollback", author)
        return await self._publish_and_notify("rollback", q, bot_id)

    async def _publish_and_notify(self, op: str, fn: Callable[[AsyncSession],
                                  Awaitable[BotVersionRow]], bot_id: str) -> BotVersionRow:
        row = await self.transaction(op, fn, lock=bot_id)
        log.info("bot %s: version %d published (%s)", bot_id, row.version, op)
        await self._notify()
        return row

    async def _make_published(self, s: AsyncSession, row: BotVersionRow, action: str,
                              author: str | None) -> BotVersionRow:
        if row.state == PUBLISHED:
            raise LifecycleError(f"{row.bot_id} v{row.version} is already published")
        spec = spec_of(row)
        others: list[BotSpec] = []
        for other in (await s.execute(select(BotVersionRow).where(
                BotVersionRow.state == PUBLISHED, BotVersionRow.bot_id != row.bot_id))).scalars():
            try:
                others.append(spec_of(other))
            except ScenarioError as exc:  # not in service either (CatalogStore skips it)
                log.warning("published bot does not parse: %s", exc)
        clashes = menu_key_problems([*others, spec])
        if clashes:
            raise LifecycleError("; ".join(clashes))
        current = (await s.execute(
            update(BotVersionRow)
            .where(BotVersionRow.bot_id == row.bot_id, BotVersionRow.state == PUBLISHED)
            .values(state=RETIRED, retired_at=func.now())
            .returning(BotVersionRow.version))).scalar_one_or_none()
        # retire first, then publish: the partial unique index allows one published per bot
        await s.execute(update(BotVersionRow).where(BotVersionRow.id == row.id).values(
            state=PUBLISHED, published_at=func.now(), retired_at=None))
        s.add(BotPublicationRow(bot_id=row.bot_id, version=row.version,
                                previous_version=current, action=action, author=author))
        await s.flush()
        await s.refresh(row)
        return row

    # ---- seed --------------------------------------------------------------------------
    async def seed_if_empty(self, folder: Path) -> list[BotVersionRow]:
        """On an empty ``bot_versions``: every bot file of ``folder`` as published version 1.

        Files that do not parse, or whose menu key clashes with an earlier file's, are skipped
        with a logged error. Returns the rows seeded (none when there were versions already).
        """
        specs: list[tuple[Path, str, BotSpec]] = []
        for path, content, error in await asyncio.to_thread(read_bot_files, folder):
            try:
                if content is None:
                    raise ScenarioError(error)
                spec = parse_bot(content, str(path))
            except ScenarioError as exc:
                log.error("bot file skipped by the seed: %s", exc)
                continue
            taken = [s for _, _, s in specs]
            problems = menu_key_problems([*taken, spec])
            if any(s.id == spec.id for s in taken):
                problems.append(f"{path}: id {spec.id!r} is used by another bot")
            if problems:
                log.error("bot file skipped by the seed: %s", "; ".join(problems))
                continue
            specs.append((path, content, spec))

        async def q(s: AsyncSession) -> list[BotVersionRow]:
            if (await s.execute(select(func.count()).select_from(BotVersionRow))).scalar_one():
                return []
            rows = [BotVersionRow(
                bot_id=spec.id, version=1, yaml_text=content, sha256=sha256_text(content),
                state=PUBLISHED, author="seed", note=f"seeded from {folder.name}/{path.name}",
                source=str(path)[-300:], published_at=func.now(),
                test_summary={"ok": None, "seeded": True}) for path, content, spec in specs]
            s.add_all(rows)
            s.add_all([BotPublicationRow(bot_id=r.bot_id, version=1, action="seed",
                                         author="seed") for r in rows])
            await s.flush()
            for r in rows:
                await s.refresh(r)
            return rows

        rows = await self.transaction("seed", q, lock="")
        if rows:
            log.info("seeded %d bots from %s as published version 1", len(rows), folder)
        return rows


def read_bot_files(path: Path) -> list[tuple[Path, str | None, str | None]]:
    """(file, text, None) or (file, None, why it cannot be read) for a file or a folder's
    ``*.yaml`` (blocking: run it in a thread)."""
    out: list[tuple[Path, str | None, str | None]] = []
    for file in sorted(path.glob("*.yaml")) if path.is_dir() else [path]:
        try:
            out.append((file, file.read_text(encoding="utf-8"), None))
        except (OSError, UnicodeDecodeError) as exc:
            out.append((file, None, f"{file}: cannot read: {exc}"))
    return out


def spec_of(row: BotVersionRow) -> BotSpec:
    """The parsed bot of a stored version (``ScenarioError`` names bot and version)."""
    return parse_bot(row.yaml_text, f"{row.bot_id} v{row.version}")
