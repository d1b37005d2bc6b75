"""Survey calls cut by ``ivr drill server-kill``: the answers given before the kill are kept.

With ``--surveys N`` the drill's server runs its survey dialer (``dialer.in_server``), and a
campaign of N customers who answer by keys (``ivr/sim/customers.py``, numbers ending in 0:
consent 1, CSAT 4, NPS 9#, resolved 1) is started beside the inbound callers. The kill comes
once every customer has given at least one answer. The restarted server's dialer finds each
survey call parked in its application (``AriOriginator.end_orphans``): the customer is told why
the survey ends and hung up on, and the attempt is settled at once (``repo.settle_cut``: the
answers given are kept, the contact counts as completed, nobody is dialled again).

Figures: answers before the kill and after, attempts settled, customers told and hung up on by
the server (not left on a dead line), contacts dialled twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from ivr.core.config import Settings
from ivr.core.storage.db import SessionFactory, create_engine, session_factory

ANSWER_WAIT_S = 120.0  # until every customer has answered once (about 25 s a customer here)
SETTLE_WAIT_S = 60.0  # after the restart, until every cut attempt is settled


@dataclass
class SurveyCutReport:
    surveys: int = 0
    answers_before: int = 0  # in the database when the server was killed
    answers_after: int = 0
    settled: int = 0  # attempts no longer dialing after the restart
    told: int = 0  # customers hung up on by the server (after its apology), not by themselves
    dialled_twice: int = 0
    statuses: dict[str, int] = field(default_factory=dict)  # the contacts' states at the end
    failures: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return dict(self.__dict__)


def with_dialer(settings: Settings) -> Settings:
    """The drill's server settings with its survey dialer on (the registered ``customer``
    endpoint, where the simulator answers)."""
    return settings.model_copy(update={"dialer": settings.dialer.model_copy(
        update={"in_server": True, "tick_s": 0.5})})


class SurveyCut:
    """The campaign, its simulated customers and the figures; ``close`` stops both."""

    def __init__(self, settings: Settings, pg_url: str, surveys: int) -> None:
        self.settings = settings
        self.pg_url = pg_url
        self.report = SurveyCutReport(surveys=surveys)
        self.cid = 0
        self._engine = create_engine(pg_url)
        self.sessions: SessionFactory = session_factory(self._engine)
        self._sim: Any = None

    async def start(self) -> None:
        from campaigns import repo
        from campaigns.tables import ALL_DAY
        from ivr.sim.customerproc import SimulatorProcess
        from ivr.sim.customers import HELLO
        from ivr.tools.drillvoice import synthesized

        hello = await synthesized(self.settings, HELLO)
        self._sim = SimulatorProcess(self.settings.asterisk, {HELLO: hello})
        await self._sim.start()
        rng = random.Random()
        phones = sorted({f"1390079{rng.randrange(1000):03d}0"
                         for _ in range(self.report.surveys * 3)})[:self.report.surveys]
        self.cid = await repo.create_campaign(
            self.sessions, name="重启回访演练", survey="satisfaction", line="gas",
            windows=ALL_DAY, max_attempts=1, max_channels=self.report.surveys,
            calls_per_second=5.0)
        await repo.import_contacts(self.sessions, self.cid, "phone\n" + "\n".join(phones) + "\n")
        await repo.set_status(self.sessions, self.cid, "start")

    async def _answered_contacts(self) -> tuple[int, int]:
        from campaigns.tables import Answer

        async with self.sessions() as s:
            rows = (await s.execute(select(Answer.contact_id).where(
                Answer.campaign_id == self.cid))).scalars().all()
        return len(rows), len(set(rows))

    async def answering(self) -> None:
        """Until every customer has given an answer (the moment to kill)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < ANSWER_WAIT_S:
            answers, contacts = await self._answered_contacts()
            if contacts >= self.report.surveys:
                self.report.answers_before = answers
                return
            await asyncio.sleep(0.2)
        answers, contacts = await self._answered_contacts()
        self.report.answers_before = answers
        self.report.failures.append(f"surveys: only {contacts}/{self.report.surveys} customers "
                                    f"answered before the kill")

    async def judge(self) -> None:
        """After the restart: every cut attempt settled, the answers kept."""
        from campaigns import repo
        from campaigns.tables import Attempt, Contact

        r = self.report
        t0 = time.monotonic()
        while True:
            async with self.sessions() as s:
                attempts = (await s.execute(select(Attempt).where(
                    Attempt.campaign_id == self.cid))).scalars().all()
            r.settled = sum(1 for a in attempts if a.outcome != "dialing")
            if r.settled >= len(attempts) or time.monotonic() - t0 > SETTLE_WAIT_S:
                break
            await asyncio.sleep(0.5)
        r.answers_after = (await self._answered_contacts())[0]
        r.dialled_twice = sum(1 for n in Counter(a.contact_id for a in attempts).values()
                              if n > 1)
        async with self.sessions() as s:
            r.statuses = dict(Counter((await s.execute(select(Contact.status).where(
                Contact.campaign_id == self.cid))).scalars()))
        await asyncio.sleep(1.0)  # the last BYE reaches the simulator
        sim = await self._sim.report()
        r.told = sum(sim.hung_up_on.values())
        r.failures += [f"simulator: {e}" for e in sim.errors]
        if r.settled < r.surveys or len(attempts) != r.surveys:
            r.failures.append(f"surveys: {r.settled}/{len(attempts)} attempts settled")
        if r.answers_after < r.answers_before:
            r.failures.append(f"surveys: {r.answers_before} answers before the kill, "
                              f"{r.answers_after} after")
        if r.told < r.surveys:
            r.failures.append(f"surveys: {r.told}/{r.surveys} customers told and hung up on")
        if r.dialled_twice:
            r.failures.append(f"surveys: {r.dialled_twice} customers dialled twice")
        if r.statuses.get("completed", 0) < r.surveys:
            r.failures.append(f"surveys: contacts {r.statuses}, not all completed")
        with contextlib.suppress(ValueError):  # finished: nothing left to stop
            await repo.set_status(self.sessions, self.cid, "stop")

    async def close(self) -> None:
        if self._sim is not None:
            await self._sim.close()
        await self._engine.dispose()

