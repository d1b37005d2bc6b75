"""Follow-up work orders for low survey scores.

A survey answer with CSAT <= ``csat_max`` (default 2) or NPS <= ``nps_max`` (default 6) opens a
work order for a supervisor through the work-order adapter (``dialog.backends.base.WorkOrders``:
the demo back end's ``work_orders`` table, a real ticketing system in production). The order is
linked to the original inbound call id, the survey call id, the bot and the agent, and carries
the transcript of the customer's spoken comment.

Thresholds: ``settings.ops.followup_csat_max`` / ``followup_nps_max``, overridden per campaign by
the campaign's settings keys ``followup_csat_max`` / ``followup_nps_max`` when present
(``FollowupPolicy.for_campaign``).

The survey runner (``campaigns/ariorigin.py``) calls ``SurveyFollowups`` when each survey call
ends (completed, hung up mid-survey, refused): ``follow_up_contact(..., final=True)`` for that
call's answers. With ``final=False`` (for a caller that wants an order while the call goes on)
the order is opened only once the comment is in, so the supervisor gets it. The idempotency key
is per campaign, contact and survey call, so calling it again opens at most one order per survey
call; a work-order failure is logged and returned as None, never raised into the call.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from campaigns.report import load_answers
from campaigns.stats import AnswerRow
from campaigns.tables import Campaign
from dialog.backends.base import BackendError, WorkOrder, WorkOrders
from ivr.core.config import OpsSettings
from ivr.core.lines import LINES
from ivr.core.storage.db import SessionFactory
from ivr.core.storage.errors import StorageError

log = logging.getLogger("campaigns.followup")

COMMENT_KINDS = ("text", "comment", "suggestion", "free")
KIND = "survey_followup"


@dataclass(frozen=True, slots=True)
class FollowupPolicy:
    csat_max: int = 2
    nps_max: int = 6

    @classmethod
    def for_campaign(cls, ops: OpsSettings,
                     campaign_settings: Mapping[str, Any] | None = None) -> FollowupPolicy:
        c = campaign_settings or {}
        return cls(csat_max=int(c.get("followup_csat_max", ops.followup_csat_max)),
                   nps_max=int(c.get("followup_nps_max", ops.followup_nps_max)))

    def is_low(self, answer: AnswerRow) -> bool:
        if answer.score is None:
            return False
        if answer.kind == "csat":
            return answer.score <= self.csat_max
        if answer.kind == "nps":
            return answer.score <= self.nps_max
        return False


def comment_of(answers: Sequence[AnswerRow]) -> str:
    return "；".join(a.text.strip() for a in answers
                    if a.kind in COMMENT_KINDS and a.text and a.text.strip())


def order_fields(answers: Sequence[AnswerRow], policy: FollowupPolicy) -> dict[str, Any] | None:
    """The work order for one contact's answers of one survey call, or None when no score is
    low. Pure, for tests and for the runner's own use."""
    low = [a for a in answers if policy.is_low(a)]
    if not low:
        return None
    first = low[0]
    scores = "，".join(f"{'满意度' if a.kind == 'csat' else 'NPS'} {a.score} 分" for a in low)
    served = (f"机器人 {first.bot}" if first.bot
              else f"坐席 {first.agent}" if first.agent else "服务")
    comment = comment_of(answers)
    line = first.line if first.line in LINES else "general"
    detail: dict[str, Any] = {
        "assignee_role": "supervisor",
        "campaign_id": first.campaign_id,
        "contact_id": first.contact_id,
        "survey_call_id": first.call_id,
        "original_call_id": first.orig_call_id,
        "bot": first.bot,
        "agent": first.agent,
        "scores": [{"question": a.question, "kind": a.kind, "score": a.score} for a in low],
        "comment": comment,
    }
    return {
        "kind": KIND,
        "line": line,
        "subject": f"回访低分跟进：{served}，{scores}",
        "detail": detail,
        "phone": first.phone or None,
        "priority": "urgent" if any(a.kind == "csat" and a.score == 1 for a in low) else "normal",
        "idem_key": f"followup:{first.campaign_id}:{first.contact_id}:{first.call_id or '-'}",
    }


async def open_followup(work_orders: WorkOrders, answers: Sequence[AnswerRow],
                        policy: FollowupPolicy, *, final: bool) -> WorkOrder | None:
    """Open (or find again: idempotent) the follow-up order for these answers of one contact's
    survey call. None when nothing is low, when the comment may still come (``final=False``
    and no comment yet) or when the work-order system failed (logged)."""
    fields = order_fields(answers, policy)
    if fields is None or (not final and not fields["detail"]["comment"]):
        return None
    try:
        order = await work_orders.create(**fields)
    except (BackendError, ValueError) as exc:
        log.error("follow-up work order for campaign %s contact %s failed: %s",
                  fields["detail"]["campaign_id"], fields["detail"]["contact_id"], exc)
        return None
    log.info("follow-up work order %s for campaign %s contact %s", order.number,
             fields["detail"]["campaign_id"], fields["detail"]["contact_id"])
    return order


AnswerLoader = Callable[..., Awaitable[list[AnswerRow]]]


async def follow_up_contact(sessions: SessionFactory, work_orders: WorkOrders, campaign_id: int,
                            contact_id: int, policy: FollowupPolicy, *, final: bool,
                            call_id: str | None = None,
                            loader: AnswerLoader | None = None) -> WorkOrder | None:
    """Load the contact's answers (of survey call ``call_id`` when given, else of its latest
    survey call) and open the follow-up order if a score is low. See the module docstring."""
    loader = loader or load_answers
    try:
        answers = await loader(sessions, campaign_id, contact_id=contact_id)
    except StorageError as exc:
        log.error("follow-up for campaign %s contact %s: answers unreadable: %s",
                  campaign_id, contact_id, exc)
        return None
    if call_id is None and answers:
        latest = max(answers, key=lambda a: a.answered_at)
        call_id = latest.call_id
    answers = [a for a in answers if a.call_id == call_id]
    return await open_followup(work_orders, answers, policy, final=final)


class SurveyFollowups:
    """The survey runner's hook, called once per answered survey call when it ends."""

    def __init__(self, sessions: SessionFactory, work_orders: WorkOrders, ops: OpsSettings) -> None:
        self.sessions = sessions
        self.work_orders = work_orders
        self.ops = ops

    async def __call__(self, campaign: Campaign, contact_id: int,
                       call_id: uuid.UUID) -> WorkOrder | None:
        policy = FollowupPolicy.for_campaign(self.ops, campaign.settings)
        return await follow_up_contact(self.sessions, self.work_orders, campaign.id, contact_id,
                                       policy, final=True, call_id=str(call_id))
