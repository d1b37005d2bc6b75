"""A real local HTTP server that speaks the OpenAI chat-completions JSON (an "OpenAI-compatible
endpoint" as llm.base_url points at one), with switchable behaviour for the tests: a good
answer, a slow one, a malformed one, or an HTTP error."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web

GOOD = {
    "situation": "来电人选择加油卡业务后要求人工服务，尚未说明具体问题。",
    "done": "已按键选择加油卡业务，未进行身份验证。",
    "pending": "询问具体需求，如需办理卡务先核实持卡人身份。",
    "mood": "平稳。",
}


class FakeLLM:
    def __init__(self) -> None:
        self.mode = "ok"  # ok | malformed | http_error
        self.delay_s = 0.0
        self.requests: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> FakeLLM:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        await asyncio.sleep(self.delay_s)
        if self.mode == "http_error":
            return web.json_response(
                {"error": {"message": "model overloaded", "type": "server_error"}}, status=500)
        content = "好的，以下是摘要：来电人要人工" if self.mode == "malformed" else json.dumps(
            GOOD, ensure_ascii=False)
        return web.json_response({
            "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "test"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 60, "total_tokens": 160},
        })
