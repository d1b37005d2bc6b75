"""``ivr bench chat`` in short: 20 customers through self-service at once against ``ivr up
--chat-only`` in a process of its own (its own embedded PostgreSQL and Redis). The path is
asserted (every chat completed, none refused, memory read); the timings are the README's, from
the full run, not asserted here."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.core.config import load_settings
from ivr.tools.benchchat import bench_chat

pytestmark = [pytest.mark.slow]

CACHE = Path.home() / ".cache" / "ivr"


async def test_twenty_chats_through_self_service_at_once(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path, nlu={"cache_dir": CACHE / "test-embeddings"})
    report = await bench_chat(settings, sessions=20, ramp_s=2.0, port=18798,
                              echo=lambda _m: None)
    assert not report.error, report.error
    assert report.completed == 20 and not report.refused and not report.failures
    assert len(report.bot_replies) == 60 and len(report.reply_ms[3]) == 20
    assert report.kib_per_session is not None and report.server_cpu_s is not None
