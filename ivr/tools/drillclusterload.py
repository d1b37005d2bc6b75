"""``ivr drill cluster --load N``: the same SIPp load through Kamailio on one box, then on two.

SIPp (``ivr/sim/sipp/keys.xml``, as ``ivr drill load``) sends N keys callers at a rate to
Kamailio at 10.78.0.1. First box 2 is taken out of the rotation (``dispatcher.set_state d``),
so box 1 and its worker take every call; then both boxes are in and the Call-ID hash spreads
them. Per phase: calls SIPp saw through, completed calls a second, set-up time (INVITE to
answer, p50/p95), and the CPU of each worker and each Asterisk over the run (share of one
core, from /proc), and each worker's event-loop lag (the worst p95 and maximum of its
/metrics, read every second). The ratio is completed calls a second on two boxes over one,
measured in the same run on the same machine: on this 2-core machine every process shares the
same two cores, so the ratio is bound by CPU; what scales on separate hosts is the busiest
process's share, which the split halves.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

import aiohttp

from ivr.tools.benchvoice import process_cpu_s
from ivr.tools.cluster import HOST_IP, Cluster
from ivr.tools.drillload import _percentile, run_sipp


def _cpu_s(pid: int | None) -> float:
    return (process_cpu_s(pid) or 0.0) if pid is not None else 0.0


def _pids(cl: Cluster) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for n, w in enumerate(cl.workers, 1):
        out[f"worker{n}"] = w.proc.pid if w.proc is not None else None
    for n, a in enumerate(cl.asterisks, 1):
        out[f"asterisk{n}"] = a.proc.pid if a.proc is not None else None
    return out


LAG_RE = re.compile(r'ivr_event_loop_lag_seconds\{quantile="(0\.95|1)"\} ([0-9.]+)')


async def _lag_sampler(cl: Cluster, stop: asyncio.Event) -> dict[str, dict[str, float]]:
    """Each worker's event-loop lag (its /metrics: p95 and max over its last 10 s), read every
    second until ``stop``: the worst of each, in ms."""
    worst: dict[str, dict[str, float]] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while not stop.is_set():
            for n, b in enumerate(cl.boxes, 1):
                url = f"http://{b.web.host}:{b.web.port}/metrics"
                auth = {"Authorization": f"Bearer {b.web.metrics_token.get_secret_value()}"}
                try:
                    async with http.get(url, headers=auth) as r:
                        text = await r.text()
                except (aiohttp.ClientError, TimeoutError):
                    continue  # a worker being replaced: no figure this second
                w = worst.setdefault(f"worker{n}", {"p95_ms": 0.0, "max_ms": 0.0})
                for q, v in LAG_RE.findall(text):
                    key = "p95_ms" if q == "0.95" else "max_ms"
                    w[key] = max(w[key], round(float(v) * 1000, 1))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
    return worst


async def _set_state(cl: Cluster, uri: str, state: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        "/usr/sbin/kamcmd", "-s", f"unix:{cl.kamailio.paths['ctl']}", "dispatcher.set_state",
        state, "1", uri, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"kamcmd dispatcher.set_state {state} {uri}: {out.decode()}")


async def compare_load(cl: Cluster, *, calls: int, rate: float, listen_s: float = 4.0,
                       hold_s: float = 2.0, echo: Any = print) -> dict[str, Any]:
    uris = cl.settings.kamailio.boxes
    a = cl.boxes[0].asterisk
    out: dict[str, Any] = {"calls": calls, "rate": rate}
    for label, active in (("one_box", uris[:1]), ("two_boxes", uris)):
        for uri in uris:
            await _set_state(cl, uri, "ap" if uri in active else "d")
        pids = _pids(cl)
        cpu0 = {k: _cpu_s(p) for k, p in pids.items()}
        stop = asyncio.Event()
        sampler = asyncio.create_task(_lag_sampler(cl, stop), name="lag-sampler")
        try:
            run = await run_sipp(a.root_dir, target=cl.front, local_ip=HOST_IP,
                                 password=a.caller_password.get_secret_value(), calls=calls,
                                 rate=rate, listen_s=listen_s, hold_s=hold_s)
        finally:
            stop.set()
            lag = await sampler
        cpu = {k: round((_cpu_s(p) - cpu0[k]) / run.seconds, 2) for k, p in pids.items()}
        phase = {"passed": run.ok, "failed": run.failed, "seconds": round(run.seconds, 1),
                 "calls_per_s": round(run.ok / run.seconds, 2) if run.seconds else 0.0,
                 "most_at_once": run.most_at_once,
                 "setup_ms_p50": round(_percentile(run.setup_ms, 0.5)),
                 "setup_ms_p95": round(_percentile(run.setup_ms, 0.95)),
                 "cpu_share": cpu, "loop_lag": lag, "notes": run.notes}
        out[label] = phase
        echo(f"  load on {label.replace('_', ' ')}: {run.ok}/{calls} through, "
             f"{phase['calls_per_s']} calls/s, set-up p95 {phase['setup_ms_p95']} ms, "
             f"CPU {cpu}, event-loop lag {lag}")
    for uri in uris:
        await _set_state(cl, uri, "ap")
    one, two = out["one_box"]["calls_per_s"], out["two_boxes"]["calls_per_s"]
    out["ratio"] = round(two / one, 2) if one else None
    busiest = [max(v for k, v in out[p]["cpu_share"].items() if k.startswith("worker"))
               for p in ("one_box", "two_boxes")]
    out["busiest_worker_cpu"] = {"one_box": busiest[0], "two_boxes": busiest[1]}
    echo(f"  throughput two boxes / one: {out['ratio']}; busiest worker's CPU "
         f"{busiest[0]} -> {busiest[1]} of a core")
    return out
