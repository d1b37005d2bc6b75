"""``CatalogStore``: the catalog of published bots that a server is running, swapped in place.

A dialog engine takes the ``Catalog`` object when the call starts and keeps it; ``reload()``
builds a new ``Catalog`` from the published versions and replaces the reference in one
assignment, so calls in progress finish on the version they started with and new calls get the
new one. A published version that does not parse (possible after a schema change) is logged and
the bot keeps the version already in service; a catalog that cannot be built (a menu key clash)
is logged and the whole current catalog stays. Nothing read from the database can take
published bots out of service.

Reloads happen after a publish or rollback through the same ``BotVersions`` object, and on a
periodic check of ``BotVersions.fingerprint()`` (one indexed MAX), which picks up publishes made
by another process (``ivr bots publish`` beside a running server).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from dialog.catalog import BOTS_DIR, Catalog, CatalogError
from dialog.lifecycle.repository import BotVersions, sha256_text, spec_of
from dialog.lifecycle.tables import BotVersionRow
from dialog.nlu.matching import Embedder
from dialog.scenario import BotSpec, ScenarioError, parse_bot
from ivr.core.storage.errors import StorageError

log = logging.getLogger("dialog.lifecycle")

DEFAULT_CHECK_INTERVAL_S = 5.0


class CatalogStore:
    def __init__(self, repo: BotVersions, *, embedder: Embedder | None = None) -> None:
        self._repo = repo
        # the sentence embedder of the matcher's trained layer (settings.nlu), for every catalog
        self._embedder = embedder
        self._catalog = Catalog({})
        self._versions: dict[str, int] = {}  # bot id -> version in service
        self._parsed: dict[tuple[str, str], BotSpec] = {}  # (bot id, sha256) -> spec
        self._fingerprint: int | None = None
        self._lock = asyncio.Lock()
        self._watcher: asyncio.Task[None] | None = None
        self.reloads = 0  # catalogs swapped in (for metrics and tests)
        repo.on_publish(self._after_publish)

    @property
    def catalog(self) -> Catalog:
        """The catalog new calls get (take it once per call; it is never changed in place)."""
        return self._catalog

    @property
    def repo(self) -> BotVersions:
        """The versions this store listens to: a publish through it reloads at once."""
        return self._repo

    @property
    def versions(self) -> dict[str, int]:
        """The published version of each bot in service."""
        return dict(self._versions)

    async def start(self, folder: Path = BOTS_DIR) -> list[BotVersionRow]:
        """Seed an empty database from ``folder``, then load the published bots. Returns the
        rows seeded. When the database gives no usable bot, the files are served instead."""
        seeded = await self._repo.seed_if_empty(folder)
        await self.reload()
        if not self._catalog.bots:
            log.error("no published bot could be loaded from the database; serving %s", folder)
            self._catalog = await asyncio.to_thread(self._load_files, folder)
        return seeded

    async def reload(self) -> bool:
        """Build the catalog from the published versions; True when a new one was swapped in."""
        async with self._lock:
            # fingerprint first: a publish between the two reads costs one more reload, never
            # a missed one
            fingerprint = await self._repo.fingerprint()
            rows = await self._repo.published()
            built = await asyncio.to_thread(self._build, rows)
            self._fingerprint = fingerprint
            if built is None:
                return False
            catalog, versions = built
            if versions == self._versions and self._catalog.bots:
                return False
            if not catalog.bots and self._catalog.bots:
                log.error("no published bot in the database; the current catalog stays")
                return False
            changed = sorted(b for b in versions.keys() | self._versions.keys()
                             if versions.get(b) != self._versions.get(b))
            self._catalog, self._versions = catalog, versions
            self.reloads += 1
        log.info("bot catalog reloaded: %d bots; changed: %s", len(catalog.bots),
                 ", ".join(f"{b} v{versions[b]}" if b in versions else f"{b} (removed)"
                           for b in changed) or "none")
        return True

    def _load_files(self, folder: Path) -> Catalog:
        catalog = Catalog.load(folder, embedder=self._embedder)
        catalog.matcher.warm()  # before a caller's words need it
        return catalog

    def _build(self, rows: list[BotVersionRow]) -> tuple[Catalog, dict[str, int]] | None:
        specs: dict[str, BotSpec] = {}
        versions: dict[str, int] = {}
        for row in rows:
            key = (row.bot_id, row.sha256)
            spec = self._parsed.get(key)
            if spec is None:
                try:
                    spec = spec_of(row)
                except ScenarioError as exc:
                    kept = self._catalog.bots.get(row.bot_id)
                    log.error("published bot %s v%d does not parse; %s:\n%s", row.bot_id,
                              row.version, f"keeping v{self._versions.get(row.bot_id)}"
                              if kept else "left out", exc)
                    if kept is not None:
                        specs[row.bot_id] = kept
                        versions[row.bot_id] = self._versions[row.bot_id]
                    continue
                self._parsed[key] = spec
            specs[row.bot_id] = spec
            versions[row.bot_id] = row.version
        try:
            catalog = Catalog.from_specs(specs.values(), embedder=self._embedder)
        except CatalogError as exc:
            log.error("published bots do not make a catalog; the current one stays:\n%s", exc)
            return None
        catalog.matcher.warm()  # before a caller's words need it
        in_use = {(r.bot_id, r.sha256) for r in rows}
        self._parsed = {k: v for k, v in self._parsed.items() if k in in_use}
        return catalog, versions

    async def check(self) -> bool:
        """Reload when another process published something since the last load."""
        if await self._repo.fingerprint() == self._fingerprint:
            return False
        return await self.reload()

    async def _after_publish(self) -> None:
        try:
            await self.reload()
        except StorageError as exc:  # the periodic check tries again
            log.warning("bot catalog reload after publish failed: %s", exc)

    def start_watching(self, interval_s: float = DEFAULT_CHECK_INTERVAL_S) -> None:
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch(interval_s), name="bot-catalog-watch")

    async def _watch(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.check()
            except StorageError as exc:
                log.warning("bot catalog check failed (the current catalog stays): %s", exc)

    async def stop(self) -> None:
        task, self._watcher = self._watcher, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def stale_files(self, folder: Path = BOTS_DIR) -> list[str]:
        """Ids of the bot files in ``folder`` whose text is not the published version's (to
        import and publish); files that do not parse are left out."""
        published = set(self._parsed)  # (bot id, sha256) of the published versions
        stale = []
        for path in sorted(folder.glob("*.yaml")):
            try:
                content = path.read_text(encoding="utf-8")
                bot_id = parse_bot(content, str(path)).id
            except (OSError, UnicodeDecodeError, ScenarioError):
                continue
            if (bot_id, sha256_text(content)) not in published:
                stale.append(bot_id)
        return stale
