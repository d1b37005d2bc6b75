"""Survey statistics, follow-up rules and call-back rules: the pure parts (no database)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from click.testing import CliRunner

from campaigns.callbacks import FinishedCall, bot_of, matching_rule, sampled
from campaigns.followup import FollowupPolicy, order_fields
from campaigns.stats import AnswerRow, by_bot, by_day, scores, suggestions
from ivr.core.config import CallbackRule, OpsSettings

T0 = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)  # 23:30 China time, 11-24
T1 = datetime(2026, 11, 24, 16, 30, tzinfo=UTC)  # 00:30 China time, 11-25


def row(kind: str, score: int | None, *, bot: str | None = "gas", text: str | None = None,
        at: datetime = T0, contact: int = 1, call: str = "c1") -> AnswerRow:
    return AnswerRow(campaign_id=7, contact_id=contact, question=kind, kind=kind, score=score,
                     text=text, answered_at=at, phone="13812345678", call_id=call,
                     orig_call_id="orig-1", bot=bot, agent="agent1", line="gas")


def test_csat_and_nps() -> None:
    rows = [row("csat", s) for s in (1, 2, 5, 5, 4)] + [row("nps", s) for s in (10, 9, 7, 3)]
    s = scores([*rows, row("text", None, text="好")])
    assert s.csat_n == 5 and s.csat_distribution == {1: 1, 2: 1, 3: 0, 4: 1, 5: 2}
    assert s.csat_mean == 3.4
    assert (s.promoters, s.passives, s.detractors, s.nps_n) == (2, 1, 1, 4)
    assert s.nps == 25.0  # 50% - 25%
    empty = scores([])
    assert empty.csat_mean is None and empty.nps is None


def test_groups_and_china_days() -> None:
    rows = [row("csat", 5, at=T0), row("csat", 1, at=T1, bot=None), row("nps", 0, at=T1)]
    days = by_day(rows)
    assert list(days) == ["2026-11-24", "2026-11-25"]
    assert days["2026-11-25"].nps == -100.0
    bots = by_bot(rows)
    assert bots["gas"].csat_mean == 5.0 and bots["(未知)"].csat_mean == 1.0


def test_suggestions_newest_first() -> None:
    rows = [row("text", None, text="早一点", at=T0), row("text", None, text="太慢了", at=T1),
            row("text", None, text="  ")]
    assert suggestions(rows) == {"gas": ["太慢了", "早一点"]}


def test_followup_policy_and_order() -> None:
    policy = FollowupPolicy.for_campaign(OpsSettings(), {"followup_nps_max": 5})
    assert policy == FollowupPolicy(csat_max=2, nps_max=5)
    assert order_fields([row("csat", 3), row("nps", 6)], policy) is None
    fields = order_fields([row("csat", 1), row("nps", 6), row("text", None, text="等太久")],
                          policy)
    assert fields is not None
    assert fields["kind"] == "survey_followup" and fields["priority"] == "urgent"
    assert fields["detail"]["original_call_id"] == "orig-1"
    assert fields["detail"]["comment"] == "等太久" and fields["detail"]["bot"] == "gas"
    assert fields["idem_key"] == "followup:7:1:c1" and fields["line"] == "gas"
    assert "机器人 gas" in fields["subject"] and "满意度 1 分" in fields["subject"]


def finished(**kw: object) -> FinishedCall:
    base: dict[str, object] = dict(call_id=uuid.uuid4(), caller="13812345678",
                                   direction="inbound", outcome="completed", queue=None,
                                   bot="gas_bill", agent=None, ended_at=T0)
    base.update(kw)
    return FinishedCall(**base)  # type: ignore[arg-type]


def test_callback_rules() -> None:
    rules = [CallbackRule(campaign="q", queue="gas"), CallbackRule(campaign="b", bot="gas_bill")]
    assert matching_rule(finished(queue="gas"), rules) is rules[0]
    assert matching_rule(finished(), rules) is rules[1]
    assert matching_rule(finished(bot="oil"), rules) is None
    assert matching_rule(finished(direction="outbound"), rules) is None
    assert matching_rule(finished(caller="anonymous"), rules) is None
    path: list[dict[str, Any]] = [{"step": "bot", "detail": {"bot": "a"}}, {"step": "say"},
            {"step": "bot", "detail": {"bot": "b"}}]
    assert bot_of(path) == "b" and bot_of([]) is None


def test_callback_sampling_is_deterministic() -> None:
    half = CallbackRule(campaign="x", sample_rate=0.5)
    ids = [uuid.UUID(int=i * 7919 + 1) for i in range(2000)]
    picked = [sampled(i, half) for i in ids]
    assert 0.45 < sum(picked) / len(ids) < 0.55
    assert picked == [sampled(i, half) for i in ids]
    assert all(sampled(i, CallbackRule(campaign="x")) for i in ids[:50])
    assert not any(sampled(i, CallbackRule(campaign="x", sample_rate=0.0)) for i in ids[:50])


def test_report_cli_refuses_unmasked_without_permission() -> None:
    from ivr.tools.cli import main

    out = CliRunner().invoke(main, ["campaigns", "report", "1", "--csv", "-", "--unmasked",
                                    "--as", "agent1"])
    assert out.exit_code != 0 and "may not export full phone numbers" in out.output
