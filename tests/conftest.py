"""Shared fixtures: a real Asterisk (its own instance and ports), embedded PostgreSQL and Redis,
and the IVR server, all started once per test session."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from asterisk.runner import ManagedAsterisk, root_ready
from ivr.core.config import Settings, load_settings
from ivr.core.logs import redacting_handler
from ivr.sim.sipua import SipUserAgent
from tests.fastprompts import render_fast_prompts

pytest_plugins = ["tests.fixtures_storage"]

CACHE = Path.home() / ".cache" / "ivr"


def _asterisk_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (chroot/mount) to run the managed Asterisk"
    if not root_ready(CACHE / "sid-root"):
        return "Asterisk root not built: run `ivr doctor --fix`"
    return None


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    home = tmp_path_factory.mktemp("ivr-home")
    return load_settings(
        home=home,
        log_level="INFO",
        asterisk={
            "instance": "test",
            "root_dir": CACHE / "sid-root",
            "sip_port": 15060,
            "ari_url": "http://127.0.0.1:18088",
            "ami_port": 15038,
            "rtp_start": 21000,
            "rtp_end": 21499,
            "sounds_subdir": "ivr-test",
            "carrier_port": 15070,
        },
        # prompts persist between runs so a test run renders them once
        # the menus every call hears, faster, as operator recordings (tests/fastprompts.py)
        tts={"cache_dir": CACHE / "test-prompts", "model_dir": CACHE / "models",
             "recordings_dir": CACHE / "test-recordings"},
        # the bots' question vectors for the trained layer, embedded once for every run
        nlu={"cache_dir": CACHE / "test-embeddings"},
        # the tests judge paths, not the recogniser's deadline (1.8 s shipped; `ivr drill asr`
        # and tests/e2e/test_drill_deps.py hold it): a slow machine must not turn speech to keys
        asr={"decode_deadline_s": 4.0},
        # short for speed (the default is 5 s), yet with room for the simulated phones: they
        # answer about 1.7 s after a prompt ends (1.2 s of quiet, judged 0.36 s late) and their
        # speech reaches the endpointer later still; at 2 s a customer under load could be cut
        # the privacy notice after the greeting is off here: 5 s more per call, ~100 calls
        # (tests/unit/test_privacy_notice.py checks it is said by default)
        dialog={"no_input_timeout_s": 3.0, "dtmf_interdigit_timeout_s": 1.5,
                "privacy_notice": ""},
        web={"port": 18700},
        agi={"port": 14573},
        # calls go to the queues without the callback offer; tests/e2e/test_callback.py turns it on
        handoff={"callback_offer": False},
        # no daily purge in the shared server (tests/integration/test_retention.py covers it)
        retention={"enabled": False},
        # no dialer in the shared server: tests/e2e/test_campaigns_calls.py runs its own
        dialer={"in_server": False},
    )


@pytest.fixture(scope="session")
async def asterisk(settings: Settings) -> AsyncIterator[ManagedAsterisk]:
    reason = _asterisk_unavailable()
    if reason:
        pytest.skip(reason)
    ast = ManagedAsterisk(settings)
    await ast.start()
    yield ast
    await ast.stop()


class ServerControl:
    """The IVR server under test; tests may stop and start it (failsafe, restart tests)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runner: web.AppRunner | None = None
        self.app: web.Application | None = None

    async def start(self) -> web.Application:
        from ivr.app.build import build_app

        self.app = build_app(self.settings, start_asterisk=False)
        self.runner = web.AppRunner(self.app, handle_signals=False)
        await self.runner.setup()
        await web.TCPSite(self.runner, self.settings.web.host, self.settings.web.port).start()
        return self.app

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        self.runner = self.app = None


@pytest.fixture(scope="session")
async def server(
    settings: Settings, asterisk: ManagedAsterisk, pg_url: str, redis_url: str
) -> AsyncIterator[ServerControl]:
    from pydantic import SecretStr

    settings.database.url = SecretStr(pg_url)
    settings.redis.url = SecretStr(redis_url)
    log_file = settings.home / "server.log"  # what the server logs, as production writes it
    handler = redacting_handler(logging.FileHandler(log_file, encoding="utf-8"))
    logging.getLogger().addHandler(handler)
    await render_fast_prompts(settings)
    control = ServerControl(settings)
    await control.start()
    yield control
    await control.stop()
    logging.getLogger().removeHandler(handler)
    handler.close()
    await pii_scan(pg_url, redis_url, log_file)


async def pii_scan(pg_url: str, redis_url: str, log_file: Path) -> None:
    """After the end-to-end tests: no full card, phone or ID number, nor a demo PIN or ID
    tail, in any table, Redis key or the server's log (``ivr.tools.piiscan``)."""
    from ivr.core.storage.db import create_engine
    from ivr.core.storage.redis_server import connect_redis
    from ivr.tools.piiscan import scan_database, scan_files, scan_redis, summary
    from tests.demo_data import DEMO_SECRETS

    engine = create_engine(pg_url)
    client = await connect_redis(redis_url)
    try:
        found = (await scan_database(engine, DEMO_SECRETS) + await scan_redis(client, DEMO_SECRETS)
                 + scan_files([log_file], DEMO_SECRETS))
    finally:
        await client.aclose()
        await engine.dispose()
    assert not found, "personal numbers stored in clear:\n" + summary(found)


@pytest.fixture
async def caller(settings: Settings, asterisk: ManagedAsterisk) -> AsyncIterator[SipUserAgent]:
    """The test caller: the project's SIP user agent, registered as endpoint ``caller``."""
    a = settings.asterisk
    ua = SipUserAgent(server_host=a.bind_host, server_port=a.sip_port, username="caller",
                      password=a.caller_password.get_secret_value())
    await ua.start()
    yield ua
    await ua.close()
