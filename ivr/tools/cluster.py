"""``ivr cluster up|down``: Kamailio in front of several Asterisk boxes and IVR workers, on one
machine, each box a host of its own.

The topology (development and drills; production runs the same pieces on separate hosts with
the same settings, README "Several boxes"):

- a private test link: a bridge ``ivr-cl-br`` at 10.78.0.1 on this host, and per Asterisk box a
  network namespace ``ivr-cl-aN`` joined to it by a veth pair, at 10.78.0.(10+N). SIP, RTP, ARI,
  AMI and FastAGI really cross hosts; nothing of it listens on loopback;
- **PostgreSQL and Redis**, one of each, shared by every worker (``DATABASE_URL`` /
  ``REDIS_URL``, else the embedded ones this process starts);
- **N Asterisk boxes**, each in its namespace (``asterisk.netns``, instance ``clN``);
- **N IVR workers**, each ``ivr up`` as its own process serving one box over ARI (web port
  8710+N, FastAGI 4580+N, the caller's audio at 10.78.0.1), call state in the shared Redis and
  records in the shared PostgreSQL. Each box has a lease in Redis (``ivr.calls.failover``):
  when a worker dies, the surviving worker takes its box and resumes its callers from Redis
  at their question; the dead worker is replaced at once (``Supervisor``, as systemd's
  Restart=always), and the replacement gets its box back once no call is on it;
- **Kamailio** at 10.78.0.1:5080 (``asterisk.kamailio``), dispatching new calls over the boxes
  and probing them.

Everything is owned by the ``Cluster`` context: on the way out (normal, error or Ctrl-C) the
workers, Kamailio and the boxes stop and the link and namespaces are removed. ``remove_link``
(``ivr cluster down``) removes what a killed run left.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from asterisk.kamailio import ManagedKamailio
from asterisk.runner import ManagedAsterisk
from ivr.core.config import FailoverPeer, FailoverSettings, Settings
from ivr.core.storage.calls import CallRepository
from ivr.tools.drillremote import remote_settings, run_ip
from ivr.tools.drillrestart import ServerProcess, drill_stack

PREFIX = "ivr-cl-"
BRIDGE = f"{PREFIX}br"
HOST_IP = "10.78.0.1"
MAX_BOXES = 8
WEB_PORT, AGI_PORT = 8710, 4580


def box_ip(n: int) -> str:
    return f"10.78.0.{10 + n}"


def _names(kind: str) -> list[str]:
    cmd = ["ip", "netns", "list"] if kind == "netns" else ["ip", "-o", "link", "show"]
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    if kind == "netns":
        return [line.split()[0] for line in out.splitlines() if line.startswith(PREFIX)]
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()
            if line.split(":")[1].strip().startswith(PREFIX)]


def remove_link() -> list[str]:
    """Remove every interface and namespace of ours (a run killed before its clean-up);
    returns what was removed."""
    gone = []
    for link in _names("link"):
        run_ip("link", "del", link, check=False)  # a veth takes its peer with it
        gone.append(link)
    for ns in _names("netns"):
        run_ip("netns", "del", ns, check=False)
        gone.append(ns)
    return gone


@contextlib.contextmanager
def cluster_link(boxes: int) -> Iterator[list[tuple[str, str]]]:
    """The bridge and one namespace per box, removed on the way out: yields (namespace,
    address) per box."""
    if not 1 <= boxes <= MAX_BOXES:
        raise ValueError(f"1 to {MAX_BOXES} Asterisk boxes, not {boxes}")
    remove_link()
    try:
        run_ip("link", "add", BRIDGE, "type", "bridge")
        run_ip("addr", "add", f"{HOST_IP}/24", "dev", BRIDGE)
        run_ip("link", "set", BRIDGE, "up")
        out = []
        for n in range(1, boxes + 1):
            ns, host_if, peer_if = f"{PREFIX}a{n}", f"{PREFIX}h{n}", f"{PREFIX}p{n}"
            run_ip("netns", "add", ns)
            run_ip("link", "add", host_if, "type", "veth", "peer", "name", peer_if)
            run_ip("link", "set", peer_if, "netns", ns)
            run_ip("link", "set", host_if, "master", BRIDGE)
            run_ip("link", "set", host_if, "up")
            run_ip("-n", ns, "addr", "add", f"{box_ip(n)}/24", "dev", peer_if)
            run_ip("-n", ns, "link", "set", peer_if, "up")
            run_ip("-n", ns, "link", "set", "lo", "up")
            out.append((ns, box_ip(n)))
        yield out
    finally:
        remove_link()


def worker_settings(settings: Settings, n: int, netns: str, ip: str, *,
                    dialers: bool = False) -> Settings:
    """Box ``n``'s Asterisk and the worker that serves it. ``dialers``: the worker runs its
    survey dialer, which dials out through its box's static ``carrier`` trunk to this host
    (where ``ivr.tools.drillclustersurvey`` puts the customer simulator)."""
    s = remote_settings(settings, netns, HOST_IP, ip, instance=f"cl{n}",
                        web_port=WEB_PORT + n)
    agi = s.agi.model_copy(update={"port": AGI_PORT + n})
    if not dialers:
        return s.model_copy(update={"agi": agi})
    return s.model_copy(update={
        "agi": agi,
        "asterisk": s.asterisk.model_copy(update={"carrier_host": HOST_IP}),
        "dialer": s.dialer.model_copy(update={"in_server": True, "endpoint": "carrier"})})


def with_failover(per_box: list[Settings], *, lease_s: float = 3.0) -> list[Settings]:
    """Each worker's own box (``boxN``) and every other box as its standby: a worker that
    dies leaves its box to a surviving worker (``ivr.calls.failover``)."""
    names = [f"box{n}" for n in range(1, len(per_box) + 1)]
    out = []
    for name, s in zip(names, per_box, strict=True):
        peers = [FailoverPeer(name=other, ari_url=b.asterisk.ari_url,
                              sounds_subdir=b.asterisk.sounds_subdir)
                 for other, b in zip(names, per_box, strict=True) if other != name]
        out.append(s.model_copy(update={"failover": FailoverSettings(
            box=name, standby=peers, lease_s=lease_s, renew_s=lease_s / 3)}))
    return out


def front_settings(settings: Settings, boxes: list[Settings]) -> Settings:
    """Kamailio on the link's host side, dispatching to ``boxes``."""
    k = settings.kamailio.model_copy(update={
        "listen_host": HOST_IP,
        "boxes": [f"sip:{b.asterisk.bind_host}:{b.asterisk.sip_port}" for b in boxes],
        "run_dir": settings.home / "kamailio-cluster"})
    return settings.model_copy(update={"kamailio": k})


class Supervisor:
    """Starts a replacement the moment a worker exits unasked (as systemd's Restart=always
    does in production). A surviving worker has taken the dead one's box over by then
    (``ivr.calls.failover``); the replacement stands by and gets its box back once idle."""

    RETRIES = 3

    def __init__(self, workers: list[ServerProcess], echo: Callable[[str], None]) -> None:
        self.workers = workers
        self.echo = echo
        self.stopping = False
        # per restart: the worker (1..N), how it ended, seconds from its exit to the new one ready
        self.restarts: list[dict[str, Any]] = []
        self.restarted = asyncio.Event()
        self._tasks = [asyncio.create_task(self._watch(n, w), name=f"supervise-worker{n}")
                       for n, w in enumerate(workers, 1)]

    async def _watch(self, n: int, w: ServerProcess) -> None:
        while not self.stopping and w.proc is not None:
            rc = await w.proc.wait()
            if self.stopping:
                return
            t = asyncio.get_running_loop().time()
            self.echo(f"  worker{n} exited ({rc}): starting a replacement")
            for attempt in range(1, self.RETRIES + 1):
                try:
                    await w.start()
                    break
                except RuntimeError as exc:
                    self.echo(f"  worker{n} replacement {attempt} failed: {exc}")
                    if attempt == self.RETRIES:
                        return
                    await asyncio.sleep(attempt)
            self.restarts.append({"worker": n, "exit": rc,
                                  "ready_s": round(asyncio.get_running_loop().time() - t, 2)})
            self.restarted.set()

    async def stop(self) -> None:
        self.stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@dataclass
class Cluster:
    """The running topology: what the drills and ``ivr cluster up`` hold."""

    settings: Settings  # Kamailio's section filled in
    boxes: list[Settings]  # per box: its Asterisk, and its worker's settings
    asterisks: list[ManagedAsterisk]
    workers: list[ServerProcess]
    kamailio: ManagedKamailio
    supervisor: Supervisor
    repo: CallRepository
    pg_url: str = ""
    redis_url: str = ""
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def front(self) -> tuple[str, int]:
        """Where callers send their INVITEs."""
        return self.settings.kamailio.listen_host, self.settings.kamailio.sip_port

    def box_of(self, address: str) -> int:
        """The box (1..N) at this address, 0 when none."""
        for n, b in enumerate(self.boxes, 1):
            if b.asterisk.bind_host == address:
                return n
        return 0

    def summary(self) -> dict[str, Any]:
        return {"front": f"{self.front[0]}:{self.front[1]}",
                "boxes": [b.asterisk.bind_host for b in self.boxes],
                "workers": [f"http://{b.web.host}:{b.web.port}" for b in self.boxes],
                "start_s": {k: round(v, 1) for k, v in self.timings.items()}}


@contextlib.asynccontextmanager
async def cluster(settings: Settings, *, boxes: int = 2, dialers: bool = False,
                  echo: Callable[[str], None] = print) -> AsyncIterator[Cluster]:
    """Start the topology (``boxes`` Asterisk boxes, one worker each; ``dialers``: each worker
    runs its survey dialer) and stop it all on exit."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    async with contextlib.AsyncExitStack() as stack:
        link = stack.enter_context(cluster_link(boxes))
        echo(f"  link: {HOST_IP} here, boxes at {', '.join(ip for _, ip in link)}")
        storage = settings.model_copy(update={"asterisk": settings.asterisk.model_copy(
            update={"managed": False})})
        pg_url, redis_url, repo = await stack.enter_async_context(drill_stack(storage))
        per_box = with_failover([worker_settings(settings, n, ns, ip, dialers=dialers)
                                 for n, (ns, ip) in enumerate(link, 1)])
        asterisks = [ManagedAsterisk(b) for b in per_box]
        for ast in asterisks:  # each stops on the way out, even when a later one fails
            stack.push_async_callback(ast.stop)
        await asyncio.gather(*(a.start() for a in asterisks))
        t_ast = loop.time()
        echo(f"  {boxes} Asterisk boxes up in {t_ast - t0:.1f} s")
        front = front_settings(settings, per_box)
        kam = ManagedKamailio(front.kamailio)
        stack.push_async_callback(kam.stop)
        await kam.start()
        workers = [ServerProcess(b, pg_url, redis_url, name=f"worker{n}")
                   for n, b in enumerate(per_box, 1)]
        for w in workers:
            stack.callback(w.close)
            stack.push_async_callback(w.stop)
        await asyncio.gather(*(w.start() for w in workers))
        supervisor = Supervisor(workers, echo)
        stack.push_async_callback(supervisor.stop)  # first on the way out: no restarts then
        echo(f"  {boxes} workers up in {loop.time() - t_ast:.1f} s; Kamailio at "
             f"{HOST_IP}:{front.kamailio.sip_port}")
        yield Cluster(settings=front, boxes=per_box, asterisks=asterisks, workers=workers,
                      kamailio=kam, supervisor=supervisor, repo=repo, pg_url=pg_url,
                      redis_url=redis_url,
                      timings={"asterisk": t_ast - t0, "total": loop.time() - t0})
