"""``ivr eval summaries``: the recorded handoffs shipped in handoff/evalsets are summarised by a
real local OpenAI-compatible server (in a thread: the CLI runs its own event loop) and scored."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from ivr.core.config import LLMSettings, Settings
from ivr.tools.evalcli import eval_group
from ivr.tools.evalsummaries import score_answer
from tests.fake_llm import FakeLLM
from tests.paths import REPO

CASES = REPO / "handoff" / "evalsets" / "summaries.jsonl"


@pytest.fixture
def llm_thread() -> Iterator[FakeLLM]:
    loop = asyncio.new_event_loop()
    fake = FakeLLM()
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(fake.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(10)
    yield fake
    asyncio.run_coroutine_threadsafe(fake.close(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def test_score_answer() -> None:
    good = json.dumps({"situation": "来电人要求挂失。", "done": "已验证卡号。",
                       "pending": "办理挂失。", "mood": "着急。"}, ensure_ascii=False)
    assert score_answer(good) == {"status": "ok", "sections": 4, "length": 22,
                                  "within_limit": True, "digits_leaked": False}
    leaky = good.replace("已验证卡号。", "已验证卡号9001010000012345678。")
    assert score_answer(leaky)["digits_leaked"] is True
    long = json.dumps({"情况": "长" * 200, "已办理": "长" * 200, "待处理": "x", "情绪": "y"},
                      ensure_ascii=False)
    assert score_answer(long)["status"] == "too_long"
    assert score_answer("好的，摘要如下")["status"] == "invalid"


@pytest.mark.parametrize(("mode", "ok_rate"), [("ok", 1.0), ("malformed", 0.0)])
def test_eval_summaries_cli(llm_thread: FakeLLM, tmp_path: Path, mode: str,
                            ok_rate: float) -> None:
    llm_thread.mode = mode
    settings = Settings(llm=LLMSettings(base_url=llm_thread.base_url, model="test-model",
                                        api_key=SecretStr("sk-test"), timeout_s=5.0))
    out = tmp_path / "report.json"
    res = CliRunner().invoke(eval_group, ["summaries", str(CASES), "--json", str(out)],
                             obj=settings)
    assert res.exit_code == 0, res.output
    assert "LLM summaries: 4 recorded handoffs" in res.output and "fallback rate" in res.output
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["cases"] == 4 and report["ok_rate"] == ok_rate
    assert report["fallback_rate"] == 1.0 - ok_rate
    assert report["digits_leaked"] == 0
    sent = json.dumps(llm_thread.requests, ensure_ascii=False)
    assert "13900139000" not in sent  # the caller number never reaches the model


def test_eval_summaries_without_endpoint() -> None:
    res = CliRunner().invoke(eval_group, ["summaries", str(CASES)], obj=Settings())
    assert res.exit_code != 0 and "no LLM endpoint configured" in res.output
