"""``ivr cluster up|down|render`` and ``ivr drill cluster`` (the topology: ``ivr.tools.cluster``).

``up`` holds the topology in the foreground until Ctrl-C or ``ivr cluster down`` (SIGTERM to
the pid in ``<home>/cluster.json``), then stops it all and removes its namespaces. ``down``
also removes what a killed ``up`` left (interfaces and namespaces named ``ivr-cl-*``).
``render`` prints the Kamailio files for production from the settings' ``kamailio`` section.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click

from ivr.core.config import Settings


def _state(settings: Settings) -> Path:
    return settings.home / "cluster.json"


def _boxes(asterisk: int, workers: int) -> int:
    if asterisk != workers:
        raise click.BadParameter("each worker serves one Asterisk box in this version: give "
                                 "--workers equal to --asterisk")
    return asterisk


def _run_cluster(settings: Settings, boxes: int, echo: Callable[[str], None],
                 then: Callable[[Any], Awaitable[int]], *, dialers: bool = False) -> int:
    """Start the topology, run ``then`` on it, stop it all (also on SIGTERM / Ctrl-C)."""
    from ivr.tools.cluster import cluster

    async def run() -> int:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            async with cluster(settings, boxes=boxes, dialers=dialers, echo=echo) as cl:
                return await then(cl)
        except asyncio.CancelledError:
            echo("  stopped")
            return 0

    return asyncio.run(run())


@click.group("cluster")
def cluster_group() -> None:
    """Kamailio in front of several Asterisk boxes and IVR workers (see ivr/tools/cluster.py)."""


@cluster_group.command("up")
@click.option("--asterisk", "asterisk", type=click.IntRange(1, 8), default=2, show_default=True,
              help="Asterisk boxes, each in a network namespace of its own.")
@click.option("--workers", type=click.IntRange(1, 8), default=2, show_default=True,
              help="IVR workers (one per box).")
@click.pass_obj
def up_cmd(settings: Settings, asterisk: int, workers: int) -> None:
    """Start the topology on this machine and hold it until Ctrl-C or `ivr cluster down`
    (needs root: ip netns)."""
    boxes = _boxes(asterisk, workers)
    state = _state(settings)

    async def hold(cl: Any) -> int:
        summary = cl.summary()
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_text(json.dumps({"pid": os.getpid(), **summary}), encoding="utf-8")
        click.echo(json.dumps(summary, ensure_ascii=False, indent=2))
        click.echo(f"call 956100 at sip:{cl.front[0]}:{cl.front[1]} (user caller); "
                   "Ctrl-C or `ivr cluster down` stops it all")
        await asyncio.Event().wait()
        return 0

    try:
        rc = _run_cluster(settings, boxes, click.echo, hold)
    finally:
        state.unlink(missing_ok=True)
    raise SystemExit(rc)


@cluster_group.command("down")
@click.pass_obj
def down_cmd(settings: Settings) -> None:
    """Stop a running `ivr cluster up` and remove what a killed one left."""
    from ivr.tools.cluster import remove_link

    state = _state(settings)
    with contextlib.suppress(OSError, ValueError, KeyError):
        pid = int(json.loads(state.read_text(encoding="utf-8"))["pid"])
        os.kill(pid, signal.SIGTERM)
        click.echo(f"asked `ivr cluster up` (pid {pid}) to stop")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
    gone = remove_link()
    click.echo(f"removed {', '.join(gone)}" if gone else "nothing of the cluster left")


@cluster_group.command("render")
@click.option("--box", "boxes", multiple=True, metavar="SIP_URI",
              help="An Asterisk box (sip:10.0.0.11:5060); default: kamailio.boxes.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write the files into this folder (default: print them).")
@click.pass_obj
def render_cmd(settings: Settings, boxes: tuple[str, ...], out: Path | None) -> None:
    """Kamailio's configuration and dispatcher list for production, from the settings."""
    from asterisk.kamailio import KamailioError, render_kamailio

    k = settings.kamailio
    if boxes:
        k = k.model_copy(update={"boxes": list(boxes)})
    try:
        files = render_kamailio(k)
    except KamailioError as exc:
        raise click.ClickException(str(exc)) from exc
    for name, text in files.items():
        if out is None:
            click.echo(f"# ---- {name}\n{text}")
        else:
            out.mkdir(parents=True, exist_ok=True)
            (out / name).write_text(text, encoding="utf-8")
            click.echo(f"wrote {out / name}")


@click.command("cluster")
@click.option("--calls", type=click.IntRange(2, 200), default=6, show_default=True,
              help="Keys callers spread over the boxes.")
@click.option("--after", "after_s", type=click.FloatRange(1, 60), default=6.0,
              show_default=True, help="Seconds of new calls after box 1 is killed.")
@click.option("--load", "load_calls", type=click.IntRange(0, 1000), default=0, show_default=True,
              help="First, SIPp keys callers through Kamailio on one box, then on two (0: none).")
@click.option("--rate", type=click.FloatRange(0.1, 50), default=5.0, show_default=True,
              help="SIPp calls a second for --load.")
@click.option("--listen", "listen_s", type=click.FloatRange(1, 120), default=4.0,
              show_default=True, help="--load: seconds of prompts before the key 0.")
@click.option("--hold", "hold_s", type=click.FloatRange(0, 300), default=2.0, show_default=True,
              help="--load: seconds in the queue before hanging up.")
@click.option("--survey", "survey_contacts", type=click.IntRange(0, 500), default=6,
              show_default=True, help="First, a survey campaign of this many customers worked "
              "by both workers' dialers (0: none).")
@click.option("--survey-channels", type=click.IntRange(1, 100), default=2, show_default=True,
              help="--survey: the campaign's cap on calls at once (over both dialers).")
@click.option("--survey-cps", type=click.FloatRange(0.1, 20), default=1.0, show_default=True,
              help="--survey: the campaign's cap on dials a second (over both dialers).")
@click.option("--json", "as_json", is_flag=True, help="One JSON summary on stdout.")
@click.pass_obj
def drill_cluster_cmd(settings: Settings, calls: int, after_s: float, load_calls: int,
                      rate: float, listen_s: float, hold_s: float, survey_contacts: int,
                      survey_channels: int, survey_cps: float, as_json: bool) -> None:
    """Two Asterisk boxes behind Kamailio: a survey campaign by two dialers, calls spread, then
    one box killed (needs root)."""
    from ivr.tools.drill import _finish
    from ivr.tools.drillcluster import cluster_drill
    from ivr.tools.drillclusterload import compare_load
    from ivr.tools.drillclustersurvey import survey_through_cluster

    echo = (lambda _m: None) if as_json else click.echo
    summary: dict[str, Any] = {}

    async def drill(cl: Any) -> int:
        load = (await compare_load(cl, calls=load_calls, rate=rate, listen_s=listen_s,
                                   hold_s=hold_s, echo=echo)
                if load_calls else None)
        survey = None
        if survey_contacts:
            survey = await survey_through_cluster(cl, contacts=survey_contacts,
                                                  channels=survey_channels, cps=survey_cps)
            echo(f"  survey: {survey.contacts} customers in {survey.seconds} s by two dialers: "
                 f"{survey.attempts} dials ({survey.dialled_twice} twice), per box "
                 f"{survey.per_box}; at most {survey.most_open} open (cap {survey.channels}), "
                 f"{survey.most_started_in_window} started in a pacing window (cap "
                 f"{survey.rate_cap}); {survey.completed} completed, {survey.answers} answers")
        report = await cluster_drill(cl, calls=calls, after_s=after_s, echo=echo)
        failures = report.failures + (survey.failures if survey else [])
        summary["cluster"] = {**report.summary(), "topology": cl.summary(), "load": load,
                              "survey": survey.summary() if survey else None}
        for failure in failures:
            echo(f"  {failure}")
        echo("cluster: " + ("passed" if not failures else "FAILED"))
        return 0 if not failures else 1

    _finish(_run_cluster(settings, 2, echo, drill, dialers=bool(survey_contacts)), summary,
            as_json)


def register(main: click.Group, drill_group: click.Group) -> None:
    main.add_command(cluster_group)
    drill_group.add_command(drill_cluster_cmd)
