"""The workspace's form written back into a bot's YAML (``dialog.lifecycle.formedit``): only
the changed fields are rewritten, comments and spelling elsewhere kept; anything else is a
plain dump; the result always reads back as the data sent."""

from __future__ import annotations

import difflib
import random

import yaml

from dialog.catalog import BOTS_DIR
from dialog.lifecycle.formedit import apply_form, dump

TEXT = (BOTS_DIR / "fuel_loss.yaml").read_text(encoding="utf-8")


def changed_lines(old: str, new: str) -> list[str]:
    return [x for x in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="")
            if x[:1] in "+-" and not x.startswith(("+++", "---"))]


def test_a_changed_wording_and_a_new_similar_question_touch_their_lines_only() -> None:
    data = yaml.safe_load(TEXT)
    data["steps"][2]["say"] = data["steps"][2]["say"].replace("七天", "十天")
    data["similar"].insert(3, "加油卡弄丢了怎么挂失")
    data["name"] = "加油卡挂失办理"
    out = apply_form(TEXT, data)
    assert yaml.safe_load(out) == data
    lines = changed_lines(TEXT, out)
    assert lines == [
        "-name: 加油卡挂失", '+name: "加油卡挂失办理"', '+  - "加油卡弄丢了怎么挂失"',
        "-  # callers' own words: the train part of dialog/evalsets/paraphrases.tsv",
        "-  # callers' own words, written for training only (in no evaluation set)",
        next(x for x in lines if x.startswith("-  - say:")),
        next(x for x in lines if x.startswith("+  - say:"))]
    assert "# callers' own words" not in out and "tests:" in out  # a comment inside the list


def test_a_structural_change_is_a_plain_dump() -> None:
    data = yaml.safe_load(TEXT)
    data["slots"] = {"note": {"type": "text", "prompt": "请说"}}
    assert apply_form(TEXT, data) == dump(data)
    assert apply_form("not: [valid", {"a": 1}) == dump({"a": 1})


def test_random_edits_always_read_back_as_the_data() -> None:
    rnd = random.Random(7)
    for _ in range(50):
        data = yaml.safe_load(TEXT)
        if rnd.random() < 0.5:
            data["similar"] = rnd.sample(data["similar"], rnd.randint(1, len(data["similar"])))
        i = rnd.choice([i for i, s in enumerate(data["steps"]) if "say" in s])
        data["steps"][i]["say"] += rnd.choice(["：请注意", " \\n", '"引号"', "#号", "{x}"])
        assert yaml.safe_load(apply_form(TEXT, data)) == data
