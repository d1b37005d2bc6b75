"""``ivr analytics seed|clear`` (a synthetic month of inbound calls in the configured database)
and ``ivr bench analytics`` (that month on a scratch database: how long the analytics take).

The bench seeds ``--calls`` calls over 30 China days into a scratch database (on DATABASE_URL's
server, else an embedded PostgreSQL under ``<home>/bench-analytics``), then asks the analytics
API (``/api/ops/analytics``, in-process: the queries, the labels and the JSON) for the whole
month, all lines and each line, ``--runs`` times each; it prints the server's query time and
the full HTTP round trip, median and worst."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

import click

from ivr.core.config import Settings
from ivr.core.storage.db import SessionFactory


@asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[str]:
    from ivr.core.storage.db import scratch_database
    from ivr.core.storage.postgres import EmbeddedPostgres, database_url

    url = database_url(settings)
    pg = None
    if url is None:
        settings.database.embedded_dir = settings.home / "bench-analytics" / "pgdata"
        pg = EmbeddedPostgres(settings.database)
        url = await asyncio.to_thread(pg.start)
    try:
        async with scratch_database(url, "ivr_bench_analytics") as scratch:
            yield scratch
    finally:
        if pg is not None:
            await asyncio.to_thread(pg.stop)


async def bench_analytics(settings: Settings, *, calls: int, runs: int,
                          echo: Callable[[str], object] | None = None) -> dict[str, object]:
    import aiohttp
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    from dialog.catalog import Catalog
    from ivr.core.chinatime import china_today
    from ivr.core.storage.db import create_engine, session_factory
    from ivr.core.storage.migrate import upgrade
    from ivr.tools.analyticsseed import seed_month
    from ivr.web import analytics
    from ivr.web.keys import SESSIONS, SETTINGS

    say = echo or click.echo
    end = china_today()
    first, last = end - timedelta(days=30), end - timedelta(days=1)
    async with _database(settings) as url:
        await upgrade(url)
        engine = create_engine(url)
        sessions = session_factory(engine)
        t = time.perf_counter()
        n = await seed_month(sessions, Catalog.load(), calls=calls, days=30, end=end)
        say(f"seeded {n:,} calls over {first} .. {last} in {time.perf_counter() - t:.1f} s")
        app = web.Application()
        app[SETTINGS], app[SESSIONS] = settings, sessions
        analytics.setup(app)
        server = TestServer(app)
        await server.start_server()
        out: dict[str, object] = {"calls": n, "from": str(first), "to": str(last)}
        try:
            async with aiohttp.ClientSession() as http:
                for line in ("", "oil", "gas", "general"):
                    query, http_ms = [], []
                    for _ in range(runs):
                        t = time.perf_counter()
                        async with http.get(server.make_url("/api/ops/analytics"), params={
                                "from": str(first), "to": str(last), "line": line}) as r:
                            body = await r.json()
                        http_ms.append((time.perf_counter() - t) * 1000)
                        query.append(float(body["took_ms"]))
                    name = line or "all"
                    out[name] = {"calls": body["totals"]["calls"],
                                 "query_ms_median": round(statistics.median(query), 1),
                                 "query_ms_max": round(max(query), 1),
                                 "http_ms_median": round(statistics.median(http_ms), 1),
                                 "http_ms_max": round(max(http_ms), 1)}
                    say(f"  {name:<8} {body['totals']['calls']:>7,} calls: queries median "
                        f"{statistics.median(query):.0f} ms (max {max(query):.0f}), HTTP "
                        f"round trip median {statistics.median(http_ms):.0f} ms "
                        f"(max {max(http_ms):.0f})")
        finally:
            await server.close()
            await engine.dispose()
    return out


async def _on_database(settings: Settings,
                       work: Callable[[SessionFactory], Awaitable[int]]) -> int:
    """``work`` on the configured database, migrated first."""
    from ivr.core.storage.db import create_engine, session_factory
    from ivr.core.storage.standalone import migrated_url

    async with migrated_url(settings) as url:
        engine = create_engine(url)
        try:
            return await work(session_factory(engine))
        finally:
            await engine.dispose()


def register(main: click.Group, bench_group: click.Group) -> None:
    @main.group("analytics")
    def analytics_group() -> None:
        """Inbound analytics data (the ops console's 来电分析)."""

    @analytics_group.command("seed")
    @click.option("--calls", type=click.IntRange(1, 2_000_000), default=50_000,
                  show_default=True)
    @click.option("--days", type=click.IntRange(1, 366), default=30, show_default=True)
    @click.pass_obj
    def seed_cmd(settings: Settings, calls: int, days: int) -> None:
        """Add a synthetic month of inbound calls (channel analytics-seed-N) to the database."""
        from dialog.catalog import Catalog
        from ivr.tools.analyticsseed import seed_month

        added = asyncio.run(_on_database(settings, lambda sessions: seed_month(
            sessions, Catalog.load(), calls=calls, days=days)))
        click.echo(f"added {added:,} synthetic calls over the last {days} days")

    @analytics_group.command("clear")
    @click.pass_obj
    def clear_cmd(settings: Settings) -> None:
        """Remove the synthetic calls ``seed`` added."""
        from ivr.tools.analyticsseed import clear_seeded

        click.echo(f"removed {asyncio.run(_on_database(settings, clear_seeded)):,} "
                   f"synthetic calls")

    @bench_group.command("analytics")
    @click.option("--calls", type=click.IntRange(100, 2_000_000), default=50_000,
                  show_default=True, help="Synthetic calls over 30 days.")
    @click.option("--runs", type=click.IntRange(1, 100), default=5, show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="One JSON summary on stdout.")
    @click.pass_obj
    def bench_cmd(settings: Settings, calls: int, runs: int, as_json: bool) -> None:
        """The analytics over a seeded month: query time and HTTP round trip per line."""
        result = asyncio.run(bench_analytics(
            settings, calls=calls, runs=runs,
            echo=(lambda _m: None) if as_json else None))
        if as_json:
            click.echo(json.dumps(result, ensure_ascii=False))
        else:
            click.echo(f"command: ivr bench analytics --calls {calls} --runs {runs}")
