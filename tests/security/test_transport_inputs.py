"""What peers send us cannot steer the server (security issue, item 4 and item 2):

- an id from a FastAGI peer or anywhere else never reaches an ARI URL unless it is a plain id
  (``../../bridges/x`` was accepted);
- FastAGI sessions only from the allowed peers (the Asterisk boxes);
- ``agi_uniqueid`` names Redis state and ARI snoops only when it has Asterisk's shape;
- every step of a call's journal is stored masked (the intent, clarify, safety and error steps
  carried raw recognised text);
- the AMI user may read events and nothing else.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from asterisk.runner import render_configs
from ivr.calls.agi_channel import AgiChannel
from ivr.calls.journal import CallJournal
from ivr.core.config import AsteriskSettings, load_settings
from ivr.telephony.agi import FastAgiServer
from ivr.telephony.ari.client import AriClient, InvalidId, check_path


@pytest.mark.parametrize("path", [
    "/channels/../../bridges/x/answer", "/channels/a/b/../../x", "/channels//answer",
    "/channels/x y/answer", "/channels/%2e%2e/answer", "/channels/\u202eabc/answer", "channels/x",
])
def test_an_id_that_is_not_plain_never_reaches_ari(path: str) -> None:
    with pytest.raises(InvalidId):
        check_path(path)


def test_plain_ids_pass() -> None:
    for path in ("/channels/1732480000.42/answer", "/channels/survey-12-ab12cd34/variable",
                 "/playbacks/6f1c2b", "/channels"):
        check_path(path)


async def test_the_client_refuses_before_sending() -> None:
    ari = AriClient(AsteriskSettings(ari_url="http://127.0.0.1:9"))  # nothing listens there
    try:
        with pytest.raises(InvalidId):
            await ari.answer("../../bridges/x")
    finally:
        await ari.close()


async def test_fastagi_refuses_peers_not_allowed() -> None:
    reached: list[Any] = []

    async def handler(request: Any) -> None:
        reached.append(request)

    srv = FastAgiServer("127.0.0.1", 0, "hotline", handler, allow_from=["10.9.9.0/24"])
    await srv.start()
    try:
        r, w = await asyncio.open_connection("127.0.0.1", srv.bound_port)
        w.write(b"agi_network_script: hotline\nagi_uniqueid: 1732480000.1\n\n")
        await w.drain()
        try:  # closed unread (a reset, since what the peer sent was never read)
            assert await asyncio.wait_for(r.read(), 2) == b""
        except ConnectionResetError:
            pass
        w.close()
        assert srv.refused == 1 and not reached
    finally:
        await srv.stop()


class _Request:
    def __init__(self, uniqueid: str) -> None:
        self.headers = {"agi_uniqueid": uniqueid, "agi_callerid": "13800138000"}
        self.writer = None

    async def send_command(self, command: str) -> dict[str, Any]:
        return {"result": ("0", "")}


@pytest.mark.parametrize(("uniqueid", "kept"), [
    ("1732480000.42", True), ("../../bridges/x", False), ("1732480000.42/../x", False),
    ("", False), ("abc", False),
])
def test_agi_uniqueid_is_used_only_with_asterisks_shape(uniqueid: str, kept: bool) -> None:
    channel = AgiChannel(_Request(uniqueid), "ivr")
    assert channel.channel_id == (uniqueid if kept else "")


class _Repo:
    def __init__(self) -> None:
        self.steps: list[tuple[str, dict[str, Any]]] = []

    async def add_step(self, call_id: uuid.UUID, step: str, at: object = None, /,
                       **detail: Any) -> None:
        self.steps.append((step, detail))


async def test_every_journal_step_is_stored_masked() -> None:
    repo = _Repo()
    journal = CallJournal(repo)  # type: ignore[arg-type]
    journal.start_writer()
    call = uuid.uuid4()
    said = "我的卡号是6222，0212，3456，7890"
    for step in ("intent", "clarify", "safety", "error", "no_match", "speech"):
        journal.step(call, step, {"text": said, "nested": {"heard": [said]}, "n": 13800138000})
    await journal.close()
    assert len(repo.steps) == 6
    for _, detail in repo.steps:
        stored = repr(detail)
        assert "6222" not in stored and "0212" not in stored and "3456" not in stored
        assert "13800138000" not in stored and "7890" in stored  # the tail stays readable


def test_the_ami_user_reads_events_and_writes_nothing(tmp_path: Any) -> None:
    confs = render_configs(load_settings(home=tmp_path))
    manager = confs["manager.conf"]
    user = manager[manager.index("secret"):]
    write = next(line for line in user.splitlines() if line.startswith("write"))
    assert write.replace(" ", "") == "write="
    read = next(line for line in user.splitlines() if line.startswith("read"))
    assert "command" not in read and "originate" not in read
