"""``ivr campaigns report ID [--csv FILE] [--attempts-csv FILE] [--unmasked --as USER]``.

Prints progress and results (campaigns/report.py). ``--csv FILE`` writes every answer (``-``:
standard output); ``--attempts-csv FILE`` every dial attempt and what it met (the network's
announcements included: ``campaigns/attemptlog.py``). Phones are masked in the exports unless
``--unmasked`` is given together with ``--as USER`` naming a desktop login whose role is in
``settings.ops.unmasked_roles`` (default: admin); the unmasked export is logged (who, which
campaign; never the numbers).
"""

from __future__ import annotations

import asyncio
import logging
import sys

import click

from ivr.core.config import Settings
from ivr.core.storage.standalone import db_sessions

__all__ = ["campaigns_group", "db_sessions", "register"]

log = logging.getLogger("campaigns.report")


def check_unmasked(settings: Settings, user: str | None) -> None:
    if not user:
        raise click.UsageError("--unmasked needs --as USER (a login with permission)")
    role = settings.handoff.agent_roles.get(user, "agent")
    if user not in settings.handoff.agent_passwords or role not in settings.ops.unmasked_roles:
        raise click.UsageError(f"{user!r} (role {role}) may not export full phone numbers; "
                               f"allowed roles: {', '.join(settings.ops.unmasked_roles)}")


@click.command("report")
@click.argument("campaign_id", type=int)
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False, allow_dash=True),
              default=None, help="Write every answer to this CSV file ('-': stdout).")
@click.option("--attempts-csv", "attempts_file",
              type=click.Path(dir_okay=False, allow_dash=True), default=None,
              help="Write every dial attempt and its outcome to this CSV file ('-': stdout).")
@click.option("--unmasked", is_flag=True, help="Full phone numbers in the CSV (needs --as).")
@click.option("--as", "user", default=None, help="Login whose role permits --unmasked.")
@click.pass_obj
def report_cmd(settings: Settings, campaign_id: int, csv_file: str | None,
               attempts_file: str | None, unmasked: bool, user: str | None) -> None:
    """Progress and results of campaign CAMPAIGN_ID; --csv exports every answer,
    --attempts-csv every dial attempt."""
    from campaigns.attemptlog import AttemptRow, load_attempts, write_attempts_csv
    from campaigns.report import campaign_summary as summary_of
    from campaigns.report import load_answers, render_text, results_of, write_csv
    from campaigns.stats import AnswerRow
    from ivr.core.storage.errors import StorageError

    if unmasked:
        check_unmasked(settings, user)

    if csv_file == "-" and attempts_file == "-":
        raise click.UsageError("--csv and --attempts-csv cannot both go to stdout")

    async def go() -> tuple[str, list[AnswerRow], list[AttemptRow]]:
        async with db_sessions(settings) as sessions:
            summary = await summary_of(sessions, campaign_id)
            if summary is None:
                raise click.ClickException(f"no campaign {campaign_id}")
            rows = await load_answers(sessions, campaign_id)
            attempts = await load_attempts(sessions, campaign_id) if attempts_file else []
        return render_text(results_of(summary, rows)), rows, attempts

    try:
        text, rows, attempts = asyncio.run(go())
    except StorageError as exc:
        raise click.ClickException(str(exc)) from exc
    if attempts_file == "-":
        write_attempts_csv(attempts, sys.stdout, unmasked=unmasked)
    elif attempts_file:
        with open(attempts_file, "w", encoding="utf-8-sig", newline="") as f:
            write_attempts_csv(attempts, f, unmasked=unmasked)
    n = 0
    if csv_file == "-":
        n = write_csv(rows, sys.stdout, unmasked=unmasked)
    elif csv_file:
        with open(csv_file, "w", encoding="utf-8-sig", newline="") as f:
            n = write_csv(rows, f, unmasked=unmasked)
    if "-" in (csv_file, attempts_file):
        click.echo(text, err=True)
    else:
        click.echo(text)
    for what, count, file in (("answers", n, csv_file),
                              ("dial attempts", len(attempts), attempts_file)):
        if not file:
            continue
        if unmasked:
            log.warning("campaign %s %s exported with full phone numbers by %s",
                        campaign_id, what, user)
        click.echo(f"{count} {what} written to {file}"
                   f"{' (phones unmasked)' if unmasked else ' (phones masked)'}", err=True)


@click.group("campaigns")
def campaigns_group() -> None:
    """Outbound survey campaigns."""


def register(main: click.Group) -> None:
    """Add ``report`` to the ``campaigns`` group (created here when the dialer's CLI has not
    registered one yet; the dialer's ``register`` may add its commands to either)."""
    group = main.commands.get("campaigns")
    if not isinstance(group, click.Group):
        group = campaigns_group
        main.add_command(group)
    group.add_command(report_cmd)
