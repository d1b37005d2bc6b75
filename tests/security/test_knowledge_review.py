"""Four eyes on the knowledge base (security issue, item 6): on old main a reviewer approved
their own proposal; now the repository refuses it (the web answers 403) and another reviewer
approves it. The importer of a reviewed file is the one author that approves its own."""

from __future__ import annotations

import pytest

from handoff.knowledge.repository import IMPORTER, EntryDraft, KnowledgeBase, SelfReview
from ivr.core.storage.db import create_engine, scratch_database, session_factory
from ivr.core.storage.migrate import upgrade

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_reviewer_cannot_approve_their_own_proposal(pg_url: str) -> None:
    async with scratch_database(pg_url, "review") as url:
        await upgrade(url)
        engine = create_engine(url)
        try:
            kb = KnowledgeBase(session_factory(engine), None)  # keyword search only
            draft = EntryDraft(line="oil", title="审核人自己写的条目", body="内容。")
            own = await kb.propose(draft, "agent3")
            with pytest.raises(SelfReview):
                await kb.approve(own.id, "agent3")
            assert (await kb.get(own.id)).status == "proposed"
            approved = await kb.approve(own.id, "agent2", "二审通过")
            assert approved.status == "approved" and approved.reviewer == "agent2"
            imported = await kb.propose(EntryDraft(line="gas", title="导入", body="内容。",
                                                   source="starter.md"), IMPORTER)
            assert (await kb.approve(imported.id, IMPORTER)).status == "approved"
        finally:
            await engine.dispose()
