"""``ivr up``: run the whole stack in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from ivr.app.build import build_app
from ivr.core.config import Settings

# the demo call: self-service by keys (oil line, balance, the demo card and its PIN)
DEMO_KEYS = ["1", "1", "9001010000012345678#", "123456#"]


async def serve(
    settings: Settings,
    *,
    progress: Callable[[str], None],
    demo: bool = False,
    exit_after_demo: bool = False,
    then: Callable[[web.Application], Awaitable[int]] | None = None,
) -> int:
    """Run the stack; with ``then`` (a benchmark), run it once the stack is up, then stop and
    return its exit status."""
    started = time.monotonic()
    app = build_app(settings, progress=progress)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    rc = 0
    try:
        await runner.setup()  # runs the cleanup contexts: the whole stack starts here
        site = web.TCPSite(runner, settings.web.host, settings.web.port)
        await site.start()
        progress(f"stack up in {time.monotonic() - started:.1f} s; Ctrl-C (or `ivr down`) stops it")
        if demo:
            from ivr.sim.demo import demo_call, print_report

            report = await demo_call(settings, number="956100", keys=DEMO_KEYS)
            print_report(report, print)
            rc = 0 if report.ok else 1
            if exit_after_demo:
                stop.set()
        if then is not None:
            rc = await then(app)
            stop.set()
        await stop.wait()
        progress("stopping")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        with contextlib.suppress(Exception):
            await runner.cleanup()
    return rc
