"""The ``remote-asterisk`` drill: Asterisk in a network namespace of its own (another host on a
private veth link), the server on this host. Every address comes from settings: a spoken request
reaches the recogniser over ARI and the caller's audio path, and a keys call runs over FastAGI.
The namespace and link are removed afterwards, whatever happens."""

from __future__ import annotations

import pytest
from aiohttp import web
from pydantic import SecretStr

from ivr.core.config import Settings
from tests.netns import namespaces, no_netns

pytestmark = [pytest.mark.asterisk, pytest.mark.slow]


async def test_asterisk_on_another_host_takes_speech_and_fastagi_calls(
        settings: Settings, pg_url: str, redis_url: str) -> None:
    from ivr.app.build import build_app
    from ivr.tools.drillremote import NETNS, remote_calls, remote_link, remote_settings

    if reason := no_netns():
        pytest.skip(reason)
    with remote_link() as (netns, host_ip, ast_ip):
        remote = remote_settings(settings, netns, host_ip, ast_ip, web_port=18710)
        remote.database.url, remote.redis.url = SecretStr(pg_url), SecretStr(redis_url)
        app = build_app(remote, start_asterisk=True)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        try:
            report = await remote_calls(app, remote, echo=lambda _m: None)
        finally:
            await runner.cleanup()
    assert report.speech_call and report.agi_call, report.failures
    assert NETNS not in namespaces()
