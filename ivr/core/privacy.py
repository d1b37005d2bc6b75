"""Masking of personal numbers for logs, APIs and screens.

- ``mask_number``: phone numbers. Numbers of 10 or more digits (mobiles, landlines with area
  code) keep the first 3 and last 4 digits (``138****5678``); 7 to 9 digits (local landlines)
  keep the last 4; short numbers (6 digits or fewer: service numbers, extensions) keep the last
  2. A China country prefix (``+86``, ``0086``, ``86`` before an 11-digit mobile) is kept.
- ``mask_card``: card and account numbers keep the last 4 digits.
- ``mask_digits_in_text``: for log lines. Every run of 6 or more digits (card numbers, ID
  numbers, PINs, phone numbers) is masked; runs may be grouped by single spaces or hyphens
  (``6222 0212 3456 7890``), may end in the ID-card check letter ``X`` and may be written in
  full-width or Chinese numerals (``幺三八...``, as ASR transcripts often are). Runs of 10 or
  more digits keep their last 4 (``**************002X``), shorter runs (PINs) are masked
  completely. UUIDs (call ids), ISO dates and Asterisk unique ids (``1732480000.42``) are left
  alone.
- ``RedactingFilter``: a ``logging.Filter`` that applies ``mask_digits_in_text`` to the
  formatted message (message and args together) and to exception text.
- ``mask_json``: ``mask_digits_in_text`` over JSON-like data (a call's path for an API).
- ``mask_url_password``: hides the password in a database or Redis URL.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

_DIGIT = "0-9０-９〇零一二三四五六七八九幺两"
_D = f"[{_DIGIT}]"

# alternatives that are left untouched come first, so the digit rule never sees them
_TEXT_RE = re.compile(
    rf"""
    (?P<keep>
        \b[0-9a-fA-F]{{8}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{12}}\b
      | (?<![0-9])[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}(?![0-9])            # ISO date
      | (?<![0-9.])1[0-9]{{9}}\.[0-9]{{1,9}}(?![0-9])                # Asterisk unique id
    )
    | (?P<digits>
        (?<!{_D}){_D}(?:[ -]?{_D}){{5,}}(?:[Xx](?![A-Za-z0-9]))?(?!{_D})
    )
    """,
    re.VERBOSE,
)
_DIGIT_RE = re.compile(f"[{_DIGIT}Xx]")  # within a run, X only ends an ID number


def _digits(s: str) -> str:
    return "".join(ch for ch in s if ch.isdigit())


def mask_number(number: str | None) -> str:
    """Mask a phone number: ``13812345678`` -> ``138****5678``, ``956100`` -> ``****00``.

    Separators are dropped. A value without digits (``anonymous``) is returned as it is; a value
    that is not a plain number (a SIP URI) is masked as text.
    """
    if not number:
        return ""
    s = number.strip()
    if not any(ch.isdigit() for ch in s):
        return s
    if re.fullmatch(r"\+?[0-9０-９ ()\-.]+", s) is None:
        return mask_digits_in_text(s)
    digits = _digits(s)
    prefix = ""
    for cc in ("0086", "86"):
        rest = digits[len(cc) :]
        if digits.startswith(cc) and len(rest) == 11 and rest.startswith("1"):
            prefix, digits = ("+86" if s.startswith("+") or cc == "0086" else cc), rest
            break
    n = len(digits)
    if n >= 10:
        masked = digits[:3] + "*" * (n - 7) + digits[-4:]
    elif n >= 7:
        masked = "*" * (n - 4) + digits[-4:]
    elif n > 2:
        masked = "*" * (n - 2) + digits[-2:]
    else:
        masked = digits
    return f"{prefix} {masked}" if prefix else masked


def mask_card(number: str | None) -> str:
    """Mask a card or account number, keeping the last 4 digits: ``************7890``.

    Separators are dropped. Four digits or fewer are masked completely (too short to be a card).
    """
    if not number:
        return ""
    digits = _digits(number)
    if len(digits) <= 4:
        return "*" * len(digits)
    return "*" * (len(digits) - 4) + digits[-4:]


def _mask_run(run: str) -> str:
    positions = [m.start() for m in _DIGIT_RE.finditer(run)]
    keep = set(positions[-4:]) if len(positions) >= 10 else set()
    chars = list(run)
    for i in positions:
        if i not in keep:
            chars[i] = "*"
    return "".join(chars)


def _replace(m: re.Match[str]) -> str:
    if m.group("keep") is not None:
        return m.group(0)
    return _mask_run(m.group(0))


def mask_digits_in_text(text: str) -> str:
    """Mask every run of 6 or more digits in free text (see the module docstring)."""
    if not text:
        return text
    return _TEXT_RE.sub(_replace, text)


def mask_json(value: Any) -> Any:
    """A copy of JSON-like data (dicts, lists, str, numbers) with ``mask_digits_in_text``
    applied to every string and to integers of 6 or more digits (e.g. a call's ``path`` before
    it leaves the server: DTMF entries may be account numbers or PINs). Keys are kept."""
    if isinstance(value, str):
        return mask_digits_in_text(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        masked = mask_digits_in_text(str(value))
        return value if masked == str(value) else masked
    if isinstance(value, dict):
        return {k: mask_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_json(v) for v in value]
    return value


def mask_url_password(url: str) -> str:
    """``postgresql://u:secret@h/db`` -> ``postgresql://u:***@h/db``; other URLs unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


class RedactingFilter(logging.Filter):
    """Masks card, ID, PIN and phone digits in log records (message, args and exception text).

    The message is formatted here (``record.getMessage()``), masked, and stored back with the
    args cleared, so numbers passed as ``%s``/``%d`` args are masked too. Records are never
    dropped.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError, KeyError):
            # a broken format string: mask the raw parts and let logging report the error
            record.msg = mask_digits_in_text(str(record.msg))
            if isinstance(record.args, tuple):
                record.args = tuple(
                    mask_digits_in_text(a) if isinstance(a, str) else a for a in record.args
                )
            return True
        masked = mask_digits_in_text(message)
        if masked != message or record.args:
            record.msg = masked
            record.args = ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_digits_in_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_digits_in_text(record.stack_info)
        return True
