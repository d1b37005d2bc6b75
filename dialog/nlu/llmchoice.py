"""The LLM's word when the matcher is unsure: one of the matcher's own candidates, or nothing.

Asked only when routing a request ends unsure (an either/or question, or no match with
candidates that scored), among the matcher's top candidates (``MAX_OPTIONS``), with a hard
latency budget (``nlu.llm_budget_ms``, 600 ms by default): past it, or on any error or an
answer that is not one of the numbers offered, the answer is None and the dialog asks its own
question (the either/or, or the request again), as it did without an LLM. The LLM never routes
a caller by itself: the bot it picks is put to the caller as one yes/no question
(您是要办理…吗？), so a wrong pick costs one "no", never a wrong bot. It never sees more than the
request's words and the bots' names and standard questions (card or phone numbers in the words
are masked first).

Any OpenAI-compatible endpoint (``llm.base_url``); the engine sees only ``IntentAdviser``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ivr.core.config import LLMSettings, NLUSettings
from ivr.core.privacy import mask_digits_in_text

log = logging.getLogger("dialog.nlu.llmchoice")

MAX_OPTIONS = 4
MAX_TOKENS = 4  # a number, nothing else
SYSTEM = ("你是中国石油956100客服热线的来电分类助手。"
          "根据来电者的话，从给出的业务中选出来电者要办理的那一项。"
          "只回答业务前面的数字；都不符合就回答0。")


@dataclass(frozen=True, slots=True)
class Option:
    bot: str  # the bot's id
    name: str  # its name (燃气灶打不着火)
    question: str  # its standard question


class IntentAdviser(Protocol):
    async def choose(self, text: str, options: Sequence[Option]) -> str | None:
        """The bot id of one of ``options`` that ``text`` asks for, or None (unsure, too
        late, or failed: never raises)."""
        ...


def prompt_for(text: str, options: Sequence[Option]) -> str:
    lines = [f"{i}. {o.name}（{o.question}）" for i, o in enumerate(options, 1)]
    said = mask_digits_in_text(text)
    return f"来电者说：「{said}」\n业务：\n" + "\n".join(lines) + "\n回答数字："


_NUMBER = re.compile(r"\d+")


def parse_choice(content: str | None, options: Sequence[Option]) -> str | None:
    """The bot of the first number in the answer, when it is one of the options."""
    m = _NUMBER.search(content or "")
    if m is None:
        return None
    n = int(m.group())
    return options[n - 1].bot if 1 <= n <= len(options) else None


def intent_adviser(nlu: NLUSettings, llm: LLMSettings) -> LlmIntentChooser | None:
    """The configured adviser: None unless ``nlu.llm_fallback`` and ``llm.base_url``."""
    if not nlu.llm_fallback or not llm.base_url:
        return None
    return LlmIntentChooser(llm, budget_s=nlu.llm_budget_ms / 1000)


class LlmIntentChooser:
    """``IntentAdviser`` over ``settings.llm``'s chat endpoint; counts what became of each
    question (``stats``: ok, none, late, error) and how long the answered ones took."""

    def __init__(self, llm: LLMSettings, *, budget_s: float = 0.6) -> None:
        self.llm = llm
        self.budget_s = budget_s
        self.stats: Counter[str] = Counter()
        self.answered_s: list[float] = []
        self._client: Any = None

    def _get_client(self) -> Any:
        if self._client is None:
            from openai import AsyncOpenAI

            self._client = AsyncOpenAI(base_url=self.llm.base_url,
                                       api_key=self.llm.api_key.get_secret_value() or "unused",
                                       timeout=max(self.budget_s, 1.0), max_retries=0)
        return self._client

    async def choose(self, text: str, options: Sequence[Option]) -> str | None:
        options = list(options)[:MAX_OPTIONS]
        if not options or not self.llm.base_url:
            return None
        t = time.monotonic()
        try:
            reply = await asyncio.wait_for(self._get_client().chat.completions.create(
                model=self.llm.model, temperature=0.0, max_tokens=MAX_TOKENS,
                messages=[{"role": "system", "content": SYSTEM},
                          {"role": "user", "content": prompt_for(text, options)}]),
                self.budget_s)
            content = reply.choices[0].message.content
        except TimeoutError:
            self.stats["late"] += 1
            return None
        except Exception as exc:  # the LLM is an extra: never a reason to fail a turn
            self.stats["error"] += 1
            log.info("LLM intent choice failed: %s: %s", type(exc).__name__, str(exc)[:200])
            return None
        self.answered_s.append(time.monotonic() - t)
        bot = parse_choice(content, options)
        self.stats["ok" if bot else "none"] += 1
        return bot

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
