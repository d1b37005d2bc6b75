"""JSON answers and request bodies shared by the desktop's APIs (knowledge, tickets, callbacks):
never cached, Chinese kept readable, and bodies checked the same way everywhere."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

HEADERS = {"Cache-Control": "no-store"}


class BadBody(ValueError):
    """The request body is not a JSON object within the size limit; the message is Chinese."""


def json_ok(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, headers=HEADERS,
                             dumps=lambda v: json.dumps(v, ensure_ascii=False))


def json_error(status: int, message: str, **extra: Any) -> web.Response:
    return json_ok({"error": message, **extra}, status)


async def read_object(request: web.Request, max_bytes: int) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > max_bytes:
        raise BadBody("请求内容过大")
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadBody("请求内容不是有效的 JSON") from exc
    if not isinstance(data, dict):
        raise BadBody("请求内容必须是 JSON 对象")
    return data
