"""The review workflow of a bot version: who may take which step, in which order, and the record.

    draft --tests pass--> tested --submit--> submitted --wording--> wording --facts--> approved
                                                 |                     |                  |
                                                 '------ reject -------'            publish
                                                   (back to the author)               v
                                                                                  published

- **submit** (role ``author``; ``ops`` and ``admin`` may too): only a version whose conversation
  tests passed (state ``tested``), and not one already under review.
- **wording** (``lead``, the team lead: is it said the way callers should hear it?), then
  **facts** (``expert``, the business expert: is it right?), in that order.
- **reject** (``lead`` or ``expert``) with a comment says why; the author fixes it (a new
  version, or the same one submitted again).
- **publish** (``configurer``): only an approved version; the server swaps it in as
  ``ivr bots publish`` does. **Rollback** to an earlier published version is the configurer's
  too and needs no new review (that version was in service before).
- **Four eyes**: nobody approves a version they wrote or submitted, and the wording and the
  facts are approved by two different people. ``admin`` may take any role's step, under the
  same rule.

Each step is one ``bot_reviews`` row (who, role, when, comment), written under the bot's
advisory lock after the rules are checked against the rows already there, so two reviewers
cannot both move one version. The command line (``ivr bots publish``) stays the system
operator's direct path and is logged in ``bot_publications`` as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dialog.lifecycle.repository import BotVersions, LifecycleError
from dialog.lifecycle.tables import RETIRED, TESTED, BotReviewRow, BotVersionRow

# the role that may take each step ("admin" may take all of them)
STEP_ROLES: dict[str, frozenset[str]] = {
    "submit": frozenset({"author", "ops", "admin"}),
    "wording": frozenset({"lead", "admin"}),
    "facts": frozenset({"expert", "admin"}),
    "reject": frozenset({"lead", "expert", "admin"}),
    "publish": frozenset({"configurer", "admin"}),
    "rollback": frozenset({"configurer", "admin"}),
}
# who may open the workspace, write drafts and run tests
EDIT_ROLES = frozenset({"author", "lead", "expert", "configurer", "ops", "admin"})

# the review state a step leads to, and the states it may be taken from
_AFTER = {"submit": "submitted", "wording": "wording", "facts": "approved",
          "reject": "rejected", "publish": "published"}
_FROM = {"submit": ("none", "rejected"), "wording": ("submitted",), "facts": ("wording",),
         "reject": ("submitted", "wording"), "publish": ("approved",)}
STATE_LABELS = {"none": "未提交", "submitted": "待班组长审核话术", "wording": "待业务专家审核内容",
                "approved": "审核通过，待发布", "rejected": "已退回", "published": "已发布"}
STEP_LABELS = {"submit": "提交审核", "wording": "话术审核通过", "facts": "业务审核通过",
               "reject": "退回修改", "publish": "发布上线", "rollback": "回滚"}
MAX_COMMENT = 500


class ReviewError(LifecycleError):
    """A review step this person may not take now (the message says why, in Chinese)."""


@dataclass(frozen=True)
class StepTaken:
    step: str
    actor: str
    role: str
    comment: str | None = None
    at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.step, "label": STEP_LABELS[self.step], "actor": self.actor,
                "role": self.role, "comment": self.comment,
                "at": self.at.isoformat() if self.at else None}


def review_state(steps: Sequence[StepTaken]) -> str:
    """Where a version's review stands after ``steps`` (oldest first)."""
    state = "none"
    for s in steps:
        state = _AFTER[s.step]
    return state


def _last(steps: Sequence[StepTaken], step: str) -> StepTaken | None:
    return next((s for s in reversed(steps) if s.step == step), None)


def check_step(step: str, actor: str, role: str, *, version_state: str,
               version_author: str | None, steps: Sequence[StepTaken],
               comment: str | None = None) -> None:
    """``ReviewError`` unless ``actor`` (in ``role``) may take ``step`` now."""
    if step not in _FROM:
        raise ReviewError(f"未知的审核步骤 {step!r}")
    if role not in STEP_ROLES[step]:
        raise ReviewError(f"「{STEP_LABELS[step]}」不是 {role} 角色的权限")
    state = review_state(steps)
    if state not in _FROM[step]:
        raise ReviewError(f"当前状态「{STATE_LABELS[state]}」不能{STEP_LABELS[step]}")
    if step in ("submit", "publish") and version_state != TESTED:
        raise ReviewError("对话测试通过后才能" + STEP_LABELS[step])
    if step == "reject" and not (comment or "").strip():
        raise ReviewError("退回时请写明原因")
    if step in ("wording", "facts", "reject"):
        submitted = _last(steps, "submit")
        writers = {version_author, submitted.actor if submitted else None}
        if actor in writers:
            raise ReviewError("不能审核自己编写或提交的版本")
        wording = _last(steps, "wording")
        if step == "facts" and wording is not None and wording.actor == actor:
            raise ReviewError("话术审核和业务审核须由两个不同的人完成")


def _taken(row: BotReviewRow) -> StepTaken:
    return StepTaken(row.step, row.actor, row.role, row.comment, row.at)


class BotReviews:
    """The review record of the bots' versions, on the versions' own database and locks."""

    def __init__(self, versions: BotVersions) -> None:
        self.versions = versions

    @staticmethod
    async def _steps(s: AsyncSession, bot_id: str, version: int | None = None
                     ) -> list[BotReviewRow]:
        stmt = select(BotReviewRow).where(BotReviewRow.bot_id == bot_id)
        if version is not None:
            stmt = stmt.where(BotReviewRow.version == version)
        return list((await s.execute(stmt.order_by(BotReviewRow.id))).scalars())

    async def history(self, bot_id: str) -> dict[int, list[StepTaken]]:
        """Version -> the steps taken on it, oldest first."""
        rows = await self.versions.transaction("reviews", lambda s: self._steps(s, bot_id))
        out: dict[int, list[StepTaken]] = {}
        for row in rows:
            out.setdefault(row.version, []).append(_taken(row))
        return out

    async def all_steps(self) -> dict[tuple[str, int], list[StepTaken]]:
        """(bot, version) -> its steps, for every version with any (a small table)."""
        async def q(s: AsyncSession) -> list[BotReviewRow]:
            return list((await s.execute(select(BotReviewRow).order_by(BotReviewRow.id)))
                        .scalars())
        out: dict[tuple[str, int], list[StepTaken]] = {}
        for row in await self.versions.transaction("reviews", q):
            out.setdefault((row.bot_id, row.version), []).append(_taken(row))
        return out

    async def take(self, bot_id: str, version: int, step: str, actor: str, role: str,
                   comment: str | None = None) -> str:
        """Record ``step`` (submit, wording, facts, reject) if the rules allow it; the review's
        new state."""
        if step == "publish":
            raise ReviewError("发布请用 publish()")
        comment = (comment or "").strip()[:MAX_COMMENT] or None

        async def q(s: AsyncSession) -> str:
            steps = await self._checked(s, bot_id, version, step, actor, role, comment)
            s.add(BotReviewRow(bot_id=bot_id, version=version, step=step, actor=actor,
                               role=role, comment=comment))
            return review_state([*steps, StepTaken(step, actor, role)])
        return await self.versions.transaction("review", q, lock=bot_id)

    async def _checked(self, s: AsyncSession, bot_id: str, version: int, step: str,
                       actor: str, role: str, comment: str | None) -> list[StepTaken]:
        row: BotVersionRow = await self.versions.get_in(s, bot_id, version)
        steps = [_taken(r) for r in await self._steps(s, bot_id, version)]
        check_step(step, actor, role, version_state=row.state, version_author=row.author,
                   steps=steps, comment=comment)
        return steps

    async def publish(self, bot_id: str, version: int, actor: str, role: str
                      ) -> BotVersionRow:
        """Publish an approved version (and record who did); servers reload as after
        ``ivr bots publish``."""
        await self.versions.transaction(
            "review", lambda s: self._checked(s, bot_id, version, "publish", actor, role, None),
            lock=bot_id)
        row = await self.versions.publish(bot_id, version, author=actor)

        async def record(s: AsyncSession) -> None:
            s.add(BotReviewRow(bot_id=bot_id, version=version, step="publish", actor=actor,
                               role=role))
        await self.versions.transaction("review", record, lock=bot_id)
        return row

    async def rollback(self, bot_id: str, to: int, actor: str, role: str) -> BotVersionRow:
        """Publish again a version that was in service before (a retired one)."""
        if role not in STEP_ROLES["rollback"]:
            raise ReviewError(f"「回滚」不是 {role} 角色的权限")
        if (await self.versions.get(bot_id, to)).state != RETIRED:
            raise ReviewError("只能回滚到曾经发布过的版本")
        return await self.versions.rollback(bot_id, to, author=actor)
