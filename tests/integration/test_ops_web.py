"""The operations page's JSON API and the answers CSV, on a real aiohttp server and the test
PostgreSQL: role checks, campaign creation from an uploaded CSV, start/pause/resume, results."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.core.config import Settings
from ivr.core.storage.db import session_factory
from ivr.sim.desk import desk_headers
from ivr.web import ops
from ivr.web.keys import SESSIONS, SETTINGS
from tests.ops_data import add_survey_results

pytestmark = pytest.mark.asyncio(loop_scope="session")



CSV_BODY = ("phone,name,city\n13800138000,张三,北京\n138001380,坏号码,上海\n"
            "021-6222 1234,李四,上海\n")


@pytest.fixture(scope="module")
async def ops_server(pg_engine: AsyncEngine) -> AsyncIterator[TestServer]:
    settings = Settings()
    settings.handoff.agent_roles["agent2"] = "admin"
    app = web.Application()
    app[SETTINGS] = settings
    app[SESSIONS] = session_factory(pg_engine)
    ops.setup(app)
    server = TestServer(app)
    await server.start_server()
    yield server
    await server.close()


async def _as(server: TestServer, user: str) -> dict[str, str]:
    """A bearer header for a desk user of the development settings."""
    async with aiohttp.ClientSession() as http:
        return await desk_headers(http, str(server.make_url("")).rstrip("/"), user,
                                  f"{user}-desk-dev-secret")


async def test_roles(ops_server: TestServer) -> None:
    async with aiohttp.ClientSession() as http:
        url = str(ops_server.make_url("/api/ops/campaigns"))
        async with http.get(url) as r:
            assert r.status == 401
        async with http.get(url, headers=await _as(ops_server, "agent1")) as r:
            assert r.status == 403
        async with http.get(url, headers=await _as(ops_server, "ops1")) as r:
            assert r.status == 200
            assert (await r.json())["role"] == "ops"
        async with http.get(str(ops_server.make_url("/ops"))) as r:
            assert r.status == 200 and "回访运营" in await r.text()


async def test_create_start_results_csv(ops_server: TestServer, pg_engine: AsyncEngine) -> None:
    async with aiohttp.ClientSession(headers=await _as(ops_server, "ops1")) as http:
        form = aiohttp.FormData()
        form.add_field("name", "十一月燃气回访")
        form.add_field("line", "gas")
        form.add_field("survey", "csat_default")
        form.add_field("file", CSV_BODY.encode(), filename="numbers.csv",
                       content_type="text/csv")
        async with http.post(ops_server.make_url("/api/ops/campaigns"), data=form) as r:
            body = await r.json()
            assert r.status == 200, body
        cid = body["campaign"]["id"]
        assert body["import"]["loaded"] == 2
        assert [e["line"] for e in body["import"]["errors"]] == [3]
        base = f"/api/ops/campaigns/{cid}"
        async with http.post(ops_server.make_url(base + "/start")) as r:
            assert r.status == 200 and (await r.json())["status"] == "running"
        async with http.post(ops_server.make_url(base + "/pause")) as r:
            assert (await r.json())["status"] == "paused"
        async with http.post(ops_server.make_url(base + "/resume")) as r:
            assert (await r.json())["status"] == "running"

        async with http.post(ops_server.make_url(base + "/resume")) as r:
            assert r.status == 409 and "不能执行" in (await r.json())["error"]
        await add_survey_results(session_factory(pg_engine), cid)
        async with http.get(ops_server.make_url(base + "/results")) as r:
            res = await r.json()
        assert res["progress"]["contacts"] == 2 and res["progress"]["completed"] == 2
        assert res["overall"]["csat_distribution"]["2"] == 1
        assert res["overall"]["nps"] == 0.0
        assert res["suggestions"]["gas_bill"] == ["希望能直接转人工"]
        async with http.get(ops_server.make_url(base + "/answers.csv")) as r:
            assert r.status == 200
            rows = list(csv.DictReader(io.StringIO((await r.text()).lstrip("\ufeff"))))
        assert len(rows) == 5 and all("****" in row["phone"] for row in rows)
        async with http.get(ops_server.make_url(base + "/attempts.csv")) as r:
            assert r.status == 200
            dials = list(csv.DictReader(io.StringIO((await r.text()).lstrip("\ufeff"))))
        assert [d["outcome"] for d in dials] == ["answered", "answered"], dials
        assert all("****" in d["phone"] and d["seconds"] == "110.0" for d in dials), dials
        assert {d["contact_status"] for d in dials} == {"completed"}
        for export in ("/answers.csv", "/attempts.csv"):
            async with http.get(ops_server.make_url(base + export + "?unmasked=1")) as r:
                assert r.status == 403
        async with http.get(ops_server.make_url("/api/ops/campaigns/999999/attempts.csv")) as r:
            assert r.status == 404
        async with http.get(ops_server.make_url("/api/ops/campaigns/999999/results")) as r:
            assert r.status == 404
        async with http.post(ops_server.make_url(base + "/stop")) as r:
            assert (await r.json())["status"] == "stopped"
    async with aiohttp.ClientSession(headers=await _as(ops_server, "agent2")) as http:
        async with http.get(ops_server.make_url(base + "/answers.csv?unmasked=1")) as r:
            text = await r.text()
        assert "13800138000" in text
