"""The review workflow's rules (``dialog.lifecycle.review.check_step``), without a database:
the order of the steps, the role of each, four eyes, and what a rejection needs."""

from __future__ import annotations

import pytest

from dialog.lifecycle.review import ReviewError, StepTaken, check_step, review_state

SUBMITTED = [StepTaken("submit", "author1", "author")]
WORDING = [*SUBMITTED, StepTaken("wording", "lead1", "lead")]
APPROVED = [*WORDING, StepTaken("facts", "expert1", "expert")]


def ok(step: str, actor: str, role: str, steps: list[StepTaken], *, state: str = "tested",
       author: str = "author1", comment: str | None = None) -> None:
    check_step(step, actor, role, version_state=state, version_author=author, steps=steps,
               comment=comment)


def refused(match: str, *args: object, **kwargs: object) -> None:
    with pytest.raises(ReviewError, match=match):
        ok(*args, **kwargs)  # type: ignore[arg-type]


def test_the_happy_path_in_order() -> None:
    assert review_state([]) == "none"
    ok("submit", "author1", "author", [])
    ok("wording", "lead1", "lead", SUBMITTED)
    ok("facts", "expert1", "expert", WORDING)
    ok("publish", "config1", "configurer", APPROVED)
    assert review_state(APPROVED) == "approved"
    assert review_state([*APPROVED, StepTaken("publish", "config1", "configurer")]) == "published"


def test_each_step_belongs_to_its_role() -> None:
    refused("不是 author 角色", "wording", "author1", "author", SUBMITTED, author="x")
    refused("不是 lead 角色", "facts", "lead1", "lead", WORDING)
    refused("不是 expert 角色", "publish", "expert1", "expert", APPROVED)
    refused("不是 configurer 角色", "submit", "config1", "configurer", [])
    ok("wording", "boss", "admin", SUBMITTED)  # admin may take any step


def test_steps_come_in_order() -> None:
    refused("未提交", "wording", "lead1", "lead", [])
    refused("待班组长审核话术", "facts", "expert1", "expert", SUBMITTED)
    refused("待班组长审核话术", "publish", "config1", "configurer", SUBMITTED)
    refused("待业务专家审核内容", "submit", "author1", "author", WORDING)
    refused("审核通过", "reject", "lead1", "lead", APPROVED, comment="晚了")


def test_only_a_tested_version_is_submitted_or_published() -> None:
    refused("对话测试通过后", "submit", "author1", "author", [], state="draft")
    refused("对话测试通过后", "publish", "config1", "configurer", APPROVED, state="published")


def test_four_eyes() -> None:
    # nobody approves what they wrote or submitted, whatever their role
    refused("自己编写或提交", "wording", "boss", "admin", SUBMITTED, author="boss")
    refused("自己编写或提交", "wording", "boss", "admin",
            [StepTaken("submit", "boss", "admin")])
    # the wording and the facts by two different people
    refused("两个不同的人", "facts", "boss", "admin",
            [*SUBMITTED, StepTaken("wording", "boss", "admin")])


def test_a_rejection_says_why_and_sends_it_back() -> None:
    refused("写明原因", "reject", "lead1", "lead", SUBMITTED, comment="  ")
    ok("reject", "expert1", "expert", WORDING, comment="价格已调整")
    back = [*WORDING, StepTaken("reject", "expert1", "expert", "价格已调整")]
    assert review_state(back) == "rejected"
    ok("submit", "author1", "author", back)  # fixed, then submitted again
    again = [*back, StepTaken("submit", "author1", "author")]
    refused("待班组长审核话术", "facts", "expert1", "expert", again)  # the wording again first
