"""Prompt audio preview for the operations console: hear any prompt as callers will, before a
bot change is published.

- ``GET /api/ops/prompts``: the fixed prompts of the published bots (``dialog.prompts
  .fixed_prompts``: the engine's own, the line menus, every bot text without a placeholder),
  as ``[{"id", "text"}]`` (bot texts have no id).
- ``GET /api/ops/prompts/preview?text=…[&id=…]``: the WAV the configured TTS renders for
  ``text`` (at most ``MAX_CHARS`` characters), through the server's prompt cache, so what is
  heard is what a call would play; with ``id``, an operator recording of that prompt wins, as
  on a call. 503 without a TTS (``ivr up --chat-only``); 400 on an empty or long text.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from dialog.prompts import fixed_prompts
from ivr.web.jsonapi import json_error
from ivr.web.keys import BOT_STORE, PROMPT_CACHE
from tts.base import TTSError

STATIC = Path(__file__).with_name("static")
MAX_CHARS = 300
HEADERS = {"Cache-Control": "no-store"}


async def prompt_list(request: web.Request) -> web.Response:
    store = request.app.get(BOT_STORE)
    if store is None:
        return web.json_response({"prompts": []}, headers=HEADERS)
    essential, rest = fixed_prompts(store.catalog)
    out: list[dict[str, str | None]] = [{"id": k, "text": v} for k, v in essential.items()]
    out += [{"id": None, "text": t} for t in rest]
    return web.json_response({"prompts": out}, headers=HEADERS)


async def preview(request: web.Request) -> web.StreamResponse:
    cache = request.app.get(PROMPT_CACHE)
    if cache is None:
        return json_error(503, "本服务器未启用语音合成")
    text = " ".join(request.query.get("text", "").split())
    if not text or len(text) > MAX_CHARS:
        return json_error(400, f"试听文本应为1到{MAX_CHARS}个字")
    try:
        path = await cache.get(text, request.query.get("id") or None)
    except TTSError as exc:
        return json_error(503, f"语音合成失败：{exc}")
    return web.FileResponse(path, headers={**HEADERS, "Content-Type": "audio/wav"})


async def script(_request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "prompts.js", headers={"Cache-Control": "no-cache"})


def setup(app: web.Application) -> None:
    app.router.add_get("/ops/prompts.js", script)
    app.router.add_get("/api/ops/prompts", prompt_list)
    app.router.add_get("/api/ops/prompts/preview", preview)
