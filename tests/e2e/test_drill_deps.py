"""The dependency drills, short form: one caller each while PostgreSQL is down, Redis hangs,
the LLM endpoint is down and the recogniser hangs (fault proxies on loopback, the recogniser
wrapped: ``ivr.tools.drilldeps``). Every caller goes on to the queue (by keys where speech
failed) with at most 3 s of dead line after any input, and nothing is lost once the dependency
is back: the call records complete with their own times, the pop in Redis, the pop's rule
summary with the LLM's failure recorded. (The full form: ``ivr drill deps``, README.)"""

from __future__ import annotations

import pytest

from ivr.core.config import ASRSettings, Settings
from tests.conftest import ServerControl

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]


async def test_callers_go_on_and_nothing_is_lost_when_a_dependency_fails(
        server: ServerControl, settings: Settings, pg_url: str, redis_url: str) -> None:
    from ivr.core.storage.calls import CallRepository
    from ivr.core.storage.db import create_engine, session_factory
    from ivr.tools.drilldeps import dependency_drill

    drill = settings.model_copy(deep=True)
    drill.llm.timeout_s = 1.5  # a hanging LLM is given up sooner than the 3 s hold
    drill.asr.decode_deadline_s = ASRSettings().decode_deadline_s  # the shipped deadline
    engine = create_engine(pg_url)
    await server.stop()  # the drill runs its own server, on the proxies
    try:
        phases = await dependency_drill(
            drill, pg_url=pg_url, redis_url=redis_url,
            repo=CallRepository(session_factory(engine)), calls=1, delay_s=3.0,
            phases=[("postgres", "down"), ("redis", "slow"), ("llm", "down"), ("asr", "slow")],
            echo=lambda _m: None, start_asterisk=False)
    finally:
        await server.start()
        await engine.dispose()
    summaries = {f"{p.dependency} {p.mode}": p.summary() for p in phases}
    assert len(phases) == 4, summaries
    for name, s in summaries.items():
        assert s["went_on"] == 1 and s["kept"] == 1 and not s["failures"], (name, s)
        assert s["longest_wait_s"] is not None and s["longest_wait_s"] <= 3.0, (name, s)
    assert summaries["asr slow"]["degraded_to"] == {"keys": 1}
