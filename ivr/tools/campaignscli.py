"""``ivr campaigns create|import|start|pause|resume|stop|run|dnc add|remove`` (and, from
``ivr.tools.ledgercli``, ``dnc import`` and ``ledger``).

The ``campaigns`` click group is shared with the OPS helper's ``report``
(ivr/tools/campaignsreport.py):
whichever ``register`` runs first creates the group, the other adds its commands to it. Further
campaign commands: add them to ``register`` below (or a module with its own ``register``).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

from ivr.core.config import Settings
from ivr.core.lines import LINES
from ivr.core.storage.errors import StorageError
from ivr.tools.campaignsreport import campaigns_group, db_sessions


def _run(coro: Any) -> Any:
    try:
        return asyncio.run(coro)
    except StorageError as exc:
        raise click.ClickException(str(exc)) from exc
    except (LookupError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc


@click.command("create")
@click.option("--name", required=True)
@click.option("--survey", default="satisfaction", show_default=True)
@click.option("--line", type=click.Choice(LINES), default="general",
              show_default=True)
@click.option("--max-attempts", type=int, default=None)
@click.option("--daily-cap", type=int, default=None)
@click.option("--channels", "max_channels", type=int, default=None)
@click.option("--cps", "calls_per_second", type=float, default=None)
@click.option("--sample", "sample_rate", type=float, default=None)
@click.option("--machine", "machine_action", type=click.Choice(["hangup", "message"]),
              default=None)
@click.option("--windows", default=None,
              help='JSON {"0": [["09:00","12:00"]], ...} (0 = Monday, Asia/Shanghai)')
@click.pass_obj
def create_cmd(settings: Settings, name: str, survey: str, line: str, windows: str | None,
               **options: Any) -> None:
    """Create a campaign (status draft)."""
    from campaigns.repo import create_campaign

    if windows:
        try:
            options["windows"] = json.loads(windows)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"--windows: {exc}") from exc

    async def go() -> int:
        async with db_sessions(settings) as sessions:
            return await create_campaign(sessions, name=name, survey=survey, line=line,
                                         **options)

    click.echo(f"campaign {_run(go())} created (draft)")


@click.command("import")
@click.argument("campaign_id", type=int)
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def import_cmd(settings: Settings, campaign_id: int, csv_file: Path) -> None:
    """Import contacts (phone, name, custom fields) from CSV_FILE (UTF-8 or GBK)."""
    from campaigns.repo import ImportReport, import_contacts, parse_rows

    raw = csv_file.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("gb18030", errors="replace")
    try:
        total = len(parse_rows(text)[0])
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc

    async def go() -> ImportReport:
        async with db_sessions(settings) as sessions:
            err = sys.stderr
            with click.progressbar(length=total, label="导入", file=err) as bar:
                def step(n: int) -> None:
                    bar.update(n)

                return await import_contacts(sessions, campaign_id, text, progress=step)

    report: ImportReport = _run(go())
    for line, reason in report.problems:
        click.echo(f"第{line}行: {reason}", err=True)
    click.echo(f"{report.loaded} contacts loaded, {report.skipped} rows skipped")


def _control(action: str) -> click.Command:
    @click.command(action)
    @click.argument("campaign_id", type=int)
    @click.pass_obj
    def cmd(settings: Settings, campaign_id: int) -> None:
        from campaigns.repo import set_status

        async def go() -> str:
            async with db_sessions(settings) as sessions:
                return await set_status(sessions, campaign_id, action)

        click.echo(f"campaign {campaign_id}: {_run(go())}")

    cmd.help = f"{action.capitalize()} campaign CAMPAIGN_ID."
    return cmd


@click.group("dnc")
def dnc_group() -> None:
    """Do-not-call list (global, or per campaign with --campaign)."""


@dnc_group.command("add")
@click.argument("phone")
@click.option("--campaign", "campaign_id", type=int, default=None)
@click.option("--reason", default="manual", show_default=True)
@click.pass_obj
def dnc_add_cmd(settings: Settings, phone: str, campaign_id: int | None, reason: str) -> None:
    from campaigns import ledger
    from campaigns.phones import masked, normalise
    from campaigns.repo import dnc_add
    from ivr.tools.ledgercli import login_name

    async def go() -> bool:
        async with db_sessions(settings) as sessions:
            added = await dnc_add(sessions, phone, campaign_id=campaign_id, reason=reason)
            if added:
                await ledger.record(sessions, phone, "dnc", "operator", actor=login_name(),
                                    words=reason, campaign_id=campaign_id)
            return added

    added = _run(go())
    click.echo(f"{masked(normalise(phone))}: {'added' if added else 'already listed'}")


@dnc_group.command("remove")
@click.argument("phone")
@click.option("--campaign", "campaign_id", type=int, default=None)
@click.pass_obj
def dnc_remove_cmd(settings: Settings, phone: str, campaign_id: int | None) -> None:
    from campaigns import ledger
    from campaigns.phones import masked, normalise
    from campaigns.repo import dnc_remove
    from ivr.tools.ledgercli import login_name

    async def go() -> bool:
        async with db_sessions(settings) as sessions:
            removed = await dnc_remove(sessions, phone, campaign_id=campaign_id)
            if removed:
                await ledger.record(sessions, phone, "dnc_removed", "operator",
                                    actor=login_name(), campaign_id=campaign_id)
            return removed

    removed = _run(go())
    click.echo(f"{masked(normalise(phone))}: {'removed' if removed else 'not listed'}")


@click.command("run")
@click.option("--tick", "tick_s", type=float, default=None,
              help="Seconds between scheduling rounds (default: settings.dialer.tick_s).")
@click.option("--endpoint", default=None,
              help="PJSIP endpoint or trunk the calls go out on (settings.dialer.endpoint).")
@click.option("--keys-only", is_flag=True,
              help="No speech recognition: customers answer by keys (saves the ASR's memory).")
@click.pass_obj
def run_cmd(settings: Settings, tick_s: float | None, endpoint: str | None,
            keys_only: bool) -> None:
    """Run the dialer as its own process (beside or instead of the one in `ivr up`).

    Several dialers may run on one database: contacts are claimed with FOR UPDATE SKIP LOCKED.
    Customers answer by keys or by voice (the configured ASR, loaded once for this process).
    """
    from ivr.app.build import dialer_parts, parts_app
    from ivr.app.server import serve

    def say(msg: str) -> None:
        click.echo(f"» {msg}", err=True)

    app = parts_app(settings, dialer_parts(settings, say, endpoint=endpoint, tick_s=tick_s,
                                           keys_only=keys_only))
    try:
        _run(serve(settings, progress=say, app=app, listen=False))
    except KeyboardInterrupt:
        pass
    click.echo("dialer stopped", err=True)


def register(main: click.Group) -> None:
    """Add the dialer's commands to the ``campaigns`` group (creating it if needed)."""
    group = main.commands.get("campaigns")
    if not isinstance(group, click.Group):
        group = campaigns_group
        main.add_command(group)
    from ivr.tools.ledgercli import dnc_import_cmd, ledger_cmd

    dnc_group.add_command(dnc_import_cmd)  # ivr campaigns dnc import FILE.csv
    for cmd in (create_cmd, import_cmd, dnc_group, run_cmd, ledger_cmd,
                *(_control(a) for a in ("start", "pause", "resume", "stop"))):
        group.add_command(cmd)
