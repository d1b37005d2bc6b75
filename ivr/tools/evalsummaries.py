"""``ivr eval summaries FILE``: score the LLM handoff summaries of the configured endpoint
(``settings.llm``) over recorded transcripts.

FILE is JSON Lines, one recorded handoff per line::

    {"id": "oil-loss", "line": "oil", "reason": "caller_request", "caller": "13800138000",
     "dialog": {"bot": "card_loss", "bot_name": "加油卡挂失", "identity": "card", ...},
     "trace": [{"t": 0.5, "step": "say", "detail": {"text": "您好……"}}, ...]}

(``trace`` is the call's journal path; ``dialog`` the dialog's summary, may be empty.) Each is
turned into the same screen pop the agent would see and summarised exactly as in production
(same prompt, same validation). Scores per run: the share answered with all four sections,
within the length limit (~300 characters), with no run of 4+ digits leaked in the raw answer,
the fallback rate (timeouts, errors, malformed answers: the agent would read the deterministic
summary) and the round-trip latency (p50/p95).
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from handoff.pop import ScreenPop, build_pop
from handoff.rules import SECTIONS
from handoff.summary import MAX_CHARS, SYSTEM_PROMPT, llm_configured, parse_summary, prompt_for
from ivr.core.config import LLMSettings
from ivr.core.handoff import HandoffContext, TraceEntry

LENGTH_LIMIT = 300
_DIGITS = re.compile(r"\d{4,}")
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


class EvalFileError(ValueError):
    """A line of the transcripts file is not a recorded handoff."""


def load_cases(path: Path) -> list[tuple[str, ScreenPop]]:
    cases = []
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        try:
            d = json.loads(raw)
            trace = [TraceEntry(float(e.get("t", 0.0)), str(e["step"]), dict(e.get("detail") or {}))
                     for e in d["trace"]]
            ctx = HandoffContext(
                handoff_id=uuid.uuid4().hex, call_id=uuid.uuid4(), channel_id=f"eval-{n}",
                caller=str(d.get("caller", "")), dialed="956100",
                line=str(d.get("line", "general")),
                reason=str(d.get("reason", "caller_request")), started_at=time.time(),
                trace=trace, dialog=dict(d.get("dialog") or {}))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise EvalFileError(f"{path}:{n}: not a recorded handoff ({exc})") from exc
        cases.append((str(d.get("id") or f"line{n}"), build_pop(ctx)))
    if not cases:
        raise EvalFileError(f"{path} has no recorded handoffs")
    return cases


def score_answer(content: str | None) -> dict[str, Any]:
    """One raw answer: status ok|invalid|too_long, sections present, length, leaked digits."""
    text = _FENCE.sub("", (content or "").strip())
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    keys = {k for k, _ in SECTIONS}
    labels = {label: k for k, label in SECTIONS}
    sections = {labels.get(str(k), str(k)): v for k, v in data.items()} if isinstance(
        data, dict) else {}
    present = sorted(k for k in keys if isinstance(sections.get(k), str) and sections[k].strip())
    length = sum(len(str(sections[k])) for k in present)
    parsed = parse_summary(content)
    status = "ok" if parsed is not None else (
        "too_long" if len(present) == len(keys) and length > MAX_CHARS else "invalid")
    return {"status": status, "sections": len(present), "length": length,
            "within_limit": length <= LENGTH_LIMIT, "digits_leaked": bool(_DIGITS.search(text))}


async def run_cases(llm: LLMSettings, cases: list[tuple[str, ScreenPop]],
                    progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    import openai
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=llm.base_url, api_key=llm.api_key.get_secret_value() or "unused",
                         timeout=llm.timeout_s, max_retries=0)
    rows: list[dict[str, Any]] = []
    try:
        for i, (case_id, pop) in enumerate(cases, 1):
            t = time.monotonic()
            try:
                reply = await asyncio.wait_for(client.chat.completions.create(
                    model=llm.model, temperature=0.2, max_tokens=600,
                    response_format={"type": "json_object"},
                    messages=[{"role": "system", "content": SYSTEM_PROMPT},
                              {"role": "user", "content": prompt_for(pop)}]), llm.timeout_s)
                content = reply.choices[0].message.content
                row = score_answer(content)
            except (TimeoutError, openai.APITimeoutError):
                row = {"status": "timeout"}
            except openai.OpenAIError as exc:
                row = {"status": "error", "detail": type(exc).__name__}
            except (AttributeError, IndexError, TypeError):
                row = {"status": "invalid", "detail": "no choices"}
            row.update(id=case_id, seconds=round(time.monotonic() - t, 3))
            rows.append(row)
            if progress is not None:
                progress(f"[{i}/{len(cases)}] {case_id}: {row['status']}")
    finally:
        await client.close()
    return summarise(rows, llm)


def summarise(rows: list[dict[str, Any]], llm: LLMSettings) -> dict[str, Any]:
    n = len(rows)
    answered = [r for r in rows if "sections" in r]
    secs = sorted(r["seconds"] for r in rows)
    return {
        "endpoint": llm.base_url, "model": llm.model, "cases": n,
        "statuses": dict(Counter(r["status"] for r in rows)),
        "ok_rate": sum(r["status"] == "ok" for r in rows) / n,
        "fallback_rate": sum(r["status"] != "ok" for r in rows) / n,
        "all_sections_rate": sum(r.get("sections") == len(SECTIONS) for r in rows) / n,
        "within_limit_rate": sum(bool(r.get("within_limit")) for r in answered) / n,
        "digits_leaked": sum(bool(r.get("digits_leaked")) for r in answered),
        "mean_length": statistics.fmean(r["length"] for r in answered) if answered else None,
        "p50_s": secs[len(secs) // 2],
        "p95_s": secs[min(len(secs) - 1, round(0.95 * (len(secs) - 1)))],
        "rows": rows,
    }


def print_report(report: dict[str, Any], echo: Callable[[str], None]) -> None:
    echo(f"LLM summaries: {report['cases']} recorded handoffs, model {report['model']} at "
         f"{report['endpoint']}")
    echo(f"  statuses: {json.dumps(report['statuses'], ensure_ascii=False)}")
    echo(f"  ok rate {report['ok_rate']:.1%}  fallback rate {report['fallback_rate']:.1%}  "
         f"all 4 sections {report['all_sections_rate']:.1%}")
    length = report["mean_length"]
    echo(f"  within {LENGTH_LIMIT} chars {report['within_limit_rate']:.1%}  mean length "
         f"{'-' if length is None else f'{length:.0f}'}  answers leaking 4+ digits "
         f"{report['digits_leaked']}")
    echo(f"  latency p50 {report['p50_s']:.2f} s  p95 {report['p95_s']:.2f} s")
    if "command" in report:
        echo(f"  command: {report['command']}")


def check_configured(llm: LLMSettings) -> None:
    if not llm_configured(llm):
        raise EvalFileError("no LLM endpoint configured (set llm.base_url / IVR_LLM__BASE_URL)")
