"""Survey scripts as data (``campaigns/surveys/*.yaml``): the schema and loading with errors that
name file, line and field, like the bot files (dialog/scenario.py).

A survey has an opening (company, 956100, the reason for the call), a consent question, questions
of the kinds ``csat`` (1-5), ``nps`` (0-10), ``yes_no`` and ``text`` (a free spoken suggestion,
transcribed by the ASR), a closing, and the texts of the global answers (call-back, do-not-call)
and of the reprompts. Prompts may use ``{name}``, ``{bot}``, ``{agent}`` and custom fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dialog.scenario import parse_yaml_model  # line-numbered errors, as for the bots

SURVEY_DIR = Path(__file__).parent / "surveys"


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    kind: Literal["csat", "nps", "yes_no", "text"]
    prompt: str = Field(min_length=2)
    hints: str = ""  # ASR context biasing
    timeout_s: float | None = Field(default=None, gt=0, le=60)


class Texts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    declined: str = "好的，不打扰您了，祝您生活愉快，再见。"
    callback: str = "好的，我们换个时间再联系您，再见。"
    dnc: str = "好的，我们以后不会再给您打电话了，打扰了，再见。"
    no_input: str = "抱歉，没有听到您的回答。"
    no_match: str = "抱歉，没有听清您的回答。"
    give_up: str = "我们就先不打扰您了，再见。"


class SurveySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    name: str
    opening: str = Field(min_length=4)
    consent: str = Field(min_length=2)
    questions: list[Question] = Field(min_length=1)
    closing: str = Field(min_length=2)
    texts: Texts = Texts()
    max_retries: int = Field(default=2, ge=0, le=5)
    callback_delay_s: int = Field(default=7200, ge=60)

    @model_validator(mode="after")
    def _check(self) -> SurveySpec:
        ids = [q.id for q in self.questions]
        if len(ids) != len(set(ids)):
            raise ValueError("question ids must be unique")
        if "956100" not in self.opening or "中国石油" not in self.opening:
            raise ValueError("the opening must name 中国石油 and the 956100 service")
        return self


class SurveyError(ValueError):
    """A survey file that cannot be used; the message names file, line and field."""


def parse_survey(text: str, source: str = "<survey>") -> SurveySpec:
    return parse_yaml_model(text, source, SurveySpec, SurveyError,
                            "a survey file (id, opening, questions, ...)")


def load_survey(name_or_path: str | Path) -> SurveySpec:
    """A survey by name (``satisfaction`` -> campaigns/surveys/satisfaction.yaml) or path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = SURVEY_DIR / f"{name_or_path}.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SurveyError(f"{path}: cannot read: {exc}") from exc
    return parse_survey(text, str(path))
