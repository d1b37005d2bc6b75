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


@pytest.mark.parametrize(("said", "meant"), [
    ("不是燃气啊，是加油卡，充了值一直没进账", "是加油卡，充了值一直没进账"),
    ("我不是要挂失啊，卡就在我手上，就是不打算用了", "卡就在我手上，就是不打算用了"),
    ("帮我看看，不是开发票哈，就想知道这个月加了几次油", "帮我看看，就想知道这个月加了几次油"),
    ("我想查余额，不是，查余额要密码，可密码忘了", "查余额要密码，可密码忘了"),
])
def test_a_clause_saying_what_is_not_wanted_is_left_out(said: str, meant: str) -> None:
    assert intended(said).strip(" ，") == meant


@pytest.mark.parametrize("said", [
    "这两笔不是我刷的，帮我查查",  # a claim about a person, not what is unwanted
    "是不是停气了，一点火都没有",
    "不是燃气啊",  # nothing follows
])
def test_a_negated_claim_stays(said: str) -> None:
    assert intended(said) == said
