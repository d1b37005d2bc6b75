"""The ``ivr`` command."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

import click

from ivr.core.config import ConfigError, Settings, load_settings
from ivr.core.logs import setup_logging


def _progress(message: str) -> None:
    click.echo(click.style("» ", fg="cyan") + message, err=True)


class _Main(click.Group):
    """The command group: the tool modules' subcommands (eval, bench, kb, campaigns, drill, …)
    are imported when a command other than ``up`` is asked for or listed. ``ivr up`` starts
    without them, so a server restarted after a crash puts the callers it left on hold within
    half a second (``ivr.calls.orphans``), not after every tool is imported."""

    LIGHT = frozenset({"up"})
    _loaded = False

    def _load(self) -> None:
        if not _Main._loaded:
            _Main._loaded = True
            _register_subcommands()

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.LIGHT:
            self._load()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load()
        return super().list_commands(ctx)


@click.group(cls=_Main)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="YAML settings file (default: $IVR_CONFIG).",
)
@click.pass_context
def main(ctx: click.Context, config_file: str | None) -> None:
    """956100 Mandarin voice IVR server."""
    try:
        settings = load_settings(config_file)
    except (ConfigError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    ctx.obj = settings
    setup_logging(settings.log_level)


@main.group(invoke_without_command=True)
@click.pass_context
def secrets(ctx: click.Context) -> None:
    """Print the local logins (development only: desks, SIP phones, the metrics token)."""
    if ctx.invoked_subcommand is not None:
        return
    settings: Settings = ctx.obj
    if settings.env == "production":
        raise click.ClickException("`ivr secrets` prints nothing in production")
    a, h = settings.asterisk, settings.handoff
    click.echo(f"agent desktop (http://{settings.web.host}:{settings.web.port}/agent, /ops):")
    for name, password in sorted(h.agent_passwords.items()):
        value = password.get_secret_value()
        shown = "(argon2 hash: password set by you)" if value.startswith("$argon2") else value
        role = h.agent_roles.get(name, "agent")
        click.echo(f"  {name:8} {shown}  [{role}]")
    click.echo(f"SIP at {a.bind_host}:{a.sip_port}:")
    click.echo(f"  caller   {a.caller_password.get_secret_value()}")
    click.echo(f"  agent1..3 {a.agent_password.get_secret_value()}")
    click.echo(f"/metrics: Authorization: Bearer {settings.web.metrics_token.get_secret_value()}")


@secrets.command("hash")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="The desk password (asked for when not given).")
def secrets_hash(password: str) -> None:
    """Print the argon2 hash of a desk password for handoff.agent_passwords."""
    from ivr.web.auth import hash_password

    if len(password) < 12:
        raise click.ClickException("a desk password needs at least 12 characters")
    click.echo(hash_password(password))


@main.command()
@click.pass_obj
def config(settings: Settings) -> None:
    """Print the effective settings (secrets masked)."""
    click.echo(json.dumps(settings.masked(), ensure_ascii=False, indent=2))


def _pidfile(settings: Settings) -> Path:
    return settings.home / "ivr-up.pid"


@main.command()
@click.option("--demo", is_flag=True, help="Place a demo call once the IVR is ready.")
@click.option("--exit-after-demo", is_flag=True, help="Stop everything after the demo call.")
@click.option("--chat-only", is_flag=True,
              help="Serve the web chat only (/chat, /agent): no Asterisk, TTS or ASR.")
@click.pass_obj
def up(settings: Settings, demo: bool, exit_after_demo: bool, chat_only: bool) -> None:
    """Start Asterisk, PostgreSQL, Redis and the IVR server in the foreground."""
    # first, before seconds of imports: callers of a dead process hear music. Not in a
    # cluster (failover.box): another worker may be serving them already (ivr.calls.failover)
    if not settings.asterisk.managed and not chat_only and not settings.failover.box:
        from ivr.calls.orphans import hold_orphans

        asyncio.run(hold_orphans(settings.asterisk))
    from aiohttp import web

    from ivr.app.server import serve
    from ivr.core.production import InsecureSettings, check_production
    from ivr.sim.demo import DEMO_KEYS, demo_call, print_report

    try:
        check_production(settings)
    except InsecureSettings as exc:
        raise click.ClickException(str(exc)) from exc

    async def demo_then(_app: web.Application) -> int:
        report = await demo_call(settings, number="956100", keys=DEMO_KEYS)
        print_report(report, print)
        return 0 if report.ok else 1

    pidfile = _pidfile(settings)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    pidfile.write_text(str(os.getpid()))
    try:
        from ivr.app.build import build_app

        app = build_app(settings, progress=_progress, chat_only=True) if chat_only else None
        rc = asyncio.run(serve(settings, progress=_progress, app=app,
                               then=demo_then if demo and not chat_only else None,
                               keep_serving=not exit_after_demo))
    except KeyboardInterrupt:
        rc = 0
    finally:
        pidfile.unlink(missing_ok=True)
    sys.exit(rc)


@main.command()
@click.pass_obj
def down(settings: Settings) -> None:
    """Stop a running ``ivr up`` (and a managed Asterisk left behind by a crash)."""
    pidfile = _pidfile(settings)
    stopped = False
    if pidfile.exists():
        pid = int(pidfile.read_text().strip() or 0)
        try:
            os.kill(pid, signal.SIGTERM)
            click.echo(f"sent SIGTERM to ivr up (pid {pid})")
            for _ in range(150):
                time.sleep(0.1)
                os.kill(pid, 0)
        except ProcessLookupError:
            stopped = True
    from asterisk.runner import ManagedAsterisk

    async def stop_asterisk() -> bool:
        ast = ManagedAsterisk(settings)
        if await ast._cli_ok():
            await ast.cli("core stop now")
        await ast.stop()
        return True

    if settings.asterisk.managed and settings.asterisk.root_dir.exists():
        asyncio.run(stop_asterisk())
    click.echo("stopped" if stopped or not pidfile.exists() else "ivr up did not stop in 15 s")


@main.command()
@click.option("--number", default="956100", show_default=True, help="Extension to dial.")
@click.option(
    "--keys",
    default="2,0",
    show_default=True,
    help="DTMF to press, one entry per menu (comma separated).",
)
@click.option(
    "--save",
    type=click.Path(dir_okay=False),
    default=None,
    help="Save what the caller heard as a WAV file.",
)
@click.pass_obj
def call(settings: Settings, number: str, keys: str, save: str | None) -> None:
    """Place a demo call with a real SIP user agent; print what was heard and pressed."""
    from ivr.sim.demo import demo_call, print_report

    report = asyncio.run(
        demo_call(
            settings,
            number=number,
            keys=[k for k in keys.split(",") if k],
            save=Path(save) if save else None,
        )
    )
    print_report(report, click.echo)
    if not report.ok:
        sys.exit(1)


@main.command()
@click.option("--fix", is_flag=True, help="Install what is missing (apt packages, Asterisk root).")
@click.pass_obj
def doctor(settings: Settings, fix: bool) -> None:
    """Check each part of the stack and say what to install."""
    from ivr.tools.doctor import run_checks

    ok = run_checks(settings, fix=fix, echo=click.echo)
    sys.exit(0 if ok else 1)


@main.command("chat")
@click.option("--explain", is_flag=True, help="Show matched intents, scores and slots.")
@click.option("--bot", default=None, help="Start in this bot (its id) instead of the main menu.")
@click.pass_obj
def chat_cmd(settings: Settings, explain: bool, bot: str | None) -> None:
    """Talk to the bots as a caller would (text; `#123` for keys, empty line for silence)."""
    from ivr.tools.botcli import chat

    asyncio.run(chat(settings, explain=explain, echo=click.echo, bot=bot))


@main.group()
def bots() -> None:
    """The scenario bots (dialog/bots/*.yaml)."""


@bots.command("test")
@click.option("--bot", "--only", "only", default=None, help="Only this bot's conversations.")
@click.option("--channel", type=click.Choice(["engine", "chat"]), default="engine",
              show_default=True, help="engine: the dialog engine itself; chat: through the web "
              "chat's session (messages, buttons, typed numbers).")
@click.pass_obj
def bots_test_cmd(settings: Settings, only: str | None, channel: str) -> None:
    """Run every bot's conversation tests; print intent accuracy and containment."""
    from ivr.tools.botcli import bots_test

    sys.exit(0 if asyncio.run(bots_test(settings, only=only, echo=click.echo,
                                        channel=channel)) else 1)


@bots.command("lint")
def bots_lint_cmd() -> None:
    """Schema errors, unreachable steps, unasked slots, duplicate similar questions."""
    from dialog.catalog import Catalog, CatalogError
    from dialog.lint import lint

    try:
        catalog = Catalog.load()
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from exc
    problems = lint(catalog)
    for p in problems:
        click.echo(p)
    click.echo(f"{len(catalog.bots)} bots, {len(problems)} problems")
    sys.exit(1 if problems else 0)


@bots.command("hear")
@click.option("--limit", type=int, default=0, help="Only the first N questions (a trial).")
@click.pass_obj
def bots_hear_cmd(settings: Settings, limit: int) -> None:
    """Say every bot question through the spoken path and write what the recogniser heard
    (dialog/nlu/heard.tsv, the trained layer's extra examples)."""
    import shlex

    from dialog.catalog import HEARD_FILE, Catalog
    from ivr.tools.botshear import hear_questions, questions, write_heard
    from ivr.tools.evalcli import _build, _progress

    catalog = Catalog.load(semantic=False)
    items = questions(catalog)[: limit or None]
    recognizer = _build(settings, None)

    async def go() -> list[tuple[str, str, str]]:
        try:
            return await hear_questions(settings, catalog, recognizer, items,
                                        progress=_progress)
        finally:
            await recognizer.close()

    rows = asyncio.run(go())
    command = " ".join(shlex.quote(a) for a in ["ivr", *sys.argv[1:]])
    write_heard(rows, command, settings.asr.backend)
    click.echo(f"{len(items)} questions said, {len(rows)} heard: {HEARD_FILE}")


@main.command("asterisk-config")
@click.argument("outdir", type=click.Path(file_okay=False))
@click.pass_obj
def asterisk_config(settings: Settings, outdir: str) -> None:
    """Render our Asterisk configuration into OUTDIR (for an Asterisk we do not manage)."""
    from asterisk.runner import render_configs

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in render_configs(settings).items():
        (out / name).write_text(text, encoding="utf-8")
    click.echo(f"wrote {len(list(out.glob('*.conf')))} files to {out}")


@main.group()
def prompts() -> None:
    """The prompt cache."""


@prompts.command("build")
@click.pass_obj
def prompts_build(settings: Settings) -> None:
    """Pre-render every fixed prompt with the configured TTS."""
    from dialog.catalog import Catalog
    from dialog.prompts import fixed_prompts
    from tts.cache import PromptCache
    from tts.factory import build_synthesizer

    async def run() -> None:
        synth = build_synthesizer(settings.tts, settings.llm, _progress)
        cache = PromptCache(synth, settings.tts)
        essential, rest = fixed_prompts(Catalog.load())
        texts = [*essential.values(), *rest]
        with click.progressbar(
            length=len(texts), label="rendering prompts", file=sys.stderr
        ) as bar:
            await cache.prerender(texts, progress=lambda *_a: bar.update(1))
        await synth.close()
        click.echo(f"{len(texts)} prompts in {settings.tts.cache_dir} ({synth.name})")

    asyncio.run(run())


def _register_subcommands() -> None:
    from ivr.tools.evalcli import bench_group, eval_group
    from ivr.tools.lifecyclecli import register as register_lifecycle

    main.add_command(eval_group)
    main.add_command(bench_group)
    register_lifecycle(bots)
    from ivr.tools.kbcli import register as register_kb  # ivr kb import|search|stats|bench

    register_kb(main)
    from ivr.tools.kbcli import bench_cmd as kb_bench

    bench_group.add_command(kb_bench, "kb")  # ivr bench kb == ivr kb bench
    from ivr.tools.benchvoice import voice_cmd

    bench_group.add_command(voice_cmd)  # ivr bench voice
    from ivr.tools.benchhandoff import handoff_cmd

    bench_group.add_command(handoff_cmd)  # ivr bench handoff
    from ivr.tools.benchcampaigns import campaigns_cmd

    bench_group.add_command(campaigns_cmd)  # ivr bench campaigns
    from ivr.tools.benchchat import chat_cmd

    bench_group.add_command(chat_cmd)  # ivr bench chat
    from ivr.tools.benchcarrier import carrier_cmd

    bench_group.add_command(carrier_cmd)  # ivr bench carrier
    from ivr.tools.analyticscli import register as register_analytics

    register_analytics(main, bench_group)  # ivr analytics seed|clear, ivr bench analytics
    from ivr.tools.campaignsreport import register as register_campaign_report  # campaigns report

    register_campaign_report(main)
    from ivr.tools.campaignscli import (
        register as register_campaigns,  # campaigns create|import|dnc|…
    )

    register_campaigns(main)
    from ivr.tools.privacycli import register as register_privacy  # privacy purge|forget

    register_privacy(main)
    from ivr.tools.drill import register as register_drill  # ivr drill …

    register_drill(main)
    from ivr.tools.clustercli import register as register_cluster  # ivr cluster, drill cluster
    from ivr.tools.drill import drill_group

    register_cluster(main, drill_group)



if __name__ == "__main__":  # pragma: no cover
    logging.basicConfig()
    main()
