"""``ivr eval survey``: are spoken survey answers understood, and do the per-question hints help?

Each row of the answers file (``campaigns/evalsets/answers.tsv``: ``question``, ``expected``,
``text``) is a customer's answer to one step of a survey: ``consent`` or a question id of the
survey (``csat``, ``nps``, ``resolved``). The answer is judged by the real ``SurveyDialog`` put at
that step, so the verdict is what a live call would do:

* ``yes`` / ``no`` (consent given or refused; a yes/no question answered), a score (``1``..``5``
  or ``0``..``10``), ``dnc`` (do not call again), ``callback`` (not now), ``repeat``;
* ``none``: no answer to the question: the customer is asked again.

Text rows measure the dialog's parsing; audio runs render each text with the evaluation
renderer (``ivr/tools/evalsynth.py``: Kokoro voices, speeds, telephone band, noise, μ-law), then
take the live path (endpointer, recogniser) once with the hints the question's ``Collect`` carries
and once without, so the effect of the hints is measured on the same audio. A wrong verdict
(another answer than the one given) is the costly error; ``none`` costs a reprompt.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import campaigns
from campaigns.survey import SurveySpec
from campaigns.surveydialog import SurveyDialog
from dialog.actions import Step, Utterance

if TYPE_CHECKING:
    from asr.base import Recognizer
    from asr.endpoint import EndpointSettings

ANSWERS = Path(campaigns.__file__).with_name("evalsets") / "answers.tsv"


@dataclass(frozen=True, slots=True)
class AnswerRow:
    line: int
    question: str  # "consent" or a question id of the survey
    expected: str
    text: str


def read_answers(path: Path = ANSWERS) -> list[AnswerRow]:
    rows: list[AnswerRow] = []
    with path.open(encoding="utf-8") as f:
        lines = [(n, ln) for n, ln in enumerate(f, 1) if ln.strip() and not ln.startswith("#")]
    reader = csv.reader((ln for _, ln in lines), delimiter="\t")
    header = next(reader, None)
    if header != ["question", "expected", "text"]:
        raise ValueError(f"{path}: the header must be question, expected, text (got {header})")
    for (n, _), r in zip(lines[1:], reader, strict=True):
        if len(r) != 3 or not all(x.strip() for x in r):
            raise ValueError(f"{path}:{n}: three non-empty columns expected")
        rows.append(AnswerRow(n, r[0].strip(), r[1].strip(), r[2].strip()))
    return rows


class _Sink:
    def __init__(self) -> None:
        self.scores: list[int | None] = []
        self.dnc = False

    async def answer(self, question: str, kind: str, score: int | None, text: str | None,
                     via: str) -> None:
        self.scores.append(score)

    async def consent(self, given: bool, words: str) -> None:
        pass

    async def do_not_call(self, words: str = "") -> None:
        self.dnc = True


def _dialog_at(spec: SurveySpec, question: str) -> tuple[SurveyDialog, _Sink, int]:
    sink = _Sink()
    dialog = SurveyDialog(spec, sink)
    if question == "consent":
        return dialog, sink, -1
    for i, q in enumerate(spec.questions):
        if q.id == question:
            dialog.index = i
            return dialog, sink, i
    raise ValueError(f"survey {spec.id} has no question {question!r}")


def hints_for(spec: SurveySpec, question: str) -> str | None:
    """The recogniser hints a live call passes when this step asks (its ``Collect``)."""
    dialog, _, _ = _dialog_at(spec, question)
    return dialog.hints() or None


async def judge(spec: SurveySpec, question: str, text: str) -> str:
    """What the survey makes of ``text`` said at this step (see the module's verdicts)."""
    dialog, sink, index = _dialog_at(spec, question)
    actions = await dialog.on_event(Utterance(text, 1.0))
    steps = {a.name for a in actions if isinstance(a, Step)}
    if sink.dnc:
        return "dnc"
    if dialog.result.retry_after is not None:
        return "callback"
    if "survey_repeat" in steps:
        return "repeat"
    if index < 0:
        if dialog.result.contact_status == "refused":
            return "no"
        return "yes" if dialog.index == 0 else "none"
    if not sink.scores:
        return "none"
    score = sink.scores[0]
    if spec.questions[index].kind == "yes_no":
        return "yes" if score == 1 else "no"
    return "none" if score is None else str(score)


@dataclass
class Verdict:
    row: AnswerRow
    heard: str
    got: str

    @property
    def result(self) -> str:
        return "right" if self.got == self.row.expected else (
            "none" if self.got == "none" else "wrong")


@dataclass
class AnswerReport:
    verdicts: list[Verdict] = field(default_factory=list)

    def counts(self) -> dict[str, Counter[str]]:
        """question -> right / wrong / none, plus an ``all`` line."""
        out: dict[str, Counter[str]] = {}
        for v in self.verdicts:
            out.setdefault(v.row.question, Counter())[v.result] += 1
            out.setdefault("all", Counter())[v.result] += 1
        return out

    def lines(self, title: str) -> list[str]:
        lines = [title]
        for question, c in sorted(self.counts().items(), key=lambda kv: kv[0] == "all"):
            n = sum(c.values())
            lines.append(f"  {question:<9} {n:>3}  right {100 * c['right'] / n:5.1f}%  "
                         f"wrong {100 * c['wrong'] / n:4.1f}%  asked again "
                         f"{100 * c['none'] / n:4.1f}%")
        wrong = [v for v in self.verdicts if v.result == "wrong"]
        for v in wrong[:12]:
            lines.append(f"    wrong: {v.row.question} said {v.row.text!r}, heard {v.heard!r} "
                         f"-> {v.got} (expected {v.row.expected})")
        return lines

    def as_json(self) -> list[dict[str, Any]]:
        return [{"line": v.row.line, "question": v.row.question, "text": v.row.text,
                 "expected": v.row.expected, "heard": v.heard, "got": v.got,
                 "result": v.result} for v in self.verdicts]


async def judge_texts(spec: SurveySpec, rows: Sequence[AnswerRow]) -> AnswerReport:
    return await judge_heard(spec, rows, [row.text for row in rows])


async def judge_heard(spec: SurveySpec, rows: Sequence[AnswerRow], heard: Sequence[str]
                      ) -> AnswerReport:
    report = AnswerReport()
    for row, text in zip(rows, heard, strict=True):
        report.verdicts.append(Verdict(row, text, await judge(spec, row.question, text)))
    return report


async def hear_all(spec: SurveySpec, rows: Sequence[AnswerRow], paths: Sequence[Path],
                   recognizer: Recognizer, endpoint: EndpointSettings, *,
                   with_hints: bool) -> list[str]:
    """What the live path hears of each rendered answer ("" when no speech is found or the
    audio cannot be recognised), with the step's hints or without any."""
    from asr.base import ASRError, AudioError
    from ivr.tools.evalintents import hear

    heard: list[str] = []
    for row, path in zip(rows, paths, strict=True):
        hints = hints_for(spec, row.question) if with_hints else None
        try:
            text, _asr_s, _detail = await hear(recognizer, str(path), hints, endpoint)
        except (AudioError, ASRError):
            text = ""
        heard.append(text)
    return heard
