"""``ivr privacy purge [--dry-run]`` and ``ivr privacy forget PHONE``.

The rules live in ``ivr.app.retention`` (what is past its retention) and ``ivr.app.forget``
(what one customer's data is); this module only runs them on the configured database and prints
their counts per table. A phone number is only ever printed masked.
"""

from __future__ import annotations

import asyncio

import click

from ivr.core.config import Settings
from ivr.core.storage.errors import StorageError
from ivr.core.storage.standalone import db_sessions


@click.group("privacy")
def privacy_group() -> None:
    """Personal data: retention purge, forgetting a customer (PIPL)."""


@privacy_group.command("purge")
@click.option("--dry-run", is_flag=True, help="Count what would be removed; change nothing.")
@click.pass_obj
def purge_cmd(settings: Settings, dry_run: bool) -> None:
    """Remove personal data older than the retention settings (retention.*_days)."""
    from ivr.app.retention import purge

    async def go() -> list[str]:
        async with db_sessions(settings) as sessions:
            report = await purge(sessions, settings, settings.tts.cache_dir, dry_run=dry_run)
        return report.lines()

    try:
        lines = asyncio.run(go())
    except StorageError as exc:
        raise click.ClickException(str(exc)) from exc
    if dry_run:
        click.echo("dry run: nothing changed")
    for line in lines:
        click.echo(line)


@privacy_group.command("forget")
@click.argument("phone")
@click.pass_obj
def forget_cmd(settings: Settings, phone: str) -> None:
    """Remove the personal data of the customer with PHONE (+86/0086/spaces accepted)."""
    from campaigns.phones import PhoneError
    from ivr.app.forget import forget, phone_forms

    try:
        phone_forms(phone)  # before the database: a typo costs nothing
    except PhoneError as exc:
        raise click.BadParameter(str(exc), param_hint="PHONE") from exc

    async def go() -> list[str]:
        async with db_sessions(settings) as sessions:
            report = await forget(sessions, phone)
        return report.lines()

    try:
        lines = asyncio.run(go())
    except StorageError as exc:
        raise click.ClickException(str(exc)) from exc
    for line in lines:
        click.echo(line)


@privacy_group.command("scan")
@click.option("--log", "logs", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A log file to scan too (repeatable).")
@click.option("--redis/--no-redis", "with_redis", default=True,
              help="Scan the Redis of redis.url (when one is set).")
@click.pass_obj
def scan_cmd(settings: Settings, logs: tuple[str, ...], with_redis: bool) -> None:
    """Look for card, phone and ID numbers stored in clear (exit 1 if any is found)."""
    from pathlib import Path

    from ivr.core.storage.db import create_engine
    from ivr.core.storage.redis_server import connect_redis
    from ivr.core.storage.standalone import migrated_url
    from ivr.tools.piiscan import Finding, scan_database, scan_files, scan_redis

    async def go() -> list[Finding]:
        async with migrated_url(settings) as url:
            engine = create_engine(url)
            try:
                found = await scan_database(engine)
            finally:
                await engine.dispose()
        if with_redis and settings.redis.url is not None:
            client = await connect_redis(settings.redis.url.get_secret_value())
            try:
                found += await scan_redis(client)
            finally:
                await client.aclose()
        return found + scan_files(Path(p) for p in logs)

    try:
        found = asyncio.run(go())
    except StorageError as exc:
        raise click.ClickException(str(exc)) from exc
    for finding in found:
        click.echo(str(finding))
    click.echo(f"{len(found)} personal numbers found in clear")
    if found:
        raise SystemExit(1)


def register(main: click.Group) -> None:
    main.add_command(privacy_group)
