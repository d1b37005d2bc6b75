"""Intent matching (dialog.nlu.matching), fuzzy pinyin and the rule syntax."""

from __future__ import annotations

import time

import pytest

from dialog.nlu.matching import IntentMatcher, IntentSpec, leave_one_out_accuracy
from dialog.nlu.pinyin import fuzzy_pinyin
from dialog.nlu.rules import RuleSyntaxError, compile_rule

INTENTS = (
    IntentSpec(
        "balance", "余额查询", "查询加油卡余额",
        similar=("我想查一下余额", "卡里还有多少钱", "查余额", "加油卡还剩多少钱",
                 "帮我看看卡上余额", "余额是多少", "我的卡还有多少钱", "查一下卡里的钱"),
        rules=("(查|看|问){0,6}余额", "(还剩|还有|剩)多少钱", "卡(里|上){0,2}的?钱"),
        keywords=("余额",),
    ),
    IntentSpec(
        "loss", "挂失", "加油卡挂失",
        similar=("我的卡丢了", "卡丢了怎么办", "我要挂失", "加油卡不见了", "卡被偷了要挂失",
                 "油卡找不到了", "帮我把卡挂失", "卡弄丢了"),
        rules=("(卡{0,4}(丢|不见|被偷|找不到)|挂失) !(取消|解除|解挂)",),
        keywords=("挂失",),
    ),
    IntentSpec(
        "cancel", "销户", "加油卡销户",
        similar=("我要销户", "这张卡不用了要注销", "注销加油卡", "怎么销卡", "卡不想用了退卡",
                 "办理销户", "我想把卡注销掉"),
        rules=("(销户|注销|销卡|退卡)",),
    ),
    IntentSpec(
        "transactions", "消费记录", "查询消费记录",
        similar=("查一下消费明细", "最近加了几次油", "上个月花了多少", "看看加油记录",
                 "我想查消费记录", "查交易明细", "卡上的消费流水"),
        rules=("(消费|交易|加油)(记录|明细|流水)", "(加了|花了|消费了|刷了)(几次|多少)"),
    ),
    IntentSpec(
        "invoice", "开发票", "开具发票",
        similar=("我要开发票", "加油的发票怎么开", "能开电子发票吗", "发票抬头怎么填",
                 "补开发票", "开增值税专用发票", "怎么申请发票"),
        rules=("发票",),
    ),
    IntentSpec(
        "gas_recharge", "充值不到账", "燃气充值不到账",
        similar=("交了燃气费没到账", "充了钱表里没有气", "燃气费交了还显示欠费",
                 "缴费成功但是没到账", "网上充的气费没到", "充值了表上没显示", "钱扣了气没到"),
        rules=("(充值|充|交|缴|扣){0,6}(没到|不到账|没有到账|没显示|没有气|没气|欠费)",),
    ),
    IntentSpec(
        "meter", "燃气表故障", "燃气表故障报修",
        similar=("燃气表坏了", "气表不走字", "表上显示屏不亮", "燃气表报警", "表读数不对",
                 "气表一直响", "燃气表没电了"),
        rules=("表{0,4}(坏|不走|故障|报警|不亮|没电|读数|不准|响) !(充|交|缴)",),
    ),
    IntentSpec(
        "stove", "打不着火", "燃气灶打不着火",
        similar=("灶打不着火", "燃气灶点不着", "炉子打不着", "做饭的灶点不了火",
                 "灶台一直打不着", "煤气灶不出火", "热水器打不着火"),
        rules=("(打不着|点不着|点不了火|不出火)",),
    ),
    IntentSpec(
        "leak", "燃气泄漏", "燃气泄漏报警",
        similar=("家里有燃气味", "闻到煤气味", "好像漏气了", "燃气管道漏气", "厨房里一股煤气味",
                 "天然气泄漏了", "楼道里有气味"),
        rules=("(漏气|泄漏|泄露|煤气味|燃气味|有气味|异味)",),
    ),
)


@pytest.fixture(scope="module")
def matcher() -> IntentMatcher:
    """The word layers alone (rule, characters, pinyin): the trained layer has its own tests."""
    return IntentMatcher(INTENTS, semantic=False)


@pytest.mark.parametrize(("text", "intent"), [
    ("我想查一下鱼鹅", "balance"),
    ("卡丢了要挂湿", "loss"),
    ("我要笑虎", "cancel"),
    ("灶台打不着", "stove"),
    ("家里有煤气味", "leak"),
    ("查詢加油卡餘額", "balance"),
    ("上个月的消费记录", "transactions"),
    ("我要开发票", "invoice"),
    ("燃气表不走字了", "meter"),
    ("交了燃气费一直没到账", "gas_recharge"),
])
def test_matches(matcher: IntentMatcher, text: str, intent: str) -> None:
    result = matcher.match(text)
    assert result.decision == "match", result
    assert result.best is not None and result.best.intent == intent, result
    assert 0.0 <= result.best.score <= 1.0 and result.best.why


def test_negation_guard_vetoes_intent(matcher: IntentMatcher) -> None:
    result = matcher.match("解除挂失")
    assert all(c.intent != "loss" for c in result.candidates)
    assert result.best is None or result.best.intent != "loss"


def test_no_match(matcher: IntentMatcher) -> None:
    result = matcher.match("今天天气怎么样")
    assert result.decision == "no_match" and result.best is None
    assert matcher.match("").decision == "no_match"
    assert matcher.match("，。！").decision == "no_match"


def test_clarify_on_ambiguous(matcher: IntentMatcher) -> None:
    result = matcher.match("卡丢了还要销户")  # both a loss and a cancellation rule fire
    assert result.decision == "clarify", result
    assert {c.intent for c in result.candidates[:2]} == {"loss", "cancel"}


def test_only_restricts(matcher: IntentMatcher) -> None:
    result = matcher.match("卡丢了还要销户", only={"cancel", "invoice"})
    assert result.decision == "match" and result.best is not None
    assert result.best.intent == "cancel"
    assert all(c.intent in {"cancel", "invoice"} for c in result.candidates)


def test_layers_are_reported(matcher: IntentMatcher) -> None:
    best = matcher.match("我想查一下鱼鹅").best
    assert best is not None and best.intent == "balance"
    assert best.layer == "pinyin", best  # 鱼鹅 sounds like 余额: only the pinyin layer hears it
    rule = matcher.match("我的加油卡不小心丢了").best
    assert rule is not None and rule.layer == "rule" and rule.score == 1.0


def test_trained_layer_learns_which_words_tell_intents_apart() -> None:
    """The trained layer (dialog.nlu.classifier) generalises past any one question: words no
    question has together still point to the intent whose questions carry them."""
    m = IntentMatcher(INTENTS, no_bot=("今天天气怎么样", "你是机器人吗", "我找一下王经理",
                                       "讲个笑话", "几点了"))
    assert m.classifier is not None
    p = m.classifier.proba("我想看看最近的流水明细")
    assert max(p, key=p.__getitem__) == "transactions"
    assert abs(sum(p.values()) - 1.0) < 1e-9
    best = m.match("我想看看最近的流水明细").best
    assert best is not None and best.intent == "transactions"
    assert m.match("你是机器人吗").decision == "no_match"  # the "no bot" class


def test_trained_layer_with_an_embedder_and_without_it() -> None:
    vocab = "余额钱挂失丢天气"
    calls: list[int] = []

    def embed(texts: list[str]) -> list[list[float]]:
        calls.append(len(texts))
        return [[float(ch in t) for ch in vocab] for t in texts]

    m = IntentMatcher(INTENTS[:2], embedder=embed)
    assert calls and calls[0] > 2  # every question embedded once, in one batch
    assert m.match("钱钱").candidates
    assert calls[-1] == 1  # the request

    def broken(texts: list[str]) -> list[list[float]]:
        raise RuntimeError("endpoint down")

    # an embedder that fails leaves the words: still trained, still matching
    m2 = IntentMatcher(INTENTS[:2], embedder=broken)
    assert m2.classifier is not None
    best = m2.match("我的卡丢了").best
    assert best is not None and best.intent == "loss"


def test_a_rule_does_not_win_against_strong_contrary_evidence() -> None:
    from dialog.nlu.matching import IntentMatcher as M

    m = M(INTENTS)
    assert m._contrary("invoice", {"invoice": 0.01, "transactions": 0.9, "_none": 0.09})
    assert not m._contrary("invoice", {"invoice": 0.3, "transactions": 0.6, "_none": 0.1})
    assert not M._contrary("invoice", {})


def test_leave_one_out_accuracy() -> None:
    accuracy, errors = leave_one_out_accuracy(INTENTS)
    assert accuracy >= 0.9, errors


def test_match_is_fast(matcher: IntentMatcher) -> None:
    texts = ["我想查一下鱼鹅", "卡丢了要挂湿", "今天天气怎么样", "家里有煤气味"]
    for t in texts:
        matcher.match(t)
    start = time.perf_counter()
    for _ in range(50):
        for t in texts:
            matcher.match(t + "啊")
    assert (time.perf_counter() - start) / 200 < 0.01


def test_fuzzy_pinyin_merges_confusions() -> None:
    assert fuzzy_pinyin("挂失") == fuzzy_pinyin("挂湿") == ["gua", "si"]
    assert fuzzy_pinyin("余额") == fuzzy_pinyin("鱼鹅")
    assert fuzzy_pinyin("销户") == fuzzy_pinyin("笑虎")
    assert fuzzy_pinyin("牛奶") == fuzzy_pinyin("刘来")  # n/l, ai unchanged
    assert fuzzy_pinyin("帮忙") == fuzzy_pinyin("班满")  # ang/an merged
    assert fuzzy_pinyin("找人") == fuzzy_pinyin("早人")  # zh/z merged
    assert fuzzy_pinyin("卡号138abc，") == ["ka", "hao", "1", "3", "8"]


def test_rules() -> None:
    r = compile_rule("(卡|加油卡){0,4}(挂失|丢失|丢了) !(取消|解除)")
    assert r.matches("我的加油卡弄丢了")
    assert r.matches("卡不小心丢失了")
    assert not r.matches("解除加油卡挂失")
    assert r.vetoes("加油卡挂失取消") and not r.vetoes("卡丢了")
    assert not r.matches("卡在家里放了很久了然后丢了")  # gap longer than 4
    assert compile_rule("余额 & 加油卡").matches("加油卡的余额")
    assert compile_rule("余额 & 加油卡").matches("余额加油卡")
    assert not compile_rule("余额 & 加油卡").matches("查余额")
    opt = compile_rule("[我要]销户*谢谢")
    assert opt.matches("销户谢谢") and opt.matches("我要销户了谢谢") and not opt.matches("我要销户")
    assert compile_rule("餘額").matches("余额")  # literals are normalised too
    # an escaped '*' is a literal, but punctuation is stripped from rule and text alike
    assert compile_rule(r"a\*b").matches("A*B")


@pytest.mark.parametrize(("src", "position"), [
    ("(挂失|丢了", 0),
    ("挂失)", 2),
    ("(|丢了)", 1),
    ("卡{4,2}丢", 1),
    ("卡{x}丢", 1),
    ("[可选", 0),
    ("挂失 !(取消) 丢了", 9),
    ("", 0),
])
def test_rule_syntax_errors(src: str, position: int) -> None:
    with pytest.raises(RuleSyntaxError) as exc:
        compile_rule(src)
    assert exc.value.position == position
    assert str(position) in str(exc.value)
