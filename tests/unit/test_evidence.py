"""A caller's earlier tries at a request weigh into the next: the trained layer's evidence is
combined (``dialog.nlu.matching.combine_evidence``), a retry enters from ``RETRY_SURE``, and
the dialog keeps the evidence until a bot is entered (``DialogState.evidence``). And on the
recogniser's words a match needs the trained layer's even odds (``HEARD_AGREE_P``)."""

from __future__ import annotations

import pytest

from dialog.actions import Utterance
from dialog.catalog import Catalog
from dialog.engine import DialogEngine
from dialog.nlu.classifier import NONE_CLASS
from dialog.nlu.matching import (
    AGREE_P,
    HEARD_AGREE_P,
    RETRY_SURE,
    SEMANTIC_SURE,
    IntentMatcher,
    IntentSpec,
    combine_evidence,
)
from dialog.state import DialogState, dump_state, load_state
from tests.catalogs import shipped_catalog

PROBA = {"balance": 0.5, "loss": 0.3, NONE_CLASS: 0.2}


def test_an_even_or_empty_earlier_try_changes_nothing() -> None:
    assert combine_evidence(PROBA, {}) == PROBA
    even = combine_evidence(PROBA, {"balance": 0.4, "loss": 0.4, NONE_CLASS: 0.2})
    assert even == pytest.approx(PROBA)
    # heard as "no bot" (a mishearing) is no evidence against either bot
    none = combine_evidence(PROBA, {"balance": 0.05, "loss": 0.05, NONE_CLASS: 0.9})
    assert none == pytest.approx(PROBA)


def test_agreeing_tries_make_a_bot_surer_and_a_declined_one_unlikely() -> None:
    agree = combine_evidence(PROBA, {"balance": 0.7, "loss": 0.1, NONE_CLASS: 0.2})
    assert agree["balance"] > PROBA["balance"] + 0.1 and sum(agree.values()) == pytest.approx(1)
    declined = combine_evidence(PROBA, {"balance": 0.0, "loss": 0.6, NONE_CLASS: 0.4})
    assert 0 < declined["balance"] < 0.1 < declined["loss"]
    # a bot the earlier tries did not know (published since) is neither helped nor hurt
    new = combine_evidence(PROBA, {"loss": 0.5, NONE_CLASS: 0.5})
    assert new == pytest.approx(PROBA)
    assert declined[NONE_CLASS] > PROBA[NONE_CLASS]  # "no bot" weighed by the new try alone


class _Fixed:
    """The trained layer's answer, fixed: the decision rule alone is under test."""

    def __init__(self, proba: dict[str, float]) -> None:
        self._proba = proba

    def proba(self, text: str) -> dict[str, float]:
        return dict(self._proba)


def test_a_retry_enters_from_a_lower_bar_and_contrary_evidence_asks() -> None:
    specs = [IntentSpec("balance", "余额查询", "查询加油卡余额"),
             IntentSpec("loss", "挂失", "加油卡挂失")]
    m = IntentMatcher(specs, semantic=False)
    p = (RETRY_SURE + SEMANTIC_SURE) / 2
    m.classifier = _Fixed({"balance": p, "loss": 0.05, NONE_CLASS: 0.95 - p})  # type: ignore[assignment]
    first = m.match("嗯那个就是那个事")
    assert first.decision == "clarify" and first.best and first.best.intent == "balance"
    assert first.proba["balance"] == pytest.approx(p)
    again = m.match("嗯那个就是那个事", prior={"balance": 0.5, "loss": 0.5, NONE_CLASS: 0.0})
    assert again.decision == "match" and again.best and again.best.intent == "balance"
    against = m.match("嗯那个就是那个事", prior={"balance": 0.02, "loss": 0.98})
    assert against.decision != "match"


def test_the_recognisers_words_need_even_odds_for_a_rule_to_enter() -> None:
    """A rule fires on a misheard word as readily as on a said one: on a call, a rule's match
    that the trained layer finds less likely than not is asked about first."""
    specs = [IntentSpec("balance", "余额查询", "查询加油卡余额", rules=("余额",)),
             IntentSpec("loss", "挂失", "加油卡挂失")]
    m = IntentMatcher(specs, semantic=False)
    p = (AGREE_P + HEARD_AGREE_P) / 2
    m.classifier = _Fixed({"balance": p, "loss": 0.9 - p, NONE_CLASS: 0.1})  # type: ignore[assignment]
    typed = m.match("余额")
    assert typed.decision == "match" and typed.best and typed.best.layer == "rule"
    heard = m.match("余额", heard=True)
    assert heard.decision == "clarify" and {c.intent for c in heard.candidates} >= {"balance"}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return shipped_catalog()


async def test_the_dialog_keeps_the_evidence_until_a_bot_is_entered(catalog: Catalog) -> None:
    e = DialogEngine(catalog)
    e.start()
    await e.on_event(Utterance("我跑长途想确认卡里的钱够不够"))  # 您是要办理余额查询吗？
    ev = e.state.evidence
    assert max(ev, key=lambda b: ev[b]) == "fuel_balance" and sum(ev.values()) == pytest.approx(1)
    await e.on_event(Utterance("不是"))
    assert e.state.mode == "route" and e.state.evidence["fuel_balance"] == 0.0
    await e.on_event(Utterance("我的加油卡丢了，要挂失"))
    assert e.state.bot == "fuel_loss" and e.state.evidence == {}


def test_the_evidence_survives_a_snapshot_and_old_snapshots_load() -> None:
    st = DialogState(evidence={"fuel_balance": 0.0, "fuel_loss": 0.7})
    data = dump_state(st, ())
    assert load_state(data).evidence == {"fuel_balance": 0.0, "fuel_loss": 0.7}
    del data["evidence"]
    assert load_state(data).evidence == {}
