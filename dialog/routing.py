"""Which bot a request asks for, and how sure we are: the matcher's result (``dialog.nlu``)
read with the business line the caller named, turned into what to do with it.

- **The named line**: a request that names one line (燃气卡充了钱没到: 燃气; 加油卡…) is matched
  among that line's bots (and those of no one line, such as a service complaint) first; the
  other line's bots only when none of those scores at all. (Before, 燃气卡充了钱没到 asked
  "加油卡充值未到账, or 燃气充值未到账?", and 我家燃气打不着火了 offered 油品质量投诉 first.)
- **Confirm or clarify**: a sure match enters the bot; an unsure one whose runner-up is far
  behind (``CONFIRM_GAP``) gets one yes/no question about the best alone (您是要办理燃气灶打不着火
  吗？: yes/no is easy for the recogniser), unless the trained layer finds another bot
  plausible (``RUNNER_UP_P``): then an either/or question with that bot second, as with close
  candidates; always of the same line when the caller named one.
- **Guesses when nothing matched** (您要办理的是不是以下业务…): the matcher's best candidates,
  at most ``MAX_GUESSES``, of the named line when there is one, offered by key when the best
  scores at least ``GUESS_FLOOR``. Asking a caller to say it again mostly gets the same
  mishearing back (Whisper base at 8 kHz); a list to key from does not depend on it. A caller
  who wants none of them says so (都不是) or says something else, which is routed afresh.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from dialog.catalog import Catalog
from dialog.nlu.lines import LINE_WORDS
from dialog.nlu.matching import Candidate, MatchResult
from dialog.nlu.text import SPOKEN_DIGITS, normalize_for_match

CONFIRM_GAP = 0.15  # an unsure best this far ahead of the runner-up: confirm it alone
# ... unless the trained layer gives another bot this much: an either/or question with it
# (chosen on dev: ``ivr eval dialogs``, spoken and typed; figures in the README)
RUNNER_UP_P = 0.15
# nothing matched, but the best candidate scores this much: offer the best (chosen on dev:
# ``ivr eval dialogs``, spoken and as text, with the out-of-scope set's share offered a list)
GUESS_FLOOR = 0.2
MAX_GUESSES = 3
# bots of no one line (a complaint about the service) stay in the running whatever is named
_NEITHER = ("general",)

Decision = Literal["match", "confirm", "clarify", "no_match"]


@dataclass(frozen=True)
class RouteDecision:
    decision: Decision
    best: Candidate | None
    options: tuple[str, ...]  # the bots of a confirm (one) or an either/or question (two)
    line: str | None  # the line the caller named, if one
    result: MatchResult


def line_named_in(text: str) -> str | None:
    """``oil`` / ``gas`` when the request names words of exactly one line, else None."""
    q = normalize_for_match(text)
    named = {line for line, words in LINE_WORDS.items() if any(w in q for w in words)}
    return named.pop() if len(named) == 1 else None


def _of_line(catalog: Catalog, bot_id: str, line: str | None) -> bool:
    """Is ``bot_id`` (a bot of ``catalog``) one of the named ``line``'s, or of no one line?
    Any bot is, when no line was named."""
    return line is None or catalog.bots[bot_id].line in (line, *_NEITHER)


def route_request(catalog: Catalog, text: str, *, heard: bool = False,
                  prior: Mapping[str, float] | None = None) -> RouteDecision:
    """What to do with ``text`` as a request (the first question, or a fresh one); ``heard``:
    recognised from speech; ``prior``: the evidence of the caller's earlier tries at it
    (``IntentMatcher.match``)."""
    result = catalog.matcher.match(text, heard=heard, prior=prior)
    line = line_named_in(text)
    if line is not None and result.best is not None and any(
            catalog.bots[c.intent].line not in (line, *_NEITHER) for c in result.candidates[:2]):
        own = [b for b in catalog.bots if _of_line(catalog, b, line)]
        within = catalog.matcher.match(text, only=own, heard=heard, prior=prior)
        if within.best is not None and within.decision != "no_match":
            result = within
    best = result.best
    if result.decision == "match" and best is not None:
        return RouteDecision("match", best, (best.intent,), line, result)
    if result.decision == "clarify" and best is not None:
        top = result.candidates
        if len(top) < 2 or top[0].score - top[1].score >= CONFIRM_GAP:
            second = runner_up(catalog, result, best.intent, line)
            if second is None:
                return RouteDecision("confirm", best, (best.intent,), line, result)
            return RouteDecision("clarify", best, (best.intent, second), line, result)
        return RouteDecision("clarify", best, (top[0].intent, top[1].intent), line, result)
    return RouteDecision("no_match", None, (), line, result)


def runner_up(catalog: Catalog, result: MatchResult, best: str,
               line: str | None) -> str | None:
    """The trained layer's likeliest other bot (of the named line, if one) when it is likely
    enough (``RUNNER_UP_P``) that a yes/no question about the best alone would often be a 不是."""
    others = [(p, b) for b, p in result.proba.items()
              if b != best and b in catalog.bots and _of_line(catalog, b, line)]
    if not others:
        return None
    p, bot = max(others)
    return bot if p >= RUNNER_UP_P else None


def guesses(catalog: Catalog, routed: RouteDecision) -> tuple[str, ...]:
    """The bots to offer when ``routed`` found no match (none: ask again as before)."""
    if routed.decision != "no_match":
        return ()
    cands = [c for c in routed.result.candidates
             if c.intent in catalog.bots and _of_line(catalog, c.intent, routed.line)]
    if not cands or cands[0].score < GUESS_FLOOR:
        return ()
    return tuple(c.intent for c in cands[:MAX_GUESSES])


_ORDINAL = re.compile(r"(?:第|选)([一二两三四五1-5])(?:个|项|种)?|([一1二2两三3])(?:个|号)?")


def option_named(text: str, n: int) -> int | None:
    """Which of ``n`` offered options ``text`` picks by its place (第二个, 选3, a bare 二):
    its index, else None."""
    q = normalize_for_match(text)
    m = _ORDINAL.search(q)
    if m is None or (m.group(2) and len(q) > 3):  # a bare numeral only as the whole answer
        return None
    said = m.group(1) or m.group(2)
    k = int(SPOKEN_DIGITS.get(said, said))
    return k - 1 if 1 <= k <= n else None
