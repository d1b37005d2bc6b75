"""The main dialog before a bot: the main menu and the lines' menus, a request routed
(``dialog.routing``), and the questions about bots that follow an unsure one: a yes/no question
(您是要办理X吗？), an either/or question (X还是Y？) and the guesses after a request not
understood (您要办理的是不是以下业务…). ``DialogEngine`` runs these turns until a bot is entered
(``_enter``), and gives the counting of failures and the transfers (``_failure``,
``_transfer``).

What each answer does: a key or the words of an option enter it; 是/不是 answer a yes/no
question; 都不是 goes back to the main menu without counting a failure; anything else is a new
request, routed afresh (never matched only among the options asked about).

Until a bot is entered, what each try at the request said of each bot is kept
(``DialogState.evidence``: the trained layer's probabilities, those said no to set to 0) and
weighed into the next try (``IntentMatcher.match(prior=...)``): a caller asked again is
heard with what they said before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from dialog.actions import Action, Collect, Say, Step
from dialog.catalog import Catalog
from dialog.nlu.lines import named_line
from dialog.nlu.llmchoice import IntentAdviser, Option
from dialog.nlu.matching import MatchResult
from dialog.prompts import P, line_menu_text
from dialog.routing import RouteDecision, guesses, option_named, route_request
from dialog.slots import parse_slot
from dialog.state import DialogState

T = TypeVar("T")

# The recogniser hints of the first question ("which business?"): the hotline's two businesses,
# the words Whisper base mishears most (人其, 然计, 两次 for 燃气). `ivr eval intents` on the
# spoken sets (136 utterances each; right / wrong bot): none, dev 57.4% / 3.7%, test 58.1% /
# 4.4%; these two words, dev 63.2% / 1.5%, test 63.2% / 2.9%; with 天然气 too, dev 62.5% /
# 1.5%; every bot's words (dialog.nlu.vocabulary), dev wrong 7-8% (Whisper hears them unsaid).
ROUTE_HINTS = "加油卡 燃气"
# not the options' names: a name of 6 characters or more said as written would be taken for an
# echo of the recogniser's prompt and dropped (asr.whisper.strip_prompt_echo)
OPTION_HINTS = "第一个 第二个 第三个 都不是"


class MenuTurns:
    """The turns before a bot; mixed into ``DialogEngine``, which provides the hooks below."""

    catalog: Catalog
    state: DialogState
    adviser: IntentAdviser | None
    heard: bool  # the turn's words were recognised from speech (``Utterance.heard``)

    # ---- the engine's hooks ----------------------------------------------------------------
    async def _enter(self, bot_id: str, *, via: str) -> list[Action]:
        raise NotImplementedError

    def _failure(self, why: str, reprompt: list[Action], **detail: Any) -> list[Action]:
        raise NotImplementedError

    def _transfer(self, reason: str, line: str | None = None,
                  say_key: str = "transfer") -> list[Action]:
        raise NotImplementedError

    # ---- prompts ---------------------------------------------------------------------------
    def _prompt(self, actions: list[Action]) -> list[Action]:
        """``actions`` as the question now asked (what 再说一遍 and a no-input repeat)."""
        self.state.last_prompt = [a for a in actions if isinstance(a, Say | Collect)]
        return actions

    def _route_prompt(self) -> list[Action]:
        return [Say(P["route_menu"], "route_menu"), Collect(max_digits=1, hints=ROUTE_HINTS)]

    def _line_menu(self, line: str) -> list[Action]:
        return [Say(line_menu_text(self.catalog, line), f"menu_{line}"), Collect(max_digits=1)]

    # ---- keys and words before a bot -------------------------------------------------------
    async def _menu_key(self, digits: str) -> list[Action]:
        """A key pressed at the main menu, a line's menu or a question about bots."""
        st = self.state
        key = digits[:1]
        if st.mode == "clarify" and len(st.clarify) == 1 and key in ("1", "2"):
            return await self._confirmed(key == "1")
        if st.mode == "clarify" and key.isdigit() and 1 <= int(key) <= len(st.clarify):
            return await self._enter(st.clarify[int(key) - 1], via="clarify")
        if key == "0":
            return [Step("menu", {"key": "0", "choice": "agent"}),
                    *self._transfer("caller_request")]
        if st.mode == "clarify":  # a key that is none of the options: the question again
            return self._failure("invalid_key", list(st.last_prompt), key=key)
        if st.mode == "line_menu":
            if key == "*":
                st.mode, st.line = "route", ""
                return self._prompt(self._route_prompt())
            bot = self.catalog.by_key(st.line, key)
            if bot is not None:
                return await self._enter(bot.id, via="dtmf")
            return self._failure("invalid_key", self._line_menu(st.line), key=key)
        if key in ("1", "2"):
            return self._choose_line("oil" if key == "1" else "gas", {"key": key})
        return self._failure("invalid_key", self._route_prompt(), key=key)

    def _named_line(self, text: str) -> str | None:
        """The business line ``text`` names alone, where a menu is being chosen (the route or
        a line's menu; never an either/or question, whose options are bots)."""
        return named_line(text) if self.state.mode in ("route", "line_menu") else None

    def _choose_line(self, line: str, how: dict[str, Any]) -> list[Action]:
        """The menu of one business line (its key pressed, or the line named alone)."""
        st = self.state
        st.mode, st.line = "line_menu", line
        confirm = f"confirm_{line}"
        return [Step("menu", {**how, "choice": line}), Say(P[confirm], confirm),
                *self._prompt(self._line_menu(line))]

    async def _menu_text(self, text: str) -> list[Action]:
        """Words said at the main menu, a line's menu or a question about bots: a request."""
        st = self.state
        line = self._named_line(text)
        if line is not None:
            return self._choose_line(line, {"text": text})
        declined = False
        if st.mode == "clarify" and len(st.clarify) == 1:  # 您是要办理X吗？
            yes = self._yes_or_no(text)
            if yes is not None:
                return await self._confirmed(yes)
            st.mode, st.clarify = "route", ()  # something else: a new request
        elif st.mode == "clarify":  # X还是Y？ or the guesses: an option, or a new request
            picked = await self._option_said(text)
            if picked is not None:
                return [Step("clarify", {"text": text, "picked": picked}),
                        *await self._enter(picked, via="clarify")]
            declined = self._yes_or_no(text) is False
            if declined:  # none of the options: their evidence goes
                self._decline(st.clarify)
            st.mode, st.clarify = "route", ()
        routed = await self._route(text, prior=st.evidence)
        result, decision, options = routed.result, routed.decision, routed.options
        if declined and decision == "no_match":  # 都不是: asked again, not a failure
            return self._asked_again(Step("clarify", {"text": text, "declined": True}))
        advised: str | None = None
        if decision in ("clarify", "no_match") and result.candidates:
            advised = await self._advised(text, result)
            if advised is not None:  # put to the caller as one yes/no question
                decision, options = "confirm", (advised,)
        best = result.best
        st.evidence = dict(result.proba)  # this try and the earlier ones, for the next
        detail = {"text": text, "decision": decision,
                  "intent": best.intent if best else None,
                  "score": round(best.score, 3) if best else 0.0,
                  "layer": best.layer if best else None}
        if advised is not None:
            detail["advised"] = advised  # the LLM's pick, asked as 您是要办理…吗？
        if decision == "match" and best is not None:
            return [Step("intent", detail), *await self._enter(best.intent, via="speech")]
        if decision == "confirm":
            st.mode, st.clarify = "clarify", options
            return [Step("confirm", detail), *self._prompt(self._yes_no(options[0]))]
        if decision == "clarify":
            st.mode, st.clarify = "clarify", options
            a, b = (self.catalog.bots[o].name for o in options)
            question = f"请问您是要办理{a}，还是{b}？{a}请按1，{b}请按2。"
            return [Step("clarify", detail), *self._prompt([Say(question), Collect(1)])]
        offered = guesses(self.catalog, routed)
        if offered:  # not understood, but near some bots: offer them by key
            st.mode, st.clarify = "clarify", offered
            out = self._failure("no_match", self._guess_prompt(offered), guesses=list(offered))
            if st.mode == "clarify":  # not sent on to an agent: say why it asks
                out.insert(1, Say(P["guess_lead"], "guess_lead"))
            return [Step("intent", detail), *out]
        return [Step("intent", detail),
                *self._failure("no_match", [Say(P["no_match"], "no_match"),
                                            *self._route_prompt()])]

    def _yes_no(self, bot_id: str) -> list[Action]:
        name = self.catalog.bots[bot_id].name
        return [Say(self.catalog.yes_no_slot(P["confirm_bot"].format(bot=name)).prompt),
                Collect(1)]

    def _guess_prompt(self, options: tuple[str, ...]) -> list[Action]:
        """您要办理的是不是以下业务：X请按1；Y请按2…, or one as a yes/no question."""
        if len(options) == 1:
            return self._yes_no(options[0])
        names = [self.catalog.bots[o].name for o in options]
        listed = "；".join(f"{name}请按{i}" for i, name in enumerate(names, 1))
        return [Say(P["guess"].format(options=listed)), Collect(1, hints=OPTION_HINTS)]

    async def _option_said(self, text: str) -> str | None:
        """The offered option ``text`` picks: by its place (第二个) or by its words."""
        st = self.state
        k = option_named(text, len(st.clarify))
        if k is not None:
            return st.clarify[k]
        result = await self._match(text, only=st.clarify)
        return result.best.intent if result.decision == "match" and result.best else None

    async def _advised(self, text: str, result: MatchResult) -> str | None:
        """The adviser's pick among the matcher's candidates (within its own budget)."""
        if self.adviser is None:
            return None
        bots = self.catalog.bots
        options = [Option(c.intent, bots[c.intent].name, bots[c.intent].standard)
                   for c in result.candidates if c.intent in bots]
        return await self.adviser.choose(text, options)

    async def _match(self, text: str, *, only: tuple[str, ...] | None = None,
                     heard: bool | None = None) -> MatchResult:
        heard = self.heard if heard is None else heard
        return await self._off_loop(self.catalog.matcher.match, text, only=only, heard=heard)

    async def _route(self, text: str, *,
                     prior: Mapping[str, float] | None = None) -> RouteDecision:
        return await self._off_loop(route_request, self.catalog, text, heard=self.heard,
                                    prior=prior)

    async def _off_loop(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)``, off the event loop when the trained layer embeds the
        request (CPU or HTTP); at once when it does not."""
        if self.catalog.embedder is None:
            return fn(*args, **kwargs)
        return await asyncio.to_thread(fn, *args, **kwargs)

    def _decline(self, bots: tuple[str, ...]) -> None:
        """Bots the caller said no to: no evidence for them in the next try."""
        for bot in bots:
            self.state.evidence[bot] = 0.0

    async def _confirmed(self, yes: bool) -> list[Action]:
        """The answer to 您是要办理X吗？: X, or the request asked for again."""
        st = self.state
        bot_id = st.clarify[0]
        if yes:
            return await self._enter(bot_id, via="confirm")
        self._decline((bot_id,))
        st.mode, st.clarify = "route", ()
        return self._asked_again(Step("confirm", {"intent": bot_id, "declined": True}))

    def _asked_again(self, step: Step) -> list[Action]:
        """None of the bots asked about: 好的，请您再简单说一下…, and the main menu (back to
        routing, not counted as a failure)."""
        return [step, *self._prompt([Say(P["confirm_no"], "confirm_no"), *self._route_prompt()])]

    def _yes_or_no(self, text: str) -> bool | None:
        """是 (True) or 不是 / 都不是 (False) in ``text``; None when it says neither."""
        yes = parse_slot(self.catalog.yes_no_slot(""), text, dtmf=False)[0]
        return None if yes is None else bool(yes)
