"""The recogniser's hearing of bot questions as extra examples (dialog/nlu/heard.tsv)."""

from __future__ import annotations

from pathlib import Path

from dialog.catalog import HEARD_FILE, read_heard
from dialog.nlu.classifier import NONE_CLASS
from dialog.nlu.matching import IntentMatcher, IntentSpec
from ivr.tools.botshear import write_heard

SPECS = [
    IntentSpec(id="balance", name="余额查询", standard="查询加油卡余额",
               similar=("卡里还有多少钱", "帮我看看余额")),
    IntentSpec(id="loss", name="挂失", standard="加油卡挂失", similar=("卡丢了", "我要挂失")),
]


def test_a_heard_file_is_written_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "heard.tsv"
    rows = [("balance", "查余额", "差距了。"), ("loss", "卡丢了", "卡丢了"),
            ("loss", "bad\ttab", "x")]
    write_heard(rows, "ivr bots hear", "whisper", path)
    assert read_heard(path) == (("balance", "查余额", "差距了。"), ("loss", "卡丢了", "卡丢了"))
    assert read_heard(tmp_path / "absent.tsv") == ()


def test_the_shipped_file_names_known_bots_only() -> None:
    from dialog.catalog import Catalog

    bots = set(Catalog.load(semantic=False).bots) | {NONE_CLASS}
    rows = read_heard(HEARD_FILE)
    assert rows and {b for b, _s, _h in rows} <= bots


def test_a_heard_text_counts_only_while_its_question_is_asked() -> None:
    heard = [("balance", "卡里还有多少钱", "卡力还剩多少小片"),
             ("balance", "一句不再有的问题", "鱼鹅多少"),
             ("loss", "卡丢了", "卡丢乐"),
             (NONE_CLASS, "今天天气不错", "今天天气不措")]
    m = IntentMatcher(SPECS, semantic=False)
    got = m._heard(heard, ["今天天气不错"])
    assert [(b, h) for b, _q, h in got] == [("balance", "卡力还剩多少小片"), ("loss", "卡丢乐"),
                                            (NONE_CLASS, "今天天气不措")]
    assert [h for _b, _q, h in m._heard(heard, [])] == ["卡力还剩多少小片", "卡丢乐"]


def test_heard_examples_teach_the_trained_layer_a_mishearing() -> None:
    from dialog.nlu import classifier as C

    examples = [("balance", t) for t in ("查余额", "卡里还有多少钱", "帮我看看余额")] + [
        ("loss", t) for t in ("卡丢了", "我要挂失", "卡找不到了")]
    # Whisper's 相遇 for 余额 (帮我看看卡上余额 heard as 帮我看看卡相遇): no written question has it
    heard = [("balance", "查余额", "查相遇"), ("balance", "帮我看看余额", "帮我看看卡相遇"),
             ("loss", "卡丢了", "卡丢乐")]
    plain, taught = C.train_classifier(examples), C.train_classifier(examples, heard=heard)
    assert plain is not None and taught is not None and taught is not plain
    # the evidence learnt (logits; the temperature of so few examples says little)
    b, lo = plain.intents.index("balance"), plain.intents.index("loss")
    before, after = plain.logits(["相遇还有多少"])[0], taught.logits(["相遇还有多少"])[0]
    assert after[b] - after[lo] > before[b] - before[lo]


def test_recognised_words_are_matched_with_the_heard_model_typed_ones_without() -> None:
    specs = [
        IntentSpec(id="balance", name="余额查询", standard="查询加油卡余额",
                   similar=("卡里还有多少钱", "帮我看看余额", "查余额", "余额多少")),
        IntentSpec(id="loss", name="挂失", standard="加油卡挂失",
                   similar=("卡丢了", "我要挂失", "卡找不到了", "加油卡被偷了")),
    ]
    heard = [("balance", "查余额", "查相遇"), ("balance", "帮我看看余额", "帮我看看卡相遇"),
             ("balance", "余额多少", "相遇多少"), ("loss", "卡丢了", "卡丢乐")]
    plain = IntentMatcher(specs)
    assert plain.heard_classifier is plain.classifier  # nothing heard: one model
    m = IntentMatcher(specs, heard=heard)
    assert m.heard_classifier is not None and m.heard_classifier is not m.classifier
    typed, spoken = m.match("看看相遇"), m.match("看看相遇", heard=True)
    p_typed = next((c.score for c in typed.candidates if c.intent == "balance"), 0.0)
    p_spoken = next((c.score for c in spoken.candidates if c.intent == "balance"), 0.0)
    assert p_spoken > p_typed


async def test_a_call_turn_is_matched_as_heard_a_typed_one_is_not() -> None:
    from dialog.actions import Utterance
    from dialog.catalog import Catalog
    from dialog.engine import DialogEngine

    engine = DialogEngine(Catalog.load(semantic=False))
    engine.start()
    await engine.on_event(Utterance("我想查一下加油卡余额", heard=True))
    assert engine.heard
    engine = DialogEngine(Catalog.load(semantic=False))
    engine.start()
    await engine.on_event(Utterance("我想查一下加油卡余额"))
    assert not engine.heard


def test_every_question_and_no_bot_example_is_said_once() -> None:
    from dialog.catalog import Catalog, no_bot_examples
    from ivr.tools.botshear import questions

    catalog = Catalog.load(semantic=False)
    items = questions(catalog)
    said = [(i.bot, i.text) for i in items]
    assert len(said) == len(set(said))
    assert {i.bot for i in items} == set(catalog.bots) | {NONE_CLASS}
    assert sum(1 for i in items if i.bot == NONE_CLASS) == len(set(no_bot_examples()))
