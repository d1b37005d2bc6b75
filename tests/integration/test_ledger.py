"""The consent ledger (issue 23) on a scratch PostgreSQL: a survey call's consent, refusal and
do-not-call request recorded with the words heard (masked); the national list imported from a
CSV (bad lines reported, repeats counted, pending contacts of every campaign stopped); the
operator's changes and the audit export through the command line, phones masked."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select

from campaigns import ledger, repo
from campaigns.answers import DbAnswerSink
from campaigns.survey import load_survey
from campaigns.surveydialog import SurveyDialog
from campaigns.tables import ConsentEvent, Contact, DoNotCall
from dialog.actions import Dtmf, Utterance
from ivr.core.storage.db import SessionFactory

PHONES = ("13912300001", "13912300002", "13912300003")


async def _contacts(sessions: SessionFactory) -> tuple[int, dict[str, int]]:
    cid = await repo.create_campaign(sessions, name="台账", survey="satisfaction", line="gas")
    await repo.import_contacts(sessions, cid, "phone\n" + "\n".join(PHONES) + "\n")
    async with sessions() as s:
        ids = {c.phone: c.id for c in (await s.execute(
            select(Contact).where(Contact.campaign_id == cid))).scalars()}
    return cid, ids


async def test_a_survey_call_records_consent_refusal_and_dnc(
        scratch_sessions: SessionFactory) -> None:
    sessions = scratch_sessions
    cid, ids = await _contacts(sessions)
    spec = load_survey("satisfaction")

    def dialog(phone: str) -> SurveyDialog:
        return SurveyDialog(spec, DbAnswerSink(sessions, campaign_id=cid, contact_id=ids[phone],
                                               call_id=None, phone=phone))

    yes = dialog(PHONES[0])
    yes.start()
    await yes.on_event(Dtmf("1"))
    no = dialog(PHONES[1])
    no.start()
    await no.on_event(Utterance("不需要，谢谢，我的卡号6222021234567890"))
    stop = dialog(PHONES[2])
    stop.start()
    await stop.on_event(Utterance("以后不要再打了"))

    rows = await ledger.events(sessions)
    got = [(e.phone, e.event, e.channel, e.actor, e.words, e.campaign_id) for e in rows]
    assert got == [
        (PHONES[0], "consent", "survey_call", "customer", "按键 1", cid),
        (PHONES[1], "refusal", "survey_call", "customer", got[1][4], cid),
        (PHONES[2], "dnc", "survey_call", "customer", "以后不要再打了", cid)]
    assert "6222021234567890" not in (got[1][4] or "") and "不需要" in (got[1][4] or "")
    export = ledger.csv_rows(rows)
    assert export[0][:3] == ["时间", "号码", "事件"] and export[1][1] == "139****0001"
    assert [r[2] for r in export[1:]] == ["同意", "拒绝", "登记免打扰"]
    assert ledger.csv_rows(rows, unmasked=True)[1][1] == PHONES[0]


async def test_national_list_import_and_the_cli(scratch_sessions: SessionFactory, pg_url: str,
                                                tmp_path: Path) -> None:
    sessions = scratch_sessions
    cid, _ids = await _contacts(sessions)
    await repo.set_status(sessions, cid, "start")
    await repo.dnc_add(sessions, PHONES[1])
    text = (f"phone\n{PHONES[0]}\n+86 {PHONES[1]}\n{PHONES[0]}\n12345\n\n"
            "13800138000\n")
    report = await ledger.import_national(sessions, text, actor="审计员")
    assert (report.added, report.already) == (2, 2)  # PHONES[1] listed; PHONES[0] twice
    assert [line for line, _ in report.problems] == [5]
    async with sessions() as s:
        status = {c.phone: c.status for c in (await s.execute(
            select(Contact).where(Contact.campaign_id == cid))).scalars()}
        reasons = {d.phone: d.reason for d in (await s.execute(select(DoNotCall))).scalars()}
        events = list((await s.execute(select(ConsentEvent))).scalars())
    assert status == {PHONES[0]: "dnc", PHONES[1]: "dnc", PHONES[2]: "pending"}
    assert reasons[PHONES[0]] == reasons["13800138000"] == "national_list"
    assert sorted((e.phone, e.channel, e.actor) for e in events) == [
        ("13800138000", "national_list", "审计员"), (PHONES[0], "national_list", "审计员")]
    again = await ledger.import_national(sessions, text, actor="审计员")
    assert (again.added, again.already) == (0, 4)
    await repo.set_status(sessions, cid, "stop")

    # the command line, on the session database
    from click.testing import CliRunner

    from ivr.tools.cli import main

    env = {"DATABASE_URL": pg_url, "IVR_HOME": str(tmp_path)}

    def ivr(*args: str) -> str:
        result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    listed = tmp_path / "national.csv"
    listed.write_text("号码\n13912399991\nnot-a-number\n", encoding="utf-8")
    out = await asyncio.to_thread(ivr, "campaigns", "dnc", "import", str(listed), "--as", "审计员")
    assert "1 added" in out and "line 3" in out
    await asyncio.to_thread(ivr, "campaigns", "dnc", "remove", "13912399991")
    out = await asyncio.to_thread(ivr, "campaigns", "ledger", "--phone", "13912399991",
                                  "--csv", "-")
    assert "139****9991" in out and "13912399991" not in out
    assert "全国拒接名单" in out and "撤销免打扰" in out and "运营人员" in out
