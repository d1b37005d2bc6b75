"""Campaign import, do-not-call and the dialer's policy on the real test PostgreSQL.

The dialer runs for real (claims, pacing, retries); only the telephone network behind it is an
in-process originator answering by number, with an injected clock.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from campaigns import repo
from campaigns.dialer import Dialer, DialResult
from campaigns.phones import PhoneError, masked, normalise
from campaigns.repo import Claim
from campaigns.tables import Answer, Attempt, Campaign, Contact
from ivr.core.storage.db import SessionFactory, session_factory

pytestmark = pytest.mark.asyncio(loop_scope="session")
SH = ZoneInfo("Asia/Shanghai")
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=SH).astimezone(UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Network:
    """Answers dials by the number's last digit: 1 busy, 2 no answer, 3 machine, else answered."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.dialed: list[str] = []
        self.delay_s = delay_s
        self.hold = asyncio.Event()
        self.hold.set()

    async def dial(self, claim: Claim, campaign: Campaign) -> DialResult:
        self.dialed.append(claim.phone)
        await self.hold.wait()
        await asyncio.sleep(self.delay_s)
        outcome = {"1": "busy", "2": "no_answer", "3": "machine"}.get(claim.phone[-1],
                                                                      "answered")
        return DialResult(outcome, amd_status="MACHINE" if outcome == "machine" else "HUMAN")


def _phones(prefix: str, n: int, step: int = 1) -> list[str]:
    return [f"139{prefix}{i * step:06d}" for i in range(n)]


async def _campaign(sessions: SessionFactory, phones: list[str], **options: object) -> int:
    cid = await repo.create_campaign(sessions, name="t", survey="satisfaction", line="gas",
                                     **options)
    report = await repo.import_contacts(sessions, cid, "phone,name\n" + "".join(
        f"{p},客户\n" for p in phones))
    assert report.loaded == len(phones)
    await repo.set_status(sessions, cid, "start")
    return cid


async def test_phone_formats() -> None:
    assert normalise("+86 138-0013-8000") == "13800138000"
    assert normalise("0086 13800138000") == "13800138000"
    assert normalise("(010) 6222-1234") == "01062221234"
    assert normalise("0571-1234567") == "05711234567"
    assert normalise("+86 21 6222 1234") == "02162221234"
    assert masked("13800138000") == "138****8000"
    for bad in ("12345", "23800138000", "+1 415 555 0100", "138001380001", ""):
        with pytest.raises(PhoneError):
            normalise(bad)


async def test_import_reports_bad_rows_and_loads_the_rest(pg_engine: AsyncEngine) -> None:
    sessions = session_factory(pg_engine)
    cid = await repo.create_campaign(sessions, name="导入", survey="satisfaction", line="oil")
    await repo.dnc_add(sessions, "13700001111", reason="test")
    text = ("电话,姓名,户号\n"
            "138 0000 0001,张三,A1\n"       # line 2 ok
            "12345,坏号,A2\n"               # 3 invalid
            "+8613800000001,重复,A3\n"      # 4 duplicate of line 2
            "13700001111,免打扰,A4\n"       # 5 DNC
            "13800000002,少列\n"            # 6 wrong column count
            "\n"
            "010-62221234,李四,A7\n")      # 8 ok
    report = await repo.import_contacts(sessions, cid, text)
    assert report.loaded == 2
    assert [line for line, _ in report.problems] == [3, 4, 5, 6]
    assert "重复" in report.problems[1][1] and "免打扰" in report.problems[2][1]
    async with sessions() as s:
        rows = (await s.execute(select(Contact).where(Contact.campaign_id == cid)
                                .order_by(Contact.id))).scalars().all()
    assert [(c.phone, c.name, c.fields) for c in rows] == [
        ("13800000001", "张三", {"户号": "A1"}), ("01062221234", "李四", {"户号": "A7"})]
    again = await repo.import_contacts(sessions, cid, "phone\n13800000001\n")
    assert again.loaded == 0 and again.problems == [(2, "活动中已有该号码")]


async def test_an_import_larger_than_the_bind_parameter_limit(pg_engine: AsyncEngine) -> None:
    """40,000 rows: more phones than one IN list may carry (32,767 parameters); on old main the
    duplicate and do-not-call lookups failed. A field over csv's limit is a clear error."""
    sessions = session_factory(pg_engine)
    cid = await repo.create_campaign(sessions, name="大批量", survey="satisfaction", line="gas")
    phones = _phones("77", 40_000)
    await repo.dnc_add(sessions, phones[-1], reason="test")
    report = await repo.import_contacts(sessions, cid, "phone\n" + "\n".join(phones) + "\n")
    assert report.loaded == 39_999 and report.problems == [(40_001, "免打扰号码，已跳过")]
    with pytest.raises(ValueError, match="第2行无法读取"):
        await repo.import_contacts(sessions, cid, "phone\n" + "1" * 140_000 + "\n")


async def test_windows_and_daily_cap(pg_engine: AsyncEngine) -> None:
    sessions = session_factory(pg_engine)
    cid = await _campaign(sessions, _phones("10", 1), retry_s={"busy": 60}, daily_cap=1)
    early = datetime(2026, 11, 23, 8, 59, tzinfo=SH).astimezone(UTC)
    lunch = datetime(2026, 11, 23, 12, 30, tzinfo=SH).astimezone(UTC)
    assert await repo.claim_due(sessions, cid, 5, early, paced=False) == []
    assert await repo.claim_due(sessions, cid, 5, lunch, paced=False) == []
    [claim] = await repo.claim_due(sessions, cid, 5, MONDAY_10, paced=False)
    await repo.finish_attempt(sessions, claim.attempt_id, "busy", MONDAY_10)
    later = MONDAY_10 + timedelta(minutes=5)  # retry due, but the daily cap is used up
    assert await repo.claim_due(sessions, cid, 5, later, paced=False) == []
    async with sessions() as s:
        contact = await s.get(Contact, claim.contact_id)
        assert contact is not None
        assert contact.next_at == datetime(2026, 11, 24, 9, 0, tzinfo=SH)
    [again] = await repo.claim_due(sessions, cid, 5, contact.next_at, paced=False)
    assert again.attempt_no == 2


async def test_retry_delay_per_outcome_and_max_attempts(pg_engine: AsyncEngine) -> None:
    sessions = session_factory(pg_engine)
    phones = _phones("11", 3)
    cid = await _campaign(sessions, phones, daily_cap=5, max_attempts=2,
                          retry_s={"busy": 60, "no_answer": 120, "machine": 300})
    claims = await repo.claim_due(sessions, cid, 5, MONDAY_10, paced=False)
    assert len(claims) == 3
    for claim, outcome in zip(claims, ("busy", "no_answer", "machine"), strict=True):
        await repo.finish_attempt(sessions, claim.attempt_id, outcome, MONDAY_10)
    async with sessions() as s:
        due = {c.phone: c.next_at - MONDAY_10 for c in (await s.execute(
            select(Contact).where(Contact.campaign_id == cid))).scalars()}
    assert due == {phones[0]: timedelta(seconds=60), phones[1]: timedelta(seconds=120),
                   phones[2]: timedelta(seconds=300)}
    t = MONDAY_10 + timedelta(seconds=300)
    second = await repo.claim_due(sessions, cid, 5, t, paced=False)
    assert len(second) == 3
    for claim in second:
        await repo.finish_attempt(sessions, claim.attempt_id, "busy", t)
    assert await repo.claim_due(sessions, cid, 5, t + timedelta(days=1),
                                  paced=False) == []
    async with sessions() as s:
        statuses = Counter((await s.execute(select(Contact.status).where(
            Contact.campaign_id == cid))).scalars())
    assert statuses == {"exhausted": 3}


async def test_carrier_announcements_strike_off_or_retry(pg_engine: AsyncEngine, pg_url: str,
                                                         tmp_path: Path) -> None:
    """Issue 23: a vacant or suspended number is never dialled again, by this campaign or any
    other (for 90 days); unreachable is retried after 2 h; the report counts each, and the
    attempts export lists each dial with what it met."""
    from click.testing import CliRunner

    from campaigns.report import campaign_summary
    from ivr.tools.cli import main

    sessions = session_factory(pg_engine)
    phones = _phones("23", 3)
    cid = await _campaign(sessions, phones, daily_cap=5, max_attempts=3)
    claims = await repo.claim_due(sessions, cid, 5, MONDAY_10, paced=False)
    for claim, outcome in zip(claims, ("vacant", "suspended", "unreachable"), strict=True):
        await repo.finish_attempt(sessions, claim.attempt_id, outcome, MONDAY_10,
                                  cause=f"early media: phrase: {outcome}")
    async with sessions() as s:
        contacts = {c.phone: c for c in (await s.execute(
            select(Contact).where(Contact.campaign_id == cid))).scalars()}
    assert [contacts[p].status for p in phones] == ["invalid", "invalid", "pending"]
    assert contacts[phones[2]].next_at - MONDAY_10 == timedelta(hours=2)
    later = MONDAY_10 + timedelta(hours=4)  # 14:00, the afternoon window
    assert [c.phone for c in await repo.claim_due(sessions, cid, 5, later, paced=False)] == [
        phones[2]]
    summary = await campaign_summary(sessions, cid)
    assert summary is not None
    p = summary.progress
    assert (p.vacant, p.suspended, p.unreachable, p.pending) == (1, 1, 0, 1)
    out = await asyncio.to_thread(
        CliRunner().invoke, main, ["campaigns", "report", str(cid), "--attempts-csv", "-"],
        env={"DATABASE_URL": pg_url, "IVR_HOME": str(tmp_path)}, catch_exceptions=False)
    assert out.exit_code == 0, out.output
    dials = [line.split(",") for line in out.stdout.splitlines() if line.startswith(str(cid))]
    # the unreachable number is being dialled again (claimed above, at 14:00)
    assert [(d[8], d[11]) for d in dials] == [("vacant", "invalid"), ("suspended", "invalid"),
                                              ("unreachable", "dialing"),
                                              ("dialing", "dialing")], dials
    assert all(d[10].startswith("early media") for d in dials[:3])
    assert not any(p in out.stdout for p in phones)  # masked

    # another campaign with the same numbers: the flagged ones are not dialled
    other = await _campaign(sessions, phones, daily_cap=5)
    got = await repo.claim_due(sessions, other, 5, later, paced=False)
    assert [c.phone for c in got] == [phones[2]]
    async with sessions() as s:
        statuses = Counter((await s.execute(select(Contact.status).where(
            Contact.campaign_id == other))).scalars())
    assert statuses == {"invalid": 2, "dialing": 1}
    # after 90 days a closed number may belong to someone new
    third = await _campaign(sessions, phones[:1], daily_cap=5)
    assert len(await repo.claim_due(sessions, third, 5, MONDAY_10 + timedelta(days=91),
                                    paced=False)) == 1
    for campaign in (cid, other, third):  # not left for the dialers of the next tests
        await repo.set_status(sessions, campaign, "stop")


async def test_dnc_honoured_and_added_from_a_call(pg_engine: AsyncEngine) -> None:
    sessions = session_factory(pg_engine)
    phones = _phones("12", 2)
    cid = await _campaign(sessions, phones)
    assert await repo.dnc_add(sessions, phones[0], campaign_id=cid, reason="manual")
    claims = await repo.claim_due(sessions, cid, 5, MONDAY_10, paced=False)
    assert [c.phone for c in claims] == [phones[1]]
    # the customer says 不要再打了 during the call: DNC at once, the contact settles as dnc
    await repo.dnc_add(sessions, phones[1], reason="customer", source_campaign_id=cid)
    await repo.finish_attempt(sessions, claims[0].attempt_id, "answered", MONDAY_10,
                              contact_status="dnc")
    async with sessions() as s:
        statuses = list((await s.execute(select(Contact.status).where(
            Contact.campaign_id == cid))).scalars())
    assert statuses == ["dnc", "dnc"]
    assert await repo.dnc_remove(sessions, phones[0], campaign_id=cid)


async def _two_dialers(sessions: SessionFactory, phones: list[str], net: Network,
                       timeout_s: float, **options: object) -> tuple[int, list[Dialer]]:
    """A campaign of ``phones`` run by two dialers, the clock 50 ms ahead every 5 ms, until
    it is finished: (its id, the dialers)."""
    cid = await _campaign(sessions, phones, **options)
    clock = Clock(MONDAY_10)
    dialers = [Dialer(sessions, net, clock=clock, tick_s=0.0, name=f"d{i}") for i in range(2)]

    async def advance() -> None:
        while True:
            clock.now += timedelta(milliseconds=50)
            await asyncio.sleep(0.005)

    ticker = asyncio.create_task(advance())
    runs = [asyncio.create_task(d.run()) for d in dialers]
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                async with sessions() as s:
                    status = await s.scalar(select(Campaign.status).where(Campaign.id == cid))
                if status == "finished":
                    break
                await asyncio.sleep(0.05)
    finally:
        for t in (*runs, ticker):
            t.cancel()
        await asyncio.gather(*runs, ticker, return_exceptions=True)
    return cid, dialers


async def test_two_dialers_dial_each_contact_once(pg_engine: AsyncEngine) -> None:
    sessions = session_factory(pg_engine)
    phones = _phones("13", 40, step=10)  # all end in 0: all answer
    net = Network(delay_s=0.01)
    cid, dialers = await _two_dialers(sessions, phones, net, 30, calls_per_second=100.0,
                                      max_channels=8)
    assert Counter(net.dialed) == {p: 1 for p in phones}
    assert all(d.dials > 0 for d in dialers)  # both took part
    async with sessions() as s:
        n = await s.scalar(select(func.count()).select_from(Attempt).where(
            Attempt.campaign_id == cid, Attempt.outcome == "answered"))
    assert n == len(phones)


class CountingNetwork(Network):
    """Network that also counts the calls up at once, over every dialer."""

    def __init__(self, delay_s: float) -> None:
        super().__init__(delay_s)
        self.up = self.most_up = 0

    async def dial(self, claim: Claim, campaign: Campaign) -> DialResult:
        self.up += 1
        self.most_up = max(self.most_up, self.up)
        try:
            return await super().dial(claim, campaign)
        finally:
            self.up -= 1


async def test_two_dialers_hold_the_channel_and_rate_caps_together(
        pg_engine: AsyncEngine) -> None:
    """Each dialer alone would allow 3 channels and 4 calls a second: two of them together
    must still stay within 3 and 4 (the caps are the campaign's, not the dialer's)."""
    sessions = session_factory(pg_engine)
    phones = _phones("14", 30, step=10)  # all end in 0: all answer
    net = CountingNetwork(delay_s=0.05)
    cid, _ = await _two_dialers(sessions, phones, net, 60, calls_per_second=4.0, max_channels=3)
    assert Counter(net.dialed) == {p: 1 for p in phones}
    assert net.most_up <= 3
    async with sessions() as s:
        starts = sorted((await s.scalars(select(Attempt.started_at).where(
            Attempt.campaign_id == cid))).all())
    second = timedelta(seconds=1)
    busiest = max(sum(1 for u in starts if t - second < u <= t) for t in starts)
    assert busiest <= 4, busiest


async def test_pause_and_crash_restart(pg_engine: AsyncEngine) -> None:
    sessions = session_factory(pg_engine)
    phones = _phones("14", 6)  # last digits 0..5: busy (1), no answer (2), machine (3)
    cid = await _campaign(sessions, phones, calls_per_second=100.0, max_channels=3,
                          max_attempts=2, daily_cap=5,
                          retry_s={"busy": 60, "no_answer": 60, "machine": 60})
    clock = Clock(MONDAY_10)
    net = Network()
    net.hold.clear()  # calls stay up
    first = Dialer(sessions, net, clock=clock)
    assert await first.tick() == 3
    await repo.set_status(sessions, cid, "pause")
    assert await first.tick() == 0  # paused: no new dials, the three calls go on
    await repo.set_status(sessions, cid, "resume")
    await first.shutdown()  # the dialer dies with three calls up and nothing recorded
    assert len(net.dialed) == 3
    net.hold.set()
    clock.now += timedelta(minutes=11)
    second = Dialer(sessions, net, clock=clock)
    for _ in range(20):
        await second.tick()
        await second.drain()
        clock.now += timedelta(seconds=61)
    async with sessions() as s:
        contacts = (await s.execute(select(Contact).where(
            Contact.campaign_id == cid).order_by(Contact.id))).scalars().all()
        lost = await s.scalar(select(func.count()).select_from(Attempt).where(
            Attempt.campaign_id == cid, Attempt.cause == "lost"))
        machine = (await s.execute(select(Attempt.amd_status).where(
            Attempt.campaign_id == cid, Attempt.outcome == "machine"))).scalars().all()
    assert lost == 3
    counts = Counter(net.dialed)
    assert all(counts[c.phone] == c.attempts <= 2 for c in contacts)
    assert {c.phone[-1]: c.status for c in contacts} == {
        "0": "completed", "1": "exhausted", "2": "exhausted", "3": "exhausted",
        "4": "completed", "5": "completed"}
    assert machine and set(machine) == {"MACHINE"}


async def test_surveys_cut_off_by_a_crash_are_settled(pg_engine: AsyncEngine) -> None:
    """Answered calls left open by a server that died: after 30 min the contact who answered
    something is completed (answers kept), the one who answered nothing is retried by the
    policy; the campaign can finish."""
    sessions = session_factory(pg_engine)
    phones = _phones("15", 2)
    cid = await _campaign(sessions, phones, calls_per_second=100.0, max_channels=2,
                          max_attempts=2, retry_s={"failed": 60})
    clock = Clock(MONDAY_10)
    net = Network()
    net.hold.clear()
    dialer = Dialer(sessions, net, clock=clock)
    assert await dialer.tick() == 2
    async with sessions() as s, s.begin():
        attempts = (await s.execute(select(Attempt).where(
            Attempt.campaign_id == cid).order_by(Attempt.contact_id))).scalars().all()
        for a in attempts:
            a.answered_at = clock.now
        s.add(Answer(campaign_id=cid, contact_id=attempts[0].contact_id, question="csat",
                     kind="csat", score=4, via="dtmf"))
    await dialer.shutdown()  # the server dies mid-survey
    clock.now += timedelta(minutes=20)
    assert await repo.recover_stale(sessions, clock.now) == []  # a survey may still be going
    clock.now += timedelta(minutes=11)
    settled = await repo.recover_stale(sessions, clock.now)
    assert sorted(settled) == sorted(a.id for a in attempts)
    async with sessions() as s:
        contacts = (await s.execute(select(Contact).where(
            Contact.campaign_id == cid).order_by(Contact.id))).scalars().all()
        outcomes = (await s.execute(select(Attempt.outcome, Attempt.cause).where(
            Attempt.campaign_id == cid).order_by(Attempt.contact_id))).all()
    assert [c.status for c in contacts] == ["completed", "pending"]
    assert [tuple(o) for o in outcomes] == [("answered", "lost"), ("failed", "lost")]
    assert contacts[1].next_at == clock.now + timedelta(seconds=60)


async def test_sampling_dials_the_configured_share_once(pg_engine: AsyncEngine) -> None:
    """sample_rate 0.3: about 30 % of the contacts are dialed, the rest are skipped for good
    (never dialed later), and a contact already dialed is never sampled out of its retries."""
    import random

    sessions = session_factory(pg_engine)
    phones = _phones("16", 200)
    cid = await _campaign(sessions, phones, sample_rate=0.3, daily_cap=5)
    rng = random.Random(7).random
    claims = await repo.claim_due(sessions, cid, 500, MONDAY_10, rng=rng, paced=False)
    assert 40 <= len(claims) <= 80, len(claims)  # 60 expected
    for c in claims:  # no answer: each is due again later
        await repo.finish_attempt(sessions, c.attempt_id, "no_answer", MONDAY_10)
    later = MONDAY_10 + timedelta(hours=1)  # inside the 09:00-12:00 window
    again = await repo.claim_due(sessions, cid, 500, later, rng=lambda: 0.99,  # would skip all
                                 paced=False)
    assert sorted(c.contact_id for c in again) == sorted(c.contact_id for c in claims)
    async with sessions() as s:
        skipped = await s.scalar(select(func.count()).select_from(Contact).where(
            Contact.campaign_id == cid, Contact.status == "skipped"))
    assert skipped == 200 - len(claims)


async def test_cli_create_import_control_dnc(pg_url: str, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from ivr.tools.cli import main

    runner = CliRunner()
    env = {"DATABASE_URL": pg_url, "IVR_HOME": str(tmp_path)}

    def ivr(*args: str) -> str:
        result = runner.invoke(main, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    out = await asyncio.to_thread(ivr, "campaigns", "create", "--name", "命令行", "--survey",
                                  "satisfaction", "--line", "oil", "--channels", "5")
    cid = out.split()[1]
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text("phone,name,车牌\n13900001234,甲,沪A1\nabc,乙,沪A2\n13900001234,丙,x\n"
                        "0571-88886666,丁,浙A\n", encoding="utf-8")
    out = await asyncio.to_thread(ivr, "campaigns", "import", cid, str(csv_file))
    assert "2 contacts loaded, 2 rows skipped" in out
    assert "第3行" in out and "第4行: 与第2行重复" in out
    assert "campaign " + cid + ": running" in await asyncio.to_thread(
        ivr, "campaigns", "start", cid)
    assert "paused" in await asyncio.to_thread(ivr, "campaigns", "pause", cid)
    assert "running" in await asyncio.to_thread(ivr, "campaigns", "resume", cid)
    assert "stopped" in await asyncio.to_thread(ivr, "campaigns", "stop", cid)
    out = await asyncio.to_thread(ivr, "campaigns", "dnc", "add", "+86 139-0000-1234")
    assert "139****1234: added" in out and "13900001234" not in out
    assert "removed" in await asyncio.to_thread(ivr, "campaigns", "dnc", "remove",
                                                "13900001234")


class ListSink:
    def __init__(self) -> None:
        self.answers: list[tuple[str, int | None, str | None, str]] = []
        self.dnc = 0

    async def answer(self, question: str, kind: str, score: int | None, text: str | None,
                     via: str) -> None:
        self.answers.append((question, score, text, via))

    async def consent(self, given: bool, words: str) -> None:
        pass

    async def do_not_call(self, words: str = "") -> None:
        self.dnc += 1


async def test_survey_file_and_dialog() -> None:
    from campaigns.survey import SurveyError, load_survey, parse_survey
    from campaigns.surveydialog import SurveyDialog
    from dialog.actions import Dtmf, Hangup, NoInput, Say, Utterance

    with pytest.raises(SurveyError, match=r"<survey>:7: questions.0.kind"):
        parse_survey("id: x\nname: n\nopening: 中国石油956100回访\nconsent: 可以吗\n"
                     "questions:\n  - id: q\n    kind: stars\n    prompt: 请打分\nclosing: 再见")
    spec = load_survey("satisfaction")
    sink = ListSink()
    d = SurveyDialog(spec, sink, {"name": "张先生"})
    assert "张先生" in d.start()[0].text  # type: ignore[union-attr]
    # no name: no comma left standing alone, no space from the YAML folding
    nameless = SurveyDialog(spec, ListSink(), {}).start()[0].text  # type: ignore[union-attr]
    assert "热线。您最近联系过我们的客服，我们想" in nameless, nameless
    # what may end a customer's turn at a short pause (the listener's early end)
    assert await d.turn_complete("好的") and await d.turn_complete("别再打了")
    assert not await d.turn_complete("这个嘛")
    # 不要 is a refusal, but said before a pause it may go on into 不要再打了 (do not call)
    assert not await d.turn_complete("不要") and not await d.turn_complete("我不要")
    # as Whisper writes a cut-off 不要再: with a full stop, or 在 for 再
    assert not await d.turn_complete("不要。") and not await d.turn_complete("不要在，")
    # a refusal ends the call: it waits for the end of the turn (不…方便 asks for a call back)
    assert not await d.turn_complete("不用了") and not await d.turn_complete("不")
    await d.on_event(Utterance("好的可以"))
    assert await d.turn_complete("四分") and not await d.turn_complete("我觉得")
    again = await d.on_event(Utterance("你说什么？重复一下"))
    assert any(isinstance(a, Say) and "一到五分" in a.text for a in again)
    await d.on_event(Utterance("不太满意"))
    reprompt = await d.on_event(Utterance("嗯这个嘛"))  # no match for NPS
    assert any(isinstance(a, Say) and a.prompt_id == "survey_reprompt" for a in reprompt)
    await d.on_event(Utterance("给六分吧"))
    await d.on_event(Dtmf("2"))
    assert not await d.turn_complete("我觉得挺好")  # a free suggestion: never cut short
    end = await d.on_event(NoInput())  # no suggestion
    assert isinstance(end[-1], Hangup) and end[-1].outcome == "completed"
    assert sink.answers == [("csat", 2, "不太满意", "speech"), ("nps", 6, "给六分吧", "speech"),
                            ("resolved", 0, None, "dtmf")]
    later = SurveyDialog(spec, ListSink())
    later.start()
    out = await later.on_event(Utterance("我现在不方便，在开车"))
    assert isinstance(out[-1], Hangup) and later.result.contact_status == "pending"
    stop = SurveyDialog(spec, sink)
    stop.start()
    await stop.on_event(Dtmf("1"))
    out = await stop.on_event(Utterance("以后别再打了"))
    assert sink.dnc == 1 and stop.result.contact_status == "dnc"
    assert isinstance(out[0 if len(out) == 1 else -1], Hangup)
