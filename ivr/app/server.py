"""``ivr up``: run the whole stack in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from ivr.app.build import build_app
from ivr.core.config import Settings

Then = Callable[[web.Application], Awaitable[int]]


async def serve(
    settings: Settings,
    *,
    progress: Callable[[str], None],
    then: Then | None = None,
    keep_serving: bool = False,
    app: web.Application | None = None,
    listen: bool = True,
) -> int:
    """Run the stack (``app``, else the whole server) until a signal. With ``then`` (a demo
    call, a benchmark), run it once the stack is up and return its exit status: then stop,
    unless ``keep_serving``. ``listen``: serve the web routes on ``settings.web``."""
    started = time.monotonic()
    app = app if app is not None else build_app(settings, progress=progress)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    rc = 0
    try:
        await runner.setup()  # runs the cleanup contexts: the whole stack starts here
        if listen:
            await web.TCPSite(runner, settings.web.host, settings.web.port).start()
        # what start-up made (models, catalogs, caches) lives as long as the process: out of
        # the collector's sight, a full collection no longer walks it (pauses of 100-190 ms
        # under 500 chats before, ``ivr bench chat``)
        gc.collect()
        gc.freeze()
        progress(f"stack up in {time.monotonic() - started:.1f} s; Ctrl-C (or `ivr down`) stops it")
        if then is not None:
            rc = await then(app)
            if not keep_serving:
                stop.set()
        await stop.wait()
        progress("stopping")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        with contextlib.suppress(Exception):
            await runner.cleanup()
    return rc
