"""Survey calls through the cluster: one campaign worked by every worker's dialer at once.

On a cluster started with ``dialers=True`` (``ivr.tools.cluster``) each worker runs its
in-server dialer and dials out through its own Asterisk box over the static ``carrier`` trunk,
which every box points at one customer simulator on this host (``asterisk.carrier_host``,
10.78.0.1:5070, unregistered). The drill loads ``contacts`` numbers that answer the survey by
keys (``ivr/sim/customers.py``: consent 1, CSAT 4, NPS 9#, resolved 1; about 75 s a call) or,
``answers`` False, that ring 3 s and decline it (key 2; about 25 s), caps the campaign at
``channels`` calls at once and ``cps`` dials a second, starts it and waits until it is
finished. Then, from the database and the simulator:

- **no contact dialled twice**: one attempt each (``max_attempts`` 1; the claims are
  ``FOR UPDATE SKIP LOCKED``, ``campaigns.repo.claim_due``);
- **the caps held globally**: the most attempts open at once over both dialers, and the most
  dials started in any window of the campaign's pacing, against its caps (each dialer alone
  would have allowed ``channels`` of its own);
- **which box dialled**: the INVITEs per box at the simulator (whichever dialer ticks first
  after a call ends takes the next contact: a share, not a rule);
- every survey completed, with its answers written (or every customer asked and refused).

The campaign is stopped on the way out, whatever happens. Numbers are drawn at random in a
test range (139 0078 …, 170 0078 … for the decliners) so that no earlier run's flags or daily
caps apply.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr
from sqlalchemy import func, select

from campaigns.tables import ALL_DAY
from ivr.tools.benchcampaigns import max_overlap
from ivr.tools.cluster import HOST_IP, Cluster
from ivr.tools.drillvoice import synthesized

ANSWERS_PER_SURVEY = 3  # CSAT, NPS, resolved (the keys customer's; consent is the ledger's)
RING_S = 20


@dataclass
class SurveyReport:
    contacts: int = 0
    channels: int = 0
    cps: float = 0.0
    seconds: float = 0.0
    attempts: int = 0
    dialled_twice: int = 0  # contacts with more than one attempt
    most_open: int = 0  # attempts open at once, every dialer together
    most_started_in_window: int = 0  # dials started within one pacing window
    rate_cap: int = 0  # what the pacing allows in that window
    per_box: dict[int, int] = field(default_factory=dict)  # INVITEs each box sent
    completed: int = 0
    refused: int = 0
    answers: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    # per attempt: seconds from the campaign's start to the dial, and the dial's length
    dials: list[tuple[float, float]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _numbers(n: int, rng: random.Random, *, answers: bool) -> list[str]:
    """``n`` numbers that answer the survey by keys (139…0) or ring and decline (170…5: the
    simulator's behaviours by number), unlike any earlier run's."""
    prefix, last = ("1390078", "0") if answers else ("1700078", "5")
    out: set[str] = set()
    while len(out) < n:
        out.add(f"{prefix}{rng.randrange(1000):03d}{last}")
    return sorted(out)


async def _hello(cl: Cluster) -> dict[str, Any]:
    """The customer's 喂，你好 rendered by the configured TTS, for the simulator."""
    from ivr.sim.customers import HELLO

    return {HELLO: await synthesized(cl.boxes[0], HELLO)}


async def survey_through_cluster(cl: Cluster, *, contacts: int = 6, channels: int = 2,
                                 cps: float = 1.0, answers: bool = True,
                                 timeout_s: float = 300.0,
                                 seed: int | None = None) -> SurveyReport:
    from campaigns import repo
    from campaigns.tables import Answer, Attempt, Campaign, Contact
    from ivr.core.storage.standalone import db_sessions
    from ivr.sim.customerproc import SimulatorProcess

    report = SurveyReport(contacts=contacts, channels=channels, cps=cps)
    a = cl.boxes[0].asterisk
    if a.carrier_host != HOST_IP:
        raise RuntimeError("the cluster was started without its dialers (dialers=True)")
    sim = SimulatorProcess(a, await _hello(cl), register=False, local_port=a.carrier_port,
                           local_host=HOST_IP)
    settings = cl.settings.model_copy(deep=True)
    settings.database.url = SecretStr(cl.pg_url)
    phones = _numbers(contacts, random.Random(seed), answers=answers)
    await sim.start()
    try:
        async with db_sessions(settings) as sessions:
            cid = await repo.create_campaign(
                sessions, name="集群回访演练", survey="satisfaction", line="gas", windows=ALL_DAY,
                max_attempts=1, max_channels=channels, calls_per_second=cps,
                settings={"ring_timeout_s": RING_S})
            await repo.import_contacts(sessions, cid, "phone\n" + "\n".join(phones) + "\n")
            t0 = time.monotonic()
            started = datetime.now(UTC)
            await repo.set_status(sessions, cid, "start")
            try:
                async with asyncio.timeout(timeout_s):
                    while True:
                        async with sessions() as s:
                            status = await s.scalar(
                                select(Campaign.status).where(Campaign.id == cid))
                        if status == "finished":
                            break
                        await asyncio.sleep(0.5)
            except TimeoutError:
                report.failures.append(f"the campaign was not finished after {timeout_s:.0f} s")
            finally:
                report.seconds = round(time.monotonic() - t0, 1)
                with contextlib.suppress(ValueError):  # finished: nothing left to stop
                    await repo.set_status(sessions, cid, "stop")
            async with sessions() as s:
                attempts = (await s.execute(select(Attempt).where(
                    Attempt.campaign_id == cid))).scalars().all()
                statuses = Counter((await s.execute(select(Contact.status).where(
                    Contact.campaign_id == cid))).scalars())
                report.answers = int(await s.scalar(select(func.count()).select_from(
                    Answer).where(Answer.campaign_id == cid)) or 0)
            campaign_window = max(1.0, 1.0 / cps)
        per_contact = Counter(x.contact_id for x in attempts)
        report.attempts = len(attempts)
        report.dialled_twice = sum(1 for n in per_contact.values() if n > 1)
        report.outcomes = dict(Counter(x.outcome for x in attempts))
        report.completed = statuses.get("completed", 0)
        report.refused = statuses.get("refused", 0)
        spans = [(x.started_at, x.ended_at or x.started_at) for x in attempts]
        report.most_open = max_overlap(spans)
        report.dials = sorted((round((a - started).total_seconds(), 1),
                               round((b - a).total_seconds(), 1)) for a, b in spans)
        starts = sorted(x.started_at for x in attempts)
        window = timedelta(seconds=campaign_window)
        report.most_started_in_window = max(
            (sum(1 for u in starts if t - window < u <= t) for t in starts), default=0)
        report.rate_cap = int(cps * campaign_window + 1e-9)
        sim_report = await sim.report()
        for host, n in sim_report.sources.items():
            box = cl.box_of(host)
            report.per_box[box] = report.per_box.get(box, 0) + n
        report.failures += [f"simulator: {e}" for e in sim_report.errors]
    finally:
        await sim.close()
    if report.dialled_twice or report.attempts != contacts:
        report.failures.append(f"{report.attempts} attempts for {contacts} contacts, "
                               f"{report.dialled_twice} dialled twice")
    if report.most_open > channels:
        report.failures.append(f"{report.most_open} calls open at once, cap {channels}")
    if report.most_started_in_window > report.rate_cap:
        report.failures.append(f"{report.most_started_in_window} dials in one pacing window, "
                               f"cap {report.rate_cap}")
    if answers and (report.completed < contacts
                    or report.answers < contacts * ANSWERS_PER_SURVEY):
        report.failures.append(f"{report.completed}/{contacts} surveys completed, "
                               f"{report.answers} answers")
    if not answers and report.refused < contacts:
        report.failures.append(f"{report.refused}/{contacts} customers asked and refused")
    return report
