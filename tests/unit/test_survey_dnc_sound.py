"""A do-not-call wish is honoured when the recogniser mishears it (campaigns/surveydialog.py):
the same words by sound, and nothing that merely resembles them."""

from __future__ import annotations

import pytest

from campaigns.surveydialog import global_answer

MISHEARD_DNC = ["不要再探了", "不要在谈了", "别再他了", "不要再打了", "以后别给我打了",
                "不要再打电话了", "不要弹了"]
NOT_DNC = ["不要再等了", "不要", "可以", "不方便", "我不要打分了", "不要再贷了", "打了十分",
           "再说一遍"]


@pytest.mark.parametrize("text", MISHEARD_DNC)
def test_do_not_call_heard_as_it_sounds(text: str) -> None:
    assert global_answer(text) == "dnc"


@pytest.mark.parametrize("text", NOT_DNC)
def test_lookalikes_are_not_do_not_call(text: str) -> None:
    assert global_answer(text) != "dnc"
