"""The engine's own fixed prompts (bots carry theirs in their files). Numbers are spelled out
for the TTS where a digit reading would be wrong (九五六一零零)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dialog.catalog import Catalog

P: dict[str, str] = {
    "greeting": "您好，欢迎致电九五六一零零客户服务热线。",
    "route_menu": (
        "请直接说出您要办理的业务，比如“查询加油卡余额”；"
        "或者按键选择：加油卡业务请按1，天然气业务请按2，人工服务请按0。"
    ),
    "confirm_oil": "您选择的是加油卡业务。",
    "confirm_gas": "您选择的是天然气业务。",
    "no_input": "抱歉，没有听到您的声音。",
    "no_match": "抱歉，我没有听懂您的问题。",
    "invalid": "抱歉，您的输入有误。",
    "switch_confirm": "您是要改为办理{bot}吗？",
    "confirm_bot": "请问您是要办理{bot}吗？",
    "confirm_no": "好的，请您再简单说一下要办理什么业务。",
    # nothing matched, but some bots came near (dialog.routing.guesses)
    "guess_lead": "抱歉，我没有完全听懂。",
    "guess": "您要办理的是不是以下业务：{options}。都不是的话，请直接说出您要办理的业务。",
    "transfer": "正在为您转接人工服务，请稍候。",
    "transfer_after_errors": "为了更好地为您服务，正在为您转接人工服务，请稍候。",
    "verify_failed": "抱歉，身份验证没有通过，请重新输入。",
    "verify_transfer": "身份验证没有通过，正在为您转接人工服务，请稍候。",
    "verify_locked": (
        "由于身份验证多次没有通过，为了保障您的账户安全，这个卡号或户号的自助验证已暂时锁定。"
        "正在为您转接人工服务，请稍候。"
    ),
    "system_busy": "抱歉，系统暂时繁忙。",
    "overload": "现在来电较多，正在为您转接人工服务，请稍候。",
    "speech_unavailable": "抱歉，语音识别暂时不可用，请您按键操作。",
    "safety": (
        "请注意安全！请立即关闭燃气总阀，打开门窗通风，不要开关电器、不要使用明火和手机，"
        "尽快离开室内到安全地带。正在为您紧急转接抢修热线。"
    ),
    "goodbye": "感谢您的来电，再见。",
    "resume": "抱歉，刚才系统有些问题，让您久等了，我们继续。",
    "no_input_goodbye": "很抱歉一直没有听到您的声音，感谢您的来电，再见。",
    # web chat (ivr/calls/chat.py): the satisfaction question at the end, and what a customer
    # reads while waiting for, or after, an agent
    "chat_rate": "请您对本次服务进行评价：",
    "chat_queue_timeout": "抱歉，现在在线客服全忙。您可以稍后再来咨询，或拨打956100热线。",
    "chat_agent_left": "客服已结束本次会话，感谢您的咨询。",
    # played by Asterisk's dialplan itself while the IVR server is down (extensions.conf
    # failsafe): published under fixed file names (``ivr.core.sounds.DIALPLAN_PROMPTS``)
    "failsafe_hold": (
        "您好，欢迎致电九五六一零零。自助语音服务暂时无法使用，正在为您转接人工服务，请稍候。"
    ),
    "failsafe_sorry": "很抱歉，现在坐席全忙，暂时无法接通。请您稍后再拨，感谢您的耐心等待，再见。",
}


# The same prompts read in a web chat (``ivr.calls.chat``): what only makes sense on a phone is
# said the chat's way; menus keep their "X请按N" (they become buttons, and a typed N works).
CHAT_WORDING: tuple[tuple[str, str], ...] = (
    ("欢迎致电九五六一零零客户服务热线", "欢迎使用中国石油956100在线客服"),
    ("九五六一零零", "956100"),
    ("，以井号键结束", ""),
    ("以井号键结束", ""),
    ("感谢您的来电", "感谢您的咨询"),
    ("没有听到您的声音", "没有收到您的消息"),
    ("请按键操作", "请点击按钮或输入文字"),
    ("或者按键选择", "或者点击选择"),
    ("请直接说出", "请直接输入"),
    ("正在为您转接人工服务", "正在为您转接人工客服"),
)


def chat_text(text: str) -> str:
    """A prompt as a web chat shows it (``CHAT_WORDING``)."""
    for phone, chat in CHAT_WORDING:
        text = text.replace(phone, chat)
    return text


def line_menu_text(catalog: Catalog, line: str) -> str:
    """The DTMF menu of one business line, from the bots that have a menu key."""
    parts = [f"{b.name}请按{b.menu_key}" for b in catalog.menu(line)]
    return "，".join([*parts, "人工服务请按0，返回上一级请按星号键"]) + "。"


_TEMPLATE = re.compile(r"\{\w+\}")


def fixed_prompts(catalog: Catalog) -> tuple[dict[str, str], list[str]]:
    """What can be rendered before any call: ``(essential, rest)``.

    ``essential`` (prompt id -> text): the engine's own prompts and the line menus, needed at
    the first seconds of every call; ``rest``: every bot text without a ``{placeholder}``
    (replies, slot prompts and reprompts, confirmations), in catalog order, deduplicated.
    """
    essential = {k: v for k, v in P.items() if not _TEMPLATE.search(v)}  # {bot}: per call
    for line in ("oil", "gas"):
        essential[f"menu_{line}"] = line_menu_text(catalog, line)
    for kind in ("fuel_card", "gas_account"):
        for name, slot in catalog.identity_slots(kind).items():
            essential[f"{kind}_{name}"] = slot.prompt
            if slot.reprompt:
                essential[f"{kind}_{name}_again"] = slot.reprompt
    seen = set(essential.values())
    rest: list[str] = []
    for bot in catalog.bots.values():
        texts: list[str | None] = []
        for slot in bot.slots.values():
            texts += [slot.prompt, slot.reprompt]
        for step in bot.steps:
            texts.append(step.say)
            if step.confirm:
                texts.append(catalog.yes_no_slot(step.confirm).prompt)
        for text in texts:
            if text and not _TEMPLATE.search(text) and text not in seen:
                seen.add(text)
                rest.append(text)
    return essential, rest
