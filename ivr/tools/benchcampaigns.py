"""``ivr bench campaigns``: a survey campaign against the customer simulator, real Asterisk.

The stack runs in this process (as ``ivr up`` runs it, its in-server dialer included). The
customer simulator (``ivr/sim/customers.py``, in a process of its own: ``ivr/sim/customerproc.py``,
so the server's load does not shape the customers' RTP) registers as the ``customer`` trunk; each
number's last digit picks its behaviour (0 answers by keys, 1 busy, 2 no answer, 3 answering
machine, 5 hangs up mid-survey). The campaign's calling window opens a few seconds after the
campaign is started, so the wait from the window opening to the first dial is measured.

Figures: dials per second sustained (first to last dial), the most calls up at once, the share
of contacts completed, the CPU of this process (server, dialer, survey sessions), of the
simulated customers and of Asterisk, and window open -> first dial.
"""

from __future__ import annotations

import asyncio
import shlex
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import cast

import click
from aiohttp import web
from sqlalchemy import select

from campaigns import repo
from campaigns.carrier import Transcriber
from campaigns.dialer import Dialer
from campaigns.service import survey_originator
from campaigns.tables import Attempt, Campaign, Contact
from ivr.core.config import Settings
from ivr.sim.customerproc import SimulatorProcess
from ivr.sim.customers import ANNOUNCEMENT, HELLO, MACHINE_GREETING
from ivr.tools.benchvoice import asterisk_cpu_s
from ivr.web.keys import CALL_FACTORY, DIALER, PROMPT_CACHE, RECOGNIZER, SESSIONS

MIXES = {"keys": "0", "mixed": "00001235", "china": "01234567"}  # last digits, cycled
# china: numbers 170…: the network's early media (ivr/sim/customers.py), and what each should be
# (the row it is counted in, the outcome it must get)
CHINA_EXPECTED = {"0": ("vacant", "vacant"), "1": ("suspended", "suspended"),
                  "2": ("unreachable", "unreachable"), "3": ("busy", "busy"),
                  "4": ("person after 彩铃", "answered"),
                  "5": ("person after ring", "answered"),
                  "6": ("fake answer: 空号", "vacant"),
                  "7": ("silent person", "answered")}
CHINA_RING_S = 25
OPEN_AFTER_S = 8


@dataclass
class CampaignBench:
    contacts: int = 0
    dials: list[datetime] = field(default_factory=list)
    # dialed..ended, of the answered calls
    spans: list[tuple[datetime, datetime]] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    window_open: datetime | None = None
    # china mix: (row, expected, got, seconds from dial to the end of the attempt) per attempt
    china: list[tuple[str, str, str, float]] = field(default_factory=list)
    seconds: float = 0.0
    cpu_process_s: float = 0.0
    cpu_asterisk_s: float | None = None
    cpu_simulator_s: float = 0.0
    finished: bool = False


def max_overlap(spans: list[tuple[datetime, datetime]]) -> int:
    """The most spans open at once."""
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    up = best = 0
    for _, d in edges:
        up += d
        best = max(best, up)
    return best


async def bench_campaigns(app: web.Application, settings: Settings, *, contacts: int,
                          channels: int, cps: float, mix: str, timeout_s: float,
                          echo: Callable[[str], object] = print) -> CampaignBench:
    sessions = app[SESSIONS]
    report = CampaignBench(contacts=contacts)

    cache = app[PROMPT_CACHE]
    texts = (HELLO, MACHINE_GREETING, *(ANNOUNCEMENT.values() if mix == "china" else ()))
    voices = {text: await cache.get(text) for text in texts}
    # the customers' phones in their own process: the server's load must not shape their RTP
    sim = SimulatorProcess(settings.asterisk, voices, max_calls=channels * 2)
    await sim.start()
    # whole seconds: the window is stored as HH:MM:SS, so it opens at the second's start
    opens = (datetime.now(UTC) + timedelta(seconds=OPEN_AFTER_S)).replace(microsecond=0)
    local = opens.astimezone(repo.SHANGHAI)
    windows = {str(local.weekday()): [[local.strftime("%H:%M:%S"), "23:59:59"]]}
    cid = await repo.create_campaign(
        sessions, name=f"压测 {datetime.now(UTC):%H%M%S}", survey="satisfaction", line="gas",
        windows=windows, max_attempts=1, max_channels=channels, calls_per_second=cps,
        settings={"ring_timeout_s": CHINA_RING_S if mix == "china" else 5})
    digits = MIXES[mix]
    prefix = "170" if mix == "china" else "139"
    rows = "".join(f"{prefix}{cid % 1000:03d}{i % 10000:04d}{digits[i % len(digits)]}\n"
                   for i in range(contacts))
    loaded = await repo.import_contacts(sessions, cid, "phone\n" + rows)
    echo(f"campaign {cid}: {loaded.loaded} contacts, window opens at {local:%H:%M:%S}")
    await repo.set_status(sessions, cid, "start")
    own: tuple[Dialer, asyncio.Task[None]] | None = None
    if DIALER not in app:  # dialer.in_server off: run one here, as `ivr up` would
        recognizer = app.get(RECOGNIZER)
        originator = survey_originator(
            app[CALL_FACTORY], sessions, settings,
            recognizer=cast(Transcriber, recognizer) if recognizer is not None else None)
        await originator.start()
        dialer = Dialer(sessions, originator, tick_s=settings.dialer.tick_s, name="bench")
        own = (dialer, asyncio.create_task(dialer.run()))
    report.window_open = opens
    cpu0, ast0, t0 = time.process_time(), asterisk_cpu_s(app), time.monotonic()
    try:
        deadline = t0 + timeout_s
        while time.monotonic() < deadline:
            async with sessions() as s:
                status = await s.scalar(select(Campaign.status).where(Campaign.id == cid))
            if status == "finished":
                report.finished = True
                break
            await asyncio.sleep(1.0)
    finally:
        report.seconds = time.monotonic() - t0
        report.cpu_process_s = time.process_time() - cpu0
        ast1 = asterisk_cpu_s(app)
        report.cpu_asterisk_s = None if ast0 is None or ast1 is None else ast1 - ast0
        if own is not None:
            own[1].cancel()
            await asyncio.gather(own[1], return_exceptions=True)
        if not report.finished:
            await repo.set_status(sessions, cid, "stop")
        report.cpu_simulator_s = (await sim.close()).cpu_s
    async with sessions() as s:
        rows_ = (await s.execute(select(Contact.phone, Attempt).join(
            Attempt, Attempt.contact_id == Contact.id).where(Attempt.campaign_id == cid))).all()
        for phone, a in rows_:
            if mix == "china" and a.ended_at is not None:
                report.china.append((*CHINA_EXPECTED[phone[-1]], a.outcome,
                                     (a.ended_at - a.started_at).total_seconds()))
            report.dials.append(a.started_at)
            report.outcomes[a.outcome] += 1
            if a.answered_at and a.ended_at:
                report.spans.append((a.started_at, a.ended_at))
        report.statuses.update((await s.execute(
            select(Contact.status).where(Contact.campaign_id == cid))).scalars())
    return report


def print_campaign_bench(r: CampaignBench, command: str,
                         echo: Callable[[str], object] = print) -> None:
    echo(f"campaign bench: {r.contacts} contacts, {len(r.dials)} dials in {r.seconds:.0f} s"
         + ("" if r.finished else " (stopped at the time limit)"))
    if r.dials:
        first, last = min(r.dials), max(r.dials)
        span = (last - first).total_seconds()
        if span > 0:
            echo(f"  dials per second sustained (first to last dial): "
                 f"{(len(r.dials) - 1) / span:.2f}")
        if r.window_open is not None:
            echo(f"  window open -> first dial: {(first - r.window_open).total_seconds():.2f} s")
    echo(f"  most calls up at once: {max_overlap(r.spans)}")
    done = r.statuses.get("completed", 0)
    echo(f"  contacts completed: {done}/{r.contacts} ({100 * done / max(1, r.contacts):.1f}%); "
         f"statuses {dict(r.statuses)}; attempts {dict(r.outcomes)}")
    if r.seconds:
        ast = (f", Asterisk {r.cpu_asterisk_s:.0f} CPU s"
               if r.cpu_asterisk_s is not None else "")
        echo(f"  CPU: this process (server, dialer, survey calls) {r.cpu_process_s:.0f} CPU s "
             f"= {100 * r.cpu_process_s / r.seconds:.0f}% of one core{ast}, simulated "
             f"customers {r.cpu_simulator_s:.0f} CPU s")
    if r.china:
        print_china(r.china, echo)
    echo(f"  command: {command}")


def print_china(rows: list[tuple[str, str, str, float]],
                echo: Callable[[str], object]) -> None:
    """Each scene's share classified right, people taken for announcements, time to decide,
    and what classifying a vacant or suspended number saves."""
    by: dict[str, list[tuple[str, str, float]]] = {}
    for row, want, outcome, took in rows:
        by.setdefault(row, []).append((want, outcome, took))
    echo("  network (china mix):")
    for row, seen in sorted(by.items()):
        right = sum(g == w for w, g, _ in seen)
        secs = sorted(s for w, g, s in seen if g == w)
        median = f", dial to decision median {secs[len(secs) // 2]:.1f} s" if secs else ""
        echo(f"    {row:<20} {right}/{len(seen)} right "
             f"({100 * right / len(seen):.1f} %){median}; "
             f"got {dict(Counter(g for _, g, _ in seen))}")
    people = [g for _, w, g, _ in rows if w == "answered"]
    echo(f"    people taken for an announcement: "
         f"{sum(g in ('vacant', 'suspended', 'unreachable', 'busy') for g in people)}"
         f"/{len(people)}")
    dead = [s for _, w, g, s in rows if w in ("vacant", "suspended") and g == w]
    if dead:
        spent = sorted(dead)[len(dead) // 2]
        echo(f"    per vacant/suspended number: {spent:.1f} s of line time (median) instead of "
             f"{CHINA_RING_S} s of ringing on each of 3 attempts: {3 * CHINA_RING_S - spent:.0f} s "
             f"and 2 dial attempts saved (struck off after the first)")


@click.command("campaigns")
@click.option("--contacts", type=int, default=1000, show_default=True)
@click.option("--channels", type=int, default=30, show_default=True)
@click.option("--cps", type=float, default=5.0, show_default=True, help="Calls per second.")
@click.option("--mix", type=click.Choice(sorted(MIXES)), default="mixed", show_default=True,
              help="keys: every customer answers the survey by keys; mixed: also busy, no "
                   "answer, answering machine and hang-up mid-survey; china: the network's "
                   "announcements as early media (空号, 停机, 关机, 正在通话中), a coloured "
                   "ring-back and a ring-back tone before a customer, a fake answer then "
                   "号码不存在, a customer who answers in silence.")
@click.option("--timeout", "timeout_s", type=float, default=3600, show_default=True)
@click.pass_obj
def campaigns_cmd(settings: Settings, contacts: int, channels: int, cps: float, mix: str,
                  timeout_s: float) -> None:
    """A campaign against the simulated customers through the real Asterisk: dials per
    second, completion, CPU, window open -> first dial. Starts the whole stack in this process
    (stop `ivr up` first: they share the ports)."""
    from ivr.app.server import serve

    command = " ".join(shlex.quote(a) for a in ["ivr", *sys.argv[1:]])

    async def run(app: web.Application) -> int:
        report = await bench_campaigns(app, settings, contacts=contacts, channels=channels,
                                       cps=cps, mix=mix, timeout_s=timeout_s, echo=click.echo)
        print_campaign_bench(report, command, click.echo)
        return 0 if report.dials else 1

    def progress(msg: str) -> None:
        click.echo(msg, err=True)

    sys.exit(asyncio.run(serve(settings, progress=progress, then=run)))
