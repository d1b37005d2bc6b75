"""The ``load`` drill, short form: twenty keys callers from SIPp within two seconds, through the
real Asterisk into the server under test; every one is answered, its key taken and it reaches
the agent queue, none hung up by us. (The full form is 200 callers: README, Faults and drills.)"""

from __future__ import annotations

import pytest

from ivr.core.config import Settings
from tests.conftest import ServerControl

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]


async def test_twenty_sipp_callers_at_once_all_reach_the_queue(
        server: ServerControl, settings: Settings) -> None:
    from ivr.tools.drillload import load

    if not (settings.asterisk.root_dir / "usr/bin/sipp").exists():
        pytest.skip("SIPp (sip-tester) is not in the Asterisk root")
    assert server.app is not None
    report = await load(server.app, settings, calls=20, rate=10, listen_s=6, hold_s=4,
                        echo=lambda _m: None)
    summary = report.summary()
    assert summary["sipp_ok"] == 20 and summary["sipp_failed"] == 0, summary
    assert summary["passed"] == 20, summary
    assert summary["sip_most_at_once"] >= 10, summary
