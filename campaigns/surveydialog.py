"""A survey run as a dialog (ivr.calls.session.Dialog): Say/Collect/Hangup actions out, DTMF and
utterances in, no protocol code. Every answer goes to the :class:`AnswerSink` as it is given, so
a hang-up mid-survey keeps what was answered.

Global answers at any point: 不要再打/别再打 -> do-not-call at once and a polite end;
现在不方便/没空 -> a call-back later; 重复/再说一遍 (or ``*``) -> the question again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, Protocol

from campaigns.survey import Question, SurveySpec
from dialog.actions import Action, Collect, DialogEvent, Dtmf, Hangup, NoInput, Say, Step, Utterance
from dialog.nlu.normalize import (
    chinese_number_to_int,
    extract_yes_no,
    to_halfwidth,
    to_simplified,
)
from dialog.nlu.pinyin import fuzzy_pinyin

DNC_WORDS = ("不要再打", "别再打", "不要打了", "别打了", "不要给我打", "别给我打", "拉黑")
# the same as said: 别再给我打电话了, 不用再打了, 以后不要再来电; 在 for 再 is a common mishearing
DNC_RE = re.compile(r"(不要|别|不用|甭)(再|在)?(给|跟)?(我们?)?(打(?!分)|来电|联系|骚扰)|拉黑")
CALLBACK_WORDS = ("不方便", "没空", "在忙", "正忙", "开车", "晚点打", "晚点再打", "改天", "开会")
REPEAT_WORDS = ("重复", "再说一遍", "再说一次", "没听清", "什么意思", "再讲一遍")
# the same as said, with 在 for 再 (你在说一遍: heard so by Whisper base, and then read as a 1)
REPEAT_RE = re.compile(r"重复|(再|在)(说|讲)一?(遍|次)|没听清|什么意思")
# the literal global answers: their first characters said before a pause (_starts_global)
GLOBAL_WORDS = (*DNC_WORDS, *CALLBACK_WORDS, *REPEAT_WORDS)
CONSENT_HINTS = "可以 好的 不方便 不要再打了"


# the same by sound, for what the recogniser mishears: 不要再探了 / 不要在谈了 / 别再他了 are
# 不要再打了 (d and t are the recogniser's most frequent confusion in this phrase); fuzzy pinyin
# (dialog/nlu/pinyin.py) with the verb's syllable among those heard for 打
DNC_SOUND_RE = re.compile(r"\b(bu yao|bie|bu yon|ben) (zai )?(gei (wo )?)?(da|ta|tan|dan) le\b")


def wants_no_calls(s: str) -> bool:
    """The customer asks not to be called again (normalised text), as written or as it sounds
    (a do-not-call wish must be honoured when misheard)."""
    return DNC_RE.search(s) is not None or \
        DNC_SOUND_RE.search(" ".join(fuzzy_pinyin(s))) is not None


def global_answer(s: str) -> Literal["dnc", "callback", "repeat"] | None:
    """An answer that holds at any step (normalised text): do not call, call back later, or
    say that again; None for anything else."""
    if wants_no_calls(s):
        return "dnc"
    if any(w in s for w in CALLBACK_WORDS):
        return "callback"
    return "repeat" if REPEAT_RE.search(s) else None


def _starts_global(s: str) -> bool:
    """The text ends with the first two or more characters of a global answer (``不要`` of
    ``不要再打``): said before a pause, it may go on into that answer. The recogniser's closing
    stop (``不要。``) and its 在 for 再 (``不要在``) are read as said."""
    s = _TRAILING.sub("", s).replace("在", "再")
    return any(s.endswith(w[:k]) for w in GLOBAL_WORDS for k in range(2, len(w)))


# longest first: 非常不满意 before 不满意 before 满意
CSAT_WORDS = (("非常不满意", 1), ("很不满意", 1), ("非常满意", 5), ("很满意", 5), ("不太满意", 2),
              ("不满意", 2), ("一般", 3), ("还行", 3), ("还可以", 4), ("满意", 4))
_NUMERAL = re.compile(r"[0-9零〇一二两三四五六七八九十]+")
NOT_A_SCORE = "遍次下些会"  # after a numeral: 说一遍, 等一下, 一会 are no scores
RESOLVED_WORDS = (("没解决", False), ("没有解决", False), ("未解决", False), ("解决了", True),
                  ("已经解决", True))


_TRAILING = re.compile(r"[\W_]+$")  # punctuation and spaces after the last word
# prompt tidying after the variables are filled in (SurveyDialog._fmt)
_CJK_SPACE = re.compile(r"(?<=[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef])\s+(?=[\u4e00-\u9fff])")
_ORPHAN_COMMA = re.compile(r"([。！？，、；：])[，、；]+")


class AnswerSink(Protocol):
    async def answer(self, question: str, kind: str, score: int | None, text: str | None,
                     via: str) -> None: ...
    async def consent(self, given: bool, words: str) -> None: ...
    async def do_not_call(self, words: str = "") -> None: ...


def _heard(event: DialogEvent) -> str:
    """What the customer said or pressed, for the consent ledger."""
    if isinstance(event, Utterance):
        return event.text
    if isinstance(event, Dtmf):
        return f"按键 {event.digits}"
    return ""


def _norm(text: str) -> str:
    return to_halfwidth(to_simplified(text)).replace(" ", "")


def spoken_score(text: str, lo: int, hi: int) -> int | None:
    """``四分`` -> 4, ``给十分吧`` -> 10, ``8`` -> 8; None when no number in range, or when
    two different ones are (``三分,五分``: misheard or undecided; asking again beats guessing)."""
    s = _norm(text)
    found: set[int] = set()
    for m in _NUMERAL.finditer(s):
        if m.end() < len(s) and s[m.end()] in NOT_A_SCORE:
            continue
        try:
            n = chinese_number_to_int(m.group())
        except ValueError:
            continue
        if lo <= n <= hi:
            found.add(n)
    return found.pop() if len(found) == 1 else None


def parse_answer(q: Question, event: DialogEvent) -> tuple[int | None, str | None] | None:
    """(score, text) for an answer to ``q``, or None when it is no answer to it."""
    if isinstance(event, Dtmf):
        digits = event.digits.rstrip("#")
        if not digits.isdigit():
            return None
        n = int(digits)
        if q.kind == "csat" and 1 <= n <= 5:
            return n, None
        if q.kind == "nps" and 0 <= n <= 10:
            return n, None
        if q.kind == "yes_no" and n in (1, 2):
            return (1 if n == 1 else 0), None
        return None
    if not isinstance(event, Utterance):
        return None
    s = _norm(event.text)
    if q.kind == "text":
        return (None, event.text.strip()) if s else None
    if q.kind == "yes_no":
        for word, value in RESOLVED_WORDS:
            if word in s:
                return int(value), event.text
        yes = extract_yes_no(s)
        return None if yes is None else (int(yes), event.text)
    if q.kind == "csat":
        for word, stars in CSAT_WORDS:
            if word in s:
                return stars, event.text
        score = spoken_score(s, 1, 5)
    else:
        score = spoken_score(s, 0, 10)
    return None if score is None else (score, event.text)


@dataclass
class SurveyResult:
    """How the call ended for the contact: completed|refused|dnc|pending (call-back)|partial."""

    contact_status: str = "partial"
    retry_after: timedelta | None = None
    answered: int = 0


class SurveyDialog:
    def __init__(self, spec: SurveySpec, sink: AnswerSink,
                 variables: dict[str, Any] | None = None) -> None:
        self.spec = spec
        self.sink = sink
        self.vars = {"name": "", "bot": "", "agent": "", **(variables or {})}
        self.index = -1  # -1: consent
        self.consented: bool | None = None  # the customer's own yes or no to the consent
        self.retries = 0
        self.result = SurveyResult()

    def _fmt(self, text: str) -> str:
        try:
            text = text.format_map(self.vars)
        except (KeyError, ValueError, IndexError):
            return text
        # an empty variable leaves its comma behind (热线。，您最近…); YAML folding, a space
        text = _ORPHAN_COMMA.sub(r"\1", _CJK_SPACE.sub("", text))
        return text.lstrip("，、 ")

    def hints(self) -> str:
        """The recogniser hints of the current step (``ivr eval survey`` measures them)."""
        if self.index < 0:
            return CONSENT_HINTS
        return self.spec.questions[self.index].hints

    def _ask(self) -> list[Action]:
        if self.index < 0:
            return [Say(self._fmt(self.spec.consent), "survey_consent"),
                    Collect(max_digits=1, hints=self.hints())]
        q = self.spec.questions[self.index]
        return [Say(self._fmt(q.prompt), f"survey_{q.id}"),
                Collect(max_digits=2 if q.kind == "nps" else 1, timeout_s=q.timeout_s,
                        hints=self.hints())]

    def _end(self, text: str, outcome: str) -> list[Action]:
        return [Say(self._fmt(text), f"survey_{outcome}", barge_in=False), Hangup(outcome)]

    def start(self) -> list[Action]:
        return [Say(self._fmt(self.spec.opening), "survey_opening"), *self._ask()]

    async def on_event(self, event: DialogEvent) -> list[Action]:
        texts = self.spec.texts
        said = global_answer(_norm(event.text)) if isinstance(event, Utterance) else None
        if said == "dnc":
            await self.sink.do_not_call(_heard(event))
            self.result.contact_status = "dnc"
            return [Step("survey_dnc"), *self._end(texts.dnc, "dnc")]
        if said == "callback":
            self.result.contact_status = "pending"
            self.result.retry_after = timedelta(seconds=self.spec.callback_delay_s)
            return [Step("survey_callback"), *self._end(texts.callback, "callback")]
        if said == "repeat":
            return [Step("survey_repeat"), *self._ask()]
        if isinstance(event, Dtmf) and event.digits.startswith("*"):
            return [Step("survey_repeat"), *self._ask()]
        if self.index < 0:
            actions = self._consent(event)
            if self.consented is not None:  # said yes or no (not: gave up asking)
                await self.sink.consent(self.consented, _heard(event))
            return actions
        q = self.spec.questions[self.index]
        parsed = parse_answer(q, event)
        if parsed is None:
            if q.kind == "text" and isinstance(event, NoInput):
                return self._next()  # no suggestion: nothing to record
            return self._reprompt(event)
        score, text = parsed
        await self.sink.answer(q.id, q.kind, score, text,
                               "dtmf" if isinstance(event, Dtmf) else "speech")
        self.result.answered += 1
        return [Step("survey_answer", {"question": q.id, "score": score}), *self._next()]

    async def turn_complete(self, text: str) -> bool:
        """A spoken answer that needs nothing more (the listener may end the turn at a short
        pause): a global answer, consent given, a score or a yes/no. A free
        suggestion is never judged complete: the customer may be gathering their thoughts, and
        neither is a refusal of consent, which ends the call."""
        s = _norm(text)
        if not s:
            return False
        if global_answer(s) is not None:
            return True
        if _starts_global(s):  # 不要… may be 不要再打了: wait for the rest
            return False
        if self.index < 0:  # a refusal ends the call: wait for all of it (不…方便 calls back)
            return extract_yes_no(s) is True
        if self.index >= len(self.spec.questions):
            return False
        q = self.spec.questions[self.index]
        return q.kind != "text" and parse_answer(q, Utterance(text, 1.0)) is not None

    def _consent(self, event: DialogEvent) -> list[Action]:
        yes: bool | None = None
        if isinstance(event, Dtmf):
            yes = {"1": True, "2": False}.get(event.digits[:1])
        elif isinstance(event, Utterance):
            yes = extract_yes_no(_norm(event.text))
            if yes is None and any(w in event.text for w in ("可以", "行", "好")):
                yes = True
        if yes is None:
            return self._reprompt(event)
        self.consented = yes
        if not yes:
            self.result.contact_status = "refused"
            return self._end(self.spec.texts.declined, "refused")
        return self._next()

    def _next(self) -> list[Action]:
        self.index += 1
        self.retries = 0
        if self.index >= len(self.spec.questions):
            self.result.contact_status = "completed"
            return self._end(self.spec.closing, "completed")
        return self._ask()

    def _reprompt(self, event: DialogEvent) -> list[Action]:
        self.retries += 1
        if self.retries > self.spec.max_retries:
            if self.index < 0:
                self.result.contact_status = "refused"
                return self._end(self.spec.texts.give_up, "no_input")
            return [Step("survey_skip"), *self._next()]  # move on; the rest may be answered
        texts = self.spec.texts
        sorry = texts.no_input if isinstance(event, NoInput) else texts.no_match
        return [Say(sorry, "survey_reprompt"), *self._ask()]
