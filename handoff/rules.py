"""Deterministic wording of a screen pop: labels, the four-section summary and the ticket.

No model and no I/O: the same call always gives the same text, so the agent has a usable
summary the moment the phone rings. The sections are fixed: 情况 (situation), 已办理 (what was
done), 待处理 (what is still needed), 情绪 (the caller's mood).
"""

from __future__ import annotations

import re
from typing import Any

from ivr.core.lines import LINE_LABELS

SECTIONS: tuple[tuple[str, str], ...] = (
    ("situation", "情况"), ("done", "已办理"), ("pending", "待处理"), ("mood", "情绪"),
)
REASON_LABELS = {
    "caller_request": "来电人要求人工服务",
    "repeated_failures": "多次未能识别来电需求",
    "backend_refused": "业务办理被拒绝",
    "verification_failed": "身份验证未通过",
    "gas_leak": "燃气泄漏紧急情况",
    "turn_limit": "自助对话轮次过多",
    "bot_loop": "自助流程异常",
    "overload": "来电过多，未经自助直接转人工",
}
IDENTITY_LABELS = {"fuel_card": "加油卡", "gas_account": "燃气户号", "none": "无需验证"}
SLOT_LABELS = {
    "card_number": "卡号", "gas_account": "燃气户号", "pin": "密码", "id_tail": "身份证后六位",
    "phone": "联系电话", "amount": "金额", "date": "日期", "address": "地址",
}
MENU_CHOICES = {"oil": "加油卡业务", "gas": "天然气业务", "agent": "人工服务"}
GLOBAL_INTENTS = {"agent": "要求转人工", "repeat": "要求重复", "main_menu": "返回主菜单",
                  "back": "返回上一步", "goodbye": "结束通话"}
# words that show a caller is unhappy (in what they said, not in what the IVR said)
COMPLAINT = re.compile(
    r"投诉|态度(太|很|真)?(差|不好|恶劣)|不满意?|太差|差劲|骂人|生气|气死|搞什么|怎么回事|"
    r"垃圾|骗子|坑人|乱收费|太慢|等了(很|好)久|打不通|没人管|举报|曝光|消协|12345"
)
FAILURE_STEPS = frozenset({"no_match", "verify_failed", "failure_limit"})
SECTION_MAX = 90  # characters per section (four sections: about 300 characters in all)


def identity_label(kind: str) -> str:
    return IDENTITY_LABELS.get(kind, kind)


def reason_label(reason: str, bot: dict[str, Any] | None) -> str:
    """A transfer reason in Chinese; a bot's own reason reads as its business needing a person."""
    if reason in REASON_LABELS:
        return REASON_LABELS[reason]
    return f"{bot['name']}需人工处理" if bot else "自助流程转人工"


def step_label(step: str, d: dict[str, Any], bot_names: dict[str, str] | None = None) -> str:
    """One step of the call's path, in a few Chinese words for the agent."""
    if step == "menu":
        choice = MENU_CHOICES.get(str(d.get("choice")), d.get("choice"))
        return f"按键{d['key']}：{choice}" if "key" in d else f"说出业务：{choice}"
    if step == "bot":
        bot_id = str(d.get("bot", ""))
        return f"进入业务：{(bot_names or {}).get(bot_id, bot_id)}"
    if step == "slot":
        name = str(d.get("slot", ""))
        return f"填写{SLOT_LABELS.get(name, name)}：{d.get('value', '')}"
    if step == "global":
        return GLOBAL_INTENTS.get(str(d.get("intent")), f"全局指令：{d.get('intent')}")
    if step == "verify_failed":
        return f"身份验证失败（第{d.get('count', 1)}次）"
    if step == "no_match":
        return f"未能识别（第{d.get('count', 1)}次）"
    if step == "no_input":
        return f"未听到来电人（第{d.get('count', 1)}次）"
    if step == "transfer":
        reason = str(d.get("reason", ""))
        return f"转人工：{REASON_LABELS.get(reason, reason)}"
    return {
        "verified": "身份验证通过", "action_refused": "业务办理被拒绝",
        "failure_limit": "多次未识别，转人工", "clarify": "需要澄清业务",
        "safety": "识别到燃气泄漏", "no_input_limit": "多次无应答",
        "resumed": "系统恢复后继续通话", "failover": "系统异常，转综合队列", "error": "系统错误",
    }.get(step, step)


def caller_texts(transcript: list[dict[str, Any]]) -> list[str]:
    return [t["text"] for t in transcript if t["who"] == "caller" and t["kind"] == "speech"]


def is_complaint(bot: dict[str, Any] | None, texts: list[str]) -> bool:
    if bot is not None and str(bot.get("id", "")).endswith("complaint"):
        return True
    return any(COMPLAINT.search(t) for t in texts)


def _clip(text: str) -> str:
    return text if len(text) <= SECTION_MAX else text[: SECTION_MAX - 1] + "…"


def _situation(reason: str, line: str, bot: dict[str, Any] | None, error: str | None) -> str:
    head = reason_label(reason, bot)
    if reason == "backend_refused" and error:
        head += f"：{error}"
    where = f"业务线：{LINE_LABELS.get(line, line)}"
    if bot is not None:
        where += f"；办理事项：{bot['name']}"
    return f"{head}。{where}。"


def _done(bot: dict[str, Any] | None, identity: dict[str, Any], slots: dict[str, Any],
          steps: list[dict[str, Any]]) -> str:
    items: list[str] = []
    for s in steps:
        if s["step"] == "menu" and s["detail"].get("choice") in ("oil", "gas"):
            items.append(f"按键选择{MENU_CHOICES[s['detail']['choice']]}")
    if bot is not None:
        items.append(f"进入{bot['name']}自助流程")
    kind_label = identity_label(str(identity.get("kind")))
    tail = f"（尾号{identity['tail']}）" if identity.get("tail") else ""
    if identity.get("verified"):
        items.append(f"已验证{kind_label}{tail}")
    fails = sum(1 for s in steps if s["step"] == "verify_failed")
    if fails:
        items.append(f"身份验证失败{fails}次")
    for name, value in slots.items():
        if name in ("card_number", "gas_account", "pin", "id_tail") or value in ("***", None):
            continue  # identity is reported above; secrets never
        items.append(f"已提供{SLOT_LABELS.get(name, name)}{value}")
    if any(s["step"] == "action_refused" for s in steps):
        items.append("自助办理被拒绝")
    return "；".join(items) + "。" if items else "尚未办理任何业务。"


def _pending(reason: str, bot: dict[str, Any] | None, identity: dict[str, Any],
             complaint: bool) -> str:
    name = bot["name"] if bot else ""
    first = {
        "caller_request": f"了解来电人具体需求并协助办理{name}",
        "repeated_failures": "确认来电人的具体需求后办理",
        "backend_refused": f"人工核实被拒原因，协助办理{name or '相关业务'}",
        "verification_failed": f"人工核实身份后办理{name or '相关业务'}",
        "gas_leak": "立即派单抢修；确认来电人已关闭总阀、开窗通风并撤离；核实地址",
    }.get(reason, f"人工处理{name or '来电诉求'}")
    items = [first]
    kind = str(identity.get("kind") or "none")
    if kind != "none" and not identity.get("verified") and reason != "verification_failed":
        items.append(f"需先核实{identity_label(kind)}身份")
    if complaint:
        items.append("登记投诉并致歉")
    return "；".join(items) + "。"


def _mood(reason: str, steps: list[dict[str, Any]], complaint: bool) -> str:
    failures = sum(1 for s in steps if s["step"] in FAILURE_STEPS)
    silences = sum(1 for s in steps if s["step"] == "no_input")
    notes: list[str] = []
    if reason == "gas_leak":
        notes.append("紧张（燃气泄漏），请先安抚并确认安全")
    if complaint:
        notes.append("不满，有投诉情绪，请先致歉安抚")
    if reason == "repeated_failures" or failures >= 2:
        notes.append(f"可能不耐烦：自助流程多次未成功（{max(failures, 1)}次）")
    if silences >= 2:
        notes.append("多次未应答，可能不便说话或线路不佳")
    return "；".join(notes) + "。" if notes else "平稳。"


def deterministic_summary(
    *, reason: str, line: str, bot: dict[str, Any] | None, identity: dict[str, Any],
    slots: dict[str, Any], steps: list[dict[str, Any]], caller_texts: list[str],
    error: str | None,
) -> dict[str, str]:
    """The four sections (``situation``, ``done``, ``pending``, ``mood``) and ``text``."""
    complaint = is_complaint(bot, caller_texts)
    out = {
        "situation": _clip(_situation(reason, line, bot, error)),
        "done": _clip(_done(bot, identity, slots, steps)),
        "pending": _clip(_pending(reason, bot, identity, complaint)),
        "mood": _clip(_mood(reason, steps, complaint)),
    }
    out["text"] = summary_text(out)
    return out


def summary_text(sections: dict[str, str]) -> str:
    return "\n".join(f"{label}：{sections.get(key, '')}" for key, label in SECTIONS)


def prefill_ticket(
    *, reason: str, line: str, bot: dict[str, Any] | None, identity: dict[str, Any],
    summary: dict[str, str], caller: str, caller_texts: list[str],
) -> dict[str, Any]:
    """The ticket the agent starts from: type, account, problem, action, contact, priority."""
    if reason == "gas_leak":
        kind, label = "gas_leak", "燃气泄漏抢修"
    elif bot is not None:
        kind, label = str(bot["id"]), str(bot["name"])
    else:
        kind = f"{line}_inquiry"
        label = {"oil": "加油卡业务咨询", "gas": "天然气业务咨询"}.get(line, "综合咨询")
    urgent = reason == "gas_leak" or line == "priority" or is_complaint(bot, caller_texts)
    return {
        "type": kind,
        "type_label": label,
        "line": line,
        "account_kind": str(identity.get("kind") or "none"),
        "account_tail": str(identity.get("tail") or ""),
        "verified": bool(identity.get("verified")),
        "problem": summary["situation"],
        "requested_action": summary["pending"],
        "contact": caller,
        "priority": "urgent" if urgent else "normal",
        "priority_label": "紧急" if urgent else "普通",
    }
