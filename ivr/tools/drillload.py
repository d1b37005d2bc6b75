"""``ivr drill load``: many keys callers at once, from SIPp, through the real Asterisk.

SIPp (``sip-tester``, in the Asterisk root) runs ``ivr/sim/sipp/keys.xml``: each caller dials
956100 with digest auth, hears the greeting and the menu (cached prompts), presses 0 and waits
in the agent queue on hold music, then hangs up. Up to N calls at once, placed at a given rate.
A call passes when SIPp saw it through (no hang-up from our side, every response in time) and
its record shows the key taken and nothing failed (with no agent logged in, the caller is
offered a callback while it waits; SIPp's caller hangs up at the end of its hold either way);
callers beyond ``calls.capacity`` are sent straight to the queue (``dialog.overload``) and count
as passed, shed.

Figures: calls up at once (most), passed/failed, shed; setup time (INVITE to answer, SIPp's
response time); this server's CPU (share of one core) and memory, Asterisk's CPU; the event
loop's lag (how late a 100 ms timer fires: what breaks first in a Python server). Traffic stays
on loopback; the run is bounded by the number of calls and a deadline.

SIPp's callers send no audio but the key (like a muted phone), so the recogniser has silence to
listen to; speech load is ``ivr bench voice``.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import resource
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from ivr.core.config import Settings
from ivr.tools.benchvoice import asterisk_cpu_s, rss_kib

SCENARIO = Path(__file__).resolve().parent.parent / "sim" / "sipp" / "keys.xml"
SIPP_PORT = 25060  # SIPp's own SIP port on loopback
RTP_PORTS = (30000, 34000)  # SIPp's media ports (two per call)


@dataclass
class LoadReport:
    calls: int = 0
    passed: int = 0
    failed: int = 0
    shed: int = 0
    most_at_once: int = 0  # sessions in the IVR at once (a caller in a queue has left it)
    sip_most_at_once: int = 0  # calls up at once, SIPp's count
    sipp_ok: int = 0
    sipp_failed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    setup_ms_p50: float | None = None
    setup_ms_p95: float | None = None
    cpu_share: float = 0.0  # this server's CPU over the run, in cores
    cpu_share_peak: float = 0.0  # the busiest second
    asterisk_cpu_share: float = 0.0
    rss_mb_start: float = 0.0
    rss_mb_peak: float = 0.0
    loop_lag_ms_p95: float = 0.0
    loop_lag_ms_max: float = 0.0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        for k, v in out.items():
            if isinstance(v, float):
                out[k] = round(v, 2)
        return out


def _rss_mb() -> float:
    """This process's resident memory."""
    return (rss_kib(os.getpid()) or 0) / 1024


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def _sample(app: web.Application, report: LoadReport, stop: asyncio.Event) -> list[float]:
    """Once a second: calls up, CPU, memory; every 100 ms: the loop's lag."""
    from ivr.web.keys import CALLS

    manager = app[CALLS]
    lags: list[float] = []
    last_t, last_cpu = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
    tick = 0
    while not stop.is_set():
        t = time.monotonic()
        await asyncio.sleep(0.1)
        lags.append((time.monotonic() - t - 0.1) * 1000)
        report.most_at_once = max(report.most_at_once, manager.active)
        tick += 1
        if tick % 10 == 0:
            now, cpu = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
            used = (cpu.ru_utime + cpu.ru_stime) - (last_cpu.ru_utime + last_cpu.ru_stime)
            report.cpu_share_peak = max(report.cpu_share_peak, used / (now - last_t))
            last_t, last_cpu = now, cpu
            report.rss_mb_peak = max(report.rss_mb_peak, _rss_mb())
    return lags


def _sipp_stats(path: Path) -> list[dict[str, str]]:
    """The rows of SIPp's statistics file (``-trace_stat``: ``;``-separated, one a second)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            rows = list(csv.reader(f, delimiter=";"))
    except OSError:
        return []
    return [dict(zip(rows[0], row, strict=False)) for row in rows[1:]]


def _setup_ms(work: Path) -> list[float]:
    """Every call's INVITE-to-answer time (``-trace_rtt``: ``date;ms;rtd``), in milliseconds."""
    out: list[float] = []
    for path in work.glob("*_rtt.csv"):
        for row in csv.reader(path.read_text(errors="replace").splitlines()[1:], delimiter=";"):
            with contextlib.suppress(IndexError, ValueError):
                out.append(float(row[1]))
    return out


@dataclass
class SippRun:
    """What SIPp saw of one run of ``keys.xml``."""

    ok: int = 0
    failed: int = 0
    most_at_once: int = 0
    setup_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


async def run_sipp(root: Path, *, target: tuple[str, int], local_ip: str, password: str,
                   calls: int, rate: float, listen_s: float, hold_s: float) -> SippRun:
    """Run SIPp (in the Asterisk root) against ``target``: ``calls`` keys callers at ``rate``
    a second from ``local_ip``; bounded by the calls' own length plus a minute."""
    if not (root / "usr/bin/sipp").exists():
        raise RuntimeError(f"SIPp is not in the Asterisk root {root}: `ivr doctor --fix`")
    work = root / "tmp" / "ivr-load"
    work.mkdir(parents=True, exist_ok=True)
    for old in work.iterdir():
        old.unlink()
    scenario = SCENARIO.read_text(encoding="utf-8")
    scenario = scenario.replace("@@LISTEN_MS@@", str(int(listen_s * 1000)))
    scenario = scenario.replace("@@HOLD_MS@@", str(int(hold_s * 1000)))
    (work / "keys.xml").write_text(scenario, encoding="utf-8")
    deadline_s = calls / rate + listen_s + hold_s + 60
    # in the scenario's folder: SIPp writes its per-call times (-trace_rtt) where it runs
    cmd = ["chroot", str(root), "sh", "-c", 'cd /tmp/ivr-load && exec "$@"', "sipp",
           "sipp", f"{target[0]}:{target[1]}",
           "-sf", "/tmp/ivr-load/keys.xml", "-s", "956100",
           "-au", "caller", "-ap", password,
           "-i", local_ip, "-p", str(SIPP_PORT), "-mi", local_ip,
           "-min_rtp_port", str(RTP_PORTS[0]), "-max_rtp_port", str(RTP_PORTS[1]),
           "-m", str(calls), "-l", str(calls), "-r", str(rate),
           "-trace_stat", "-stf", "/tmp/ivr-load/stat.csv", "-fd", "1",
           "-trace_rtt", "-rtt_freq", "1",
           "-trace_err", "-error_file", "/tmp/ivr-load/errors.log",
           "-timeout", f"{int(deadline_s)}s", "-nostdin"]
    out = SippRun()
    t0 = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), deadline_s + 30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        err = b""
        out.notes.append("SIPp passed its deadline and was stopped")
    out.seconds = time.monotonic() - t0
    if proc.returncode not in (0, 1):
        out.notes.append(f"SIPp exited {proc.returncode}: "
                         f"{err.decode(errors='replace').strip()[-300:]}")
    stats = _sipp_stats(work / "stat.csv")
    last = stats[-1] if stats else {}
    out.ok = int(last.get("SuccessfulCall(C)", 0) or 0)
    out.failed = int(last.get("FailedCall(C)", 0) or 0)
    out.most_at_once = max((int(r.get("CurrentCall", 0) or 0) for r in stats), default=0)
    out.setup_ms = _setup_ms(work)
    errors = work / "errors.log"
    if errors.exists() and errors.stat().st_size:
        out.notes.append("SIPp errors (first lines): " + " | ".join(
            errors.read_text(errors="replace").splitlines()[:3]))
    return out


async def load(app: web.Application, settings: Settings, *, calls: int, rate: float,
               listen_s: float, hold_s: float, echo: Any = print) -> LoadReport:
    from ivr.web.keys import CALLS, REPO

    a = settings.asterisk
    report = LoadReport(calls=calls)
    manager, repo = app[CALLS], app[REPO]
    shed_before = manager.shed_calls
    ast_cpu0 = asterisk_cpu_s(app)
    report.rss_mb_start = _rss_mb()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    since, t0 = time.time(), time.monotonic()
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample(app, report, stop), name="load-sampler")
    echo(f"  SIPp: {calls} calls at {rate:g}/s, each {listen_s:g} s of prompts, the key 0, "
         f"{hold_s:g} s in the queue")
    try:
        run = await run_sipp(a.root_dir, target=(a.bind_host, a.sip_port), local_ip="127.0.0.1",
                             password=a.caller_password.get_secret_value(), calls=calls,
                             rate=rate, listen_s=listen_s, hold_s=hold_s)
    finally:
        stop.set()
        lags = await sampler
    report.seconds = time.monotonic() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    report.cpu_share = ((cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)) \
        / report.seconds
    ast_cpu1 = asterisk_cpu_s(app)
    if ast_cpu0 is not None and ast_cpu1 is not None:
        report.asterisk_cpu_share = (ast_cpu1 - ast_cpu0) / report.seconds
    report.loop_lag_ms_p95 = _percentile(lags, 0.95)
    report.loop_lag_ms_max = max(lags, default=0.0)
    report.notes += run.notes
    report.sipp_ok, report.sipp_failed = run.ok, run.failed
    report.sip_most_at_once = run.most_at_once
    if run.setup_ms:
        report.setup_ms_p50 = _percentile(run.setup_ms, 0.5)
        report.setup_ms_p95 = _percentile(run.setup_ms, 0.95)
    report.shed = manager.shed_calls - shed_before
    await _tally(repo, since, report)
    return report


def _went_through(path: list[dict[str, Any]]) -> bool:
    """The key was taken (the menu's agent choice), or the caller was shed to the queue at
    capacity; and nothing failed on the way."""
    steps = [(st.get("step"), st.get("detail") or {}) for st in path]
    if any(step in ("error", "failover") for step, _ in steps):
        return False
    return any(step == "overload" or (step == "menu" and d.get("choice") == "agent")
               for step, d in steps)


async def _tally(repo: Any, since: float, report: LoadReport) -> None:
    """Outcomes of the drill's calls from their records, once they are all closed. A call
    passed when SIPp saw it through and its record says it went where the key sent it."""
    rows = await repo.all_closed_since(since, report.calls, wait_s=20.0)
    report.outcomes = dict(Counter(str(r.outcome) for r in rows))
    through = sum(1 for r in rows if _went_through(r.path))
    report.passed = min(report.sipp_ok, through)
    report.failed = report.calls - report.passed
