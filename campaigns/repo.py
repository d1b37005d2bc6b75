"""Campaign repository: create, import contacts, do-not-call, status, and the dialer's claims.

All dialer state is in PostgreSQL. :func:`claim_due` locks due contacts with
``FOR UPDATE SKIP LOCKED`` and, in the same transaction, counts the attempt and writes its
``campaign_attempts`` row before anything is dialed: a dialer that dies after the commit has
spent that attempt, so a restart never dials beyond ``max_attempts`` / ``daily_cap``; a second
dialer never sees a locked or claimed contact, and the campaign's channel and rate caps are
counted over every dialer's attempts (:func:`_room`, under the campaign's row lock).
:func:`recover_stale` turns attempts left in
``dialing`` by a dead dialer into ``failed`` (cause ``lost``). A number the network called
vacant or suspended (``campaigns.carrier``) is flagged for every campaign for ``FLAG_DAYS``:
its contacts become ``invalid`` when a claim meets them.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from campaigns.phones import PhoneError, normalise
from campaigns.tables import (
    DEFAULT_RETRY_S,
    DEFAULT_WINDOWS,
    FLAG_DAYS,
    NEVER_AGAIN,
    Answer,
    Attempt,
    Campaign,
    Contact,
    DoNotCall,
    NumberFlag,
)
from ivr.core.chinatime import CHINA
from ivr.core.storage.db import SessionFactory

SHANGHAI = CHINA
PHONE_HEADERS = ("phone", "电话", "手机", "号码", "手机号", "mobile", "tel")
NAME_HEADERS = ("name", "姓名", "客户", "客户姓名")
RETRY_OUTCOMES = ("busy", "no_answer", "failed", "machine")
CONTROL = {"start": ({"draft", "paused", "stopped"}, "running"),
           "pause": ({"running"}, "paused"),
           "resume": ({"paused"}, "running"),
           "stop": ({"draft", "running", "paused"}, "stopped")}
STATUS_NAMES = {"draft": "草稿", "running": "进行中", "paused": "已暂停", "stopped": "已停止",
                "finished": "已完成"}
ACTION_NAMES = {"start": "开始", "pause": "暂停", "resume": "继续", "stop": "停止"}
_BATCH = 500  # rows per INSERT (6 parameters each)
_LOOKUP_SLICE = 10_000  # phones per IN lookup
DUE_AT_ONCE = datetime(2000, 1, 1, tzinfo=UTC)  # next_at of fresh contacts: due whenever


# ---------------------------------------------------------------- windows
def _windows_today(windows: dict[str, Any], local: datetime) -> list[tuple[time, time]]:
    out = []
    for start, end in windows.get(str(local.weekday()), []):
        out.append((time.fromisoformat(start), time.fromisoformat(end)))
    return out


def in_window(windows: dict[str, Any], now: datetime) -> bool:
    """Whether ``now`` (aware) is inside one of the Asia/Shanghai calling windows."""
    local = now.astimezone(SHANGHAI)
    return any(a <= local.time() < b for a, b in _windows_today(windows, local))


def next_window_start(windows: dict[str, Any], now: datetime) -> datetime | None:
    """The start of the next window at or after ``now`` (UTC), within a week; None if none."""
    local = now.astimezone(SHANGHAI)
    for day in range(8):
        d = (local + timedelta(days=day)).date()
        for a, b in sorted(_windows_today(windows, datetime.combine(d, time(), SHANGHAI))):
            start = datetime.combine(d, a, SHANGHAI)
            end = datetime.combine(d, b, SHANGHAI)
            if end > local:
                return max(start, local).astimezone(UTC)
    return None


def _local_midnight(now: datetime) -> datetime:
    local = now.astimezone(SHANGHAI)
    return datetime.combine(local.date(), time(), SHANGHAI).astimezone(UTC)


# ---------------------------------------------------------------- campaigns
async def create_campaign(sessions: SessionFactory, *, name: str, survey: str, line: str,
                          **options: Any) -> int:
    values: dict[str, Any] = {"windows": dict(DEFAULT_WINDOWS), "retry_s": dict(DEFAULT_RETRY_S)}
    values.update({k: v for k, v in options.items() if v is not None})
    async with sessions() as s, s.begin():
        campaign = Campaign(name=name, survey=survey, business_line=line, **values)
        s.add(campaign)
        await s.flush()
        return campaign.id


async def set_status(sessions: SessionFactory, campaign_id: int, action: str) -> str:
    """start|pause|resume|stop. Returns the new status; ValueError when not allowed."""
    allowed, new = CONTROL[action]
    async with sessions() as s, s.begin():
        campaign = await s.get(Campaign, campaign_id, with_for_update=True)
        if campaign is None:
            raise LookupError(f"没有活动 {campaign_id}")
        if campaign.status not in allowed:
            status = STATUS_NAMES.get(campaign.status, campaign.status)
            verb = ACTION_NAMES.get(action, action)
            raise ValueError(f"活动当前状态为「{status}」，不能执行「{verb}」")
        campaign.status = new
        return new


# ---------------------------------------------------------------- do-not-call
async def dnc_add(sessions: SessionFactory, phone: str, *, campaign_id: int | None = None,
                  reason: str = "manual", source_campaign_id: int | None = None) -> bool:
    """Add a number (normalised; PhoneError if invalid). False if it was already there."""
    number = normalise(phone)
    async with sessions() as s, s.begin():
        res = await s.execute(insert(DoNotCall).values(
            phone=number, campaign_id=campaign_id, reason=reason,
            source_campaign_id=source_campaign_id).on_conflict_do_nothing())
        added = bool(res.rowcount)  # type: ignore[attr-defined]
        cond = [Contact.phone == number, Contact.status == "pending"]
        if campaign_id is not None:
            cond.append(Contact.campaign_id == campaign_id)
        await s.execute(update(Contact).where(*cond).values(status="dnc"))
        return added


async def dnc_remove(sessions: SessionFactory, phone: str, *,
                     campaign_id: int | None = None) -> bool:
    number = normalise(phone)
    async with sessions() as s, s.begin():
        cond = (DoNotCall.campaign_id.is_(None) if campaign_id is None
                else DoNotCall.campaign_id == campaign_id)
        res = await s.execute(delete(DoNotCall).where(DoNotCall.phone == number, cond))
        return bool(res.rowcount)  # type: ignore[attr-defined]


def _dnc_clause(campaign_id: Any) -> Any:
    return exists().where(DoNotCall.phone == Contact.phone,
                          or_(DoNotCall.campaign_id.is_(None),
                              DoNotCall.campaign_id == campaign_id))


def _flagged_clause(now: datetime) -> Any:
    """The contact's number was found vacant or suspended within ``FLAG_DAYS``."""
    return exists().where(NumberFlag.phone == Contact.phone,
                          NumberFlag.flagged_at > now - timedelta(days=FLAG_DAYS))


async def _flag_number(s: AsyncSession, phone: str, reason: str, campaign_id: int,
                       now: datetime) -> None:
    await s.execute(insert(NumberFlag).values(
        phone=phone, reason=reason, campaign_id=campaign_id, flagged_at=now)
        .on_conflict_do_update(index_elements=[NumberFlag.phone], set_={
            "reason": reason, "campaign_id": campaign_id, "flagged_at": now}))


# ---------------------------------------------------------------- import
@dataclass
class ImportReport:
    loaded: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)

    @property
    def skipped(self) -> int:
        return len(self.problems)


def parse_rows(text: str) -> tuple[list[tuple[int, str, str | None, dict[str, str]]],
                                   list[tuple[int, str]]]:
    """CSV text -> good rows (line, phone, name, fields) and problems (line, reason).
    Raises ValueError when there is no phone column."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ValueError("CSV 文件为空") from None
    except csv.Error as exc:
        raise ValueError(f"第1行无法读取（{exc}），文件未导入") from None
    lowered = [h.lower() for h in header]
    phone_col = next((i for i, h in enumerate(lowered) if h in PHONE_HEADERS), None)
    if phone_col is None:
        raise ValueError("第1行缺少号码列（phone / 电话 / 手机）")
    name_col = next((i for i, h in enumerate(lowered) if h in NAME_HEADERS), None)
    good: list[tuple[int, str, str | None, dict[str, str]]] = []
    bad: list[tuple[int, str]] = []
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # a field over csv's limit (131,072 characters), a NUL...
            raise ValueError(f"第{reader.line_num}行无法读取（{exc}），文件未导入") from None
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            bad.append((line, f"列数为{len(values)}，应为{len(header)}"))
            continue
        try:
            phone = normalise(values[phone_col])
        except PhoneError as exc:
            bad.append((line, str(exc)))
            continue
        name = values[name_col].strip() or None if name_col is not None else None
        extra = {header[i]: v.strip() for i, v in enumerate(values)
                 if i not in (phone_col, name_col) and header[i]}
        good.append((line, phone, name, extra))
    return good, bad


async def import_contacts(sessions: SessionFactory, campaign_id: int, text: str, *,
                          progress: Callable[[int], None] | None = None) -> ImportReport:
    """Load the good rows; report invalid, duplicate (in file or campaign) and DNC rows."""
    good, bad = parse_rows(text)
    report = ImportReport(problems=list(bad))
    async with sessions() as s, s.begin():
        if await s.get(Campaign, campaign_id) is None:
            raise LookupError(f"没有活动 {campaign_id}")
        phones = sorted({p for _, p, _, _ in good})
        dnc: set[str] = set()
        existing: set[str] = set()
        # in slices: one IN list may not pass PostgreSQL's 32,767 bind parameters
        for i in range(0, len(phones), _LOOKUP_SLICE):
            part = phones[i:i + _LOOKUP_SLICE]
            dnc |= set((await s.execute(select(DoNotCall.phone).where(
                DoNotCall.phone.in_(part),
                or_(DoNotCall.campaign_id.is_(None), DoNotCall.campaign_id == campaign_id))
            )).scalars())
            existing |= set((await s.execute(select(Contact.phone).where(
                Contact.campaign_id == campaign_id, Contact.phone.in_(part))
            )).scalars())
        seen: dict[str, int] = {}
        rows: list[dict[str, Any]] = []
        for line, phone, name, extra in good:
            if phone in dnc:
                report.problems.append((line, "免打扰号码，已跳过"))
            elif phone in seen:
                report.problems.append((line, f"与第{seen[phone]}行重复"))
            elif phone in existing:
                report.problems.append((line, "活动中已有该号码"))
            else:
                seen[phone] = line
                rows.append({"campaign_id": campaign_id, "phone": phone, "name": name,
                             "fields": extra, "source": "import", "next_at": DUE_AT_ONCE})
        for i in range(0, len(rows), _BATCH):
            chunk = rows[i:i + _BATCH]
            res = await s.execute(insert(Contact).values(chunk).on_conflict_do_nothing())
            report.loaded += res.rowcount  # type: ignore[attr-defined]
            if progress:
                progress(len(chunk))
    report.problems.sort()
    return report


# ---------------------------------------------------------------- dialer claims
@dataclass(frozen=True)
class Claim:
    attempt_id: int
    contact_id: int
    campaign_id: int
    phone: str
    attempt_no: int


async def _dials_today(s: AsyncSession, phones: Iterable[str], now: datetime) -> dict[str, int]:
    rows = await s.execute(
        select(Contact.phone, func.count(Attempt.id))
        .join(Attempt, Attempt.contact_id == Contact.id)
        .where(Contact.phone.in_(list(phones)), Attempt.started_at >= _local_midnight(now))
        .group_by(Contact.phone))
    return {p: n for p, n in rows.all()}


async def _room(s: AsyncSession, campaign: Campaign, now: datetime) -> int:
    """Dials the campaign may start now, whichever dialer asks: ``max_channels`` less the
    attempts in progress (all dialers), and ``calls_per_second`` over a sliding window of
    max(1 s, one call's interval) less the attempts started in it."""
    in_flight, = (await s.execute(select(func.count()).select_from(Attempt).where(
        Attempt.campaign_id == campaign.id, Attempt.outcome == "dialing"))).one()
    window = max(1.0, 1.0 / campaign.calls_per_second) if campaign.calls_per_second > 0 else 1.0
    recent, = (await s.execute(select(func.count()).select_from(Attempt).where(
        Attempt.campaign_id == campaign.id,
        Attempt.started_at > now - timedelta(seconds=window)))).one()
    rate_room = int(campaign.calls_per_second * window + 1e-9) - int(recent)
    return min(campaign.max_channels - int(in_flight), rate_room)


async def claim_due(sessions: SessionFactory, campaign_id: int, limit: int, now: datetime, *,
                    rng: Callable[[], float] = random.random,
                    paced: bool = True) -> list[Claim]:
    """Claim up to ``limit`` due contacts of a running campaign inside its window; the attempt
    rows are committed before this returns (so before any dial). ``paced``: within the
    campaign's channel and rate caps, counted over every dialer (off: ``limit`` alone, for
    tools and tests that claim by hand)."""
    if limit <= 0:
        return []
    claims: list[Claim] = []
    async with sessions() as s, s.begin():
        # the campaign's row lock makes claims of one campaign take turns across dialers, so
        # its channel and rate caps hold for all of them together
        campaign = await s.get(Campaign, campaign_id, with_for_update=True)
        if campaign is None or campaign.status != "running" or not in_window(
                campaign.windows, now):
            return []
        if paced:
            limit = min(limit, await _room(s, campaign, now))
            if limit <= 0:
                return []
        await s.execute(update(Contact).where(
            Contact.campaign_id == campaign_id, Contact.status == "pending",
            _dnc_clause(Contact.campaign_id)).values(status="dnc"))
        await s.execute(update(Contact).where(  # another campaign heard it is vacant
            Contact.campaign_id == campaign_id, Contact.status == "pending",
            _flagged_clause(now)).values(status="invalid"))
        contacts = (await s.execute(
            select(Contact).where(Contact.campaign_id == campaign_id,
                                  Contact.status == "pending", Contact.next_at <= now)
            .order_by(Contact.next_at, Contact.id).limit(limit)
            .with_for_update(skip_locked=True))).scalars().all()
        today = await _dials_today(s, {c.phone for c in contacts}, now)
        tomorrow = next_window_start(campaign.windows,
                                     _local_midnight(now) + timedelta(days=1))
        for c in contacts:
            if c.attempts >= campaign.max_attempts:
                c.status = "exhausted"
                continue
            if today.get(c.phone, 0) >= campaign.daily_cap:
                c.next_at = tomorrow or now + timedelta(days=1)
                continue
            if c.attempts == 0 and campaign.sample_rate < 1.0 and rng() >= campaign.sample_rate:
                c.status = "skipped"
                continue
            today[c.phone] = today.get(c.phone, 0) + 1
            c.attempts += 1
            c.status = "dialing"
            attempt = Attempt(campaign_id=campaign_id, contact_id=c.id, outcome="dialing",
                              started_at=now)
            s.add(attempt)
            await s.flush()
            claims.append(Claim(attempt.id, c.id, campaign_id, c.phone, c.attempts))
    return claims


async def finish_attempt(sessions: SessionFactory, attempt_id: int, outcome: str,
                         now: datetime, *, amd_status: str | None = None,
                         cause: str | None = None, channel_id: str | None = None,
                         contact_status: str | None = None,
                         retry_at: datetime | None = None) -> None:
    """Record the outcome of a dial. Unanswered outcomes schedule a retry after the campaign's
    delay for that outcome (or exhaust the contact); vacant or suspended (the network said so)
    make the contact invalid and flag the number for every campaign (``NumberFlag``); an
    answered call sets ``contact_status`` (completed, refused, dnc, pending for a call-back at
    ``retry_at``; default completed)."""
    async with sessions() as s, s.begin():
        attempt = await s.get(Attempt, attempt_id, with_for_update=True)
        if attempt is None:
            raise LookupError(f"no attempt {attempt_id}")
        attempt.outcome = outcome
        attempt.ended_at = now
        attempt.amd_status = amd_status or attempt.amd_status
        attempt.cause = cause or attempt.cause
        attempt.channel_id = channel_id or attempt.channel_id
        contact = await s.get(Contact, attempt.contact_id, with_for_update=True)
        campaign = await s.get(Campaign, attempt.campaign_id)
        assert contact is not None and campaign is not None
        if contact.status != "dialing":
            return  # already settled (e.g. DNC from the call)
        if outcome == "answered":
            contact.status = contact_status or "completed"
            if contact.status == "pending":  # call-back asked for (现在不方便)
                if contact.attempts >= campaign.max_attempts:
                    contact.status = "exhausted"
                contact.next_at = retry_at or now + timedelta(hours=1)
            return
        if outcome in NEVER_AGAIN:  # the network: no such number, or suspended
            contact.status = "invalid"
            await _flag_number(s, contact.phone, outcome, campaign.id, now)
            return
        if contact.attempts >= campaign.max_attempts:
            contact.status = "exhausted"
            return
        delay = int(campaign.retry_s.get(outcome, DEFAULT_RETRY_S.get(outcome, 1800)))
        contact.status = "pending"
        contact.next_at = now + timedelta(seconds=delay)


async def mark_answered(sessions: SessionFactory, attempt_id: int, now: datetime, *,
                        channel_id: str | None = None, amd_status: str | None = None) -> None:
    async with sessions() as s, s.begin():
        await s.execute(update(Attempt).where(Attempt.id == attempt_id).values(
            answered_at=now, channel_id=channel_id, amd_status=amd_status))


ANSWERED_STALE = timedelta(minutes=30)  # an answered survey call still open this long was cut


async def recover_stale(sessions: SessionFactory, now: datetime, *,
                        older_than: timedelta = timedelta(minutes=10),
                        answered_older_than: timedelta = ANSWERED_STALE) -> list[int]:
    """Attempts left open by a dialer or server that died, all with cause ``lost``:

    * still ``dialing`` and never answered after ``older_than``: failed, and the contact
      follows the retry policy (attempts and daily caps still hold);
    * answered more than ``answered_older_than`` ago (no survey lasts that long: the survey
      was cut off by the crash): answered; a contact who gave answers is completed (the answers
      are kept, as for a customer who hangs up mid-survey), one who gave none follows the
      retry policy like a failed dial.
    """
    async with sessions() as s:
        ids = list((await s.execute(select(Attempt.id).where(
            Attempt.outcome == "dialing", Attempt.started_at < now - older_than,
            Attempt.answered_at.is_(None)))).scalars())
        cut = (await s.execute(
            select(Attempt.id, exists().where(Answer.contact_id == Attempt.contact_id,
                                              Answer.campaign_id == Attempt.campaign_id))
            .where(Attempt.outcome == "dialing",
                   Attempt.answered_at < now - answered_older_than))).all()
    for attempt_id in ids:
        await finish_attempt(sessions, attempt_id, "failed", now, cause="lost")
    for attempt_id, answered in cut:
        await _settle_cut(sessions, attempt_id, answered, now)
    return ids + [attempt_id for attempt_id, _ in cut]


async def settle_cut(sessions: SessionFactory, attempt_id: int, now: datetime) -> None:
    """An answered survey call cut by a crash, settled at once (``recover_stale`` would after
    ``ANSWERED_STALE``): completed when the customer gave answers (they are kept), else the
    retry policy of a failed dial."""
    async with sessions() as s:
        attempt = await s.get(Attempt, attempt_id)
        if attempt is None or attempt.outcome != "dialing":
            return
        answered = bool(await s.scalar(select(exists().where(
            Answer.contact_id == attempt.contact_id, Answer.campaign_id == attempt.campaign_id,
            Answer.answered_at >= attempt.started_at))))
    await _settle_cut(sessions, attempt_id, answered, now)


async def _settle_cut(sessions: SessionFactory, attempt_id: int, answered: bool,
                      now: datetime) -> None:
    if answered:
        await finish_attempt(sessions, attempt_id, "answered", now, cause="lost",
                             contact_status="completed")
    else:
        await finish_attempt(sessions, attempt_id, "failed", now, cause="lost")


async def running_campaigns(sessions: SessionFactory) -> list[Campaign]:
    async with sessions() as s:
        return list((await s.execute(select(Campaign).where(
            Campaign.status == "running").order_by(Campaign.id))).scalars())


async def settle_finished(sessions: SessionFactory, campaign_id: int) -> bool:
    """Mark a running campaign finished when no contact is pending or dialing."""
    async with sessions() as s, s.begin():
        open_ = await s.scalar(select(func.count()).select_from(Contact).where(
            Contact.campaign_id == campaign_id, Contact.status.in_(("pending", "dialing"))))
        if open_:
            return False
        res = await s.execute(update(Campaign).where(and_(
            Campaign.id == campaign_id, Campaign.status == "running")).values(status="finished"))
        return bool(res.rowcount)  # type: ignore[attr-defined]
