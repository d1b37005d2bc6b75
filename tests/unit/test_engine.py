"""The scenario engine and bot files: schema errors, routing, global intents, policies.

Business actions here are small async functions over a dict (the real demo back end on
PostgreSQL runs in test_bots.py); the engine's decisions are what is under test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dialog.actions import Collect, Dtmf, Hangup, NoInput, Say, Step, Utterance
from dialog.actions import Transfer as TransferAction
from dialog.catalog import Catalog, CatalogError
from dialog.engine import ActionRefused, DialogEngine
from dialog.scenario import ScenarioError, parse_bot
from tests.catalogs import shipped_catalog


def said(actions: list[Any]) -> str:
    return "".join(a.text for a in actions if isinstance(a, Say))


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return shipped_catalog()


def fake_actions() -> dict[str, Any]:
    async def verify(args: dict[str, Any]) -> dict[str, Any]:
        s = args["_slots"]
        return {"ok": s.get("pin") == "123456", "card_tail": str(s.get("card_number"))[-4:]}

    async def balance(args: dict[str, Any]) -> dict[str, Any]:
        return {"balance": "1280.50", "points": 320, "status_note": "状态正常"}

    async def loss(args: dict[str, Any]) -> dict[str, Any]:
        raise ActionRefused("这张卡已经挂失过了。")

    return {"verify.fuel_card": verify, "fuel.balance": balance, "fuel.report_loss": loss}


def test_bad_bot_file_names_line_and_field() -> None:
    text = (
        "id: x\nname: 测试\nline: water\nstandard: 测试\n"
        "steps:\n  - say: 你好\n    end: completed\n"
    )
    with pytest.raises(ScenarioError) as err:
        parse_bot(text, "x.yaml")
    msg = str(err.value)
    assert "x.yaml:3: line" in msg
    assert "x.yaml:6: steps.0" in msg and "exactly one" in msg
    with pytest.raises(ScenarioError, match=r"x.yaml:\d+: not valid YAML"):
        parse_bot("id: [unclosed\n", "x.yaml")


def test_broken_file_in_catalog_folder_is_reported(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("id: a\nname: A\nline: oil\nstandard: a\nsteps: []\n"
                                     "  bad indent: x\n", encoding="utf-8")
    with pytest.raises(CatalogError, match=r"a\.yaml"):
        Catalog.load(tmp_path)


async def test_dtmf_route_identity_and_balance(catalog: Catalog) -> None:
    e = DialogEngine(catalog, fake_actions())
    first = e.start()
    assert isinstance(first[-1], Collect)
    out = await e.on_event(Dtmf("1"))
    assert "余额" in said(out)
    out = await e.on_event(Dtmf("1"))  # fuel_balance, menu key 1
    assert e.state.bot == "fuel_balance" and "卡号" in said(out)
    out = await e.on_event(Dtmf("9001000000000000017#"))
    assert "密码" in said(out)
    out = await e.on_event(Dtmf("123456#"))
    assert "1280.50" in said(out) and isinstance(out[-1], Hangup)
    slot_steps = [a.detail for a in out if isinstance(a, Step) and a.name == "slot"]
    assert [d["slot"] for d in slot_steps] == ["pin"], slot_steps  # the PIN's step is there
    assert slot_steps[0]["value"] == "***"  # and the PIN itself never in the path


async def test_wrong_pin_twice_goes_to_an_agent(catalog: Catalog) -> None:
    e = DialogEngine(catalog, fake_actions())
    e.start()
    await e.on_event(Utterance("查一下加油卡余额"))
    await e.on_event(Dtmf("9001000000000000017#"))
    out = await e.on_event(Dtmf("000000#"))
    assert "重新输入" in said(out)
    await e.on_event(Dtmf("9001000000000000017#"))
    out = await e.on_event(Dtmf("000000#"))
    assert isinstance(out[-1], TransferAction) and out[-1].line == "oil"


async def test_a_verification_the_back_end_cannot_check_goes_to_an_agent_at_once(
        catalog: Catalog) -> None:
    """System down is not a wrong PIN: no 'please re-enter', no count toward a lock."""
    async def down(args: dict[str, Any]) -> dict[str, Any]:
        raise ActionRefused("抱歉，系统暂时繁忙。", unavailable=True)

    e = DialogEngine(catalog, {**fake_actions(), "verify.fuel_card": down})
    e.start()
    await e.on_event(Utterance("查一下加油卡余额"))
    await e.on_event(Dtmf("9001000000000000017#"))
    out = await e.on_event(Dtmf("123456#"))
    assert "重新输入" not in said(out) and "系统暂时繁忙" in said(out)
    assert [s.name for s in out if isinstance(s, Step)][-1] == "backend_unavailable"
    assert isinstance(out[-1], TransferAction) and out[-1].reason == "backend_unavailable"


async def test_safety_interrupts_anything(catalog: Catalog) -> None:
    e = DialogEngine(catalog, fake_actions())
    e.start()
    await e.on_event(Utterance("查一下加油卡余额"))
    out = await e.on_event(Utterance("等等我家里有煤气味"))
    assert "关闭燃气" in said(out)
    assert isinstance(out[-1], TransferAction) and out[-1].line == "priority"


async def test_silence_reprompts_then_polite_hangup(catalog: Catalog) -> None:
    e = DialogEngine(catalog)
    e.start()
    for _ in range(2):
        out = await e.on_event(NoInput())
        assert isinstance(out[-1], Collect)
    out = await e.on_event(NoInput())
    assert isinstance(out[-1], Hangup) and out[-1].outcome == "no_input"


async def test_no_match_twice_then_transfer_and_global_agent(catalog: Catalog) -> None:
    e = DialogEngine(catalog)
    e.start()
    for _ in range(2):
        out = await e.on_event(Utterance("我找一下你们张经理"))
        assert "没有听懂" in said(out)
    out = await e.on_event(Utterance("我找一下你们张经理"))
    assert isinstance(out[-1], TransferAction) and out[-1].line == "general"
    e2 = DialogEngine(catalog)
    e2.start()
    out = await e2.on_event(Utterance("我要转人工"))
    assert isinstance(out[-1], TransferAction)


async def test_repeat_and_main_menu(catalog: Catalog) -> None:
    e = DialogEngine(catalog)
    e.start()
    out = await e.on_event(Dtmf("2"))
    menu = said(out)
    again = await e.on_event(Utterance("再说一遍"))
    assert said(again) and said(again) in menu
    back = await e.on_event(Utterance("返回主菜单"))
    assert "加油卡业务请按1" in said(back)


@pytest.mark.parametrize(("heard", "intent"), [
    ("方会主菜弹", "main_menu"),  # 返回主菜单 as Whisper base heard it on 8 kHz
    ("回到猪菜单吧", "main_menu"),
    ("我要仁工服务", "agent"),
    ("你在说一片", "repeat"),
])
async def test_global_intents_by_sound_anywhere(catalog: Catalog, heard: str,
                                                intent: str) -> None:
    """Misheard globals still hold, at the route menu and in the middle of a bot's slots."""
    for keys in ([], ["1", "1"]):  # the first question; the balance bot's card number
        e = DialogEngine(catalog)
        e.start()
        for k in keys:
            await e.on_event(Dtmf(k))
        out = await e.on_event(Utterance(heard))
        steps = [a.detail for a in out if isinstance(a, Step) and a.name == "global"]
        assert steps == [{"intent": intent}], (heard, keys, out)


@pytest.mark.parametrize(("heard", "intent"), [
    ("一进门就闻到梅汽的味道", "safety"),  # 煤气的味道 as Whisper base heard it
    ("家里转起鞋楼了", "safety"),  # 燃气泄漏了
    ("我想约个燃气维修", None), ("燃气维护多少钱", None),  # 维 sounds as 味: no smell
])
def test_a_gas_smell_by_sound(heard: str, intent: str | None) -> None:
    from dialog.global_intents import global_intent

    assert global_intent(heard) == intent


@pytest.mark.parametrize(("text", "intent"), [
    ("再见", "goodbye"), ("好的，再见。", "goodbye"), ("没事了，谢谢，拜拜", "goodbye"),
    ("挂了啊", "goodbye"), ("不用了谢谢", "goodbye"), ("谢谢，再见", "goodbye"),
    ("挂了失的卡还能再解开吗", None), ("没有了密码怎么办", None), ("不用了", None)])
def test_a_farewell_is_the_whole_utterance(text: str, intent: str | None) -> None:
    """挂了失的卡… is a request, not 挂了 (before, the caller was hung up on)."""
    from dialog.global_intents import global_intent

    assert global_intent(text) == intent


@pytest.mark.parametrize("text", ["我的加油卡被重复扣款了", "燃气费重复缴了两次",
                                  "办加油卡要带什么", "初始密码是什么"])
def test_a_question_is_no_request_to_repeat(text: str) -> None:
    """A double charge, or a question ending in 什么, is a business question (before, the
    prompt was replayed to the caller)."""
    from dialog.global_intents import global_intent

    assert global_intent(text) is None


async def test_a_caller_who_changes_the_subject_is_heard(catalog: Catalog) -> None:
    """At the card-number question, a sure request for another bot goes to that bot; once the
    caller has given something, one yes/no first (no: the question that was asked)."""
    e = DialogEngine(catalog, fake_actions())
    e.start()
    await e.on_event(Utterance("我要查加油卡余额"))
    out = await e.on_event(Utterance("我家燃气灶打不着火了"))
    assert [a.detail["to"] for a in out if isinstance(a, Step) and a.name == "topic_change"] \
        == ["stove_no_ignite"]
    assert e.state.bot == "stove_no_ignite"

    e = DialogEngine(catalog, fake_actions())
    e.start()
    await e.on_event(Utterance("我要查加油卡余额"))
    await e.on_event(Dtmf("9001010000012345678#"))  # the card number: progress
    asked = await e.on_event(Utterance("我卡丢了"))
    assert "您是要改为办理加油卡挂失吗" in said(asked) and e.state.bot == "fuel_balance"
    kept = await e.on_event(Dtmf("2"))  # no: the PIN question again
    assert "密码" in said(kept) and e.state.bot == "fuel_balance"
    await e.on_event(Utterance("我卡丢了"))
    moved = await e.on_event(Utterance("是的"))
    assert e.state.bot == "fuel_loss" and "密码" in said(moved)  # the card number is kept
    assert e.state.slots == {"card_number": "9001010000012345678"}


async def test_a_valid_answer_is_never_taken_for_another_request(catalog: Catalog) -> None:
    e = DialogEngine(catalog, fake_actions())
    e.start()
    await e.on_event(Utterance("我要查加油卡余额"))
    await e.on_event(Dtmf("9001010000012345678#"))
    out = await e.on_event(Dtmf("123456#"))
    assert not [a for a in out if isinstance(a, Step) and a.name == "topic_change"]
    assert "1280.50" in said(out)


async def test_an_unsure_request_far_ahead_is_confirmed_alone(catalog: Catalog) -> None:
    """Unsure, but far ahead of the runner-up: one yes/no question about it, not an either/or
    with an implausible second (yes enters it; no asks for the request again)."""
    for answer, bot in ((Utterance("是的"), "fuel_balance"), (Dtmf("1"), "fuel_balance"),
                        (Utterance("不是"), None), (Dtmf("2"), None)):
        e = DialogEngine(catalog)
        e.start()
        asked = await e.on_event(Utterance("我跑长途想确认卡里的钱够不够"))
        assert "请问您是要办理" in said(asked) and "还是" not in said(asked)
        out = await e.on_event(answer)
        assert e.state.bot == bot, (answer, out)
        if bot is None:
            assert e.state.mode == "route" and "再简单说一下" in said(out)


async def test_a_named_line_decides_between_its_bots_and_the_other_lines(
        catalog: Catalog) -> None:
    """燃气卡充了钱没到 names gas: the gas bot, not "fuel or gas?"; a service complaint (no one
    line's) stays in the running when a line is named."""
    from dialog.routing import route_request

    assert route_request(catalog, "燃气卡充了钱没到").options == ("gas_recharge_missing",)
    assert route_request(catalog, "我家燃气打不着火了").options == ("stove_no_ignite",)
    assert route_request(catalog, "我要投诉加油站的服务员").options == ("service_complaint",)


async def test_backend_refusal_is_spoken_then_transferred(catalog: Catalog) -> None:
    e = DialogEngine(catalog, fake_actions())
    e.start()
    await e.on_event(Utterance("我的加油卡丢了要挂失"))
    await e.on_event(Dtmf("9001000000000000017#"))
    out = await e.on_event(Dtmf("123456#"))
    assert "挂失" in said(out)  # the confirmation question
    out = await e.on_event(Dtmf("1"))
    assert "已经挂失过了" in said(out)
    assert isinstance(out[-1], TransferAction)


async def test_line_menus_star_back_zero_to_line_queue_and_invalid_keys(catalog: Catalog) -> None:
    engine = DialogEngine(catalog, {})
    first = engine.start()
    assert "956100" not in said(first)  # numbers spelled for the TTS: 九五六一零零
    gas = await engine.on_event(Dtmf("2"))
    assert "天然气" in said(gas) and isinstance(gas[-1], Collect)
    back = await engine.on_event(Dtmf("*"))
    assert engine.state.mode == "route" and isinstance(back[-1], Collect)
    await engine.on_event(Dtmf("1"))
    out = await engine.on_event(Dtmf("0"))
    assert isinstance(out[-1], TransferAction) and out[-1].line == "oil"
    engine = DialogEngine(catalog, {})
    engine.start()
    for key in ("5", "9"):
        out = await engine.on_event(Dtmf(key))
        assert isinstance(out[-1], Collect)
        assert next(a.detail for a in out if isinstance(a, Step))["key"] == key
    out = await engine.on_event(Dtmf("7"))
    assert isinstance(out[-1], TransferAction) and out[-1].reason == "repeated_failures"


@pytest.mark.parametrize(("text", "line"), [
    ("燃气业务", "gas"), ("天然气。", "gas"), ("嗯，加油卡吧", "oil"),
    ("我想问一下燃气的事", "gas"), ("我要办加油卡", None), ("燃气费怎么交", None), ("查余额", None),
])
def test_a_line_named_alone(text: str, line: str | None) -> None:
    from dialog.nlu.lines import named_line

    assert named_line(text) == line


async def test_saying_a_line_opens_its_menu(catalog: Catalog) -> None:
    # the route menu offers 加油卡业务 and 天然气业务: said back, they are the keys 1 and 2
    # (the matcher alone took 燃气业务 for fuel_station, whose question says 办加油卡业务)
    from dialog.evaluate import route, verdict
    from handoff.rules import step_label

    engine = DialogEngine(catalog, {})
    engine.start()
    assert await engine.turn_complete("燃气业务")
    out = await engine.on_event(Utterance("燃气业务", 1.0))
    assert engine.state.mode == "line_menu" and engine.state.line == "gas"
    assert "天然气" in said(out) and isinstance(out[-1], Collect)
    step = next(a for a in out if isinstance(a, Step))
    assert step_label(step.name, step.detail) == "说出业务：天然气业务"
    out = await engine.on_event(Utterance("加油卡", 1.0))  # another line from the menu
    assert engine.state.line == "oil"
    routed = route(catalog, "燃气业务")
    assert routed.decision == "line" and verdict("gas_balance", routed) == "clarify"
    engine = DialogEngine(catalog, {})
    engine.start()
    await engine.on_event(Utterance("我要办加油卡", 1.0))
    assert engine.state.bot == "fuel_card_apply"


async def test_snapshot_round_trip_drops_secrets_and_resumes(catalog: Catalog) -> None:
    import json

    e = DialogEngine(catalog, fake_actions())
    e.start()
    await e.on_event(Dtmf("1"))
    await e.on_event(Dtmf("1"))
    await e.on_event(Dtmf("9001000000000000017#"))
    e.state.slots["pin"] = "123456"  # as if the PIN had been typed in the same turn
    snap = json.loads(json.dumps(e.snapshot()))  # it must survive JSON (Redis)
    assert "123456" not in json.dumps(snap)
    again = DialogEngine.restore(catalog, fake_actions(), snap)
    assert again.call_id == e.call_id and again.state.bot == "fuel_balance"
    out = again.resume()
    assert "我们继续" in said(out) and "密码" in said(out) and isinstance(out[-1], Collect)
    out = await again.on_event(Dtmf("123456#"))
    assert "1280.50" in said(out)
    with pytest.raises(ValueError):
        DialogEngine.restore(catalog, None, {"state": {"v": 99}})
