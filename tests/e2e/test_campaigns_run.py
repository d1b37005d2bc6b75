"""``ivr campaigns run`` as operators start it: the dialer in its own process (its own ARI
app connection, Whisper and Kokoro), against the test Asterisk and database, calling out
through the static trunk ``carrier`` (no registration, a fixed address: how carriers' trunks
are set up) to the simulated customers listening there (their own process too). One customer
answers by voice, one says 不要再打了, one answers by keys. The registered ``customer`` trunk is
tests/e2e/test_campaigns_calls.py's."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from campaigns import repo
from campaigns.tables import ALL_DAY, Campaign
from ivr.core.config import Settings
from ivr.core.storage.db import session_factory
from ivr.sim.customerproc import SimulatorProcess
from ivr.sim.customers import HELLO, MACHINE_GREETING, VOICE_ANSWERS
from ivr.web.keys import PROMPT_CACHE
from tests.campaign_db import call_paths, fresh_numbers, read_back, steps_of
from tests.conftest import ServerControl

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]
BASE = "1391235000"  # + behaviour digit (ivr/sim/customers.py)


def _plain(value: Any) -> Any:
    """Settings as a YAML file holds them, secrets included (the file is the test's own)."""
    if isinstance(value, BaseModel):
        return {k: _plain(getattr(value, k)) for k in type(value).model_fields}
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


async def test_campaigns_run_process_with_voice(server: ServerControl, settings: Settings,
                                                pg_engine: AsyncEngine, tmp_path: Path) -> None:
    app = server.app
    assert app is not None
    cache = app[PROMPT_CACHE]
    voices = {t: await cache.get(t)
              for t in (HELLO, MACHINE_GREETING, "不要再打了。", *VOICE_ANSWERS)}
    sessions = session_factory(pg_engine)
    digits = "046"
    phones = [BASE + d for d in digits]
    await fresh_numbers(sessions, phones)
    cid = await repo.create_campaign(sessions, name="独立拨号进程", survey="satisfaction",
                                     line="oil", windows=ALL_DAY, max_attempts=1,
                                     max_channels=5, calls_per_second=10.0,
                                     settings={"ring_timeout_s": 5})
    await repo.import_contacts(sessions, cid, "phone\n" + "".join(f"{p}\n" for p in phones))
    await repo.set_status(sessions, cid, "start")
    config = tmp_path / "ivr.yaml"
    data = _plain(settings)
    data.pop("database_url", None)
    data.pop("redis_url", None)
    config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    sim = SimulatorProcess(settings.asterisk, voices, username="carrier", register=False,
                           local_port=settings.asterisk.carrier_port)
    await sim.start()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("IVR_CONFIG", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ivr.tools.cli", "--config", str(config), "campaigns", "run",
        "--tick", "0.3", "--endpoint", "carrier", stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env=env)
    out = b""
    try:
        async with asyncio.timeout(180):
            while True:
                async with sessions() as s:
                    status = await s.scalar(select(Campaign.status).where(Campaign.id == cid))
                if status == "finished" or proc.returncode is not None:
                    break
                await asyncio.sleep(0.5)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)  # as an operator's Ctrl-C
        try:
            out = (await asyncio.wait_for(proc.communicate(), 20))[0]
        except TimeoutError:
            proc.kill()
            out = (await proc.communicate())[0]
        report = await sim.close()
    text = out.decode(errors="replace")
    assert status == "finished", text[-3000:]
    assert "answers by keys and voice" in text, text[-3000:]
    assert not report.errors, report.errors
    results = await read_back(sessions, cid)
    contacts, answers, dnc = results.contacts, results.answers, results.dnc
    calls = "\n".join(line for line in text.splitlines()  # each call's end, turns cut short
                      if "survey call to" in line or "speech again" in line or "WARN" in line)
    print(calls, await call_paths(sessions, results.attempts), sep="\n")  # shown on failure
    assert {d: contacts[d] for d in "06"} == {"0": "completed", "6": "dnc"}, contacts
    # the voice customer: the path, with tolerance for what the recogniser heard from synthetic
    # audio (tests/e2e/test_campaigns_calls.py says why); understood, the scores are the ones said
    path = await steps_of(sessions, results.attempts["4"])
    assert "speech" in path and path[-1] == "hangup" and "error" not in path, path
    assert contacts["4"] in ("completed", "refused"), contacts
    if contacts["4"] == "completed":
        assert answers["4", "csat"].via == "speech" and answers["4", "csat"].score in (4, 5)
        assert answers["4", "resolved"].score == 1
    assert (answers["0", "csat"].score, answers["0", "csat"].via) == (4, "dtmf")
    assert dnc == {BASE + "6"}
    assert "1391235000" not in text  # numbers are masked in the dialer's log
