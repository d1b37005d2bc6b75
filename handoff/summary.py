"""The LLM summary of a handoff: an OpenAI-compatible chat endpoint writes the four sections.

Runs after the pop has reached the agent (the service owns the task); never on the call's
path. The model sees only what the pop already shows in masked form (no caller number, no
card numbers) and must answer with a JSON object of four short Chinese strings. Anything else
(timeout, HTTP or network error, malformed or oversized output) leaves the deterministic
summary in place and is reported as a status: ``ok``, ``timeout``, ``error``, ``invalid`` or
``disabled`` (no LLM configured).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from handoff.pop import ScreenPop
from handoff.rules import SECTIONS, summary_text
from ivr.core.config import LLMSettings
from ivr.core.privacy import mask_digits_in_text

log = logging.getLogger("handoff.summary")

MAX_CHARS = 360  # the prompt asks for about 300 characters; beyond this the answer is refused
TRANSCRIPT_LINES = 40  # the newest lines of the call the model sees
SYSTEM_PROMPT = (
    "你是956100能源客服热线的坐席助手。根据自助语音导航(IVR)的通话记录，为接听电话的人工坐席"
    "写一段中文摘要。只输出一个JSON对象，不要输出其他内容，键固定为："
    '"situation"（情况：来电人遇到什么问题、为什么转人工），'
    '"done"（已办理：IVR中已经完成的步骤，如身份验证、已提供的信息），'
    '"pending"（待处理：坐席接下来需要做的事），'
    '"mood"（情绪：来电人的情绪和需要注意的地方）。'
    "每项一到两句话，四项合计不超过300字。不要编造记录中没有的信息，不要写出任何卡号、"
    "身份证号或密码。"
)
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")
_CHINESE_KEYS = {label: key for key, label in SECTIONS}


@dataclass
class SummaryResult:
    status: str  # ok | timeout | error | invalid | disabled
    summary: dict[str, str] | None = None
    elapsed_s: float = 0.0
    detail: str = ""


def llm_configured(llm: LLMSettings) -> bool:
    return bool(llm.base_url or llm.api_key.get_secret_value())


def parse_summary(content: str | None) -> dict[str, str] | None:
    """The model's answer as the four sections (plus ``text``), or None when it is not a JSON
    object with four non-empty strings of about 300 characters in all. Chinese keys
    (情况/已办理/待处理/情绪) are accepted too; digits runs are masked in any case."""
    if not content:
        return None
    text = _FENCE.sub("", content.strip())
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    out: dict[str, str] = {}
    for raw_key, value in data.items():
        key = _CHINESE_KEYS.get(str(raw_key), str(raw_key))
        if key in dict(SECTIONS) and isinstance(value, str) and value.strip():
            out[key] = mask_digits_in_text(value.strip())
    if len(out) != len(SECTIONS) or sum(len(v) for v in out.values()) > MAX_CHARS:
        return None
    out["text"] = summary_text(out)
    return out


def prompt_for(pop: ScreenPop) -> str:
    """What the model reads: the masked facts of the pop and the newest transcript lines."""
    facts: dict[str, Any] = {
        "业务线": pop.line_label,
        "转人工原因": pop.reason_label,
        "业务": pop.bot["name"] if pop.bot else None,
        "身份": {"类型": pop.identity.get("kind_label"), "已验证": pop.identity.get("verified")},
        "已填信息": pop.slots,
        "系统错误": pop.error,
        "识别意图": [{"文本": i["text"], "意图": i["intent"]} for i in pop.intents[-5:]],
        "规则摘要": {label: pop.summary.get(key, "") for key, label in SECTIONS},
    }
    lines = []
    for t in pop.transcript[-TRANSCRIPT_LINES:]:
        who = "IVR" if t["who"] == "ivr" else "来电人"
        lines.append(f"[{t['t']:.1f}s] {who}：{t['text']}")
    return mask_digits_in_text(
        "通话信息：" + json.dumps(facts, ensure_ascii=False) + "\n通话记录：\n" + "\n".join(lines)
    )


class LlmChat:
    """One lazily made client for ``settings.llm``'s chat endpoint, no retries: a late answer
    is worth little to an agent who is already talking. Base of the summary and ticket
    fillers."""

    def __init__(self, llm: LLMSettings) -> None:
        self.llm = llm
        self.enabled = llm_configured(llm)
        self._client: Any = None

    def _get_client(self) -> Any:
        if self._client is None:
            from openai import AsyncOpenAI

            self._client = AsyncOpenAI(
                base_url=self.llm.base_url,
                api_key=self.llm.api_key.get_secret_value() or "unused",
                timeout=self.llm.timeout_s,
                max_retries=0,
            )
        return self._client


class LlmSummarizer(LlmChat):
    """Asks ``settings.llm``'s chat endpoint for the summary."""

    async def summarize(self, pop: ScreenPop) -> SummaryResult:
        if not self.enabled:
            return SummaryResult("disabled")
        import openai

        t = time.monotonic()
        try:
            reply = await asyncio.wait_for(
                self._get_client().chat.completions.create(
                    model=self.llm.model,
                    messages=[
                        {"role": "system", "content": SYSTEM_PROMPT},
                        {"role": "user", "content": prompt_for(pop)},
                    ],
                    temperature=0.2,
                    max_tokens=600,
                    response_format={"type": "json_object"},
                ),
                self.llm.timeout_s,
            )
        except (TimeoutError, openai.APITimeoutError):
            return SummaryResult("timeout", elapsed_s=time.monotonic() - t)
        except openai.OpenAIError as exc:
            return SummaryResult("error", elapsed_s=time.monotonic() - t,
                                 detail=f"{type(exc).__name__}: {str(exc)[:200]}")
        elapsed = time.monotonic() - t
        try:
            content = reply.choices[0].message.content
        except (AttributeError, IndexError, TypeError):
            return SummaryResult("invalid", elapsed_s=elapsed, detail="no choices")
        summary = parse_summary(content)
        if summary is None:
            return SummaryResult("invalid", elapsed_s=elapsed,
                                 detail=f"{len(content or '')} characters, not the 4 sections")
        return SummaryResult("ok", summary, elapsed)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
