"""The event loop's lateness (ivr/core/looplag.py): a bounded window, its p95 and maximum as
Prometheus lines, and a blocked loop seen as late."""

from __future__ import annotations

import asyncio
import contextlib
import time

from ivr.core.looplag import LoopLag


def test_window_is_bounded_and_quantiles_read_it() -> None:
    lag = LoopLag(window=10)
    assert lag.quantile(0.95) == 0.0 and 'quantile="1"} 0.0000' in "\n".join(lag.lines())
    for i in range(25):
        lag.samples.append(i / 1000)
    assert len(lag.samples) == 10 and lag.quantile(0.0) == 0.015
    text = "\n".join(lag.lines())
    assert 'ivr_event_loop_lag_seconds{quantile="0.95"} 0.0240' in text
    assert 'ivr_event_loop_lag_seconds{quantile="1"} 0.0240' in text


async def test_a_blocked_loop_is_seen_late() -> None:
    lag = LoopLag()
    task = asyncio.create_task(lag.run())
    await asyncio.sleep(0.25)
    time.sleep(0.3)  # noqa: ASYNC251 - the point: the loop blocked, the next wake-up late
    await asyncio.sleep(0.25)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert max(lag.samples) >= 0.15
