"""The requests that hold at any point of the main dialog: what each is, as written and as it
sounds, and which one a text says (``global_intent``). The engine decides what each does
(``DialogEngine._global``); ``dialog.evaluate`` routes with the same facts.

Order matters: safety first (a gas smell is never anything else), then agent, repeat, back, main
menu, goodbye. The sound layer runs only when no written pattern matched.
"""

from __future__ import annotations

import re

from dialog.nlu.pinyin import fuzzy_pinyin

SAFETY_BOT = "gas_leak"  # the bot whose service the safety global gives at once (a leak)

GLOBALS: list[tuple[str, re.Pattern[str]]] = [
    (
        "safety",
        re.compile(r"(燃气|煤气|天然气)?(泄漏|泄露|漏气|漏汽)|(煤气|燃气|天然气|煤汽|燃汽|臭)味"
                   r"|闻到.{0,4}味|(燃气|煤气)?报警器.{0,2}(响|叫)"),
    ),
    ("agent", re.compile(r"转?人工|人工服务|人工客服|找客服|真人|接线员")),
    # 重复 but not 重复扣款 / 重复缴费 (a double charge is a business question, not "say again");
    # 什么 alone (啊？什么？), not a question ending in it (办加油卡要带什么)
    ("repeat", re.compile(r"重复(?!扣|收|缴|交|充|付|支|刷|计|开|办|下单|购)|再说一遍|再说一次"
                          r"|没听清|没听到|^\W*(啊|嗯|你说|说的)?\W*什么\W*$")),
    ("back", re.compile(r"返回上一步|上一步|返回上一级")),
    ("main_menu", re.compile(r"主菜单|返回菜单|重新开始")),
    # a farewell only as the whole utterance (with 好的/谢谢 about it): 挂了失的卡还能解开吗 and
    # 没有了密码怎么办 are requests (before, 挂了… hung up on the caller)
    ("goodbye", re.compile(r"^\W*(?:(?:嗯|好的|好|行|那就|那|谢谢你|谢谢)\W*)*"
                           r"(?:再见|拜拜|没有了|没事了|不用了谢谢|挂了)"
                           r"(?:\W*(?:谢谢你|谢谢|再见|拜拜|啊|吧|哈|呀))*\W*$")),
]
# The same by sound, over fuzzy pinyin (dialog/nlu/pinyin.py: zh=z, ch=c, sh=s, n=l, ang=an...):
# what the recogniser writes with the wrong characters still means it. 方会主菜弹 (heard so by
# Whisper base on 8 kHz) is 返回主菜单, 仁工 is 人工, 在说一片 is 再说一遍. Only phrases of three
# syllables or more, or 人工 itself (the text pattern takes 人工 anywhere already). A gas smell
# first: 梅汽的味道 is 煤气的味道, 鞋楼 is 泄漏 (never 燃气维修/维护: 维 sounds as 味).
GLOBAL_SOUNDS: dict[str, re.Pattern[str]] = {
    "safety": re.compile(r"\b(mei|ran) qi (de )?wei\b(?! (xiu|hu|bao|ci))|\bxie lou\b"),
    "agent": re.compile(r"\bren gong\b"),
    "repeat": re.compile(r"\bzai (suo|jian) yi (bian|pian|ci)\b"),
    "back": re.compile(r"\b(fan hui )?san yi (bu|ji)\b"),
    "main_menu": re.compile(r"\b(zu|fan hui) cai dan\b|\bcon xin kai si\b"),
}


def global_intent(text: str) -> str | None:
    """The global intent ``text`` says, as written (``GLOBALS``, in their order) or, failing
    that, as it sounds (``GLOBAL_SOUNDS``); None when it says none."""
    for name, pattern in GLOBALS:
        if pattern.search(text):
            return name
    sounds = " ".join(fuzzy_pinyin(text))
    for name, sound in GLOBAL_SOUNDS.items():
        if sound.search(sounds):
            return name
    return None
