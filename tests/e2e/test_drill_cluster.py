"""The ``cluster`` drill, short form: Kamailio in front of two Asterisk boxes (each in a network
namespace of its own) and two IVR workers (processes) on shared PostgreSQL and Redis.

- a survey campaign worked by both workers' dialers, each through its own box: no customer
  dialled twice, the campaign's caps on calls at once and dials a second held over both
  (customers who decline: the drill's customers answer by keys);
- keys calls spread over both boxes and reach their menu;
- a call handled by worker 1 pops on an agent desktop connected to worker 2;
- worker 1 killed with a caller at a menu on each box: worker 2 takes box 1's lease and resumes
  its caller from Redis, both reach the queue, and worker 1's replacement gets box 1 back;
- box 1 killed: it leaves Kamailio's rotation within a probe and a fail-over, every new call
  is answered by box 2, a caller already on box 2 goes on; box 1 started again comes back.

The namespaces and the link are removed afterwards, whatever happens."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from ivr.core.config import Settings
from ivr.core.storage.db import session_factory
from tests.campaign_db import fresh_numbers
from tests.netns import namespaces, no_netns

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]


async def test_two_boxes_behind_kamailio_share_calls_and_outlive_one(
        settings: Settings, pg_url: str, redis_url: str, pg_engine: AsyncEngine) -> None:
    from ivr.tools.cluster import PREFIX, cluster
    from ivr.tools.drillcluster import cluster_drill
    from ivr.tools.drillclustersurvey import survey_through_cluster

    if reason := no_netns():
        pytest.skip(reason)
    s = settings.model_copy(deep=True)
    s.database.url, s.redis.url = SecretStr(pg_url), SecretStr(redis_url)
    await fresh_numbers(session_factory(pg_engine), [])  # others' campaigns: not for these
    async with cluster(s, boxes=2, dialers=True, echo=lambda _m: None) as cl:
        # customers who decline (25 s a call; the drill's own answer by keys, 75 s)
        survey = await survey_through_cluster(cl, contacts=3, channels=2, cps=1.0,
                                              answers=False)
        print(survey.summary())
        # speech to a box on another host is test_drill_remote_asterisk.py's (and the drill's)
        report = await cluster_drill(cl, calls=4, batch=4, after_s=4.0, speech=False,
                                     echo=lambda _m: None)
    assert survey.passed, survey.summary()
    assert survey.attempts == 3 and survey.dialled_twice == 0, survey.summary()
    assert survey.most_open <= 2 and sum(survey.per_box.values()) == 3, survey.summary()
    summary = report.summary()
    assert report.passed, summary
    assert set(summary["per_box"]) == {1, 2} and summary["greeted"] == summary["calls"], summary
    k = s.kamailio
    # out of the rotation within one probe interval plus one unanswered probe (and slack)
    assert 0 <= summary["detect_s"] <= k.probe_interval_s + k.failover_ms / 1000 + 1.5, summary
    # a call hashed to the dead box before that waits one fail-over, no more
    assert summary["setup_s"]["max"] <= k.failover_ms / 1000 + 1.4, summary
    assert summary["held_live_went_on"] and summary["rejoin_s"] >= 0, summary
    # a call on worker 1 pops on the agent's desktop connected to worker 2
    assert summary["pop_across"], summary
    # worker 1 killed: worker 2 took box 1's caller over when the lease lapsed, both callers
    # went on, and box 1 went back to worker 1's replacement once idle
    lease = cl.boxes[0].failover
    assert 0 < summary["takeover_s"] <= lease.lease_s + lease.renew_s + 2.0, summary
    assert summary["worker_resumed"] == 1 and summary["worker_went_on"] == 2, summary
    assert summary["given_back_s"] >= 0, summary
    assert summary["silent_hangups"] == 0, summary
    assert PREFIX not in namespaces()
