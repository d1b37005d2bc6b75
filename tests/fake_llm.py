"""A real local HTTP server that speaks the OpenAI chat-completions JSON (an "OpenAI-compatible
endpoint" as llm.base_url points at one), with switchable behaviour for the tests: a good
answer, a slow one, a malformed one, or an HTTP error."""

from __future__ import annotations

import asyncio
import json
import time
import zlib
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
        # what a ticket-filling request (system prompt mentions 工单) gets back: a JSON object
        # (dumped) or a raw string; None: the summary answer like any other chat request
        self.ticket_reply: dict[str, Any] | str | None = None
        self.requests: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> FakeLLM:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
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
        system = str((body.get("messages") or [{}])[0].get("content", ""))
        if self.ticket_reply is not None and "工单" in system and self.mode == "ok":
            reply = self.ticket_reply
            content = reply if isinstance(reply, str) else json.dumps(reply, ensure_ascii=False)
        return web.json_response({
            "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "test"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 60, "total_tokens": 160},
        })

    async def _embeddings(self, request: web.Request) -> web.Response:
        """Deterministic bag-of-character-bigram vectors (``dimensions`` long, default 64):
        texts sharing words get close vectors, which is all a contract test needs."""
        body = await request.json()
        self.requests.append(body)
        await asyncio.sleep(self.delay_s)
        if self.mode == "http_error":
            return web.json_response(
                {"error": {"message": "model overloaded", "type": "server_error"}}, status=500)
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        dim = int(body.get("dimensions") or 64)
        data = []
        for i, text in enumerate(texts):
            vec = [0.0] * dim
            for gram in [*text, *(text[j:j + 2] for j in range(len(text) - 1))]:
                vec[zlib.crc32(gram.encode()) % dim] += 1.0
            data.append({"object": "embedding", "index": i, "embedding": vec})
        if self.mode == "malformed":
            data = data[:-1]  # one vector short
        return web.json_response({"object": "list", "data": data,
                                  "model": body.get("model", "test"),
                                  "usage": {"prompt_tokens": 10, "total_tokens": 10}})
