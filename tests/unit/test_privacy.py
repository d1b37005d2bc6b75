"""Masking of phone, card, ID and PIN digits for logs and APIs."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from ivr.core.privacy import (
    RedactingFilter,
    mask_card,
    mask_digits_in_text,
    mask_json,
    mask_number,
    mask_url_password,
)


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("13812345678", "138****5678"),
        ("138-1234-5678", "138****5678"),
        ("+8613812345678", "+86 138****5678"),
        ("008613812345678", "+86 138****5678"),
        ("01088886666", "010****6666"),  # landline with area code
        ("88886666", "****6666"),  # local landline
        ("956100", "****00"),  # short: service numbers, extensions
        ("10086", "***86"),
        ("8001", "**01"),
        ("12", "12"),
        ("", ""),
        (None, ""),
        ("anonymous", "anonymous"),
        ("sip:13812345678@pbx", "sip:*******5678@pbx"),
    ],
)
def test_mask_number(number: str | None, masked: str) -> None:
    assert mask_number(number) == masked


def test_mask_card() -> None:
    assert mask_card("6222021234567890") == "************7890"
    assert mask_card("6222 0212 3456 7890") == "************7890"
    assert mask_card("1234") == "****"
    assert mask_card("") == ""


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("card 6222021234567890 ok", "card ************7890 ok"),
        ("card 6222 0212 3456 7890", "card **** **** **** 7890"),
        ("pin 123456.", "pin ******."),
        ("id 11010519491231002X here", "id **************002X here"),
        ("from 13812345678", "from *******5678"),
        ("短号 12345 不变", "短号 12345 不变"),  # fewer than 6 digits
        ("卡号６２２２０２１２３４５６７８９０", "卡号************７８９０"),
        ("用户说幺三八一二三四五六七八", "用户说*******五六七八"),
        ("dtmf 1 2 3 4 5 6", "dtmf * * * * * *"),
    ],
)
def test_mask_digits_in_text(text: str, masked: str) -> None:
    assert mask_digits_in_text(text) == masked


def test_ids_and_dates_are_left_alone() -> None:
    text = ("call 550e8400-e29b-41d4-a716-446655440000 channel 1732480000.42 "
            "on 2025-11-24 pin 654321")
    assert mask_digits_in_text(text) == (
        "call 550e8400-e29b-41d4-a716-446655440000 channel 1732480000.42 on 2025-11-24 pin ******"
    )


def test_mask_json() -> None:
    path: list[dict[str, Any]] = [
        {"t": 1.25, "step": "dtmf", "detail": {"digits": "6222021234567890", "n": 3}},
        {"t": 2, "step": "pin", "detail": {"pin": 123456, "ok": True, "x": None}},
    ]
    assert mask_json(path) == [
        {"t": 1.25, "step": "dtmf", "detail": {"digits": "************7890", "n": 3}},
        {"t": 2, "step": "pin", "detail": {"pin": "******", "ok": True, "x": None}},
    ]
    assert path[0]["detail"]["digits"] == "6222021234567890"  # a copy; the input is unchanged


def test_mask_url_password() -> None:
    assert mask_url_password("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert mask_url_password("redis://:pw@h/0") == "redis://:***@h/0"
    assert mask_url_password("unix:///tmp/r.sock") == "unix:///tmp/r.sock"


def _record(msg: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("bad card 6222021234567890")
        except ValueError as e:
            exc_info = (type(e), e, e.__traceback__)
    return logging.LogRecord("t", logging.INFO, __file__, 1, msg, args, exc_info)


def test_redacting_filter_masks_message_args_and_exceptions() -> None:
    f = RedactingFilter()
    r = _record("caller %s pin %d", "13812345678", 123456)
    assert f.filter(r) is True
    assert r.getMessage() == "caller *******5678 pin ******"

    r = _record("card %(card)s", {"card": "6222021234567890"})
    f.filter(r)
    assert r.getMessage() == "card ************7890"

    r = _record("nothing secret here, %d calls", 3)
    f.filter(r)
    assert r.getMessage() == "nothing secret here, 3 calls"

    r = _record("failed", exc=True)
    f.filter(r)
    assert r.exc_text is not None and "6222021234567890" not in r.exc_text
    assert "************7890" in r.exc_text


def test_redacting_filter_on_a_handler(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("ivr.test.privacy")
    caplog.handler.addFilter(RedactingFilter())
    try:
        with caplog.at_level(logging.INFO, logger="ivr.test.privacy"):
            logger.info("caller entered %s", "110105194912310021")
    finally:
        caplog.handler.filters.clear()
    assert "110105194912310021" not in caplog.text
    assert "**************0021" in caplog.text


def test_broken_format_is_masked_not_dropped() -> None:
    r = _record("pin %s %s", "123456")  # too few args
    assert RedactingFilter().filter(r) is True
    assert "123456" not in str(r.args) and "******" in str(r.args)
