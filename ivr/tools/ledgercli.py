"""``ivr campaigns dnc import FILE.csv`` (the national 谢绝来电-style list) and
``ivr campaigns ledger [--phone P] [--from D] [--to D] [--csv FILE] [--unmasked --as USER]``
(the consent ledger's audit export); the rules are ``campaigns.ledger``'s."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime, timedelta
from pathlib import Path

import click

from ivr.core.config import Settings
from ivr.core.storage.errors import StorageError
from ivr.tools.campaignsreport import check_unmasked, db_sessions
from ivr.tools.lifecyclecli import login_user


def login_name() -> str:
    """Who runs the command, for the ledger (``operator`` when the system cannot say)."""
    return login_user() or "operator"


@click.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as", "actor", default=login_name, show_default="the login name",
              help="Who imports the list (kept in the ledger).")
@click.pass_obj
def dnc_import_cmd(settings: Settings, path: Path, actor: str) -> None:
    """Put every number of a CSV (first column; a header row is skipped) on the global
    do-not-call list, as the national list; each new number is recorded in the ledger."""
    from campaigns.ledger import NationalImport, import_national

    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{path}: {exc}") from exc

    async def go() -> NationalImport:
        async with db_sessions(settings) as sessions:
            return await import_national(sessions, text, actor=actor)

    try:
        report = asyncio.run(go())
    except StorageError as exc:
        raise click.ClickException(str(exc)) from exc
    for line, why in report.problems[:50]:
        click.echo(f"line {line}: {why}", err=True)
    click.echo(f"{report.added} added to the do-not-call list, {report.already} already "
               f"there, {len(report.problems)} refused")


@click.command("ledger")
@click.option("--phone", default=None, help="One number's events only.")
@click.option("--from", "since", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="First China day (default: 30 days ago).")
@click.option("--to", "until", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Last China day, included (default: today).")
@click.option("--csv", "csv_file", default=None, help="Write the CSV here ('-': stdout).")
@click.option("--unmasked", is_flag=True, help="Full phone numbers (needs --as).")
@click.option("--as", "user", default=None, help="Login whose role permits --unmasked.")
@click.pass_obj
def ledger_cmd(settings: Settings, phone: str | None, since: datetime | None,
               until: datetime | None,
               csv_file: str | None, unmasked: bool, user: str | None) -> None:
    """Consents, refusals and do-not-call changes (time, number, event, channel, words heard,
    who, campaign, call): the audit export."""
    from campaigns.inbound import day_bounds
    from campaigns.ledger import csv_rows, events
    from ivr.core.chinatime import CHINA, china_today
    from ivr.core.csvsafe import safe_writer

    if unmasked:
        check_unmasked(settings, user)
    today = china_today()  # China's day, not this machine's (UTC in CI)
    first = since.date() if since else today - timedelta(days=30)
    last = until.date() if until else today
    a, b = day_bounds(first, last)

    async def go() -> list[list[str]]:
        async with db_sessions(settings) as sessions:
            return csv_rows(await events(sessions, since=a, until=b, phone=phone),
                            unmasked=unmasked)

    try:
        rows = asyncio.run(go())
    except (StorageError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    if csv_file:
        out = sys.stdout if csv_file == "-" else open(csv_file, "w", encoding="utf-8-sig",
                                                      newline="")
        try:
            writer = safe_writer(out)
            for row in rows:
                writer.writerow(row)
        finally:
            if out is not sys.stdout:
                out.close()
    else:
        for row in rows:
            click.echo("  ".join(row))
    click.echo(f"{len(rows) - 1} events, {first} to {last} (China days, {CHINA.key})"
               f"{' (phones unmasked)' if unmasked else ''}", err=True)
