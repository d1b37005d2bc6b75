"""Survey statistics over plain rows: CSAT distribution and mean, NPS, grouped results.

No I/O here: ``campaigns.report`` loads the rows from PostgreSQL and hands them over, so the
arithmetic is tested without a database and reused by the web page's JSON.

- CSAT: scores 1..5; the distribution counts every score, the mean is over the answers given.
- NPS: scores 0..10; promoters 9-10, detractors 0-6; NPS = %promoters - %detractors (-100..100),
  rounded to one decimal. ``None`` when nobody answered.
- Days are China days (Asia/Shanghai), the calling windows' time zone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from ivr.core.chinatime import china_day

CSAT_SCORES = (1, 2, 3, 4, 5)
NPS_PROMOTER_MIN = 9
NPS_DETRACTOR_MAX = 6
NO_VALUE = "(未知)"  # group label for answers without a bot, agent or line


@dataclass(frozen=True, slots=True)
class AnswerRow:
    """One answer as the report sees it (joined with its contact and campaign)."""

    campaign_id: int
    contact_id: int
    question: str  # question id in the survey script
    kind: str  # csat | nps | yes_no | text | ...
    score: int | None  # csat 1..5, nps 0..10, yes_no 1/0; None for free text
    text: str | None  # the spoken answer's transcript (free comments)
    answered_at: datetime
    phone: str = ""  # full number: mask it before showing it to anyone without permission
    call_id: str | None = None  # the survey call
    orig_call_id: str | None = None  # the inbound call the survey asks about
    bot: str | None = None
    agent: str | None = None
    line: str | None = None  # business line (oil | gas | general)
    name: str | None = None  # contact name


@dataclass(slots=True)
class Scores:
    """CSAT and NPS figures of one group of answers."""

    csat_n: int = 0
    csat_distribution: dict[int, int] = field(
        default_factory=lambda: dict.fromkeys(CSAT_SCORES, 0))
    csat_mean: float | None = None
    nps_n: int = 0
    promoters: int = 0
    passives: int = 0
    detractors: int = 0
    nps: float | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "csat_n": self.csat_n,
            "csat_distribution": {str(k): v for k, v in self.csat_distribution.items()},
            "csat_mean": self.csat_mean,
            "nps_n": self.nps_n,
            "promoters": self.promoters,
            "passives": self.passives,
            "detractors": self.detractors,
            "nps": self.nps,
        }


def nps_value(promoters: int, detractors: int, n: int) -> float | None:
    if n <= 0:
        return None
    return round(100.0 * (promoters - detractors) / n, 1)


def scores(rows: Iterable[AnswerRow]) -> Scores:
    out = Scores()
    csat_sum = 0
    for r in rows:
        if r.score is None:
            continue
        if r.kind == "csat" and r.score in out.csat_distribution:
            out.csat_distribution[r.score] += 1
            out.csat_n += 1
            csat_sum += r.score
        elif r.kind == "nps" and 0 <= r.score <= 10:
            out.nps_n += 1
            if r.score >= NPS_PROMOTER_MIN:
                out.promoters += 1
            elif r.score <= NPS_DETRACTOR_MAX:
                out.detractors += 1
            else:
                out.passives += 1
    if out.csat_n:
        out.csat_mean = round(csat_sum / out.csat_n, 2)
    out.nps = nps_value(out.promoters, out.detractors, out.nps_n)
    return out



def grouped(rows: Iterable[AnswerRow], key: Callable[[AnswerRow], str]) -> dict[str, Scores]:
    """Scores per group, groups sorted by label."""
    groups: dict[str, list[AnswerRow]] = defaultdict(list)
    for r in rows:
        groups[key(r)].append(r)
    return {k: scores(v) for k, v in sorted(groups.items())}


def by_bot(rows: Iterable[AnswerRow]) -> dict[str, Scores]:
    return grouped(rows, lambda r: r.bot or NO_VALUE)


def by_agent(rows: Iterable[AnswerRow]) -> dict[str, Scores]:
    return grouped(rows, lambda r: r.agent or NO_VALUE)


def by_line(rows: Iterable[AnswerRow]) -> dict[str, Scores]:
    return grouped(rows, lambda r: r.line or NO_VALUE)


def by_day(rows: Iterable[AnswerRow]) -> dict[str, Scores]:
    return grouped(rows, lambda r: china_day(r.answered_at).isoformat())


def suggestions(rows: Iterable[AnswerRow], limit_per_bot: int = 50) -> dict[str, list[str]]:
    """The transcribed free comments per bot, newest first (for the people who edit bots)."""
    out: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for r in rows:
        if r.text and r.text.strip() and r.kind in ("text", "comment", "suggestion", "free"):
            out[r.bot or NO_VALUE].append((r.answered_at, r.text.strip()))
    return {bot: [t for _, t in sorted(items, key=lambda x: x[0], reverse=True)[:limit_per_bot]]
            for bot, items in sorted(out.items())}
