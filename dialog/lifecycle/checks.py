"""Testing a stored version before it may be published.

The version's own ``tests:`` conversations run in a catalog made of the other published bots
plus this version (conversations start at the main menu, so routing to the bot is tested with
the neighbours it will have in service). A version without tests, or whose menu key clashes,
fails. The business actions are the demo back end's on a scratch database seeded afresh
(``scratch_actions``: ``ivr bots publish`` and the workspace's test button), so a card reported
lost in one run is not lost in the next and the live database is never written. ``lint_problems``
is ``ivr bots lint`` for one version among the published neighbours.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from datetime import date
from typing import Any

from dialog.backends.demo import demo_backends
from dialog.backends.locks import LockPolicy
from dialog.backends.seed import seed_demo
from dialog.business import build_actions
from dialog.catalog import Catalog, CatalogError
from dialog.engine import ActionFn
from dialog.lifecycle.repository import BotVersions, LifecycleError, spec_of
from dialog.lifecycle.tables import BotVersionRow
from dialog.lint import lint
from dialog.scenario import BotSpec, ScenarioError
from dialog.testing import run_conversation
from ivr.core.config import DialogSettings
from ivr.core.storage.db import create_engine, scratch_database, session_factory
from ivr.core.storage.migrate import upgrade

# conversation tests run on a fixed day, so the seeded demo data (transactions, invoices,
# recharges dated relative to "today") and every expected reply are the same on any run date
TEST_TODAY = date(2026, 11, 16)


@contextlib.asynccontextmanager
async def scratch_actions(url: str, settings: DialogSettings, today: date = TEST_TODAY
                          ) -> AsyncIterator[dict[str, ActionFn]]:
    """The demo back end's actions on a new database beside ``url``'s, seeded for ``today``
    and dropped afterwards."""
    async with scratch_database(url, "ivr_bots_test") as scratch:
        await upgrade(scratch)
        engine = create_engine(scratch)
        try:
            factory = session_factory(engine)
            await seed_demo(factory, today=today)
            backends = demo_backends(factory, lock_policy=LockPolicy.from_settings(settings))
            yield build_actions(backends, today=lambda: today)
        finally:
            await engine.dispose()


async def run_version_tests(spec: BotSpec, neighbours: list[BotSpec],
                            actions: Mapping[str, ActionFn], *,
                            today: date | None = None) -> dict[str, Any]:
    """Run ``spec``'s conversations; the summary stored in ``bot_versions.test_summary``:
    ``{"ok", "passed", "total", "failures": [{"name", "problems"}], "problems", "today"}``."""
    summary: dict[str, Any] = {"ok": False, "passed": 0, "total": len(spec.tests),
                               "failures": [], "problems": [],
                               "today": today.isoformat() if today else None}
    if not spec.tests:
        summary["problems"].append(f"{spec.id} has no tests: conversations; add at least one")
        return summary
    try:
        catalog = Catalog.from_specs([*(b for b in neighbours if b.id != spec.id), spec])
    except CatalogError as exc:
        summary["problems"].append(str(exc))
        return summary
    for conv in spec.tests:
        result = await run_conversation(catalog, actions, spec.id, conv.turns, conv.name)
        if result.ok:
            summary["passed"] += 1
        else:
            summary["failures"].append({"name": conv.name, "problems": result.problems})
    summary["ok"] = summary["passed"] == summary["total"]
    return summary


async def published_specs(repo: BotVersions) -> list[BotSpec]:
    """The published bots that parse (those that do not are not in service either)."""
    specs = []
    for row in await repo.published():
        try:
            specs.append(spec_of(row))
        except ScenarioError:
            continue
    return specs


async def check_version(repo: BotVersions, bot_id: str, version: int,
                       actions: Mapping[str, ActionFn], *, today: date | None = None
                       ) -> BotVersionRow:
    """Test a stored version and record the result (a draft that passes becomes tested)."""
    row = await repo.get(bot_id, version)
    try:
        spec = spec_of(row)
    except ScenarioError as exc:  # stored before a schema change made it invalid
        raise LifecycleError(str(exc)) from exc
    summary = await run_version_tests(spec, await published_specs(repo), actions, today=today)
    return await repo.record_test(bot_id, version, summary)


def lint_problems(spec: BotSpec, neighbours: list[BotSpec]) -> list[str]:
    """``ivr bots lint``'s problems that concern ``spec`` among the published bots."""
    try:
        catalog = Catalog.from_specs([*(b for b in neighbours if b.id != spec.id), spec],
                                     semantic=False)
    except CatalogError as exc:
        return [str(exc)]
    return [p for p in lint(catalog) if spec.id in p]


def summary_lines(summary: dict[str, Any] | None) -> list[str]:
    """A test summary for people: one line, then one per problem."""
    if not summary:
        return ["not tested"]
    if summary.get("seeded"):
        return ["seeded from dialog/bots (tested with `ivr bots test`)"]
    head = (f"{'PASS' if summary.get('ok') else 'FAIL'}: {summary.get('passed', 0)}/"
            f"{summary.get('total', 0)} conversations passed")
    lines = [head, *(f"  {p}" for p in summary.get("problems", []))]
    for failure in summary.get("failures", []):
        lines.append(f"  {failure['name']}:")
        lines += [f"    {p}" for p in failure["problems"]]
    return lines
