"""Text normalisation, numbers, dates and slot extractors (dialog.nlu.normalize)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from dialog.nlu import normalize as nz
from dialog.nlu.normalize import DateRange


def test_simplified_and_match_form() -> None:
    assert nz.to_simplified("餘額查詢") == "余额查询"
    assert nz.normalize_for_match("餘額查詢") == "余额查询"
    assert nz.normalize_for_match("我想查 一下，餘額！ＡＢＣ１２３") == "我想查一下余额abc123"
    assert nz.strip_punct("你好，世界! ok?") == "你好世界ok"
    assert nz.normalize_for_match("卡号是幺三八 零零一二。") == "卡号是1380012"


@pytest.mark.parametrize(("text", "expected"), [
    ("九零零一", "9001"),
    ("卡号是幺三八 零零一二", "卡号是1380012"),
    ("两洞〇二", "2002"),
    ("我想查一下", "我想查一下"),  # a lone 一 is a word, not a digit
    ("幺", "1"),
    ("一千零五", "一千零五"),  # Chinese numeral, left alone
    ("1三8", "138"),
])
def test_spoken_digits(text: str, expected: str) -> None:
    assert nz.spoken_digits_to_str(text) == expected


@pytest.mark.parametrize(("text", "value"), [
    ("三百五十", 350), ("十二", 12), ("拾", 10), ("一千零五", 1005), ("两万", 20000),
    ("三百五", 350), ("一万二", 12000), ("二十万零三百", 200300), ("一二三", 123), ("3万", 30000),
])
def test_chinese_number(text: str, value: int) -> None:
    assert nz.chinese_number_to_int(text) == value


def test_chinese_number_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        nz.chinese_number_to_int("三百块")
    with pytest.raises(ValueError):
        nz.chinese_number_to_int("")


@pytest.mark.parametrize(("text", "amount"), [
    ("三百五十块", "350"), ("一百二十八元五角", "128.5"), ("¥128.50", "128.50"),
    ("128块5", "128.5"), ("两块五毛三分", "2.53"), ("五毛", "0.5"), ("充了一百", "100"),
    ("一百块钱", "100"),
])
def test_parse_amount(text: str, amount: str) -> None:
    assert nz.parse_amount(text) == Decimal(amount)


def test_parse_amount_none() -> None:
    assert nz.parse_amount("我想查一下") is None
    assert nz.parse_amount("") is None


TODAY = date(2024, 3, 20)


@pytest.mark.parametrize(("text", "start", "end"), [
    ("今天", date(2024, 3, 20), date(2024, 3, 20)),
    ("昨天的记录", date(2024, 3, 19), date(2024, 3, 19)),
    ("前天", date(2024, 3, 18), date(2024, 3, 18)),
    ("三号", date(2024, 3, 3), date(2024, 3, 3)),
    ("二十五号", date(2024, 2, 25), date(2024, 2, 25)),  # still to come: last month
    ("3月5日", date(2024, 3, 5), date(2024, 3, 5)),
    ("三月五號", date(2024, 3, 5), date(2024, 3, 5)),
    ("上个月", date(2024, 2, 1), date(2024, 2, 29)),
    ("这个月", date(2024, 3, 1), date(2024, 3, 20)),
    ("本月", date(2024, 3, 1), date(2024, 3, 20)),
    ("2023年12月1日", date(2023, 12, 1), date(2023, 12, 1)),
])
def test_parse_date(text: str, start: date, end: date) -> None:
    assert nz.parse_date(text, TODAY) == DateRange(start, end)


def test_parse_date_none() -> None:
    assert nz.parse_date("随便", TODAY) is None
    assert nz.parse_date("2月30日", TODAY) is None
    assert nz.parse_date("昨天", TODAY).single_day  # type: ignore[union-attr]


def test_extract_digits() -> None:
    assert nz.extract_digits("卡号是幺三八 零零一二", 7, 7) == ("1380012", None)
    value, error = nz.extract_digits("一二三", 6, 6)
    assert value is None and error and "6" in error
    assert nz.extract_digits("不知道", 1, 4)[0] is None


def test_extract_card_number() -> None:
    assert nz.extract_card_number("9001 0000 1111 2222 333") == ("9001000011112222333", None)
    assert nz.extract_card_number("九零零一" * 4) == ("9001" * 4, None)
    value, error = nz.extract_card_number("12345")
    assert value is None and error
    value, error = nz.extract_card_number("4111111111111112", checksum=nz.luhn_valid)
    assert value is None and error
    assert nz.extract_card_number("4111111111111111", checksum=nz.luhn_valid)[0]


@pytest.mark.parametrize(("text", "phone"), [
    ("幺三八零零幺三八零零零", "13800138000"),
    ("+86 138 0013 8000", "13800138000"),
    ("010-12345678", "010-12345678"),
    ("零二幺杠六二三四五六七八", "021-62345678"),
    ("075512345678", "075512345678"),
])
def test_extract_phone(text: str, phone: str) -> None:
    assert nz.extract_phone(text) == (phone, None)


def test_extract_phone_errors() -> None:
    for bad in ("12345", "23800138000", "", "你好"):
        value, error = nz.extract_phone(bad)
        assert value is None and error


def test_id_tail_and_resident_id() -> None:
    assert nz.extract_id_tail("一二三四五叉", 6) == ("12345X", None)
    assert nz.extract_id_tail("12345x", 6) == ("12345X", None)
    assert nz.extract_id_tail("1234X5", 6)[0] is None
    assert nz.extract_id_tail("123", 6)[0] is None
    assert nz.validate_resident_id("11010519491231002X")
    assert nz.validate_resident_id("11010519491231002x")
    assert not nz.validate_resident_id("110105194912310021")
    assert not nz.validate_resident_id("1101051949123100")


@pytest.mark.parametrize("text", ["是", "是的", "对", "好的", "没错", "确认", "嗯", "可以",
                                  "嗯，好的", "对对对", "不错", "是，你说", "是啊"])
def test_yes(text: str) -> None:
    assert nz.extract_yes_no(text) is True


@pytest.mark.parametrize("text", ["不是", "不对", "错了", "不用", "不要", "否", "不是不对",
                                  "嗯不对", "是的，不对不对", "不用了谢谢",
                                  "不需要，我卡号是6222", "不用，我是他家人"])
def test_no(text: str) -> None:
    assert nz.extract_yes_no(text) is False


@pytest.mark.parametrize("text", ["是不是", "我不知道", "今天天气", ""])
def test_yes_no_unclear(text: str) -> None:
    assert nz.extract_yes_no(text) is None
