"""Testing a stored version before it may be published.

The version's own ``tests:`` conversations run in a catalog made of the other published bots
plus this version (conversations start at the main menu, so routing to the bot is tested with
the neighbours it will have in service). A version without tests, or whose menu key clashes,
fails. The caller supplies the business actions: ``ivr.tools.lifecyclecli`` uses the demo back
end on a scratch database (``ivr.tools.botcli.demo_actions(settings, TEST_TODAY, scratch=True)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from dialog.catalog import Catalog, CatalogError
from dialog.engine import ActionFn
from dialog.lifecycle.repository import BotVersions, LifecycleError, spec_of
from dialog.lifecycle.tables import BotVersionRow
from dialog.scenario import BotSpec, ScenarioError
from dialog.testing import run_conversation


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
