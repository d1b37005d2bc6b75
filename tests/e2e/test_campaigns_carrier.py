"""Survey calls that meet the network (issue 23), through the real Asterisk: the simulated
network answers a dial with 183 Session Progress and plays 空号 / 停机 / 关机 / 正在通话中 as
early media, over and over; the dialer's early-media listener (a snoop on the ringing channel,
the real recogniser) ends each dial with the announcement's outcome long before the ring
timeout. A coloured ring-back (music as early media) is not an answer: that person answers
afterwards, hears the survey's opening and declines it (key 2). A fake answer followed by
号码不存在 is heard after the answer and ends as the announcement, not as a machine; a person
who answers and says nothing is a person (asked, declines), not AMD's machine.

Tolerant where the recogniser reads synthetic speech (DEVELOPERS.md): an announcement must end
as one of the announcement outcomes, never as an answer or a ring-out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from campaigns import repo
from campaigns.carrier import ANNOUNCEMENTS
from campaigns.service import survey_originator
from campaigns.tables import ALL_DAY
from ivr.core.config import Settings
from ivr.core.storage.db import session_factory
from ivr.sim.customerproc import SimulatorProcess
from ivr.sim.customers import ANNOUNCEMENT, HELLO
from ivr.web.keys import CALL_FACTORY, PROMPT_CACHE, RECOGNIZER
from tests.campaign_db import fresh_numbers, read_back, run_until_finished
from tests.conftest import ServerControl

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]
BASE = "1700012340"  # + the carrier behaviour digit (ivr/sim/customers.py)
RING_S = 25


@pytest.fixture
async def network(server: ServerControl, settings: Settings) -> AsyncIterator[
        SimulatorProcess]:
    app = server.app
    assert app is not None
    if RECOGNIZER not in app:
        pytest.skip("no recogniser: early media is not listened to")
    cache = app[PROMPT_CACHE]
    voices = {text: await cache.get(text) for text in (HELLO, *ANNOUNCEMENT.values())}
    sim = SimulatorProcess(settings.asterisk, voices)
    await sim.start()
    yield sim
    await sim.close()


async def test_announcements_end_the_dial_and_music_is_not_an_answer(
        server: ServerControl, network: SimulatorProcess, pg_engine: AsyncEngine,
        settings: Settings) -> None:
    assert server.app is not None
    sessions = session_factory(pg_engine)
    # 空号, 停机, 关机, 正在通话中 as early media; a coloured ring-back then a customer; a fake
    # answer then 号码不存在; a customer who answers in silence
    digits = "0123467"
    phones = [BASE + d for d in digits]
    await fresh_numbers(sessions, phones)
    cid = await repo.create_campaign(sessions, name="运营商提示音", survey="satisfaction",
                                     line="gas", windows=ALL_DAY, max_attempts=1,
                                     max_channels=10, calls_per_second=20.0,
                                     settings={"ring_timeout_s": RING_S})
    await repo.import_contacts(sessions, cid, "phone\n" + "\n".join(phones) + "\n")
    await repo.set_status(sessions, cid, "start")
    originator = survey_originator(server.app[CALL_FACTORY], sessions, settings,
                                   recognizer=server.app[RECOGNIZER])  # type: ignore[arg-type]
    assert originator.early is not None
    await run_until_finished(sessions, originator, cid, name="test-carrier-dialer")
    sim = await network.report()
    assert not sim.errors, sim.errors
    results = await read_back(sessions, cid)
    attempts, contacts = results.attempts, results.contacts
    seen = {d: (a.outcome, a.amd_status, a.cause,
                a.ended_at - a.started_at if a.ended_at else None)
            for d, a in attempts.items()}
    print(seen, contacts)
    for d in "0123":
        a = attempts[d]
        assert a.outcome in ANNOUNCEMENTS, seen
        assert (a.cause or "").startswith("early media"), seen
        assert a.ended_at is not None and a.ended_at - a.started_at < timedelta(
            seconds=RING_S - 5), seen  # decided while the announcement played, not rung out
    assert contacts["0"] in ("invalid", "exhausted"), contacts  # vacant, or retried later
    # the coloured ring-back was music, not a voice: the person answered and was asked; so
    # was the person who said nothing
    for d in "47":
        assert attempts[d].outcome == "answered", seen
        assert contacts[d] == "refused", contacts
    fake = attempts["6"]  # answered by the network, which then announced
    assert fake.outcome in ANNOUNCEMENTS, seen
    assert (fake.cause or "").startswith("after answer"), seen
    assert contacts["6"] in ("invalid", "exhausted"), contacts
