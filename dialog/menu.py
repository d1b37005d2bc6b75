"""The 956100 welcome menu: DTMF 1 fuel card, 2 natural gas, 0 agent.

A pure state machine: ``start()`` and ``on_event(event)`` return actions. The scenario bots plug
in behind the business-line menus.
"""

from __future__ import annotations

from dataclasses import dataclass

from dialog.actions import Action, Collect, DialogEvent, Dtmf, Hangup, NoInput, Say, Step, Transfer

PROMPTS: dict[str, str] = {
    "greeting": "您好，欢迎致电九五六一零零客户服务热线。",
    "main_menu": "加油卡业务请按1，天然气业务请按2，人工服务请按0。",
    "confirm_oil": "您选择的是加油卡业务。",
    "confirm_gas": "您选择的是天然气业务。",
    "sub_menu_oil": (
        "转加油卡人工服务请按1，综合人工服务请按0，"
        "返回主菜单请按星号键，结束通话请按井号键。"
    ),
    "sub_menu_gas": (
        "转天然气人工服务请按1，综合人工服务请按0，"
        "返回主菜单请按星号键，结束通话请按井号键。"
    ),
    "no_input": "抱歉，没有听到您的按键。",
    "invalid": "抱歉，您的按键有误。",
    "transfer": "正在为您转接人工服务，请稍候。",
    "transfer_after_errors": "为了更好地为您服务，正在为您转接人工服务，请稍候。",
    "goodbye": "感谢您的来电，再见。",
    "no_input_goodbye": "很抱歉一直没有听到您的按键，感谢您的来电，再见。",
}

LINE_NAMES = {"oil": "加油卡", "gas": "天然气"}


def say(prompt_id: str) -> Say:
    return Say(PROMPTS[prompt_id], prompt_id=prompt_id)


@dataclass
class WelcomeMenu:
    max_retries: int = 2  # reprompts after the first try; the next failure ends the menu
    level: str = "main"  # main | oil | gas
    no_inputs: int = 0
    invalids: int = 0

    def start(self) -> list[Action]:
        return [say("greeting"), *self._menu()]

    def _menu(self) -> list[Action]:
        prompt = "main_menu" if self.level == "main" else f"sub_menu_{self.level}"
        return [say(prompt), Collect(max_digits=1)]

    def on_event(self, event: DialogEvent) -> list[Action]:
        if isinstance(event, NoInput):
            self.no_inputs += 1
            if self.no_inputs > self.max_retries:
                return [
                    Step("no_input_limit", {"level": self.level}),
                    say("no_input_goodbye"),
                    Hangup("no_input"),
                ]
            return [
                Step("no_input", {"level": self.level, "count": self.no_inputs}),
                say("no_input"),
                *self._menu(),
            ]
        if isinstance(event, Dtmf):
            self.no_inputs = 0
            return self._on_key(event.digits[:1])
        # speech arrives with the voice path; until then treat it as an invalid key
        return self._invalid("speech")

    def _on_key(self, key: str) -> list[Action]:
        if self.level == "main":
            if key == "1":
                return self._enter("oil")
            if key == "2":
                return self._enter("gas")
            if key == "0":
                return [
                    Step("menu", {"key": key, "choice": "agent"}),
                    say("transfer"),
                    Transfer("general", "caller_request"),
                ]
            return self._invalid(key)
        if key == "1":
            return [
                Step("menu", {"key": key, "choice": f"{self.level}_agent"}),
                say("transfer"),
                Transfer(self.level, "caller_request"),
            ]
        if key == "0":
            return [
                Step("menu", {"key": key, "choice": "agent"}),
                say("transfer"),
                Transfer("general", "caller_request"),
            ]
        if key == "*":
            self.level, self.invalids = "main", 0
            return [Step("menu", {"key": key, "choice": "main_menu"}), *self._menu()]
        if key == "#":
            return [
                Step("menu", {"key": key, "choice": "goodbye"}),
                say("goodbye"),
                Hangup("completed"),
            ]
        return self._invalid(key)

    def _enter(self, line: str) -> list[Action]:
        self.level, self.invalids = line, 0
        return [
            Step("menu", {"key": "1" if line == "oil" else "2", "choice": line}),
            say(f"confirm_{line}"),
            *self._menu(),
        ]

    def _invalid(self, key: str) -> list[Action]:
        self.invalids += 1
        if self.invalids > self.max_retries:
            # a caller who keeps trying deserves a person, not a hang-up
            return [
                Step("invalid_limit", {"key": key, "level": self.level}),
                say("transfer_after_errors"),
                Transfer("general", "invalid_input"),
            ]
        return [
            Step("invalid_key", {"key": key, "count": self.invalids}),
            say("invalid"),
            *self._menu(),
        ]
