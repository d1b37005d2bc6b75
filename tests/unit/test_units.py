"""Fast tests without external parts: settings, ARI event parsing, the menu, Asterisk configs."""

from __future__ import annotations

import json
import os

import pytest

from asterisk.runner import render_configs
from dialog.actions import Step
from ivr.core.config import ConfigError, load_settings
from ivr.telephony.ari.events import (
    ChannelDtmf,
    ChannelHangup,
    MalformedEvent,
    OtherEvent,
    PlaybackEvent,
    StasisStart,
    parse_event,
)
from tests.paths import REPO


def test_settings_env_yaml_and_masking(tmp_path, monkeypatch) -> None:
    cfg = tmp_path / "ivr.yaml"
    cfg.write_text("asterisk:\n  sip_port: 5070\n  ari_password: from-yaml\nweb:\n  port: 9000\n")
    monkeypatch.setenv("IVR_WEB__PORT", "9100")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:secret@db/ivr")
    s = load_settings(cfg, home=tmp_path)
    assert s.asterisk.sip_port == 5070
    assert s.web.port == 9100  # env beats the file
    assert s.database.url is not None and "secret" in s.database.url.get_secret_value()
    assert s.tts.cache_dir == tmp_path / "prompts"  # relative dirs live under home
    dumped = json.dumps(s.masked())
    assert "from-yaml" not in dumped and "secret@" not in dumped
    assert s.masked()["asterisk"]["ari_password"] == "********"


def test_settings_file_errors_are_clear(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.yaml")


def test_parse_ari_events() -> None:
    start = parse_event(
        json.dumps(
            {
                "type": "StasisStart",
                "application": "ivr",
                "args": ["inbound"],
                "channel": {
                    "id": "c1",
                    "name": "PJSIP/caller-1",
                    "state": "Ring",
                    "caller": {"number": "13800138000", "name": "x"},
                    "dialplan": {"context": "from-caller", "exten": "956100", "priority": 2},
                },
            }
        )
    )
    assert isinstance(start, StasisStart)
    assert start.channel.caller_number == "13800138000" and start.channel.dialed == "956100"
    assert start.args == ("inbound",)
    dtmf = parse_event(
        {"type": "ChannelDtmfReceived", "digit": "5", "duration_ms": 120, "channel": {"id": "c1"}}
    )
    assert isinstance(dtmf, ChannelDtmf) and dtmf.digit == "5"
    pb = parse_event(
        {
            "type": "PlaybackFinished",
            "playback": {"id": "p1", "target_uri": "channel:c1", "state": "done"},
        }
    )
    assert isinstance(pb, PlaybackEvent) and pb.channel_id == "c1"
    hang = parse_event({"type": "ChannelHangupRequest", "cause": 16, "channel": {"id": "c1"}})
    assert isinstance(hang, ChannelHangup) and hang.cause == 16
    assert isinstance(parse_event({"type": "Dial"}), OtherEvent)


@pytest.mark.parametrize(
    "bad",
    [
        "not json",
        "[]",
        "{}",
        '{"type": "StasisStart"}',
        '{"type": "ChannelDtmfReceived", "channel": {}}',
        b"\xff\xfe",
    ],
)
def test_malformed_ari_events_raise_one_clear_error(bad: str | bytes) -> None:
    with pytest.raises(MalformedEvent):
        parse_event(bad)


def _kinds(actions: list) -> list[str]:
    return [type(a).__name__ for a in actions if not isinstance(a, Step)]


def test_asterisk_configs_render_from_settings(tmp_path) -> None:
    s = load_settings(home=tmp_path, asterisk={"sip_port": 5099, "instance": "x"})
    confs = render_configs(s)
    assert {
        "pjsip.conf",
        "extensions.conf",
        "ari.conf",
        "http.conf",
        "manager.conf",
        "queues.conf",
        "rtp.conf",
        "modules.conf",
        "asterisk.conf",
    } <= set(confs)
    assert "bind = 127.0.0.1:5099" in confs["pjsip.conf"]
    assert "bindaddr = 127.0.0.1" in confs["http.conf"]
    assert "ivr-dev-ari-secret" in confs["ari.conf"]
    assert "Stasis(${IVR_APP},inbound)" in confs["extensions.conf"]
    assert 'STASISSTATUS}" = "FAILED"' in confs["extensions.conf"]
    # server down: the failsafe says so, and ends a wait no agent took with an apology
    assert "Playback(ivr/failsafe-hold)" in confs["extensions.conf"]
    assert '"${IVR_FAILSAFE}" = "1"]?failsafe-sorry,1' in confs["extensions.conf"]
    assert "Playback(ivr/failsafe-sorry)" in confs["extensions.conf"]
    for q in ("hotline-oil", "hotline-gas", "hotline-general", "hotline-priority"):
        assert f"[{q}]" in confs["queues.conf"]
    assert "/etc/asterisk-x" in confs["asterisk.conf"]


def test_docker_compose_file_validates() -> None:
    import shutil
    import subprocess

    root = REPO
    if shutil.which("docker-compose"):
        cmd = ["docker-compose", "config", "-q"]
    elif subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        cmd = ["docker", "compose", "config", "-q"]
    else:
        pytest.skip("no docker compose client")
    env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    res = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env)
    assert res.returncode != 0 and "in .env" in res.stderr, "a missing secret must stop it"
    given = {name: "x" * 16 for name in SECRETS} | {"DESK_PASSWORDS": '{"agent1": "x"}'}
    res = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env | given)
    assert res.returncode == 0, res.stderr


SECRETS = ("POSTGRES_PASSWORD", "ARI_PASSWORD", "AMI_SECRET", "SIP_CALLER_PASSWORD",
           "SIP_AGENT_PASSWORD", "DESK_PASSWORDS", "METRICS_TOKEN")


async def test_fastagi_server_survives_peers_that_close_or_stall() -> None:
    import asyncio

    from ivr.telephony.agi import FastAgiServer

    async def never(_request: object) -> None:
        raise AssertionError("no request should reach the handler")

    srv = FastAgiServer("127.0.0.1", 0, "hotline", never)
    await srv.start()
    port = srv.bound_port
    # a peer that connects and closes at once
    _, w = await asyncio.open_connection("127.0.0.1", port)
    w.close()
    # a peer asking for a script we do not serve
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"agi_network_script: other\nagi_uniqueid: 1\n\n")
    await w.drain()
    assert await asyncio.wait_for(r.read(), 2) == b""  # closed by the server
    w.close()
    await asyncio.sleep(0.1)
    assert not srv.sessions
    await srv.stop()
