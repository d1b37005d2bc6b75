"""The ``server-kill`` drill, short form: the server runs as its own process, two callers at a
menu and a survey call with its first answer given, ``kill -9``, a restart. Both callers hear
hold music within seconds of the kill (not a dead line), are resumed at the menu they were at
(not greeted again) and go on to an agent. The survey customer is told and hung up on by the
restarted server, the answer given is kept and the attempt settled (never dialled again)."""

from __future__ import annotations

import pytest

from ivr.core.config import Settings
from tests.conftest import ServerControl

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]


async def test_killed_server_restarts_and_resumes_every_caller(
        server: ServerControl, settings: Settings, pg_url: str, redis_url: str) -> None:
    from ivr.core.storage.calls import CallRepository
    from ivr.core.storage.db import create_engine, session_factory
    from ivr.tools.drillrestart import server_kill
    from tests.campaign_db import fresh_numbers

    engine = create_engine(pg_url)
    await fresh_numbers(session_factory(engine), [])  # others' campaigns: not for its dialer
    await server.stop()  # the drill runs its own server process on the same Asterisk
    try:
        report = await server_kill(settings, pg_url=pg_url, redis_url=redis_url,
                                   repo=CallRepository(session_factory(engine)), calls=2,
                                   surveys=1, echo=lambda _m: None)
    finally:
        await server.start()
        await engine.dispose()
    summary = report.summary()
    assert summary["went_on"] == 2 and summary["silent_hangups"] == 0, summary
    assert summary["failures"] == [], summary
    # the hold music starts while the new process loads (about 3 s here; the restart is longer)
    assert summary["silence_s_max"] is not None and summary["silence_s_max"] < 6.0, summary
    cut = summary["surveys"]
    assert cut["answers_before"] >= 1 and cut["answers_after"] >= cut["answers_before"], cut
    assert cut["settled"] == 1 and cut["told"] == 1 and cut["dialled_twice"] == 0, cut
    assert cut["statuses"] == {"completed": 1}, cut
