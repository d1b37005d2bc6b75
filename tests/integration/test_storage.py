"""Storage against real servers: embedded PostgreSQL 18 + pgvector and Debian's redis-server."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from pydantic import SecretStr
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.app.tables import load_models
from ivr.core.config import DatabaseSettings, RedisSettings, load_settings
from ivr.core.storage.calls import CallRepository
from ivr.core.storage.db import create_engine, extension_version, ping, session_factory
from ivr.core.storage.errors import (
    CallNotFoundError,
    EmbeddedServerError,
    InvalidCallDataError,
    RedisUnavailableError,
    StorageError,
)
from ivr.core.storage.migrate import current, head, upgrade
from ivr.core.storage.postgres import EmbeddedPostgres, asyncpg_url, database_url
from ivr.core.storage.redis_server import EmbeddedRedis, connect_redis

pytestmark = pytest.mark.asyncio(loop_scope="session")


# ---- URLs ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db:5432/ivr", "postgresql+asyncpg://u:p@db:5432/ivr"),
        ("postgresql://u:p@db/ivr", "postgresql+asyncpg://u:p@db/ivr"),
        ("postgresql+psycopg2://u@db/ivr", "postgresql+asyncpg://u@db/ivr"),
        ("postgresql+asyncpg://u@db/ivr", "postgresql+asyncpg://u@db/ivr"),
        ("postgresql://u:p%40ss@db/ivr?sslmode=require",
         "postgresql+asyncpg://u:p%40ss@db/ivr?ssl=require"),
    ],
)
async def test_asyncpg_url(given: str, expected: str) -> None:
    assert asyncpg_url(given) == expected


async def test_database_url_from_settings(tmp_path: Path) -> None:
    assert database_url(load_settings(home=tmp_path)) is None
    s = load_settings(home=tmp_path, database={"url": "postgres://u:p@h/d"})
    assert database_url(s) == "postgresql+asyncpg://u:p@h/d"
    assert database_url(DatabaseSettings(url=SecretStr("postgresql://h/d"))) == (
        "postgresql+asyncpg://h/d"
    )
    with pytest.raises(StorageError, match="must be a PostgreSQL URL"):
        asyncpg_url("mysql://u:secret@h/d")


# ---- embedded PostgreSQL -------------------------------------------------------------------
async def test_migrated_to_head_and_upgrade_is_idempotent(pg_url: str) -> None:
    assert await current(pg_url) == head()
    await upgrade(pg_url)  # nothing to do, no error
    assert await current(pg_url) == head()


async def test_models_match_migrations(pg_engine: AsyncEngine) -> None:
    """Every model change needs a migration: autogenerate finds nothing to do at head."""

    def diff(conn: Connection) -> list[Any]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, load_models()))

    async with pg_engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_vector_extension_and_column(pg_engine: AsyncEngine) -> None:
    version = await extension_version(pg_engine, "vector")
    assert version is not None and version.startswith("0.8")
    async with pg_engine.connect() as conn:
        await conn.execute(text("CREATE TEMP TABLE kb_probe (id int, emb vector(3))"))
        await conn.execute(text(
            "INSERT INTO kb_probe VALUES (1, '[1,0,0]'), (2, '[0,1,0]'), (3, '[0.9,0.1,0]')"))
        rows = await conn.execute(text(
            "SELECT id FROM kb_probe ORDER BY emb <-> '[1,0,0]' LIMIT 2"))
        assert [r[0] for r in rows] == [1, 3]
        await conn.rollback()


async def test_started_twice_reuses_the_server(embedded_pg: EmbeddedPostgres, pg_url: str,
                                               pg_engine: AsyncEngine) -> None:
    assert await asyncio.to_thread(embedded_pg.start) == pg_url  # same object: no-op
    other = EmbeddedPostgres(DatabaseSettings(embedded_dir=embedded_pg.data_dir))
    assert await asyncio.to_thread(other.start) == pg_url  # same data dir: reused
    await asyncio.to_thread(other.stop)  # our session server keeps running
    assert embedded_pg.is_running()
    assert "PostgreSQL 18" in await ping(pg_engine)


async def test_reused_from_another_process(embedded_pg: EmbeddedPostgres, pg_url: str,
                                           pg_engine: AsyncEngine) -> None:
    """Another process (a CLI command beside a running server) starts and stops the same data
    directory: it gets the running server, and its stop leaves the server to us."""
    code = (
        "import sys; from pathlib import Path\n"
        "from ivr.core.config import DatabaseSettings\n"
        "from ivr.core.storage.postgres import EmbeddedPostgres\n"
        "pg = EmbeddedPostgres(DatabaseSettings(embedded_dir=Path(sys.argv[1])))\n"
        "print(pg.start()); pg.stop()\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, str(embedded_pg.data_dir),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert out.decode().strip() == pg_url
    assert embedded_pg.is_running()
    assert "PostgreSQL 18" in await ping(pg_engine)


async def test_first_and_warm_start(tmp_path: Path) -> None:
    pg = EmbeddedPostgres(DatabaseSettings(embedded_dir=tmp_path / "pgdata"))
    t = time.monotonic()
    url = await asyncio.to_thread(pg.start)
    first = time.monotonic() - t
    await asyncio.to_thread(pg.stop)
    assert not pg.is_running() and pg.url is None
    t = time.monotonic()
    assert await asyncio.to_thread(pg.start) == url
    warm = time.monotonic() - t
    await upgrade(url)
    await asyncio.to_thread(pg.stop)
    await asyncio.to_thread(pg.stop)  # idempotent
    print(f"embedded PostgreSQL: first start {first:.2f} s, warm start {warm:.2f} s")


async def test_unstartable_postgres_gives_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "pgdata"
    broken.mkdir()
    (broken / "PG_VERSION").write_text("18\n")  # looks initialised, holds nothing
    pg = EmbeddedPostgres(DatabaseSettings(embedded_dir=broken))
    with pytest.raises(EmbeddedServerError, match="embedded PostgreSQL could not start in") as e:
        await asyncio.to_thread(pg.start)
    assert str(broken) in str(e.value)
    (broken / "PG_VERSION").write_text("16\n")
    with pytest.raises(EmbeddedServerError, match="PostgreSQL 16 cluster"):
        await asyncio.to_thread(pg.start)


async def test_unreachable_database_raises_storage_error() -> None:
    engine = create_engine("postgresql://postgres@/postgres?host=/nonexistent-ivr-socket-dir",
                           connect_timeout_s=2)
    repo = CallRepository(session_factory(engine))
    try:
        with pytest.raises(StorageError, match=r"calls\.start failed"):
            await repo.start(channel_id="c", transport="ari", caller_number="13812345678")
        with pytest.raises(StorageError, match="does not answer"):
            await ping(engine)
    finally:
        await engine.dispose()


# ---- the call record -----------------------------------------------------------------------
async def test_call_lifecycle(call_repo: CallRepository) -> None:
    channel = f"1732480000.{uuid.uuid4().int % 10_000}"
    cid = await call_repo.start(channel_id=channel, transport="ari", caller_number="13812345678",
                                dialed_number="956100")
    row = await call_repo.get(cid)
    assert row is not None and row.outcome == "in_progress" and row.path == []
    assert row.direction == "inbound" and row.caller_number == "13812345678"
    assert row.answered_at is None and row.ended_at is None

    await call_repo.answered(cid)
    await call_repo.answered(cid)  # first answer time kept
    # three steps at once: each is one atomic UPDATE, none is lost
    await asyncio.gather(
        call_repo.add_step(cid, "welcome", prompt="welcome"),
        call_repo.add_step(cid, "menu", digit="2", said="查询电费"),
        call_repo.add_step(cid, "asr", at=datetime(2025, 1, 1, tzinfo=UTC), conf=0.93),
    )
    assert await call_repo.finish(cid, "transferred", queue="hotline-general",
                                  hangup_cause="agent")
    # a second finish does not overwrite the first outcome
    assert not await call_repo.finish(cid, "caller_hangup", queue="other", hangup_cause="caller")

    row = await call_repo.get(cid)
    assert row is not None
    assert row.outcome == "transferred" and row.queue == "hotline-general"
    assert row.hangup_cause == "agent"
    assert row.answered_at is not None and row.ended_at is not None
    assert row.started_at <= row.answered_at <= row.ended_at
    assert sorted(s["step"] for s in row.path) == ["asr", "menu", "welcome"]
    by_step = {s["step"]: s for s in row.path}
    assert by_step["menu"]["detail"] == {"digit": "2", "said": "查询电费"}
    assert by_step["asr"]["detail"]["at"].startswith("2025-01-01")  # datetime stored as text
    assert all(0 <= float(s["t"]) < 60 for s in row.path)

    found = await call_repo.by_channel(channel)
    assert found is not None and found.id == cid
    assert (await call_repo.recent(1))[0].id == cid


async def test_a_record_written_late_keeps_the_calls_own_times(
        call_repo: CallRepository) -> None:
    """The journal writes after an outage with the moments it queued: the record says when
    the call started, answered, took each step and ended, not when PostgreSQL came back."""
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    cid = await call_repo.start(channel_id=f"late.{uuid.uuid4().hex[:6]}", transport="ari",
                                at=t0)
    await call_repo.answered(cid, t0 + timedelta(seconds=1))
    await call_repo.add_step(cid, "menu", t0 + timedelta(seconds=5.25), key="1")
    await call_repo.finish(cid, "completed", at=t0 + timedelta(seconds=20))
    row = await call_repo.get(cid)
    assert row is not None and row.started_at == t0
    assert row.answered_at == t0 + timedelta(seconds=1)
    assert row.ended_at == t0 + timedelta(seconds=20)
    assert row.path == [{"t": 5.25, "step": "menu", "detail": {"key": "1"}}]


async def test_many_concurrent_steps_are_all_kept(call_repo: CallRepository) -> None:
    cid = await call_repo.start(channel_id="conc", transport="agi", direction="outbound")
    await asyncio.gather(*(call_repo.add_step(cid, f"s{i}", i=i) for i in range(40)))
    row = await call_repo.get(cid)
    assert row is not None
    assert sorted(s["detail"]["i"] for s in row.path) == list(range(40))


async def test_step_detail_may_use_any_key(call_repo: CallRepository) -> None:
    cid = await call_repo.start(channel_id="keys", transport="ari")
    await call_repo.add_step(cid, "x", step="inner", call_id="c", t=1)
    row = await call_repo.get(cid)
    assert row is not None
    assert row.path[0]["step"] == "x"
    assert row.path[0]["detail"] == {"step": "inner", "call_id": "c", "t": 1}


async def test_start_with_given_id_is_idempotent(call_repo: CallRepository) -> None:
    cid = uuid.uuid4()
    assert await call_repo.start(call_id=cid, channel_id="a", transport="ari") == cid
    assert await call_repo.start(call_id=cid, channel_id="b", transport="ari") == cid
    row = await call_repo.get(cid)
    assert row is not None and row.channel_id == "a"


async def test_a_record_left_open_by_a_dead_process_is_closed(call_repo: CallRepository) -> None:
    """A survey call cut by a crash: the next dialer ends it and closes its record by channel;
    a record already closed keeps its outcome."""
    channel = f"survey-1-{uuid.uuid4().hex[:8]}"
    cid = await call_repo.start(channel_id=channel, transport="ari", direction="outbound")
    done = await call_repo.start(channel_id=channel, transport="ari", direction="outbound")
    await call_repo.finish(done, "completed")
    assert await call_repo.close_left(channel, "failed", hangup_cause="server_lost") == 1
    assert await call_repo.close_left(channel, "failed", hangup_cause="server_lost") == 0
    row, kept = await call_repo.get(cid), await call_repo.get(done)
    assert row is not None and row.outcome == "failed" and row.hangup_cause == "server_lost"
    assert row.ended_at is not None and row.direction == "outbound"
    assert kept is not None and kept.outcome == "completed"
    with pytest.raises(InvalidCallDataError):
        await call_repo.close_left(channel, "in_progress", hangup_cause="x")


async def test_repository_errors_are_storage_errors(call_repo: CallRepository) -> None:
    missing = uuid.uuid4()
    for op in (call_repo.answered(missing), call_repo.add_step(missing, "x"),
               call_repo.finish(missing, "completed")):
        with pytest.raises(CallNotFoundError, match=str(missing)):
            await op
    with pytest.raises(InvalidCallDataError, match="transport"):
        await call_repo.start(channel_id="c", transport="sip")
    cid = await call_repo.start(channel_id="c", transport="ari")
    with pytest.raises(InvalidCallDataError):
        await call_repo.finish(cid, "in_progress")
    assert await call_repo.get(missing) is None
    assert await call_repo.by_channel("no-such-channel") is None
    assert issubclass(CallNotFoundError, StorageError)
    assert issubclass(InvalidCallDataError, StorageError)


# ---- embedded Redis ------------------------------------------------------------------------
async def test_redis_over_unix_socket(redis_url: str, embedded_redis: EmbeddedRedis) -> None:
    assert redis_url.startswith("unix://") and redis_url.endswith("/redis.sock")
    assert embedded_redis.socket_path.is_socket()
    client = await connect_redis(redis_url)
    try:
        await client.set("ivr:test", "你好", ex=60)
        assert await client.get("ivr:test") == "你好"
        assert await client.config_get("port") == {"port": "0"}  # no TCP listener
        assert (await client.config_get("save"))["save"] == ""  # no persistence
    finally:
        await client.aclose()


async def test_redis_started_twice_reuses(embedded_redis: EmbeddedRedis, redis_url: str) -> None:
    assert await embedded_redis.start() == redis_url
    other = EmbeddedRedis(RedisSettings(embedded_dir=embedded_redis.dir))
    assert await other.start() == redis_url  # answered on the socket: reused
    await other.stop()  # not ours to stop
    client = await connect_redis(redis_url)
    assert await client.ping()
    await client.aclose()


async def test_dead_redis_gives_a_clear_error(tmp_path: Path) -> None:
    server = EmbeddedRedis(RedisSettings(embedded_dir=tmp_path / "redis"))
    t = time.monotonic()
    url = await server.start()
    print(f"embedded Redis: start {time.monotonic() - t:.3f} s")
    client = await connect_redis(url)
    await client.set("k", "v")
    await server.stop()
    await server.stop()  # idempotent
    try:
        with pytest.raises(RedisConnectionError):
            await client.get("k")
    finally:
        await client.aclose()
    with pytest.raises(RedisUnavailableError, match="Redis does not answer at unix://") as e:
        await connect_redis(url)
    assert str(server.socket_path) in str(e.value)


async def test_missing_redis_server_names_the_package(tmp_path: Path) -> None:
    server = EmbeddedRedis(RedisSettings(embedded_dir=tmp_path / "r"),
                           binary=tmp_path / "no-redis-server")
    with pytest.raises(EmbeddedServerError, match="apt-get install redis-server"):
        await server.start()
    failing = EmbeddedRedis(RedisSettings(embedded_dir=tmp_path / "f"), binary="/bin/false")
    with pytest.raises(EmbeddedServerError, match=r"exited at start \(exit status 1\)"):
        await failing.start()


async def test_redis_url_password_is_hidden_in_errors() -> None:
    with pytest.raises(RedisUnavailableError) as e:
        await connect_redis("redis://:hunter2@127.0.0.1:1/0", timeout_s=1)
    assert "hunter2" not in str(e.value) and "***" in str(e.value)
