"""The bot lifecycle (draft -> tested -> published -> retired, rollback, hot reload) against the
real embedded PostgreSQL. Every test gets a database of its own on the session's server, so
the session database (which the call-flow server seeds) never sees these versions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from dialog.actions import Dtmf, Say, Utterance
from dialog.catalog import BOTS_DIR
from dialog.engine import ActionFn, DialogEngine
from dialog.lifecycle.checks import check_version
from dialog.lifecycle.repository import BotVersions, LifecycleError
from dialog.lifecycle.store import CatalogStore
from dialog.scenario import ScenarioError, parse_bot
from ivr.core.config import Settings, load_settings
from ivr.core.storage.db import create_engine, session_factory
from ivr.core.storage.migrate import upgrade
from ivr.tools.botcli import TEST_TODAY, demo_actions
from ivr.tools.cli import main

HOURS_V1 = """\
id: lc_hours
name: 营业时间查询
line: general
standard: 营业厅几点开门
similar:
  - 营业厅营业时间
  - 你们几点上班
  - 营业厅什么时候关门
slots:
  hall:
    type: choice
    prompt: 请问您要查询哪个营业厅？市区请按1，开发区请按2。
    max_digits: 1
    choices:
      市区: ["1", 市区]
      开发区: ["2", 开发区]
steps:
  - ask: hall
  - say: "{hall}营业厅每天八点半至十七点半营业。"
  - end: completed
tests:
  - name: 市区营业厅
    turns:
      - caller: 营业厅几点开门
        expect_bot: lc_hours
        expect_say: 哪个营业厅
      - caller: "#1"
        expect_say: 八点半至十七点半
        expect_end: completed
"""
# v2: longer hours, its test updated to match
HOURS_V2 = HOURS_V1.replace("八点半至十七点半", "八点至十八点")
# v2 text with the test left unchanged: the test fails
HOURS_BROKEN_TEST = HOURS_V1.replace("每天八点半至十七点半", "每天八点至十八点")
HOURS_NO_TESTS = HOURS_V2.split("tests:")[0]

NOTICE = """\
id: lc_notice
name: 停气通知
line: gas
menu_key: "7"
standard: 最近有没有停气通知
similar: [哪里停气了, 停气公告]
steps:
  - say: 近期没有计划停气。
  - end: completed
tests:
  - name: 问停气
    turns:
      - caller: 最近有没有停气通知
        expect_bot: lc_notice
        expect_say: 没有计划停气
        expect_end: completed
"""


# ---- fixtures ------------------------------------------------------------------------------
@pytest_asyncio.fixture(loop_scope="session")
async def db_url(pg_url: str, pg_engine: AsyncEngine) -> AsyncIterator[str]:
    """A new database, migrated to head, dropped after the test."""
    name = f"lifecycle_{uuid.uuid4().hex[:10]}"
    async with pg_engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await auto.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    await upgrade(url)
    yield url
    async with pg_engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await auto.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest_asyncio.fixture(loop_scope="session")
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(db_url)
    yield eng
    await eng.dispose()


@pytest.fixture
def repo(engine: AsyncEngine) -> BotVersions:
    return BotVersions(session_factory(engine))


@pytest.fixture(scope="session")
def lc_settings(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(home=tmp_path_factory.mktemp("lc-home"), database={"url": pg_url})


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def actions(lc_settings: Settings) -> AsyncIterator[dict[str, ActionFn]]:
    """The demo back end on a scratch database, as ``ivr bots publish`` tests a draft."""
    async with demo_actions(lc_settings, TEST_TODAY, scratch=True) as acts:
        yield acts


async def publish_text(repo: BotVersions, yaml_text: str, actions: dict[str, ActionFn]) -> int:
    row = (await repo.import_text(yaml_text, "test.yaml")).row
    tested = await check_version(repo, row.bot_id, row.version, actions, today=TEST_TODAY)
    assert tested.state == "tested", tested.test_summary
    return (await repo.publish(row.bot_id, row.version, author="tester")).version


def bots_folder(tmp_path: Path, *texts: str) -> Path:
    folder = tmp_path / "bots"
    folder.mkdir()
    for t in texts:
        (folder / f"{parse_bot(t).id}.yaml").write_text(t, encoding="utf-8")
    return folder


# ---- import, test, publish -----------------------------------------------------------------
async def test_import_makes_a_draft_and_the_same_text_no_new_version(repo: BotVersions) -> None:
    first = await repo.import_text(HOURS_V1, "hours.yaml", author="ops1", note="first")
    assert first.created and first.row.version == 1 and first.row.state == "draft"
    assert first.row.author == "ops1" and first.row.tested_at is None
    assert len(first.row.sha256) == 64
    again = await repo.import_text(HOURS_V1, "hours.yaml")
    assert not again.created and again.row.version == 1
    second = await repo.import_text(HOURS_V2, "hours.yaml")
    assert second.created and second.row.version == 2
    assert [r.version for r in await repo.versions("lc_hours")] == [1, 2]
    assert await repo.published() == []


async def test_failing_or_missing_tests_block_publish(
        repo: BotVersions, actions: dict[str, ActionFn]) -> None:
    row = (await repo.import_text(HOURS_BROKEN_TEST, "hours.yaml")).row
    with pytest.raises(LifecycleError, match="draft"):
        await repo.publish("lc_hours", row.version)
    row = await check_version(repo, "lc_hours", row.version, actions, today=TEST_TODAY)
    assert row.state == "draft" and row.tested_at is None
    summary = row.test_summary
    assert summary is not None and summary["ok"] is False and summary["total"] == 1
    assert "八点半至十七点半" in summary["failures"][0]["problems"][0]
    with pytest.raises(LifecycleError, match="tests must pass"):
        await repo.publish("lc_hours")

    bare = (await repo.import_text(HOURS_NO_TESTS, "hours.yaml")).row
    bare = await check_version(repo, "lc_hours", bare.version, actions)
    assert bare.state == "draft"
    assert bare.test_summary is not None and "no tests" in bare.test_summary["problems"][0]
    assert await repo.published() == []


async def test_publish_retires_the_previous_version_and_keeps_it(
        repo: BotVersions, actions: dict[str, ActionFn]) -> None:
    assert await publish_text(repo, HOURS_V1, actions) == 1
    assert await publish_text(repo, HOURS_V2, actions) == 2
    rows = {r.version: r for r in await repo.versions("lc_hours")}
    assert rows[1].state == "retired" and rows[1].retired_at is not None
    assert rows[1].yaml_text == HOURS_V1  # kept, word for word
    assert rows[2].state == "published" and rows[2].published_at is not None
    assert rows[2].test_summary == {"ok": True, "passed": 1, "total": 1, "failures": [],
                                    "problems": [], "today": TEST_TODAY.isoformat()}
    assert [r.version for r in await repo.published()] == [2]
    log = await repo.publications("lc_hours")
    assert [(p.action, p.version, p.previous_version) for p in log] == [
        ("publish", 1, None), ("publish", 2, 1)]
    with pytest.raises(LifecycleError, match="already published"):
        await repo.publish("lc_hours", 2)
    with pytest.raises(LifecycleError, match="rollback"):
        await repo.publish("lc_hours", 1)


async def test_menu_key_clash_is_refused_at_publish(
        repo: BotVersions, actions: dict[str, ActionFn]) -> None:
    await publish_text(repo, NOTICE, actions)
    other = NOTICE.replace("lc_notice", "lc_notice2").replace("停气", "停水")
    row = (await repo.import_text(other, "notice2.yaml")).row
    row = await check_version(repo, row.bot_id, row.version, actions)
    assert row.state == "draft"  # its own tests already see the clash
    assert "menu_key 7" in row.test_summary["problems"][0]  # type: ignore[index]


# ---- hot reload ----------------------------------------------------------------------------
async def test_hot_reload_swaps_the_catalog_and_calls_in_progress_keep_their_version(
        repo: BotVersions, actions: dict[str, ActionFn], tmp_path: Path) -> None:
    store = CatalogStore(repo)
    seeded = await store.start(bots_folder(tmp_path, HOURS_V1, NOTICE))
    assert sorted(r.bot_id for r in seeded) == ["lc_hours", "lc_notice"]
    assert store.versions == {"lc_hours": 1, "lc_notice": 1}
    before = store.catalog

    # a call starts on v1 and is in the middle of the bot (asked which hall)
    call = DialogEngine(store.catalog, actions)
    call.start()
    out = await call.on_event(Utterance("营业厅几点开门"))
    assert call.state.bot == "lc_hours" and "哪个营业厅" in "".join(
        a.text for a in out if isinstance(a, Say))

    assert await publish_text(repo, HOURS_V2, actions) == 2  # reloads through the listener
    assert store.catalog is not before and store.versions["lc_hours"] == 2
    assert store.catalog.bots["lc_notice"] is before.bots["lc_notice"]  # unchanged: reused
    assert before.bots["lc_hours"].steps[1].say == "{hall}营业厅每天八点半至十七点半营业。"

    # the call in progress finishes on v1; a new call gets v2
    out = await call.on_event(Dtmf("1"))
    assert "八点半至十七点半" in "".join(a.text for a in out if isinstance(a, Say))
    new_call = DialogEngine(store.catalog, actions)
    new_call.start()
    await new_call.on_event(Utterance("营业厅几点开门"))
    out = await new_call.on_event(Dtmf("1"))
    assert "八点至十八点" in "".join(a.text for a in out if isinstance(a, Say))


async def test_another_process_publish_is_picked_up_by_the_periodic_check(
        engine: AsyncEngine, actions: dict[str, ActionFn], tmp_path: Path) -> None:
    server_repo = BotVersions(session_factory(engine))
    store = CatalogStore(server_repo)
    await store.start(bots_folder(tmp_path, HOURS_V1))
    assert not await store.check()  # nothing new
    cli_repo = BotVersions(session_factory(engine))  # "ivr bots publish" in another process
    store.start_watching(0.05)
    try:
        await publish_text(cli_repo, HOURS_V2, actions)
        for _ in range(100):
            if store.versions.get("lc_hours") == 2:
                break
            await asyncio.sleep(0.05)
        assert store.versions == {"lc_hours": 2}
    finally:
        await store.stop()


async def test_malformed_yaml_is_refused_and_the_published_catalog_stays(
        repo: BotVersions, engine: AsyncEngine, actions: dict[str, ActionFn],
        tmp_path: Path) -> None:
    store = CatalogStore(repo)
    await store.start(bots_folder(tmp_path, HOURS_V1, NOTICE))
    catalog = store.catalog

    bad = tmp_path / "lc_hours.yaml"
    # line 20: a step with two kinds
    bad.write_text(HOURS_V2.replace("  - end: completed", "  - end: completed\n    say: 再见"),
                   encoding="utf-8")
    outcomes = await repo.import_path(bad)
    assert outcomes[0].imported is None
    assert f"{bad}:20: steps.2: Value error, a step needs exactly one" in str(outcomes[0].error)
    with pytest.raises(ScenarioError, match=r"broken\.yaml:3: not valid YAML"):
        await repo.import_text("id: lc_x\nsteps: [\n", str(tmp_path / "broken.yaml"))
    assert [r.version for r in await repo.versions("lc_hours")] == [1]  # nothing stored
    assert not await store.reload()
    assert store.catalog is catalog

    # a published version that no longer parses (e.g. after a schema change) keeps the
    # version in service; the other bots still reload
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE bot_versions SET yaml_text = 'id: lc_hours\nsteps: 1\n', "
                                "sha256 = repeat('0', 64) WHERE bot_id = 'lc_hours'"))
    await publish_text(repo, NOTICE.replace("没有计划停气", "暂无停气计划"), actions)
    assert store.versions == {"lc_hours": 1, "lc_notice": 2}
    assert store.catalog.bots["lc_hours"] is catalog.bots["lc_hours"]
    assert "暂无停气计划" in (store.catalog.bots["lc_notice"].steps[0].say or "")


# ---- rollback, diff ------------------------------------------------------------------------
async def test_rollback_publishes_the_older_text_again(
        repo: BotVersions, actions: dict[str, ActionFn], tmp_path: Path) -> None:
    store = CatalogStore(repo)
    await store.start(bots_folder(tmp_path, HOURS_V1))
    await publish_text(repo, HOURS_V2, actions)
    assert "八点至十八点" in (store.catalog.bots["lc_hours"].steps[1].say or "")

    row = await repo.rollback("lc_hours", 1, author="ops2")
    assert row.version == 1 and row.state == "published" and row.yaml_text == HOURS_V1
    assert {r.version: r.state for r in await repo.versions("lc_hours")} == {
        1: "published", 2: "retired"}
    assert store.versions == {"lc_hours": 1}
    assert "八点半至十七点半" in (store.catalog.bots["lc_hours"].steps[1].say or "")
    log = await repo.publications("lc_hours")
    assert (log[-1].action, log[-1].version, log[-1].previous_version, log[-1].author) == (
        "rollback", 1, 2, "ops2")
    with pytest.raises(LifecycleError, match="already published"):
        await repo.rollback("lc_hours", 1)
    with pytest.raises(LifecycleError, match="no version 9"):
        await repo.rollback("lc_hours", 9)

    diff = await repo.diff("lc_hours", 1, 2)
    assert diff.startswith("--- lc_hours v1 (published)\n+++ lc_hours v2 (retired)\n")
    assert "-  - say: \"{hall}营业厅每天八点半至十七点半营业。\"" in diff
    assert "+  - say: \"{hall}营业厅每天八点至十八点营业。\"" in diff
    assert await repo.diff("lc_hours", 1, 1) == ""


# ---- seed ----------------------------------------------------------------------------------
async def test_an_empty_database_is_seeded_from_dialog_bots(repo: BotVersions) -> None:
    expected = set()
    for path in BOTS_DIR.glob("*.yaml"):  # files being edited may not parse right now
        try:
            expected.add(parse_bot(path.read_text(encoding="utf-8"), str(path)).id)
        except ScenarioError:
            continue
    store = CatalogStore(repo)
    seeded = await store.start()
    assert {r.bot_id for r in seeded} == expected and len(expected) >= 30
    assert all(r.version == 1 and r.state == "published" for r in seeded)
    assert set(store.catalog.bots) == expected
    assert store.stale_files() == []
    assert await store.start() == []  # not empty any more: nothing seeded again
    assert not (await repo.import_text(seeded[0].yaml_text)).created


# ---- the commands --------------------------------------------------------------------------
def test_cli_import_versions_publish_diff_rollback(db_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": db_url, "IVR_HOME": str(tmp_path / "home")}
    runner = CliRunner()

    def ivr(*args: str) -> str:
        result = runner.invoke(main, ["bots", *args], env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    f = tmp_path / "lc_hours.yaml"
    f.write_text(HOURS_V1, encoding="utf-8")
    # the first command seeds the empty database from dialog/bots, as a server start does
    assert "fuel_balance                 v1 published" in ivr("versions")
    assert "lc_hours: v1 draft" in ivr("import", str(f), "--author", "ops1", "--note", "new")
    out = ivr("publish", "lc_hours")
    assert "PASS: 1/1" in out and "published lc_hours v1" in out
    f.write_text(HOURS_BROKEN_TEST, encoding="utf-8")
    ivr("import", str(f))
    failed = runner.invoke(main, ["bots", "publish", "lc_hours"], env=env)
    assert failed.exit_code == 1 and "FAIL: 0/1" in failed.output
    assert "not published" in failed.output
    f.write_text(HOURS_V2, encoding="utf-8")
    ivr("import", str(f))
    assert "published lc_hours v3" in ivr("publish", "lc_hours", "--version", "3")
    versions = ivr("versions", "lc_hours")
    assert "* v3" in versions and "retired" in versions and "— new" in versions
    assert "+  - say:" in ivr("diff", "lc_hours", "1", "3")
    assert "rolled lc_hours back to v1 (v3 retired)" in ivr("rollback", "lc_hours", "--to", "1")
    assert "lc_hours                     v1 published  (v3 retired)" in ivr("versions")
    refused = runner.invoke(main, ["bots", "rollback", "lc_hours", "--to", "2"], env=env)
    assert refused.exit_code == 1 and "draft" in refused.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: Bad Id\n", encoding="utf-8")
    refused = runner.invoke(main, ["bots", "import", str(bad)], env=env)
    assert refused.exit_code == 1 and f"{bad}:1: id:" in refused.output

    async def stored() -> list[tuple[int, str]]:  # the commands wrote to DATABASE_URL
        eng = create_engine(db_url)
        try:
            async with eng.connect() as conn:
                return [tuple(r) for r in await conn.execute(text(
                    "SELECT version, state FROM bot_versions WHERE bot_id = 'lc_hours' "
                    "ORDER BY version"))]
        finally:
            await eng.dispose()

    assert asyncio.run(stored()) == [(1, "published"), (2, "draft"), (3, "retired")]
