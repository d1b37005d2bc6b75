"""The seeded demo business data the back-end tests share: the day it is seeded for, a moment
in it, and the accounts ``dialog.backends.seed`` creates."""

from __future__ import annotations

from datetime import date, datetime

from dialog.backends._pg import CHINA_TZ
from dialog.backends.seed import demo_credentials

TODAY = date(2026, 11, 24)
NOW = datetime(2026, 11, 24, 10, 30, tzinfo=CHINA_TZ)
CREDS = demo_credentials()
FUEL = CREDS["fuel"]
GAS = CREDS["gas"]

# what a caller proves who they are with: never stored or logged in clear (the PII scan after
# the end-to-end tests looks for each of them standing alone)
DEMO_SECRETS: tuple[str, ...] = tuple(sorted(
    {c["pin"] for c in FUEL.values()} | {c["id_tail"] for c in FUEL.values()}
    | {a["id_tail"] for a in GAS.values()} | {a["account_no"] for a in GAS.values()}))
