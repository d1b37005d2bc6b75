"""How late the event loop runs: a 100 ms timer's lateness, sampled all the time.

What breaks first in a Python server under load is its event loop: a key or a frame of audio
is acted on as late as the loop is behind. ``LoopLag.run`` (an owned task of the server) sleeps
100 ms again and again and keeps how late each wake-up came, over the last ``WINDOW`` samples
(10 s; a bounded deque, the oldest dropped). ``/metrics`` reports the window's p95 and
maximum (``ivr_event_loop_lag_seconds``); ``ivr drill cluster --load`` reads them per worker.
"""

from __future__ import annotations

import asyncio
from collections import deque

TICK_S = 0.1
WINDOW = 100  # samples: the last 10 s


class LoopLag:
    def __init__(self, window: int = WINDOW) -> None:
        self.samples: deque[float] = deque(maxlen=window)  # seconds late, newest last

    def quantile(self, q: float) -> float:
        """The lateness at quantile ``q`` (0..1) of the window; 0.0 before any sample."""
        if not self.samples:
            return 0.0
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def lines(self) -> list[str]:
        name = "ivr_event_loop_lag_seconds"
        return [f"# HELP {name} how late a {TICK_S:g} s timer fired, over the last "
                f"{self.samples.maxlen or 0} samples",
                f"# TYPE {name} gauge",
                f'{name}{{quantile="0.95"}} {self.quantile(0.95):.4f}',
                f'{name}{{quantile="1"}} {max(self.samples, default=0.0):.4f}']

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(TICK_S)
            self.samples.append(max(0.0, loop.time() - t - TICK_S))
