"""Token buckets for the public web chat: per browser connection and per client address.

A bucket holds ``burst`` tokens and refills at ``per_minute``; a request takes one or is
refused. ``Buckets`` keeps one per key (a client address) in a bounded LRU (``MAX_KEYS``): an
address not seen for a while loses its bucket and starts full again, and a flood of addresses
cannot grow memory without bound. Behind a reverse proxy every customer shares its address:
raise ``chat.new_chats_*`` there, or rate-limit at the proxy.
"""

from __future__ import annotations

import time
from collections import OrderedDict

MAX_KEYS = 10_000


class TokenBucket:
    __slots__ = ("burst", "rate_s", "tokens", "updated")

    def __init__(self, burst: int, per_minute: float) -> None:
        self.burst = float(burst)
        self.rate_s = per_minute / 60.0
        self.tokens = float(burst)
        self.updated = time.monotonic()

    def take(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.updated) * self.rate_s)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Buckets:
    def __init__(self, burst: int, per_minute: float, max_keys: int = MAX_KEYS) -> None:
        self.burst = burst
        self.per_minute = per_minute
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self.refused = 0

    def take(self, key: str, now: float | None = None) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.burst, self.per_minute)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        ok = bucket.take(now)
        if not ok:
            self.refused += 1
        return ok
