"""The scenario engine: routes a caller to a bot and runs the bot's steps turn by turn.

``DialogEngine.start()`` and ``await DialogEngine.on_event(event)`` return actions (Say, Collect,
Transfer, Hangup, Step); the engine does no I/O but the business actions it is given. The same
engine serves live calls, ``ivr chat``, ``ivr bots test`` and evaluation. The turns before a
bot (the menus, a request routed, the questions about bots) are ``dialog.menus``, a bot's steps
``dialog.botsteps``, a caller who changes the subject mid-bot ``dialog.topics``; here: the
entry points, the global requests, failures and transfers, the question asked now, and
surviving a restart.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from dialog.actions import Action, Collect, DialogEvent, Dtmf, Hangup, NoInput, Say, Step
from dialog.actions import Transfer as TransferAction
from dialog.botsteps import ActionFn, ActionRefused, BotSteps
from dialog.catalog import Catalog
from dialog.global_intents import SAFETY_BOT, global_intent
from dialog.menus import MenuTurns
from dialog.nlu.llmchoice import IntentAdviser
from dialog.prompts import P
from dialog.routing import option_named
from dialog.scenario import BotSpec, SlotSpec
from dialog.slots import parse_slot
from dialog.state import DialogState, dump_state, load_state
from dialog.topics import EARLY_MATCH, SWITCH, TopicTurns

__all__ = ["ActionFn", "ActionRefused", "DialogEngine"]


def _shown(slot: SlotSpec, value: Any) -> Any:
    """A slot value as it may appear in steps, journals and logs: secrets hidden, account-like
    numbers reduced to their last four digits."""
    if slot.sensitive:
        return "***"
    if slot.type in ("card_number", "gas_account", "phone", "digits") and len(str(value)) > 4:
        return "*" * (len(str(value)) - 4) + str(value)[-4:]
    return value


_DIGIT_TYPES = ("digits", "card_number", "gas_account", "phone", "id_tail", "pin")


def _hints(slot: SlotSpec) -> str:
    """What the recogniser should expect for this question."""
    if slot.type in _DIGIT_TYPES:
        return "号码是：零一二三四五六七八九，幺。"
    if slot.type == "yes_no":
        return "是的。对。好的。不是。不用了。"
    if slot.type == "choice":
        return "。".join(w for words in slot.choices.values() for w in words[1:]) + "。"
    return ""


def _entry(slot: SlotSpec) -> str:
    """How a typed channel asks for this slot: a masked field, a number field, or words."""
    if slot.sensitive:
        return "secret"
    return "digits" if slot.type in _DIGIT_TYPES and (slot.max_digits or 1) > 1 else ""


class DialogEngine(MenuTurns, BotSteps, TopicTurns):
    def __init__(self, catalog: Catalog, actions: Mapping[str, ActionFn] | None = None, *,
                 max_failures: int = 2, max_silences: int = 2, max_turns: int = 40,
                 call_id: str | None = None, notice: str = "",
                 adviser: IntentAdviser | None = None) -> None:
        self.catalog = catalog
        self.heard = False  # this turn's words were recognised, not typed (Utterance.heard)
        # asked when routing ends unsure (dialog/nlu/llmchoice.py); None: never
        self.adviser = adviser
        self.notice = notice  # the privacy notice after the greeting ("" : none)
        self.call_id = call_id or uuid.uuid4().hex
        self.actions = dict(actions or {})
        self.max_failures = max_failures
        self.max_silences = max_silences
        self.max_turns = max_turns
        self.state = DialogState()
        # turns per dialog state (``_where``): turns, speech, keys, no_input, no_match, clarify
        self.stats: dict[str, dict[str, int]] = {}

    # ---- entry points ------------------------------------------------------------
    def start(self) -> list[Action]:
        return [*self._opening(), *self._prompt(self._route_prompt())]

    async def start_in(self, bot_id: str) -> list[Action]:
        """Start a call directly in one bot (``ivr chat --bot``, a DTMF shortcut, a survey)."""
        return [*self._opening(), *await self._enter(bot_id, via="direct")]

    def _opening(self) -> list[Action]:
        """The greeting, then the privacy notice (recorded, transcribed, processed by a model:
        callers are told before they say anything)."""
        notice = [Say(self.notice, "privacy_notice")] if self.notice else []
        return [Say(P["greeting"], "greeting"), *notice]

    async def on_event(self, event: DialogEvent) -> list[Action]:
        where = self._where()
        out = await self._on_event(event)
        counts = self.stats.setdefault(where, {})
        kind = ("no_input" if isinstance(event, NoInput) else
                "keys" if isinstance(event, Dtmf) else "speech")
        for name in ("turns", kind, *(a.name for a in out if isinstance(a, Step)
                                      and a.name in ("no_match", "clarify"))):
            counts[name] = counts.get(name, 0) + 1
        return out

    def _where(self) -> str:
        """The dialog state now, as the analytics group turns by it: the main menu, a line's
        menu, an either/or question, or the bot and the question it asks."""
        st = self.state
        if st.mode != "bot" or self.bot is None:
            return st.mode
        asking = self._current_ask()
        return f"{self.bot.id}.{asking[0]}" if asking else self.bot.id

    async def _on_event(self, event: DialogEvent) -> list[Action]:
        st = self.state
        st.turns += 1
        if st.turns > self.max_turns:
            return self._transfer("turn_limit")
        if isinstance(event, NoInput):
            return self._no_input()
        st.silences = 0
        if isinstance(event, Dtmf):
            if st.mode == "bot":
                return await self._answer(event.digits, dtmf=True)
            return await self._menu_key(event.digits)
        self.heard = event.heard
        text = event.text.strip()
        hit = self._global(text)
        if hit is not None:
            return hit
        if st.mode == "bot":
            return await self._answer(text, dtmf=False)
        return await self._menu_text(text)

    async def turn_complete(self, text: str) -> bool:
        """Would ``text``, said now, be served without doubt? The listener then ends the
        caller's turn at a short pause instead of waiting for the full end-of-speech silence.
        A global intent, a valid answer to the question asked, or a sure match of one bot
        (not a clarification) is complete. Changes nothing."""
        text = text.strip()
        if not text:
            return False
        if global_intent(text) is not None:
            return True
        st = self.state
        if st.mode == "bot":
            current = self._current_ask()
            return current is not None and parse_slot(current[1], text, dtmf=False)[0] is not None
        if st.mode not in ("route", "line_menu", "clarify"):
            return False
        if self._named_line(text) is not None:
            return True
        if st.mode == "clarify" and option_named(text, len(st.clarify)) is not None:
            return True  # 第二个
        result = await self._match(text, only=st.clarify if st.mode == "clarify" else None,
                                   heard=True)
        return (result.decision == "match" and result.best is not None
                and result.best.score >= EARLY_MATCH)

    # ---- surviving a server restart ----------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The state as JSON-able data, without secrets (see ``dialog.state``)."""
        secret = {n for kind in ("fuel_card", "gas_account")
                  for n, s in self.catalog.identity_slots(kind).items() if s.sensitive}
        if self.bot is not None:
            secret |= {n for n, s in self.bot.slots.items() if s.sensitive}
        return {"call_id": self.call_id, "state": dump_state(self.state, secret)}

    @classmethod
    def restore(cls, catalog: Catalog, actions: Mapping[str, ActionFn] | None,
                snapshot: dict[str, Any], *,
                adviser: IntentAdviser | None = None) -> DialogEngine:
        """An engine continuing a snapshot; ValueError if the snapshot cannot be used (e.g.
        its bot is no longer published)."""
        state = load_state(snapshot.get("state", {}))
        if state.bot is not None and state.bot not in catalog.bots:
            raise ValueError(f"bot {state.bot!r} of the snapshot is not in the catalog")
        engine = cls(catalog, actions, call_id=str(snapshot.get("call_id") or "") or None,
                     adviser=adviser)
        engine.state = state
        return engine

    def summary(self) -> dict[str, Any]:
        """What the dialog knows, for the agent's screen pop (secrets masked, tails only)."""
        st = self.state
        bot = self.bot
        slots: dict[str, Any] = {}
        specs = {**(bot.slots if bot else {})}
        for kind in ("fuel_card", "gas_account"):
            specs.update(self.catalog.identity_slots(kind))
        for name, value in st.slots.items():
            spec = specs.get(name)
            slots[name] = _shown(spec, value) if spec is not None else value
        return {
            "line": st.line or (bot.line if bot else ""),
            "bot": bot.id if bot else None,
            "bot_name": bot.name if bot else None,
            "identity": bot.identity if bot else "none",
            "verified": st.verified,
            "identity_tail": st.vars.get("card_tail") or st.vars.get("account_tail") or "",
            "slots": slots,
            "error": st.vars.get("error"),
            "turns": st.turns,
            "failures": st.failures,
            "at": self._where(),  # where the dialog is (where a caller who hangs up left)
            "states": self.stats,
        }

    def resume(self) -> list[Action]:
        """What a caller hears when the call is picked up again after a server restart: an
        apology, then the last question again (secrets are never in a snapshot, but every
        question that asks for one is asked right before it is used, so nothing is lost)."""
        st = self.state
        head: list[Action] = [Step("resumed", {"mode": st.mode}), Say(P["resume"], "resume")]
        if st.mode in ("route", "done") or not st.last_prompt:
            st.mode = "route"
            return head + self._prompt(self._route_prompt())
        return head + st.last_prompt

    @property
    def bot(self) -> BotSpec | None:
        return self.catalog.bots.get(self.state.bot or "")

    # ---- prompts and counters ------------------------------------------------------
    def _no_input(self) -> list[Action]:
        st = self.state
        st.silences += 1
        if st.silences > self.max_silences:
            st.mode = "done"
            return [Step("no_input_limit"), Say(P["no_input_goodbye"], "no_input_goodbye"),
                    Hangup("no_input")]
        return [Step("no_input", {"count": st.silences}), Say(P["no_input"], "no_input"),
                *st.last_prompt]

    def _failure(self, why: str, reprompt: list[Action], **detail: Any) -> list[Action]:
        st = self.state
        st.failures += 1
        limit = self.bot.escalate_after_failures if self.bot else self.max_failures
        if st.failures > limit:
            return [Step("failure_limit", {"why": why}),
                    *self._transfer("repeated_failures", say_key="transfer_after_errors")]
        return [Step("no_match", {"why": why, "count": st.failures, **detail}),
                *self._prompt(reprompt)]

    def _transfer(self, reason: str, line: str | None = None,
                  say_key: str = "transfer") -> list[Action]:
        st = self.state
        target = line or (self.bot.line if self.bot else st.line or "general")
        st.mode = "done"
        return [Say(P[say_key], say_key), TransferAction(target, reason)]

    # ---- global intents -----------------------------------------------------------------
    def _global(self, text: str) -> list[Action] | None:
        st = self.state
        name = global_intent(text)
        if name is not None:
            if name == "safety":
                st.mode = "done"
                return [Step("safety", {"text": text}), Say(P["safety"], "safety", barge_in=False),
                        TransferAction("priority", SAFETY_BOT)]
            if name == "agent":
                return [Step("global", {"intent": "agent"}), *self._transfer("caller_request")]
            if name == "repeat":
                return [Step("global", {"intent": "repeat"}), *st.last_prompt]
            if name == "main_menu":
                self.state = DialogState(turns=st.turns)
                if "_verify_fails" in st.vars:  # the menu is no way round the verify limit
                    self.state.vars["_verify_fails"] = st.vars["_verify_fails"]
                return [Step("global", {"intent": "main_menu"}),
                        *self._prompt(self._route_prompt())]
            if name == "back" and st.mode == "bot" and st.history:
                st.pc = st.history.pop()
                return [Step("global", {"intent": "back"}), *self._run_sync_ask()]
            if name == "goodbye":
                st.mode = "done"
                return [Step("global", {"intent": "goodbye"}), Say(P["goodbye"], "goodbye"),
                        Hangup("completed")]
        return None

    def _run_sync_ask(self) -> list[Action]:
        bot = self.bot
        assert bot is not None
        step = bot.steps[self.state.pc]
        if step.ask:
            return self._ask(bot.slots[step.ask])
        return self.state.last_prompt

    async def _enter(self, bot_id: str, *, via: str) -> list[Action]:
        st = self.state
        bot = self.catalog.bots[bot_id]
        st.mode, st.bot, st.pc, st.failures = "bot", bot_id, 0, 0
        st.line, st.evidence = bot.line, {}
        out: list[Action] = [Step("bot", {"bot": bot_id, "via": via})]
        if bot.identity != "none" and not st.verified:
            st.vars["_verify"] = bot.identity
        return out + await self._advance()

    # ---- running a bot -----------------------------------------------------------------
    def _ask(self, slot: SlotSpec, *, again: bool = False) -> list[Action]:
        text = slot.reprompt if again and slot.reprompt else slot.prompt
        return self._prompt([Say(self._fill(text)),
                             Collect(max_digits=slot.max_digits or 1, hints=_hints(slot),
                                     entry=_entry(slot))])

    def _fill(self, template: str) -> str:
        values = {**self.state.slots, **self.state.vars}
        return re.sub(r"\{(\w+)\}", lambda m: str(values.get(m.group(1), "")), template)

    def _current_ask(self) -> tuple[str, SlotSpec] | None:
        bot = self.bot
        if bot is None:
            return None
        if SWITCH in self.state.vars:
            return SWITCH, self._switch_slot(self.state.vars[SWITCH])
        verify = self.catalog.identity_slots(self.state.vars.get("_verify"))
        if verify:
            name = next((n for n in verify if n not in self.state.slots), None)
            if name is not None:
                return name, verify[name]
        step = bot.steps[self.state.pc] if self.state.pc < len(bot.steps) else None
        if step is not None and step.ask:
            return step.ask, bot.slots[step.ask]
        if step is not None and step.confirm:
            return "confirmed", self.catalog.yes_no_slot(self._fill(step.confirm))
        return None

    async def _answer(self, raw: str, *, dtmf: bool) -> list[Action]:
        st = self.state
        current = self._current_ask()
        if current is None:
            return await self._advance()
        name, slot = current
        value, error = parse_slot(slot, raw, dtmf=dtmf)
        if name == SWITCH:
            return await self._switch_answer(value)
        if value is None:
            if not dtmf and (other := await self._other_request(raw)) is not None:
                return await self._topic_change(*other)
            return self._failure(f"invalid_{slot.type}",
                                 [Say(error or P["invalid"]), *self._ask(slot, again=True)])
        st.failures = 0
        st.slots[name] = value
        shown = _shown(slot, value)
        out: list[Action] = [Step("slot", {"slot": name, "value": shown})]
        if name == "confirmed" and self.bot is not None:
            step = self.bot.steps[st.pc]
            st.pc = self._index(step.on_no) if (value is False and step.on_no) else st.pc + 1
            st.slots.pop("confirmed", None)
            return out + await self._advance()
        if "_verify" in st.vars:
            return out + await self._advance()
        st.history.append(st.pc)
        st.pc += 1
        return out + await self._advance()

