"""Rate limit of the agent desktop's login: failed attempts per agent name and per client
address in a sliding window (``handoff.login_max_failures`` in ``handoff.login_window_s``).

Once either key has reached the limit, logins for it are refused with 429 (even with the right
password) until its oldest failure leaves the window. A successful login clears the agent's
failures (not the address's). Memory is bounded: at most ``MAX_KEYS`` keys are tracked; beyond
that the key seen least recently is forgotten (an attacker cycling through many names gets
caught by the per-address key anyway).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_KEYS = 10_000


class LoginLimiter:
    def __init__(self, max_failures: int, window_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self.refused = 0  # logins answered 429

    def _recent(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def retry_after(self, *keys: str) -> int:
        """Seconds until a login for these keys is allowed again (0: allowed now)."""
        now = self.clock()
        wait = 0.0
        for key in keys:
            times = self._recent(key, now)
            if times is not None and len(times) >= self.max_failures:
                wait = max(wait, times[-self.max_failures] + self.window_s - now)
        if wait > 0:
            self.refused += 1
        return math.ceil(wait)

    def failed(self, *keys: str) -> None:
        now = self.clock()
        for key in keys:
            times = self._failures.setdefault(key, deque(maxlen=self.max_failures))
            times.append(now)
            self._failures.move_to_end(key)
        while len(self._failures) > MAX_KEYS:
            self._failures.popitem(last=False)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)
