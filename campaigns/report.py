"""Campaign results: progress counts, CSAT/NPS results, text report and CSV export.

``ivr campaigns report ID [--csv FILE] [--unmasked --as USER]`` (ivr/tools/campaignsreport.py)
and the operations page (ivr/web/ops.py) both read through this module.

Progress, per contact (a contact counts once, by its latest state):
contacts; dialed (at least one attempt); answered (an attempt was answered by a person);
completed (survey finished); refused (declined or asked not to be called); machine / no answer /
busy / vacant / suspended / unreachable (the latest attempt's outcome, contacts not answered;
the last three are the carriers' announcements, ``campaigns.carrier``); DNC added (numbers put
on the do-not-call list by this campaign's calls); pending (not yet in a final state).
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.exc import SQLAlchemyError

from campaigns import stats
from campaigns.stats import AnswerRow, Scores
from campaigns.tables import Answer, Attempt, Campaign, Contact, DoNotCall
from ivr.core.chinatime import CHINA
from ivr.core.csvsafe import safe_writer
from ivr.core.privacy import mask_number
from ivr.core.storage.db import SessionFactory
from ivr.core.storage.errors import StorageError

_DB_ERRORS = (SQLAlchemyError, OSError, TimeoutError)
FINAL_CONTACT_STATES = ("completed", "refused", "dnc", "failed", "exhausted", "skipped",
                        "invalid")
REFUSED_STATES = ("refused", "dnc")
CSV_COLUMNS = ("campaign_id", "contact_id", "phone", "name", "question", "kind", "score", "text",
               "answered_at", "survey_call_id", "original_call_id", "bot", "agent", "line")


@dataclass(slots=True)
class Progress:
    contacts: int = 0
    dialed: int = 0
    attempts: int = 0
    answered: int = 0
    completed: int = 0
    refused: int = 0
    machine: int = 0
    no_answer: int = 0
    busy: int = 0
    failed: int = 0
    vacant: int = 0  # the carriers' announcements (campaigns.carrier), latest attempt
    suspended: int = 0
    unreachable: int = 0
    dnc_added: int = 0
    pending: int = 0

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(slots=True)
class CampaignSummary:
    id: int
    name: str
    status: str
    line: str | None
    survey: str
    progress: Progress

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "status": self.status, "line": self.line,
                "survey": self.survey, "progress": self.progress.as_dict()}


@dataclass(slots=True)
class Results:
    campaign: CampaignSummary
    overall: Scores
    by_bot: dict[str, Scores] = field(default_factory=dict)
    by_agent: dict[str, Scores] = field(default_factory=dict)
    by_line: dict[str, Scores] = field(default_factory=dict)
    by_day: dict[str, Scores] = field(default_factory=dict)
    suggestions: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        def group(g: dict[str, Scores]) -> dict[str, Any]:
            return {k: v.as_dict() for k, v in g.items()}
        return {"campaign": self.campaign.as_dict(), "progress": self.campaign.progress.as_dict(),
                "overall": self.overall.as_dict(), "by_bot": group(self.by_bot),
                "by_agent": group(self.by_agent), "by_line": group(self.by_line),
                "by_day": group(self.by_day), "suggestions": self.suggestions}


# ---- loading ---------------------------------------------------------------------------------
async def _progress(s: Any, campaign_id: int) -> Progress:
    p = Progress()
    status_rows = (await s.execute(
        select(Contact.status, func.count()).where(Contact.campaign_id == campaign_id)
        .group_by(Contact.status))).all()
    by_status = {str(k): int(n) for k, n in status_rows}
    p.contacts = sum(by_status.values())
    p.completed = by_status.get("completed", 0)
    p.refused = sum(by_status.get(k, 0) for k in REFUSED_STATES)
    p.pending = p.contacts - sum(by_status.get(k, 0) for k in FINAL_CONTACT_STATES)
    p.attempts = int((await s.execute(
        select(func.count()).select_from(Attempt).where(Attempt.campaign_id == campaign_id)
    )).scalar_one())
    p.dialed = int((await s.execute(
        select(func.count(func.distinct(Attempt.contact_id)))
        .where(Attempt.campaign_id == campaign_id))).scalar_one())
    p.answered = int((await s.execute(
        select(func.count(func.distinct(Attempt.contact_id)))
        .where(Attempt.campaign_id == campaign_id, Attempt.outcome == "answered"))).scalar_one())
    # unanswered contacts by the outcome of their latest attempt
    latest = (
        select(Attempt.contact_id, Attempt.outcome)
        .where(Attempt.campaign_id == campaign_id)
        .ext(distinct_on(Attempt.contact_id))
        .order_by(Attempt.contact_id, Attempt.started_at.desc(), Attempt.id.desc())
        .subquery()
    )
    answered_ids = (select(Attempt.contact_id)
                    .where(Attempt.campaign_id == campaign_id, Attempt.outcome == "answered"))
    rows = (await s.execute(
        select(latest.c.outcome, func.count()).where(latest.c.contact_id.not_in(answered_ids))
        .group_by(latest.c.outcome))).all()
    last = {str(k): int(n) for k, n in rows}
    p.machine, p.no_answer = last.get("machine", 0), last.get("no_answer", 0)
    p.busy, p.failed = last.get("busy", 0), last.get("failed", 0)
    p.vacant, p.suspended = last.get("vacant", 0), last.get("suspended", 0)
    p.unreachable = last.get("unreachable", 0)
    p.dnc_added = int((await s.execute(
        select(func.count()).select_from(DoNotCall)
        .where(DoNotCall.source_campaign_id == campaign_id))).scalar_one())
    return p


def _summary(c: Campaign, progress: Progress) -> CampaignSummary:
    return CampaignSummary(id=c.id, name=c.name, status=c.status, line=c.business_line,
                           survey=c.survey, progress=progress)


async def list_campaigns(sessions: SessionFactory) -> list[CampaignSummary]:
    """Every campaign with its progress, newest first."""
    try:
        async with sessions() as s:
            rows = (await s.execute(select(Campaign).order_by(Campaign.id.desc()))).scalars().all()
            return [_summary(c, await _progress(s, c.id)) for c in rows]
    except _DB_ERRORS as exc:
        raise StorageError(f"campaigns.list failed: {type(exc).__name__}: {exc}") from exc


async def campaign_summary(sessions: SessionFactory, campaign_id: int) -> CampaignSummary | None:
    try:
        async with sessions() as s:
            c = await s.get(Campaign, campaign_id)
            return None if c is None else _summary(c, await _progress(s, campaign_id))
    except _DB_ERRORS as exc:
        raise StorageError(f"campaigns.summary({campaign_id}) failed: "
                           f"{type(exc).__name__}: {exc}") from exc


async def load_answers(sessions: SessionFactory, campaign_id: int, *,
                       contact_id: int | None = None) -> list[AnswerRow]:
    """The campaign's answers (or one contact's), oldest first, joined with their contact."""
    stmt = (
        select(Answer, Contact, Campaign.business_line)
        .join(Contact, Contact.id == Answer.contact_id)
        .join(Campaign, Campaign.id == Contact.campaign_id)
        .where(Contact.campaign_id == campaign_id)
        .order_by(Answer.answered_at, Answer.id)
    )
    if contact_id is not None:
        stmt = stmt.where(Answer.contact_id == contact_id)
    try:
        async with sessions() as s:
            rows = (await s.execute(stmt)).all()
    except _DB_ERRORS as exc:
        raise StorageError(f"campaigns.answers({campaign_id}) failed: "
                           f"{type(exc).__name__}: {exc}") from exc
    return [_answer_row(a, c, line) for a, c, line in rows]


def _answer_row(a: Answer, c: Contact, line: str | None) -> AnswerRow:
    return AnswerRow(
        campaign_id=c.campaign_id, contact_id=c.id, question=a.question, kind=a.kind,
        score=a.score, text=a.text, answered_at=a.answered_at, phone=c.phone,
        call_id=str(a.call_id) if a.call_id else None,
        orig_call_id=str(c.orig_call_id) if c.orig_call_id else None,
        bot=c.bot, agent=c.agent, line=line, name=c.name)


async def campaign_results(sessions: SessionFactory, campaign_id: int) -> Results | None:
    summary = await campaign_summary(sessions, campaign_id)
    if summary is None:
        return None
    rows = await load_answers(sessions, campaign_id)
    return results_of(summary, rows)


def results_of(summary: CampaignSummary, rows: Sequence[AnswerRow]) -> Results:
    return Results(campaign=summary, overall=stats.scores(rows), by_bot=stats.by_bot(rows),
                   by_agent=stats.by_agent(rows), by_line=stats.by_line(rows),
                   by_day=stats.by_day(rows), suggestions=stats.suggestions(rows))


# ---- rendering -------------------------------------------------------------------------------
def write_csv(rows: Sequence[AnswerRow], out: io.TextIOBase | Any, *, unmasked: bool) -> int:
    """Every answer as one CSV row; phones masked unless ``unmasked``. Returns the row count.
    Cells that a spreadsheet would run as formulas are escaped (``ivr.core.csvsafe``)."""
    w = safe_writer(out)
    w.writerow(CSV_COLUMNS)
    for r in rows:
        w.writerow([r.campaign_id, r.contact_id, r.phone if unmasked else mask_number(r.phone),
                    r.name or "", r.question, r.kind, "" if r.score is None else r.score,
                    r.text or "", r.answered_at.astimezone(CHINA).isoformat(
                        timespec="seconds"),
                    r.call_id or "", r.orig_call_id or "", r.bot or "", r.agent or "",
                    r.line or ""])
    return len(rows)


async def csv_text(sessions: SessionFactory, campaign_id: int, *, unmasked: bool) -> str | None:
    if await campaign_summary(sessions, campaign_id) is None:
        return None
    buf = io.StringIO()
    write_csv(await load_answers(sessions, campaign_id), buf, unmasked=unmasked)
    return buf.getvalue()


PROGRESS_ZH = (("contacts", "名单"), ("dialed", "已拨"), ("attempts", "拨打次数"),
               ("answered", "接通"), ("completed", "完成"), ("refused", "拒访"),
               ("machine", "答录机"), ("no_answer", "无人接听"), ("busy", "忙线"),
               ("failed", "失败"), ("vacant", "空号"), ("suspended", "停机"),
               ("unreachable", "关机/无法接通"), ("dnc_added", "新增免打扰"), ("pending", "待拨"))


def _pad(text: str, width: int) -> str:
    """Left-align in a terminal: CJK characters take two columns."""
    used = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(1, width - used)


def _scores_line(s: Scores) -> str:
    csat = f"CSAT 均分 {s.csat_mean:.2f}（{s.csat_n} 份）" if s.csat_mean is not None else "CSAT —"
    nps = f"NPS {s.nps:+.1f}（{s.nps_n} 份）" if s.nps is not None else "NPS —"
    return f"{csat}  {nps}"


def render_text(r: Results) -> str:
    c = r.campaign
    lines = [f"回访任务 {c.id}：{c.name}（问卷 {c.survey}，业务线 {c.line or '-'}，"
             f"状态 {c.status}）", "", "进度"]
    p = c.progress.as_dict()
    lines += [f"  {_pad(zh, 12)}{p[k]:>8}" for k, zh in PROGRESS_ZH]
    o = r.overall
    lines += ["", "结果", f"  {_scores_line(o)}", "  满意度分布："
              + "  ".join(f"{k}分 {v}" for k, v in o.csat_distribution.items()),
              f"  NPS：推荐 {o.promoters}，中立 {o.passives}，贬损 {o.detractors}"]
    for title, group in (("按机器人", r.by_bot), ("按坐席", r.by_agent), ("按业务线", r.by_line),
                         ("按日期", r.by_day)):
        lines += ["", title] + ([f"  {_pad(k, 16)}{_scores_line(v)}" for k, v in group.items()]
                                or ["  （无）"])
    if r.suggestions:
        lines += ["", "客户建议"]
        for bot, texts in r.suggestions.items():
            lines += [f"  {bot}："] + [f"    - {t}" for t in texts[:10]]
    return "\n".join(lines)
