"""The bot workspace's API (``ivr.web.bots``) on a real aiohttp server, a scratch PostgreSQL
seeded with the shipped bots and a catalog store like the server's: validation as you type,
the form as YAML, a draft saved, its conversation tests run on a scratch back end, the four-role
review with who and when, publish (the store serves it at once), the diff, rollback, and every
refusal (roles, order, four eyes)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from dialog.lifecycle.repository import BotVersions
from dialog.lifecycle.store import CatalogStore
from ivr.core.config import Settings
from ivr.core.storage.db import SessionFactory
from ivr.sim.desk import desk_headers
from ivr.web import bots
from ivr.web.keys import BOT_STORE, DB_URL, SESSIONS, SETTINGS

pytestmark = pytest.mark.asyncio(loop_scope="session")

OLD = "可以换一节新电池"
NEW = "可以换两节新的五号电池"


@pytest.fixture
async def workspace(scratch_sessions: SessionFactory, pg_url: str
                    ) -> AsyncIterator[tuple[TestServer, CatalogStore]]:
    settings = Settings()
    settings.handoff.agent_roles["agent2"] = "admin"
    app = web.Application()
    app[SETTINGS] = settings
    app[SESSIONS] = scratch_sessions
    app[DB_URL] = pg_url  # the scratch test runs' server
    store = CatalogStore(BotVersions(scratch_sessions))
    await store.start()
    app[BOT_STORE] = store
    bots.setup(app)
    server = TestServer(app)
    await server.start_server()
    yield server, store
    await server.close()
    await store.stop()


class Desk:
    def __init__(self, http: aiohttp.ClientSession, server: TestServer) -> None:
        self.http, self.server = http, server
        self.base = str(server.make_url("")).rstrip("/")

    async def call(self, user: str, method: str, path: str, body: Any = None,
                   status: int = 200) -> dict[str, Any]:
        headers = await desk_headers(self.http, self.base, user, f"{user}-desk-dev-secret")
        async with self.http.request(method, self.base + path, json=body,
                                     headers=headers) as r:
            data: dict[str, Any] = await r.json()
            assert r.status == status, (user, method, path, r.status, data)
            return data


async def test_edit_review_publish_rollback(workspace: tuple[TestServer, CatalogStore]
                                            ) -> None:
    server, store = workspace
    path = "/api/ops/bots/stove_no_ignite"
    async with aiohttp.ClientSession() as http:
        d = Desk(http, server)
        listed = await d.call("author1", "GET", "/api/ops/bots")
        assert listed["me"] == {"user": "author1", "role": "author", "steps": ["submit"]}
        row = next(b for b in listed["bots"] if b["bot"] == "stove_no_ignite")
        assert (row["published"], row["newest"], row["review"]) == (1, 1, "none")
        assert len(listed["bots"]) == len(store.catalog.bots)

        v1 = await d.call("author1", "GET", f"{path}/versions/1")
        assert OLD in v1["yaml"] and v1["data"]["id"] == "stove_no_ignite"
        # validation as you type: a broken step names its line; a good text is linted
        broken = v1["yaml"].replace("  - end: completed\n", "  - end: finished\n", 1)
        checked = await d.call("author1", "POST", "/api/ops/bots/check", {"yaml": broken})
        assert not checked["ok"] and checked["errors"][0]["line"] > 5
        assert "end" in checked["errors"][0]["message"]
        # the form's fields become YAML
        data = v1["data"]
        data["steps"][0]["say"] = data["steps"][0]["say"].replace(OLD, NEW)
        form = await d.call("author1", "POST", "/api/ops/bots/yaml",
                            {"data": data, "base": v1["yaml"]})
        assert form["ok"] and NEW in form["yaml"]
        checked = await d.call("author1", "POST", "/api/ops/bots/check", {"yaml": form["yaml"]})
        assert checked["ok"] and checked["bot"] == "stove_no_ignite"

        saved = await d.call("author1", "POST", "/api/ops/bots/drafts",
                             {"yaml": form["yaml"], "note": "电池说明更具体"})
        assert (saved["version"], saved["state"], saved["created"]) == (2, "draft", True)
        bad = await d.call("author1", "POST", "/api/ops/bots/drafts", {"yaml": broken},
                           status=400)
        assert bad["errors"][0]["line"] > 5
        v2 = f"{path}/versions/2"

        # not before its tests pass; tests run on a scratch back end
        refusal = await d.call("author1", "POST", f"{v2}/review", {"step": "submit"}, 409)
        assert "对话测试通过后" in refusal["error"]
        tested = await d.call("author1", "POST", f"{v2}/test")
        assert tested["state"] == "tested" and tested["summary"]["ok"], tested
        assert tested["summary"]["passed"] == tested["summary"]["total"] >= 1

        await d.call("author1", "POST", f"{v2}/review", {"step": "submit"})
        await d.call("author1", "POST", f"{v2}/review", {"step": "wording"}, 409)
        await d.call("expert1", "POST", f"{v2}/review", {"step": "facts"}, 409)  # order
        await d.call("config1", "POST", f"{v2}/publish", status=409)  # not approved yet
        await d.call("lead1", "POST", f"{v2}/review", {"step": "wording", "comment": "通顺"})
        done = await d.call("expert1", "POST", f"{v2}/review", {"step": "facts"})
        assert done["review"] == "approved"
        await d.call("expert1", "POST", f"{v2}/publish", status=409)  # the configurer's
        assert store.versions["stove_no_ignite"] == 1
        published = await d.call("config1", "POST", f"{v2}/publish")
        assert published == {"bot": "stove_no_ignite", "version": 2, "state": "published"}
        # this server serves it at once
        assert store.versions["stove_no_ignite"] == 2
        assert NEW in (store.catalog.bots["stove_no_ignite"].steps[0].say or "")

        detail = await d.call("lead1", "GET", path)
        assert detail["in_service"] == 2
        trail = detail["versions"][0]["review"]
        assert trail["state"] == "published"
        assert [(s["step"], s["actor"], s["role"]) for s in trail["steps"]] == [
            ("submit", "author1", "author"), ("wording", "lead1", "lead"),
            ("facts", "expert1", "expert"), ("publish", "config1", "configurer")]
        assert trail["steps"][1]["comment"] == "通顺" and all(s["at"] for s in trail["steps"])
        diff = await d.call("lead1", "GET", f"{path}/diff?a=1&b=2")
        removed = [x for x in diff["diff"].splitlines() if x.startswith("-  - say:")]
        added = [x for x in diff["diff"].splitlines() if x.startswith("+  - say:")]
        assert OLD in removed[0] and NEW in added[0] and len(removed) == len(added) == 1

        await d.call("author1", "POST", f"{path}/rollback", {"to": 1}, 409)
        back = await d.call("config1", "POST", f"{path}/rollback", {"to": 1})
        assert back["version"] == 1 and store.versions["stove_no_ignite"] == 1


async def test_roles_four_eyes_and_rejection(workspace: tuple[TestServer, CatalogStore]
                                             ) -> None:
    server, _store = workspace
    path = "/api/ops/bots/fuel_price"
    async with aiohttp.ClientSession() as http:
        d = Desk(http, server)
        base = d.base
        async with http.get(base + "/api/ops/bots") as r:
            assert r.status == 401
        await d.call("agent1", "GET", "/api/ops/bots", status=403)  # a desk agent
        async with http.get(base + "/ops/bots") as r:
            assert r.status == 200 and "机器人工作台" in await r.text()

        v1 = await d.call("agent2", "GET", f"{path}/versions/1")
        text = v1["yaml"].replace("仅供参考", "以加油站公示为准")
        saved = await d.call("agent2", "POST", "/api/ops/bots/drafts", {"yaml": text})
        v2 = f"{path}/versions/{saved['version']}"
        await d.call("agent2", "POST", f"{v2}/test")
        await d.call("agent2", "POST", f"{v2}/review", {"step": "submit"})  # admin may submit
        # ... but not approve what they wrote
        refusal = await d.call("agent2", "POST", f"{v2}/review", {"step": "wording"}, 409)
        assert "自己编写或提交" in refusal["error"]
        refusal = await d.call("lead1", "POST", f"{v2}/review", {"step": "reject"}, 409)
        assert "写明原因" in refusal["error"]
        back = await d.call("lead1", "POST", f"{v2}/review",
                            {"step": "reject", "comment": "口径需与价格中心一致"})
        assert back["review"] == "rejected"
        detail = await d.call("author1", "GET", path)
        assert detail["versions"][0]["review"]["label"] == "已退回"
        await d.call("lead1", "POST", f"{v2}/review", {"step": "bless"}, 409)
        await d.call("lead1", "POST", f"{path}/versions/x/review", {"step": "submit"}, 400)
        await d.call("config1", "POST", f"{path}/rollback", {"to": 1}, 409)  # in service now
