"""``ivr bots import|versions|publish|rollback|diff``: the bot lifecycle for operations staff.

Versions live in the database the server uses (DATABASE_URL, or the embedded PostgreSQL, shared
with a running ``ivr up``). A running server picks a publish or rollback up within a few
seconds; calls in progress keep the version they started with.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from ivr.core.config import Settings

if TYPE_CHECKING:  # imported when a command runs: `ivr --help` stays quick
    from dialog.lifecycle.repository import BotVersions

T = TypeVar("T")
Echo = Callable[[str], object]


def login_user() -> str | None:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return None


@contextlib.asynccontextmanager
async def lifecycle_repo(settings: Settings) -> AsyncIterator[BotVersions]:
    """``BotVersions`` on the configured database (embedded when DATABASE_URL is unset).

    An empty database is seeded from dialog/bots first, as the server does at start, so that
    the first import before the first start is not taken for the only versions there are.
    """
    from dialog.catalog import BOTS_DIR
    from dialog.lifecycle.repository import BotVersions
    from ivr.core.storage.standalone import db_sessions

    async with db_sessions(settings) as sessions:
        repo = BotVersions(sessions)
        await repo.seed_if_empty(BOTS_DIR)
        yield repo


def _run(settings: Settings, fn: Callable[[BotVersions], Awaitable[T]]) -> T:
    """Run ``fn(repo)``; refusals and storage failures become a one-line click error."""
    from dialog.lifecycle.repository import LifecycleError
    from dialog.scenario import ScenarioError
    from ivr.core.storage.errors import StorageError

    async def go() -> T:
        async with lifecycle_repo(settings) as repo:
            return await fn(repo)

    try:
        return asyncio.run(go())
    except (LifecycleError, ScenarioError, StorageError) as exc:
        raise click.ClickException(str(exc)) from exc


# ---- the operations (testable without click) -----------------------------------------------
async def import_bots(repo: BotVersions, path: Path, *, author: str | None, note: str | None,
                      echo: Echo) -> bool:
    outcomes = await repo.import_path(path, author=author, note=note)
    for o in outcomes:
        if o.imported is None:
            echo(click.style("REFUSED ", fg="red") + str(o.error))
        elif o.imported.created:
            r = o.imported.row
            echo(f"{r.bot_id}: v{r.version} draft (from {o.path})")
        else:
            r = o.imported.row
            echo(click.style(f"{r.bot_id}: unchanged (v{r.version} {r.state})", dim=True))
    refused = sum(o.imported is None for o in outcomes)
    echo(f"{len(outcomes) - refused} imported or unchanged, {refused} refused")
    if not outcomes:
        echo(f"no bot files in {path}")
    return refused == 0 and bool(outcomes)


async def show_versions(repo: BotVersions, bot: str | None, echo: Echo) -> bool:
    from dialog.lifecycle.checks import summary_lines

    if bot is None:
        overview = await repo.overview()
        for bot_id, published, newest, state in overview:
            ahead = f"  (v{newest} {state})" if newest != published else ""
            echo(f"{bot_id:<28} " + (f"v{published} published" if published else
                                     "not published") + ahead)
        echo(f"{len(overview)} bots")
        return True
    rows = await repo.versions(bot)
    if not rows:
        echo(f"no versions of bot {bot!r}")
        return False
    for r in rows:
        mark = "*" if r.state == "published" else " "
        when = r.created_at.strftime("%Y-%m-%d %H:%M") if r.created_at else ""
        echo(f"{mark} v{r.version:<3} {r.state:<9} {when}  {r.author or '-':<10} "
             f"{r.sha256[:10]}  {summary_lines(r.test_summary)[0]}"
             + (f"  — {r.note}" if r.note else ""))
    for p in await repo.publications(bot):
        echo(click.style(f"  {p.at:%Y-%m-%d %H:%M} {p.action} v{p.version}"
                         + (f" (was v{p.previous_version})" if p.previous_version else "")
                         + (f" by {p.author}" if p.author else ""), dim=True))
    return True


async def publish_bot(repo: BotVersions, settings: Settings, bot: str, version: int | None, *,
                      author: str | None, echo: Echo) -> bool:
    """Publish ``version`` (default: the newest); a draft is tested first."""
    from dialog.lifecycle.checks import check_version, summary_lines
    from dialog.lifecycle.repository import LifecycleError
    from ivr.tools.botcli import TEST_TODAY, demo_actions

    row = await (repo.get(bot, version) if version is not None else repo.newest(bot))
    if row is None:
        raise LifecycleError(f"no bot {bot!r}: import it first (ivr bots import FILE)")
    if row.state == "draft":
        echo(f"testing {bot} v{row.version} (demo back end, scratch database) ...")
        async with demo_actions(settings, TEST_TODAY, scratch=True) as actions:
            row = await check_version(repo, bot, row.version, actions, today=TEST_TODAY)
        for line in summary_lines(row.test_summary):
            echo(line)
        if row.state != "tested":
            echo(click.style(f"{bot} v{row.version} not published: its tests did not pass",
                             fg="red"))
            return False
    published = await repo.publish(bot, row.version, author=author)
    echo(click.style(f"published {bot} v{published.version}", fg="green")
         + "; a running server serves it to new calls within a few seconds")
    return True


async def rollback_bot(repo: BotVersions, bot: str, to: int, *, author: str | None,
                       echo: Echo) -> bool:
    before = [r.version for r in await repo.versions(bot) if r.state == "published"]
    row = await repo.rollback(bot, to, author=author)
    was = f" (v{before[0]} retired)" if before else ""
    echo(click.style(f"rolled {bot} back to v{row.version}{was}", fg="green"))
    return True


async def diff_versions(repo: BotVersions, bot: str, a: int, b: int, echo: Echo) -> bool:
    text = await repo.diff(bot, a, b)
    if not text:
        echo(f"{bot} v{a} and v{b} have the same text")
    for line in text.splitlines():
        color = ("green" if line.startswith("+") and not line.startswith("+++") else
                 "red" if line.startswith("-") and not line.startswith("---") else
                 "cyan" if line.startswith("@@") else None)
        echo(click.style(line, fg=color) if color else line)
    return True


# ---- click commands ------------------------------------------------------------------------
_author = click.option("--author", default=login_user, show_default="the login name",
                       help="Who made this change (kept with the version).")


@click.command("import")
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
@_author
@click.option("--note", default=None, help="What changed (kept with the version).")
@click.pass_obj
def import_cmd(settings: Settings, path: Path | None, author: str | None,
               note: str | None) -> None:
    """Import a bot file (or every file of a folder; default dialog/bots) as new drafts."""
    from dialog.catalog import BOTS_DIR

    ok = _run(settings, lambda repo: import_bots(repo, path or BOTS_DIR, author=author,
                                                 note=note, echo=click.echo))
    sys.exit(0 if ok else 1)


@click.command("versions")
@click.argument("bot", required=False)
@click.pass_obj
def versions_cmd(settings: Settings, bot: str | None) -> None:
    """List a bot's versions (* = published) and its publish history; without BOT, every
    bot's published and newest version."""
    sys.exit(0 if _run(settings, lambda repo: show_versions(repo, bot, click.echo)) else 1)


@click.command("publish")
@click.argument("bot")
@click.option("--version", "version", type=int, default=None,
              help="Version to publish (default: the newest).")
@_author
@click.pass_obj
def publish_cmd(settings: Settings, bot: str, version: int | None, author: str | None) -> None:
    """Publish a version; a draft runs its tests first and is published only if they pass."""
    ok = _run(settings, lambda repo: publish_bot(repo, settings, bot, version, author=author,
                                                 echo=click.echo))
    sys.exit(0 if ok else 1)


@click.command("rollback")
@click.argument("bot")
@click.option("--to", "to", type=int, required=True, help="The earlier version to publish.")
@_author
@click.pass_obj
def rollback_cmd(settings: Settings, bot: str, to: int, author: str | None) -> None:
    """Publish an earlier version of a bot again."""
    _run(settings, lambda repo: rollback_bot(repo, bot, to, author=author, echo=click.echo))


@click.command("diff")
@click.argument("bot")
@click.argument("a", type=int)
@click.argument("b", type=int)
@click.pass_obj
def diff_cmd(settings: Settings, bot: str, a: int, b: int) -> None:
    """Unified diff of a bot's YAML between versions A and B."""
    _run(settings, lambda repo: diff_versions(repo, bot, a, b, click.echo))


def register(group: click.Group) -> None:
    """Add the lifecycle commands to ``ivr bots``."""
    for cmd in (import_cmd, versions_cmd, publish_cmd, rollback_cmd, diff_cmd):
        group.add_command(cmd)
