"""Self-correction (dialog.nlu.correction): the request is what follows the correction."""

from __future__ import annotations

import pytest

from dialog.nlu.correction import intended


@pytest.mark.parametrize(("said", "meant"), [
    ("我想补卡，不对，先把丢的那张挂失", "先把丢的那张挂失"),
    ("我想查余额…不是，我是想问户主能不能改", "我是想问户主能不能改"),
    ("换张新卡 哦不对 以后都不用了要退掉", "以后都不用了要退掉"),
    ("查积分，说错了，查余额", "，查余额"),
])
def test_the_words_after_the_last_correction(said: str, meant: str) -> None:
    assert intended(said).strip(" ，") == meant.strip(" ，")


@pytest.mark.parametrize("said", [
    "充值金额不对余额少了",  # 不对 inside a complaint: no pause around it
    "是不是停气了",  # a plain 不是
    "不是我的卡被扣钱了",
    "我想挂失，不对",  # nothing left after the marker
])
def test_no_correction_leaves_the_request_whole(said: str) -> None:
    assert intended(said) == said
