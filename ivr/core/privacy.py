"""Masking of personal numbers for logs, APIs and screens.

- ``mask_number``: phone numbers. Numbers of 10 or more digits (mobiles, landlines with area
  code) keep the first 3 and last 4 digits (``138****5678``); 7 to 9 digits (local landlines)
  keep the last 4; short numbers (6 digits or fewer: service numbers, extensions) keep the last
  2. A China country prefix (``+86``, ``0086``, ``86`` before an 11-digit mobile) is kept.
- ``mask_card``: card and account numbers keep the last 4 digits.
- ``mask_digits_in_text``: for log lines, journals and transcripts. Every run of 6 or more
  digits (card numbers, ID numbers, PINs, phone numbers) is masked, however it is written:
  any Unicode decimal digit (ASCII, full-width ``６２２２``, Arabic-Indic ...), superscript or
  circled digits, Chinese numerals read digit by digit (``六二二八``, ``幺三八``, ``两``,
  financial ``陆贰贰捌``), mixed freely. Digits of a run may be separated by one separator:
  up to 3 spaces of any kind (tab, ideographic U+3000, no-break, zero-width; never a line
  break), or one of ``,，、.．-－/／·`` (and dashes) with at most one space on each side. A run
  may end in the ID-card check letter ``X``/``x``, which counts as a digit (``12345X`` is
  masked). Runs of 10 or more digits keep their last 4 as written (``**************002X``),
  shorter runs (PINs) are masked completely; masking is idempotent.
  Left alone, because they are not personal data: UUIDs (call ids) also as 32 lowercase hex
  characters with a letter among them (handoff ids), Asterisk channel names
  (``PJSIP/caller-00000012``); dates ``2026-11-24``
  (also with ``/`` or ``.``, year 19xx/20xx, optionally followed by an hour ``10:30``);
  Asterisk unique ids ``1732480000.42`` (1-5 digits after the dot, and not when the run has
  11 digits, a mobile's shape); dotted IPv4 addresses with octets <= 255; amounts of at
  most 7 integer digits with 1-2 decimals directly followed by ``元``/``块``/``圆`` or
  preceded by ``¥``/``￥`` (``1280.50元``). Numbers of 5 digits or
  fewer (menu keys, extensions) are never masked. Not handled: positional Chinese numbers
  (``一千二百``), which callers do not use for card or phone numbers.
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

# Digits, however written: every Unicode decimal digit (``\d``: ASCII, full-width, Arabic-Indic,
# Devanagari...), superscript/subscript/circled digits, and Chinese numerals read digit by
# digit (small and financial forms, ``幺``/``洞``/``拐``/``勾`` as read over radio, ``两``).
_NUMERALS = "〇○零一二三四五六七八九幺两洞拐勾壹贰貳叁參肆伍陆陸柒捌玖"
_OTHER_DIGITS = "\u00b2\u00b3\u00b9\u2070\u2074-\u2079\u2080-\u2089\u2460-\u2468\u24ea"
_D = rf"[\d{_OTHER_DIGITS}{_NUMERALS}]"
# One separator between two digits: up to 3 spaces of any kind (tab, U+3000, no-break, zero
# width; never a line break), or one punctuation mark with at most one space on each side.
_SPACE = r"(?:[^\S\r\n]|[\u200b-\u200d\u2060\ufeff])"
_PUNCT = r"[,，、.．\-－‐‑‒–—/／·・]"
_SEP = rf"(?:{_SPACE}{{1,3}}|{_SPACE}?{_PUNCT}{_SPACE}?)"

# UUIDs (call ids), hex ids and channel names are matched first, so the digit rule never sees
# them; everything else that
# looks like digits is a candidate run, judged by ``_kept`` (dates, amounts, ...).
_TEXT_RE = re.compile(
    rf"""
    (?P<keep>
        \b[0-9a-fA-F]{{8}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{12}}\b
      | (?<![0-9A-Za-z])(?=[0-9a-f]*[a-f])[0-9a-f]{{32}}(?![0-9A-Za-z])
      | (?<![\w/])[A-Za-z]+/[\w.@+-]+?-[0-9a-f]{{8}}(?:;[12])?(?![0-9A-Za-z])
    )
    | (?P<digits>
        (?<!{_D}){_D}(?:{_SEP}?{_D}){{4,}}(?:{_SEP}?[Xx](?![A-Za-z\d]))?(?!{_D})
    )
    """,
    re.VERBOSE,
)
_DIGIT_RE = re.compile(rf"{_D}|[Xx]")  # within a run, X only ends an ID number
_DATE = r"(?:19|20)[0-9]{2}([-/.])(?:0[1-9]|1[0-2])\1(?:0[1-9]|[12][0-9]|3[01])"
_DATE_RE = re.compile(_DATE)
_DATE_HOUR_RE = re.compile(rf"{_DATE} (?:[01][0-9]|2[0-3])")
_MINUTES_RE = re.compile(r":[0-5][0-9]")
_UNIQUEID_RE = re.compile(r"1[0-9]{9}\.[0-9]{1,5}")  # never 16+ digits: a card
_IPV4_RE = re.compile(r"([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})")
_AMOUNT_RE = re.compile(
    r"[0-9０-９]{1,7}[.．][0-9０-９]{1,2}|[0-9]{1,3}(?:,[0-9]{3}){1,2}\.[0-9]{1,2}")
_CURRENCY_AFTER = ("元", "块", "圆")
_CURRENCY_BEFORE = ("¥", "￥")


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


def _kept(run: str, text: str, start: int, end: int) -> bool:
    """Whether a run of 6 or more digits is left alone: it is not personal data."""
    if _DATE_RE.fullmatch(run):  # 2026-11-24, 2026/11/24, 2026.11.24
        return True
    if _DATE_HOUR_RE.fullmatch(run) and _MINUTES_RE.match(text, end):  # 2026-11-24 10:30
        return True
    if _UNIQUEID_RE.fullmatch(run) and len(run) != 12:  # never 11 digits: a mobile's shape
        return True
    ip = _IPV4_RE.fullmatch(run)
    if ip and all(int(octet) <= 255 for octet in ip.groups()):
        return True
    if _AMOUNT_RE.fullmatch(run):  # 1280.50元, ￥1280.50
        return (text[end:].lstrip(" ").startswith(_CURRENCY_AFTER)
                or text[:start].rstrip(" ").endswith(_CURRENCY_BEFORE))
    return False


def _mask_run(run: str) -> str:
    positions = [m.start() for m in _DIGIT_RE.finditer(run)]
    keep = set(positions[-4:]) if len(positions) >= 10 else set()
    chars = list(run)
    for i in positions:
        if i not in keep:
            chars[i] = "*"
    return "".join(chars)


def _replace(m: re.Match[str]) -> str:
    run = m.group(0)
    if m.group("keep") is not None:
        return run
    if len(_DIGIT_RE.findall(run)) < 6 or _kept(run, m.string, m.start(), m.end()):
        return run
    return _mask_run(run)


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
