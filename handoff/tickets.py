"""Smart ticket filling (智能填单): the ticket form per business line and its LLM completion.

``TicketForm`` is the schema of what an agent submits (pydantic, one form for the three lines,
the allowed ``type`` values depending on the line). ``draft_from_pop(pop)`` is the
deterministic draft built from the bot's slots (``pop.ticket``, see ``handoff.rules``).

``TicketFiller`` asks the OpenAI-compatible chat endpoint of ``settings.llm`` (JSON mode) to
complete the draft from the masked transcript. Its answer is never trusted: only the fields the
model may write (``LLM_FIELDS``: type, problem, requested action, priority) are taken, each one
validated against the schema on its own; an invalid field is dropped (and counted), the draft's
value stays. Timeouts, errors and non-JSON answers leave the draft as it is (status
``timeout``, ``error``, ``invalid``).

What identifies and verifies the caller (``PROTECTED_FIELDS``: the business line, the account
tail, the contact phone; and the pop's ``verified``/``account_kind``, which are not form fields at
all) comes only from the deterministic draft, i.e. from the bot's verification steps and the
caller id. The model never sees them, any key of its answer outside ``LLM_FIELDS`` is ignored
(reported as a dropped field: its name when it is a form field, else ``other``, so a model
cannot choose label values or desktop text), and ``merge_llm_fields`` puts the draft's protected
values back whatever happened. What the caller said (``身份已验证``) is transcript text the model
may summarise in ``problem``; it never sets a field.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from handoff.pop import ScreenPop
from handoff.summary import LlmChat, prompt_for
from ivr.core.lines import LINE_LABELS, Line, as_line
from ivr.core.privacy import mask_digits_in_text

TicketLine = Line
TicketPriority = Literal["normal", "urgent", "emergency"]
PRIORITY_LABELS = {"normal": "普通", "urgent": "紧急", "emergency": "特急"}
# ticket types per business line (value -> label); a bot's own id is accepted as well (the
# draft's type when the caller came from a self-service bot)
TICKET_TYPES: dict[str, dict[str, str]] = {
    "oil": {"oil_inquiry": "加油卡业务咨询", "card_loss": "挂失补卡", "balance": "余额/积分",
            "recharge": "充值问题", "invoice": "发票问题", "refuel_dispute": "加油争议",
            "complaint": "投诉", "other": "其他"},
    "gas": {"gas_inquiry": "天然气业务咨询", "gas_leak": "燃气泄漏抢修", "bill": "账单/缴费",
            "meter": "燃气表问题", "repair": "报修", "open_close": "开户/过户/销户",
            "complaint": "投诉", "other": "其他"},
    "general": {"general_inquiry": "综合咨询", "complaint": "投诉", "suggestion": "建议",
                "other": "其他"},
}
_ALL_TYPES = frozenset(t for types in TICKET_TYPES.values() for t in types)
LLM_FIELDS = ("type", "problem", "requested_action", "priority")
# from the deterministic draft only (identity and verification), never from the model
PROTECTED_FIELDS = ("line", "account_tail", "contact")
_FORM_FIELDS = frozenset((*LLM_FIELDS, *PROTECTED_FIELDS))
_PHONE = re.compile(r"^\+?\d{3,20}$")
MASKED_PHONE = re.compile(r"^\d{0,4}\*+\d{0,4}$")  # the pop's caller (138****8000)
_TAIL = re.compile(r"^\d{0,4}$")
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")
_BOT_TYPE = re.compile(r"^[a-z][a-z0-9_]{1,47}$")


class TicketForm(BaseModel):
    """One ticket as the agent submits it. ``account_tail`` is the last 4 digits at most (the
    desktop never sees more); ``contact`` is a phone number, or the caller's as the pop shows it
    masked (the ticket API puts the full number of the call record in its place)."""

    line: TicketLine
    type: str = Field(min_length=1, max_length=48)
    account_tail: str = Field(default="", max_length=4)
    problem: str = Field(min_length=1, max_length=500)
    requested_action: str = Field(default="", max_length=300)
    contact: str = Field(default="", max_length=24)
    priority: TicketPriority = "normal"

    @field_validator("problem", "requested_action")
    @classmethod
    def _strip(cls, v: str) -> str:
        return v.strip()

    @field_validator("account_tail")
    @classmethod
    def _tail(cls, v: str) -> str:
        v = v.strip()
        if not _TAIL.match(v):
            raise ValueError("卡号/户号只填后4位数字")
        return v

    @field_validator("contact")
    @classmethod
    def _contact(cls, v: str) -> str:
        v = re.sub(r"[\s-]", "", v)
        if v and not _PHONE.match(v) and not MASKED_PHONE.match(v):
            raise ValueError("联系电话格式不正确")
        return v

    @model_validator(mode="after")
    def _type_of_line(self) -> TicketForm:
        if self.type not in TICKET_TYPES[self.line] and (
                not _BOT_TYPE.match(self.type) or self.type in _ALL_TYPES):
            raise ValueError(f"工单类型 {self.type!r} 不属于{LINE_LABELS[self.line]}业务")
        if not self.problem:
            raise ValueError("问题描述不能为空")
        return self

    def labels(self) -> dict[str, str]:
        return {"type_label": TICKET_TYPES[self.line].get(self.type, self.type),
                "priority_label": PRIORITY_LABELS[self.priority],
                "line_label": LINE_LABELS[self.line]}


def ticket_line(line: str) -> TicketLine:
    """The ticket line of a pop's line (``priority`` calls are general tickets)."""
    return as_line(line)


def draft_from_pop(pop: ScreenPop) -> TicketForm:
    """The deterministic draft (never fails: odd values fall back to safe ones)."""
    t = pop.ticket or {}
    line = ticket_line(str(t.get("line") or pop.line))
    raw: dict[str, str] = {
        "line": line,
        "type": str(t.get("type") or next(iter(TICKET_TYPES[line]))),
        "account_tail": str(t.get("account_tail") or "")[-4:],
        "problem": str(t.get("problem") or pop.reason_label or "来电人要求人工服务")[:500],
        "requested_action": str(t.get("requested_action") or "")[:300],
        "contact": str(t.get("contact") or pop.caller or ""),
        "priority": str(t["priority"]) if t.get("priority") in PRIORITY_LABELS else "normal",
    }
    try:
        return TicketForm.model_validate(raw)
    except ValidationError:
        raw["type"] = next(iter(TICKET_TYPES[line]))
        raw["contact"] = raw["contact"] if _PHONE.match(raw["contact"]) else ""
        raw["account_tail"] = raw["account_tail"] if _TAIL.match(raw["account_tail"]) else ""
        return TicketForm.model_validate(raw)


def ticket_view(form: TicketForm, **extra: Any) -> dict[str, Any]:
    """What the desktop shows of a ticket form (the form plus its labels)."""
    return {**form.model_dump(), **form.labels(), **extra}


@dataclass
class FillResult:
    status: str  # ok | timeout | error | invalid | disabled
    form: TicketForm
    filled: list[str] = field(default_factory=list)  # fields the model changed
    dropped: list[str] = field(default_factory=list)  # fields the model got wrong
    elapsed_s: float = 0.0
    detail: str = ""


def merge_llm_fields(draft: TicketForm, content: str | None) -> tuple[
        TicketForm, list[str], list[str]] | None:
    """The draft completed by the model's JSON answer: (form, filled, dropped), or None when
    the answer is not a JSON object. Each allowed field is validated on its own."""
    if not content:
        return None
    try:
        data = json.loads(_FENCE.sub("", content.strip()))
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    form, filled, dropped = draft, [], []
    for key in LLM_FIELDS:
        if key not in data:
            continue
        value = data[key]
        if not isinstance(value, str | int | float | bool | None):  # lists, objects: not ours
            dropped.append(key)
            continue
        if isinstance(value, str):
            value = mask_digits_in_text(value.strip())
        if value == getattr(form, key) or value in ("", None):
            continue
        if key == "type" and value not in TICKET_TYPES[form.line]:  # the model: listed only
            dropped.append(key)
            continue
        try:
            form = TicketForm.model_validate({**form.model_dump(), key: value})
        except ValidationError:
            dropped.append(key)
            continue
        filled.append(key)
    # keys the model may not write: ignored, counted by name if a form field, else "other"
    dropped += [k if k in _FORM_FIELDS else "other" for k in data if k not in LLM_FIELDS]
    # identity and verification: the draft's, whatever the answer held
    form = form.model_copy(update={k: getattr(draft, k) for k in PROTECTED_FIELDS})
    return form, filled, dropped


def system_prompt(line: TicketLine) -> str:
    types = "、".join(f"{k}（{v}）" for k, v in TICKET_TYPES[line].items())
    return (
        "你是956100能源客服热线的坐席助手，负责根据通话记录填写工单。只输出一个JSON对象，键为："
        f'"type"（工单类型，只能取：{types}），'
        '"problem"（问题描述，一到两句中文，不超过200字），'
        '"requested_action"（来电人要求的处理，一句中文），'
        '"priority"（normal、urgent 或 emergency；燃气泄漏等危及安全的为 emergency）。'
        "不要编造记录中没有的信息，不要写出任何卡号、身份证号、电话号码或密码。"
    )


class TicketFiller(LlmChat):
    """Completes ticket drafts through ``settings.llm``'s chat endpoint (no retries)."""

    async def fill(self, pop: ScreenPop) -> FillResult:
        draft = draft_from_pop(pop)
        if not self.enabled:
            return FillResult("disabled", draft)
        import openai

        t = time.monotonic()
        try:
            reply = await asyncio.wait_for(
                self._get_client().chat.completions.create(
                    model=self.llm.model,
                    messages=[
                        {"role": "system", "content": system_prompt(draft.line)},
                        {"role": "user", "content": prompt_for(pop) + "\n工单草稿：" +
                         json.dumps({k: getattr(draft, k) for k in LLM_FIELDS},
                                    ensure_ascii=False)},
                    ],
                    temperature=0.1, max_tokens=400,
                    response_format={"type": "json_object"}),
                self.llm.timeout_s)
        except (TimeoutError, openai.APITimeoutError):
            return FillResult("timeout", draft, elapsed_s=time.monotonic() - t)
        except openai.OpenAIError as exc:
            return FillResult("error", draft, elapsed_s=time.monotonic() - t,
                              detail=f"{type(exc).__name__}: {str(exc)[:200]}")
        elapsed = time.monotonic() - t
        try:
            content = reply.choices[0].message.content
        except (AttributeError, IndexError, TypeError):
            return FillResult("invalid", draft, elapsed_s=elapsed, detail="no choices")
        merged = merge_llm_fields(draft, content)
        if merged is None:
            return FillResult("invalid", draft, elapsed_s=elapsed, detail="not a JSON object")
        form, filled, dropped = merged
        return FillResult("ok", form, filled, dropped, elapsed)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
