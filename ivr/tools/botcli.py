"""``ivr chat`` and ``ivr bots test|lint``: the bots in a terminal, against the demo back end."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import date

import click

from dialog.actions import Collect, Hangup, Say, Step
from dialog.actions import Transfer as TransferAction
from dialog.business import build_actions
from dialog.engine import ActionFn, DialogEngine
from dialog.lifecycle.checks import TEST_TODAY
from dialog.testing import EngineDriver, event_for, run_catalog_tests
from ivr.core.chinatime import china_today
from ivr.core.config import Settings
from ivr.core.storage.db import create_engine, session_factory
from ivr.core.storage.migrate import upgrade
from ivr.core.storage.postgres import EmbeddedPostgres, database_url


@contextlib.asynccontextmanager
async def demo_actions(settings: Settings, today: date | None = None, *, scratch: bool = False
                       ) -> AsyncIterator[dict[str, ActionFn]]:
    """Business actions on the demo back end (PostgreSQL, embedded when DATABASE_URL is unset).

    ``scratch``: in a new database seeded afresh and dropped afterwards, so conversation tests
    always start from the seed (a card reported lost in one run is not lost in the next).
    """
    from dialog.backends.demo import demo_backends
    from dialog.backends.locks import LockPolicy
    from dialog.backends.seed import seed_demo
    from dialog.lifecycle.checks import scratch_actions

    pg: EmbeddedPostgres | None = None
    url = database_url(settings)
    if url is None:
        pg = EmbeddedPostgres(settings.database)
        url = await asyncio.to_thread(pg.start)
    day = today or china_today()
    try:
        if scratch:
            async with scratch_actions(url, settings.dialog, day) as actions:
                yield actions
            return
        await upgrade(url)
        engine = create_engine(url)
        try:
            factory = session_factory(engine)
            await seed_demo(factory, today=day)
            yield build_actions(demo_backends(
                factory, lock_policy=LockPolicy.from_settings(settings.dialog)),
                today=lambda: day)
        finally:
            await engine.dispose()
    finally:
        if pg is not None:
            await asyncio.to_thread(pg.stop)


def _show(actions: list, echo: Callable[[str], object], explain: bool) -> None:
    for a in actions:
        if isinstance(a, Say):
            echo(click.style("IVR: ", fg="green") + a.text)
        elif isinstance(a, TransferAction):
            echo(click.style(f"[转人工: {a.line} 队列, 原因 {a.reason}]", fg="yellow"))
        elif isinstance(a, Hangup):
            echo(click.style(f"[挂机: {a.outcome}]", fg="yellow"))
        elif isinstance(a, Collect):
            echo(click.style(f"[等待输入: 说话，或 #按键 (最多 {a.max_digits} 位)]", dim=True))
        elif isinstance(a, Step) and explain:
            echo(click.style(f"  · {a.name} {a.detail}", fg="cyan"))


async def chat(settings: Settings, *, explain: bool, echo: Callable[[str], object],
               bot: str | None = None) -> None:
    from handoff.embeddings import intent_catalog

    catalog = await asyncio.to_thread(intent_catalog, settings)
    if bot is not None and bot not in catalog.bots:
        raise click.ClickException(f"no bot {bot!r}; bots: {', '.join(sorted(catalog.bots))}")
    async with demo_actions(settings) as actions:
        engine = DialogEngine(catalog, actions)
        out = engine.start() if bot is None else await engine.start_in(bot)
        while True:
            _show(out, echo, explain)
            if any(isinstance(a, Hangup | TransferAction) for a in out):
                return
            try:
                line = await asyncio.to_thread(input, "您: ")
            except EOFError:
                return
            out = await engine.on_event(event_for(line.strip() or "(silence)"))




async def bots_test(settings: Settings, *, only: str | None, echo: Callable[[str], object],
                    channel: str = "engine") -> bool:
    from handoff.embeddings import intent_catalog
    from ivr.tools.botchat import ChatDriver

    catalog = await asyncio.to_thread(intent_catalog, settings)
    async with demo_actions(settings, TEST_TODAY, scratch=True) as actions:
        def progress(r: object) -> None:
            mark = click.style("PASS", fg="green") if r.ok else click.style("FAIL", fg="red")  # type: ignore[attr-defined]
            echo(f"{mark} {r.bot:<24} {r.name}")  # type: ignore[attr-defined]
            for p in r.problems:  # type: ignore[attr-defined]
                echo(f"       {p}")

        report = await run_catalog_tests(catalog, actions, only=only, progress=progress,
                                         driver=ChatDriver if channel == "chat" else EngineDriver)
    total = len(report.results)
    echo(f"bots: {len(catalog.bots)}; conversations ({channel}): {report.passed}/{total} passed")
    echo(f"intent accuracy (leave-one-out over similar questions, word layers): "
         f"{report.intent_accuracy:.1%}")
    for text, want, got in report.confusions[:10]:
        echo(f"  {text!r}: expected {want}, got {got}")
    echo(f"containment (test conversations resolved without an agent): {report.containment:.1%}")
    return report.passed == total
