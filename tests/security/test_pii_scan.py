"""The PII scan itself (run after the end-to-end tests by tests/conftest.py): it finds numbers
planted in a table, a Redis value and a log line, stays quiet about their masked forms, hashes
and times, and lets a registered column keep the phone number it exists for."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text

from ivr.core.logs import redacting_handler
from ivr.core.privacy import mask_digits_in_text
from ivr.core.storage.db import create_engine, scratch_database
from ivr.core.storage.redis_server import connect_redis
from ivr.tools.piiscan import find_in_text, scan_database, scan_files, scan_redis

CARD = "6222 0212 3456 7890"
PHONE = "13912345678"
ID_NO = "11010519491231002X"


def kinds(value: str, known: tuple[str, ...] = ()) -> set[str]:
    return {kind for kind, _ in find_in_text(value, known)}


def test_finds_each_kind_standing_alone() -> None:
    assert kinds(f"卡号{CARD}，") == {"card"}
    assert kinds(f"电话：{PHONE}") == {"phone"}
    assert kinds(f"身份证 {ID_NO}") == {"id"}
    assert kinds("密码是 246810 。", ("246810",)) == {"known"}


@pytest.mark.parametrize("value", [
    "550e8400-e29b-41d4-a716-446655440000", "a1b2c3d4e5f60718293a4b5c6d7e8f90" * 2,
    "2026-12-04T16:48:36.246810+08:00", "call 1764867336.1234", "ticket T20261204000123",
])
def test_hashes_ids_and_times_are_not_findings(value: str) -> None:
    assert kinds(value, ("246810",)) == set()


@given(st.sampled_from([CARD, PHONE, ID_NO, "6222021234567890123"]),
       st.sampled_from(["", "卡号", "我的是", "number "]))
def test_what_the_masking_leaves_is_never_a_finding(number: str, before: str) -> None:
    assert kinds(before + number) and not kinds(mask_digits_in_text(before + number))


@pytest.mark.asyncio(loop_scope="session")
async def test_scans_tables_redis_and_logs(pg_url: str, redis_url: str, tmp_path: Path) -> None:
    async with scratch_database(pg_url, "piiscan") as url:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("CREATE TABLE calls (caller_number text, path jsonb)"))
                await conn.execute(text("CREATE TABLE notes (body text)"))
                await conn.execute(text("INSERT INTO calls VALUES (:p, :j)"),
                                   {"p": PHONE, "j": '[{"step": "speech", "text": "卡号****"}]'})
                await conn.execute(text("INSERT INTO notes VALUES (:b)"),
                                   {"b": f"客户说卡号 {CARD}"})
            found = await scan_database(engine)
        finally:
            await engine.dispose()
    assert [(f.kind, f.where) for f in found] == [("card", "table notes.body row 1")]
    assert CARD not in str(found[0]) and "7890" in str(found[0])  # the report masks it

    client = await connect_redis(redis_url)
    try:
        await client.set("test:piiscan", f'{{"caller": "{PHONE}"}}', ex=60)
        assert {f.kind for f in await scan_redis(client) if "piiscan" in f.where} == {"phone"}
        await client.delete("test:piiscan")
    finally:
        await client.aclose()

    log_file = tmp_path / "server.log"
    handler = redacting_handler(logging.FileHandler(log_file, encoding="utf-8"))
    log = logging.getLogger("test.piiscan")
    log.addHandler(handler)
    try:
        log.warning("caller %s said %s", PHONE, CARD)  # through the project's redaction
    finally:
        log.removeHandler(handler)
        handler.close()
    assert scan_files([log_file]) == []
    log_file.write_text(f"raw {PHONE}\n", encoding="utf-8")
    assert [f.kind for f in scan_files([log_file])] == ["phone"]
