"""``ivr bots lint``: problems a schema cannot see."""

from __future__ import annotations

from collections import defaultdict

from dialog.business import action_names
from dialog.catalog import Catalog
from dialog.nlu.normalize import normalize_for_match
from dialog.scenario import BotSpec


def unreachable_steps(bot: BotSpec) -> list[int]:
    """Steps no path reaches (after an end/transfer with no id, or a goto with nothing after)."""
    ids = {s.id: i for i, s in enumerate(bot.steps) if s.id}
    seen: set[int] = set()
    todo = [0]
    while todo:
        i = todo.pop()
        if i in seen or i >= len(bot.steps):
            continue
        seen.add(i)
        step = bot.steps[i]
        for ref in (step.goto, step.on_no, step.on_error):
            if ref:
                todo.append(ids[ref])
        if step.kind not in ("end", "transfer") and not (step.kind == "goto" and not step.when):
            todo.append(i + 1)
    return [i for i in range(len(bot.steps)) if i not in seen]


def lint(catalog: Catalog) -> list[str]:
    problems: list[str] = []
    owners: dict[str, set[str]] = defaultdict(set)
    for bot in catalog.bots.values():
        for i in unreachable_steps(bot):
            problems.append(f"{bot.id}: step {i} ({bot.steps[i].kind}) is never reached")
        known = action_names()
        for i, step in enumerate(bot.steps):
            if step.action and step.action not in known:
                problems.append(f"{bot.id}: step {i} calls unknown action {step.action!r}")
        asked = {s.ask for s in bot.steps if s.ask}
        for slot in bot.slots:
            if slot not in asked:
                problems.append(f"{bot.id}: slot {slot!r} is never asked")
        if not bot.tests:
            problems.append(f"{bot.id}: no test conversations")
        for q in (bot.standard, *bot.similar):
            owners[normalize_for_match(q)].add(bot.id)
    for text, bots in owners.items():
        if len(bots) > 1:
            problems.append(f"similar question {text!r} is in several bots: {sorted(bots)}")
    return problems + rules_firing_elsewhere(catalog)


def rules_firing_elsewhere(catalog: Catalog) -> list[str]:
    """A bot's rule that fires on another bot's standard or similar question: a rule scores
    1.0, so such a caller is sent confidently to the wrong bot (unless the other bot's own
    rule or exact question wins). A question with a self-correction is checked as the matcher
    scores it: what follows the correction (``dialog.nlu.correction``)."""
    from dialog.nlu.correction import intended
    from dialog.nlu.rules import compile_rule

    out = []
    for bot in catalog.bots.values():
        for source in bot.rules:
            rule = compile_rule(source)
            for other in catalog.bots.values():
                if other.id == bot.id:
                    continue
                hits = [q for q in (other.standard, *other.similar)
                        if rule.matches(normalize_for_match(intended(q)), normalized=True)]
                if hits:
                    out.append(f"{bot.id}: rule {source!r} fires on {len(hits)} question(s) of "
                               f"{other.id}, e.g. {hits[0]!r}")
    return out
