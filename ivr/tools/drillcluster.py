"""``ivr drill cluster``: calls through Kamailio over two Asterisk boxes, then one box killed.

On the topology of ``ivr.tools.cluster`` (Kamailio, N boxes in namespaces, one worker each,
shared PostgreSQL and Redis), the test caller at 10.78.0.1 dials 956100 at Kamailio:

1. **spread**: ``calls`` keys callers (greeting heard, key 1, the oil menu heard, hang up),
   ``batch`` at a time. Which box took each call is where its audio came from (RTP flows
   straight between the caller and the box). Passes when every call was greeted and its key
   is in its record, and every box took some.
2. **speech on each box**: a spoken request (rendered by the configured TTS) on a call to
   each box must be recognised by that box's worker (a ``speech`` step with words).
3. **screen pop across workers**: a call on box 1 (worker 1) transferred to agent1, whose
   desktop is connected to worker 2: the pop must arrive there (``ivr.tools.drillclusterpop``).
4. **worker killed**: a caller at the oil menu on each box, then ``kill -9`` of worker 1.
   Worker 2 takes box 1's lease when it lapses (``ivr.calls.failover``) and resumes the caller
   at the menu from Redis; box 2's caller is untouched. Both then reach the queue with key 0
   (0 hang-ups). The replacement (``cluster.Supervisor``) stands by and gets box 1 back once
   no call is on it. Figures: kill to takeover, the caller's longest dead line, callers
   resumed, the replacement up, box 1 given back.
5. **box killed**: two callers held at the menu, then ``kill -9`` of box 1's Asterisk. From the
   kill, a new call every ``interval_s`` for ``after_s``. Figures: how long until Kamailio took
   the box out of the rotation (its OPTIONS probe); each new call's set-up time and box (one
   hashed to the dead box waits ``kamailio.failover_ms`` and goes to the next); what happened to
   the held callers (the one on the surviving box presses its key and is answered; the one on
   the dead box lost its media with the box: Asterisk holds it, nothing above can keep it).
   Passes when every new call was answered by a live box and greeted.
6. **box back**: box 1 started again; seconds until it is in the rotation again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any

from ivr.sim.demo import listen_until_quiet
from ivr.sim.sipua import SipCall, SipUserAgent, voiced_seconds
from ivr.tools.cluster import HOST_IP, Cluster

GREETING_S = 10.0  # listening to the greeting, at most
# voiced seconds that make a greeting: the greeting alone is about 1.5 s, and the listener stops
# at the first 1.2 s of quiet, which a busy machine may leave before the privacy notice
GREETED_S = 1.0
KEY_S = 2.0  # after the key, before hanging up: its menu step is in the record by then


@dataclass
class ClusterReport:
    calls: int = 0
    greeted: int = 0
    keyed: int = 0  # the key is in the call's record
    per_box: dict[int, int] = field(default_factory=dict)
    detect_s: float = -1.0  # kill -> the box out of Kamailio's rotation
    after_kill: int = 0
    after_kill_answered: int = 0  # by a live box, greeted
    setup_s: list[float] = field(default_factory=list)  # each call after the kill
    held_live_went_on: bool = False
    held_dead_heard_s: float = -1.0  # audio the caller on the dead box heard after the kill
    rejoin_s: float = -1.0  # box started again -> back in the rotation
    speech_heard: int = 0  # boxes whose spoken request was recognised (its record)
    # a call on box 1 (worker 1) pops on agent1's desktop connected to worker 2
    pop_across: bool = False
    ring_to_pop_ms: float | None = None
    # worker 1 killed with a caller at a menu on each box
    takeover_s: float = -1.0  # kill -> box 1's lease held by worker 2 (ivr.calls.failover)
    worker_resumed: int = 0  # callers on box 1 resumed at their question by worker 2
    worker_ready_s: float = -1.0  # kill -> its replacement up (standing by)
    # the replacement up and both held calls over -> box 1 served by the replacement again
    given_back_s: float = -1.0
    worker_dead_line_s: float = -1.0  # the box-1 caller's longest silence from the kill
    worker_went_on: int = 0  # held callers (both boxes) who then reached an agent's queue
    silent_hangups: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "setup_s"}
        s = sorted(self.setup_s)
        out["setup_s"] = {"max": round(s[-1], 2), "median": round(s[len(s) // 2], 2)} if s else {}
        return out


def _ua(cl: Cluster) -> SipUserAgent:
    a = cl.boxes[0].asterisk
    host, port = cl.front
    return SipUserAgent(server_host=host, server_port=port, username="caller",
                        password=a.caller_password.get_secret_value(), local_host=HOST_IP)


def _box(cl: Cluster, call: SipCall) -> int:
    remote = call.remote_media
    return cl.box_of(remote[0]) if remote else 0


async def _keys_call(cl: Cluster, ua: SipUserAgent, report: ClusterReport) -> None:
    call = await ua.call("956100")
    box = _box(cl, call)
    report.per_box[box] = report.per_box.get(box, 0) + 1
    _, voiced = await listen_until_quiet(call, max_s=GREETING_S)
    if voiced >= GREETED_S:
        report.greeted += 1
    await call.send_dtmf("1")  # keys cut the prompt short
    await asyncio.sleep(KEY_S)
    await call.hangup()


def _boxes_used(report: ClusterReport) -> set[int]:
    return {b for b, n in report.per_box.items() if b and n}


async def spread(cl: Cluster, report: ClusterReport, *, calls: int, batch: int) -> None:
    since = time.time()
    ua = _ua(cl)
    await ua.start()
    try:
        # the Call-ID hash may leave a box without calls in a short run: a few more rounds
        # until each box has taken one (at most five)
        extra = 0
        while report.calls < calls or (len(_boxes_used(report)) < len(cl.boxes) and extra < 5):
            extra += report.calls >= calls
            n = min(batch, calls - report.calls) if report.calls < calls else batch
            results = await asyncio.gather(*(_keys_call(cl, ua, report) for _ in range(n)),
                                           return_exceptions=True)
            report.failures += [f"call: {r!r}" for r in results if isinstance(r, BaseException)]
            report.calls += n
    finally:
        await ua.close()
    calls = report.calls
    rows = await cl.repo.all_closed_since(since, calls)
    report.keyed = sum(1 for r in rows if any(
        s["step"] == "menu" and s["detail"].get("choice") == "oil" for s in r.path))
    if report.greeted < calls or report.keyed < calls:
        report.failures.append(f"spread: {report.greeted} greeted, {report.keyed} keyed of "
                               f"{calls}")
    if len(_boxes_used(report)) < len(cl.boxes):
        report.failures.append(f"spread: calls per box {report.per_box}")


async def _held(cl: Cluster, ua: SipUserAgent, want: set[int], *, key: str | None = "1",
                listen_s: float = GREETING_S) -> dict[int, SipCall]:
    """Callers at the oil menu (``key``; None: at the main menu, its prompts heard out), one
    per box in ``want``. Calls are placed four at a time (answered at once; the box is where
    the audio comes from), one per box is kept and the rest hung up, so no kept caller waits
    on the others; at most five rounds."""
    held: dict[int, SipCall] = {}
    for _ in range(5):
        if want <= set(held):
            break
        for call in await asyncio.gather(*(ua.call("956100") for _ in range(4))):
            box = _box(cl, call)
            if box in want and box not in held:
                held[box] = call
            else:
                await call.hangup()
    calls = list(held.values())
    await asyncio.gather(*(listen_until_quiet(c, max_s=listen_s) for c in calls))
    if key is not None:
        for call in calls:
            await call.send_dtmf(key)
        await asyncio.sleep(KEY_S)
    return held


async def kill_box(cl: Cluster, report: ClusterReport, *, after_s: float,
                   interval_s: float) -> None:
    ua = _ua(cl)
    await ua.start()
    try:
        held = await _held(cl, ua, {1, 2})
        dead = cl.asterisks[0]
        dead_uri = cl.settings.kamailio.boxes[0]
        assert dead.proc is not None
        mark = {b: len(c.heard()) for b, c in held.items()}
        live_note = ["none held"]
        t_kill = time.monotonic()
        os.killpg(dead.proc.pid, signal.SIGKILL)

        async def watch() -> None:
            while time.monotonic() - t_kill < after_s + 10:
                with contextlib.suppress(Exception):
                    if not (await cl.kamailio.rotation()).get(dead_uri, True):
                        report.detect_s = round(time.monotonic() - t_kill, 2)
                        return
                await asyncio.sleep(0.1)

        async def live_goes_on() -> None:
            # the caller on the surviving box asks for an agent at once: its worker still
            # serves it (the announcement, then the queue)
            live = held.get(2)
            if live is None:
                return
            await asyncio.sleep(1.0)
            live_note[:] = [f"ended {live.ended}"]
            if live.ended:
                return
            await live.send_dtmf("0")
            _, voiced = await listen_until_quiet(live, max_s=GREETING_S)
            report.held_live_went_on = voiced >= 0.5 and not live.ended
            live_note.append(f"{voiced:.1f} s voiced after key 0, ended {live.ended}")

        async def new_call(i: int) -> None:
            await asyncio.sleep(i * interval_s)
            t = time.monotonic()
            call = await ua.call("956100")
            report.setup_s.append(time.monotonic() - t)
            box = _box(cl, call)
            _, voiced = await listen_until_quiet(call, max_s=GREETING_S)
            await call.hangup()
            if box > 1 and voiced >= GREETED_S:
                report.after_kill_answered += 1
            else:
                report.failures.append(f"call {i} after the kill: box {box}, {voiced:.1f} s "
                                       f"voiced")

        n = max(1, int(after_s / interval_s))
        report.after_kill = n
        results = await asyncio.gather(watch(), live_goes_on(),
                                       *(new_call(i) for i in range(n)), return_exceptions=True)
        report.failures += [f"after the kill: {r!r}" for r in results
                            if isinstance(r, BaseException)]
        if report.detect_s < 0:
            report.failures.append("the dead box never left the rotation")
        if 1 in held:
            report.held_dead_heard_s = round(voiced_seconds(held[1].heard(mark[1])), 1)
        if 2 in held and not report.held_live_went_on:
            report.failures.append("the caller held on the live box did not go on ("
                                   + ", ".join(live_note) + ")")
        # box 1 back: how long until Kamailio sends it calls again
        t_back = time.monotonic()
        await dead.start()
        while time.monotonic() - t_back < 30:
            if (await cl.kamailio.rotation()).get(dead_uri):
                report.rejoin_s = round(time.monotonic() - t_back, 1)
                break
            await asyncio.sleep(0.1)
        if report.rejoin_s < 0:
            report.failures.append("box 1 did not come back into the rotation in 30 s")
    finally:
        await ua.close()


async def _lease_holder(cl: Cluster, box: int, pid: int, *, t0: float, wait_s: float) -> float:
    """Seconds from ``t0`` until box ``box``'s lease (``ivr.calls.failover``) is held by the
    worker process ``pid``; -1 when not within ``wait_s``."""
    from ivr.calls.failover import BoxLeases
    from ivr.core.storage.redis_server import connect_redis

    redis = await connect_redis(cl.redis_url)
    try:
        while time.monotonic() - t0 < wait_s:
            holder = await redis.get(BoxLeases.owner_key(f"box{box}"))
            if holder is not None and str(holder).endswith(f":{pid}"):
                return round(time.monotonic() - t0, 1)
            await asyncio.sleep(0.1)
        return -1.0
    finally:
        await redis.aclose()


async def kill_worker(cl: Cluster, report: ClusterReport) -> None:
    """``kill -9`` of worker 1 with a caller at the oil menu on each box. Worker 2 takes box 1's
    lease when it lapses and resumes its caller at the menu from Redis; box 2's caller never
    notices. Both press 0 and must reach the queue (never hung up): box 2's a second after the
    kill, box 1's once resumed. Meanwhile the supervisor starts a replacement for worker 1,
    which stands by and gets box 1 back once no call is on it."""
    from ivr.tools.drillrestart import _resumed, longest_quiet

    ua = _ua(cl)
    await ua.start()
    since = time.time()
    try:
        held = await _held(cl, ua, {1, 2})
        worker, survivor = cl.workers[0], cl.workers[1]
        assert worker.proc is not None and survivor.proc is not None
        survivor_pid = survivor.proc.pid
        cl.supervisor.restarted.clear()
        t_kill = time.monotonic()
        os.kill(worker.proc.pid, signal.SIGKILL)

        async def to_queue(box: int, call: SipCall) -> None:
            await call.send_dtmf("0")
            await listen_until_quiet(call, max_s=GREETING_S)
            if call.ended:
                report.silent_hangups += 1
                raise RuntimeError(f"the caller on box {box} was hung up")
            report.worker_went_on += 1
            await call.hangup()

        async def box1() -> None:
            report.takeover_s = await _lease_holder(cl, 1, survivor_pid, t0=t_kill,
                                                    wait_s=60)
            if report.takeover_s < 0:
                raise RuntimeError("worker 2 did not take box 1 over")
            back = t_kill + report.takeover_s
            report.worker_resumed = await _resumed(cl.repo, since, 1)
            call = held[1]
            await listen_until_quiet(call, max_s=60)  # the apology and the menu again
            report.worker_dead_line_s = round(
                longest_quiet(call.receiver.loud_arrivals, t_kill, back), 1)
            await to_queue(1, call)

        async def box2() -> None:
            await asyncio.sleep(1.0)
            await to_queue(2, held[2])

        results = await asyncio.gather(*([box1()] if 1 in held else []),
                                       *([box2()] if 2 in held else []),
                                       return_exceptions=True)
        report.failures += [f"worker killed: {r!r}" for r in results
                            if isinstance(r, BaseException)]
        if report.worker_went_on < len(held) or report.worker_resumed < (1 in held):
            report.failures.append(f"worker killed: {report.worker_went_on}/{len(held)} went "
                                   f"on, {report.worker_resumed} resumed")
        # the replacement: up (standing by), then box 1 back once idle
        await asyncio.wait_for(cl.supervisor.restarted.wait(), 180)
        report.worker_ready_s = cl.supervisor.restarts[-1]["ready_s"]  # from its exit
        assert worker.proc is not None  # the replacement process
        t_idle = time.monotonic()
        back_s = await _lease_holder(cl, 1, worker.proc.pid, t0=t_idle, wait_s=30)
        report.given_back_s = back_s
        if back_s < 0:
            report.failures.append("box 1 was not given back to worker 1's replacement")
    finally:
        await ua.close()


async def cluster_drill(cl: Cluster, *, calls: int = 6, batch: int = 3, after_s: float = 6.0,
                        interval_s: float = 0.5, speech: bool = True,
                        echo: Any = print) -> ClusterReport:
    report = ClusterReport()
    await spread(cl, report, calls=calls, batch=batch)
    echo(f"  spread: {report.calls} calls, per box {report.per_box}, {report.greeted} greeted, "
         f"{report.keyed} keyed")
    from ivr.tools.drillclusterpop import pop_across, speech_on_each_box

    if speech:  # about 40 s here (the TTS loaded, the prompts heard out, the reply)
        report.speech_heard, failures = await speech_on_each_box(cl)
        report.failures += failures
        echo(f"  speech: a spoken request recognised on {report.speech_heard} boxes")
    pop = await pop_across(cl)
    report.pop_across, report.ring_to_pop_ms = pop.arrived, pop.ring_to_pop_ms
    report.failures += pop.failures
    echo(f"  screen pop of a call on worker 1 at a desktop on worker 2: "
         f"{'arrived' if pop.arrived else 'MISSING'}, ring to pop {pop.ring_to_pop_ms} ms")
    await kill_worker(cl, report)
    echo(f"  worker 1 killed: box 1 taken over by worker 2 in {report.takeover_s} s, "
         f"{report.worker_resumed} caller resumed (longest dead line "
         f"{report.worker_dead_line_s} s), {report.worker_went_on} callers went on, "
         f"{report.silent_hangups} hung up; the replacement up in {report.worker_ready_s} s, "
         f"box 1 given back to it {report.given_back_s} s after the calls")
    await kill_box(cl, report, after_s=after_s, interval_s=interval_s)
    s = report.summary()
    echo(f"  box 1 killed: out of the rotation in {report.detect_s:.1f} s; "
         f"{report.after_kill_answered}/{report.after_kill} new calls answered by box 2 "
         f"(set-up {s['setup_s']}); box back in the rotation in {report.rejoin_s} s")
    return report
