"""Inbound analytics: the call journal's figures over a date range and a line, computed in
PostgreSQL.

Every figure is one aggregate query over the ``calls`` columns each call's end writes
(``ivr.calls.figures``; migration 0009) and the survey answers: no path is walked, no row comes
to Python. Days and hours are China's (Asia/Shanghai); a range is ``[from, to]`` in whole days,
at most ``MAX_DAYS``. What each figure means:

- **containment**: calls that ended ``completed`` (the bot resolved them) over all calls;
- **by_day / by_hour**: calls per China day and hour of day, per line;
- **bots**: per bot (the last the call reached): calls, completed, transferred, caller hang-ups,
  mean seconds in the IVR, and CSAT (1-5) from every survey answer (calls and chats) about a
  call that bot served, answered in the range;
- **reasons**: why calls went to an agent; **hangups**: the dialog state a caller hung up in;
- **states**: per dialog state (the main menu, a line's menu, an either/or question, a bot's
  question): turns, no-match and clarify rates, no-inputs;
- **queues**: per agent queue, waits that ended answered or abandoned, the abandon rate, mean
  and 90th-percentile wait (app_queue's HoldTime; a chat's wait at the desk);
- **confidence**: calls by their mean recogniser confidence (tenths);
- **speech_share**: spoken turns (or typed, in a chat) over spoken and key turns.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ivr.core.chinatime import CHINA, china_today
from ivr.core.lines import LINES
from ivr.core.storage.db import SessionFactory
from ivr.core.storage.errors import StorageError

MAX_DAYS = 366
_DB_ERRORS = (SQLAlchemyError, OSError, TimeoutError)

_WHERE = ("c.direction = 'inbound' AND c.started_at >= :a AND c.started_at < :b "
          "AND (:line = '' OR c.line = :line)")
_LOCAL = "(c.started_at AT TIME ZONE 'Asia/Shanghai')"
_IVR_S = "EXTRACT(EPOCH FROM (c.ended_at - c.started_at))"

QUERIES: dict[str, str] = {
    "totals": f"""
        SELECT count(*) AS calls,
               count(*) FILTER (WHERE c.outcome = 'completed') AS completed,
               count(*) FILTER (WHERE c.outcome = 'transferred') AS transferred,
               count(*) FILTER (WHERE c.outcome = 'caller_hangup') AS caller_hangup,
               avg({_IVR_S}) FILTER (WHERE c.ended_at IS NOT NULL) AS avg_ivr_s,
               coalesce(sum(c.speech_turns), 0) AS speech_turns,
               coalesce(sum(c.key_turns), 0) AS key_turns
        FROM calls c WHERE {_WHERE}""",
    "by_day": f"""
        SELECT {_LOCAL}::date AS day, coalesce(c.line, 'general') AS line, count(*) AS calls
        FROM calls c WHERE {_WHERE} GROUP BY 1, 2""",
    "by_hour": f"""
        SELECT extract(hour FROM {_LOCAL})::int AS hour, coalesce(c.line, 'general') AS line,
               count(*) AS calls
        FROM calls c WHERE {_WHERE} GROUP BY 1, 2""",
    "bots": f"""
        SELECT c.bot, count(*) AS calls,
               count(*) FILTER (WHERE c.outcome = 'completed') AS completed,
               count(*) FILTER (WHERE c.outcome = 'transferred') AS transferred,
               count(*) FILTER (WHERE c.outcome = 'caller_hangup') AS caller_hangup,
               avg({_IVR_S}) FILTER (WHERE c.ended_at IS NOT NULL) AS avg_ivr_s
        FROM calls c WHERE {_WHERE} AND c.bot IS NOT NULL
        GROUP BY c.bot ORDER BY calls DESC""",
    "csat": """
        SELECT k.bot, avg(a.score)::float AS csat, count(*) AS csat_n
        FROM campaign_answers a JOIN campaign_contacts k ON k.id = a.contact_id
        WHERE a.kind = 'csat' AND a.score BETWEEN 1 AND 5 AND k.bot IS NOT NULL
          AND a.answered_at >= :a AND a.answered_at < :b
        GROUP BY k.bot""",
    "reasons": f"""
        SELECT coalesce(c.reason, 'unknown') AS reason, count(*) AS calls
        FROM calls c WHERE {_WHERE} AND c.outcome = 'transferred'
        GROUP BY 1 ORDER BY calls DESC""",
    "states": f"""
        SELECT s.key AS state, sum(coalesce((s.value->>'turns')::int, 0)) AS turns,
               sum(coalesce((s.value->>'no_match')::int, 0)) AS no_match,
               sum(coalesce((s.value->>'clarify')::int, 0)) AS clarify,
               sum(coalesce((s.value->>'no_input')::int, 0)) AS no_input
        FROM calls c CROSS JOIN LATERAL jsonb_each(c.states) s
        WHERE {_WHERE} AND jsonb_typeof(c.states) = 'object'  -- older rows hold a JSON null
        GROUP BY s.key ORDER BY turns DESC LIMIT 30""",
    "hangups": f"""
        SELECT coalesce(c.exit_point, 'unknown') AS at, count(*) AS calls
        FROM calls c WHERE {_WHERE} AND c.outcome = 'caller_hangup'
        GROUP BY 1 ORDER BY calls DESC LIMIT 15""",
    "queues": f"""
        SELECT c.queue, count(*) FILTER (WHERE c.queue_result IS NOT NULL) AS waits,
               count(*) FILTER (WHERE c.queue_result = 'answered') AS answered,
               count(*) FILTER (WHERE c.queue_result = 'abandoned') AS abandoned,
               avg(c.queue_wait_s) AS avg_wait_s,
               percentile_cont(0.9) WITHIN GROUP (ORDER BY c.queue_wait_s) AS p90_wait_s
        FROM calls c WHERE {_WHERE} AND c.queue IS NOT NULL
        GROUP BY c.queue ORDER BY waits DESC""",
    "confidence": f"""
        SELECT least(floor(c.asr_confidence * 10)::int, 9) AS bucket, count(*) AS calls
        FROM calls c WHERE {_WHERE} AND c.asr_confidence IS NOT NULL GROUP BY 1""",
}


class BadRange(ValueError):
    """A date range or line the analytics do not take (the message is Chinese, for the page)."""


def parse_range(start: str | None, end: str | None, line: str | None,
                today: date | None = None) -> tuple[date, date, str]:
    """``from``/``to`` (YYYY-MM-DD, China days, ``to`` included; default the last 7 days) and
    ``line`` ('' for all)."""
    today = today or china_today()
    try:
        last = date.fromisoformat(end) if end else today
        first = date.fromisoformat(start) if start else last - timedelta(days=6)
    except ValueError:
        raise BadRange("日期格式应为 YYYY-MM-DD") from None
    if first > last:
        raise BadRange("开始日期晚于结束日期")
    if (last - first).days + 1 > MAX_DAYS:
        raise BadRange(f"查询范围不能超过{MAX_DAYS}天")
    line = line or ""
    if line and line not in LINES:
        raise BadRange("业务线只能是 oil、gas 或 general")
    return first, last, line


def day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """China days ``first``..``last`` (inclusive) as ``[a, b)`` instants."""
    a = datetime(first.year, first.month, first.day, tzinfo=CHINA)
    return a, datetime(last.year, last.month, last.day, tzinfo=CHINA) + timedelta(days=1)


def _rate(part: float | None, whole: float | None) -> float | None:
    return round(float(part or 0) / float(whole), 4) if whole else None


def _num(value: Any, digits: int = 1) -> float | None:
    return None if value is None else round(float(value), digits)


async def inbound_figures(sessions: SessionFactory, first: date, last: date,
                          line: str = "") -> dict[str, Any]:
    """Every figure of the module docstring for China days ``first``..``last`` (inclusive)."""
    a, b = day_bounds(first, last)
    params = {"a": a, "b": b, "line": line}
    t = time.perf_counter()
    rows: dict[str, list[Any]] = {}
    try:
        async with sessions() as s:
            for name, sql in QUERIES.items():
                rows[name] = list((await s.execute(text(sql), params)).mappings().all())
    except _DB_ERRORS as exc:
        raise StorageError(f"analytics failed: {type(exc).__name__}: {exc}") from exc
    took_ms = (time.perf_counter() - t) * 1000
    return _shape(rows, first, last, line, took_ms)


def _shape(rows: dict[str, list[Any]], first: date, last: date, line: str,
           took_ms: float) -> dict[str, Any]:
    tot = rows["totals"][0]
    spoken, keyed = int(tot["speech_turns"]), int(tot["key_turns"])
    other = int(tot["calls"]) - int(tot["completed"]) - int(tot["transferred"]) - \
        int(tot["caller_hangup"])
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    by_day = {d: {"day": d.isoformat(), **dict.fromkeys(LINES, 0)} for d in days}
    for r in rows["by_day"]:
        if r["day"] in by_day and r["line"] in LINES:
            by_day[r["day"]][r["line"]] += int(r["calls"])
    by_hour = [{"hour": h, **dict.fromkeys(LINES, 0)} for h in range(24)]
    for r in rows["by_hour"]:
        if 0 <= r["hour"] < 24 and r["line"] in LINES:
            by_hour[r["hour"]][r["line"]] += int(r["calls"])
    csat = {r["bot"]: r for r in rows["csat"]}
    confidence = [{"from": i / 10, "to": (i + 1) / 10, "calls": 0} for i in range(10)]
    for r in rows["confidence"]:
        confidence[max(0, min(9, int(r["bucket"])))]["calls"] += int(r["calls"])
    return {
        "range": {"from": first.isoformat(), "to": last.isoformat(), "line": line},
        "took_ms": round(took_ms, 1),
        "totals": {"calls": int(tot["calls"]), "completed": int(tot["completed"]),
                   "transferred": int(tot["transferred"]),
                   "caller_hangup": int(tot["caller_hangup"]), "other": other,
                   "containment": _rate(tot["completed"], tot["calls"]),
                   "avg_ivr_s": _num(tot["avg_ivr_s"]), "speech_turns": spoken,
                   "key_turns": keyed, "speech_share": _rate(spoken, spoken + keyed)},
        "by_day": list(by_day.values()),
        "by_hour": by_hour,
        "bots": [{"bot": r["bot"], "calls": int(r["calls"]), "completed": int(r["completed"]),
                  "containment": _rate(r["completed"], r["calls"]),
                  "transferred": int(r["transferred"]), "caller_hangup": int(r["caller_hangup"]),
                  "avg_ivr_s": _num(r["avg_ivr_s"]),
                  "csat": _num(csat[r["bot"]]["csat"], 2) if r["bot"] in csat else None,
                  "csat_n": int(csat[r["bot"]]["csat_n"]) if r["bot"] in csat else 0}
                 for r in rows["bots"]],
        "reasons": [{"reason": r["reason"], "calls": int(r["calls"])} for r in rows["reasons"]],
        "states": [{"state": r["state"], "turns": int(r["turns"]),
                    "no_match": int(r["no_match"]), "clarify": int(r["clarify"]),
                    "no_input": int(r["no_input"]),
                    "no_match_rate": _rate(r["no_match"], r["turns"]),
                    "clarify_rate": _rate(r["clarify"], r["turns"])} for r in rows["states"]],
        "hangups": [{"at": r["at"], "calls": int(r["calls"])} for r in rows["hangups"]],
        "queues": [{"queue": r["queue"], "waits": int(r["waits"]),
                    "answered": int(r["answered"]), "abandoned": int(r["abandoned"]),
                    "abandon_rate": _rate(r["abandoned"], r["waits"]),
                    "avg_wait_s": _num(r["avg_wait_s"]), "p90_wait_s": _num(r["p90_wait_s"])}
                   for r in rows["queues"]],
        "confidence": confidence,
    }


SECTIONS = ("totals", "by_day", "by_hour", "bots", "reasons", "states", "hangups", "queues",
            "confidence")


def csv_rows(figures: dict[str, Any]) -> list[list[Any]]:
    """Every table stacked: ``section,NAME``, the header, the rows, a blank row."""
    out: list[list[Any]] = []
    for name in SECTIONS:
        value = figures[name]
        table = [value] if isinstance(value, dict) else value
        out.append(["section", name])
        if table:
            header = list(table[0])
            out.append(header)
            out += [[row.get(k) for k in header] for row in table]
        out.append([])
    return out
