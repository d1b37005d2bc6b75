"""A caller who changes the subject mid-bot: where an answer was expected, a sure request for
another bot (``EARLY_MATCH``) switches to it; straight away, unless the current bot has made
progress (an answer taken, the caller verified), then one yes/no question first (您是要改为办理
X吗？). The other bot starts from its first step; for a bot of the same identity kind, what the
caller gave is kept (the verification, or the card or account number, not a PIN unchecked).
``DialogEngine`` mixes this in and provides the hooks below.
"""

from __future__ import annotations

from typing import Any

from dialog.actions import Action, Say, Step
from dialog.catalog import Catalog
from dialog.prompts import P
from dialog.routing import RouteDecision
from dialog.scenario import BotSpec, SlotSpec
from dialog.state import DialogState

SWITCH = "_switch_to"  # the bot a caller asked for mid-bot, while we confirm it
EARLY_MATCH = 0.8  # a bot match this sure (rules score 1.0) is a complete request


class TopicTurns:
    """A change of subject mid-bot; mixed into ``DialogEngine``, which provides the hooks."""

    catalog: Catalog
    state: DialogState

    # ---- the engine's hooks ----------------------------------------------------------------
    @property
    def bot(self) -> BotSpec | None:
        raise NotImplementedError

    async def _route(self, text: str) -> RouteDecision:
        raise NotImplementedError

    async def _enter(self, bot_id: str, *, via: str) -> list[Action]:
        raise NotImplementedError

    async def _advance(self) -> list[Action]:
        raise NotImplementedError

    def _ask(self, slot: SlotSpec, *, again: bool = False) -> list[Action]:
        raise NotImplementedError

    def _current_ask(self) -> tuple[str, SlotSpec] | None:
        raise NotImplementedError

    def _failure(self, why: str, reprompt: list[Action], **detail: Any) -> list[Action]:
        raise NotImplementedError

    # ---- the change --------------------------------------------------------------------------
    async def _other_request(self, text: str) -> tuple[str, dict[str, Any]] | None:
        """Another bot asked for without doubt (a sure match, ``EARLY_MATCH``), where the
        current question's answer was expected: (bot id, the match's detail)."""
        routed = await self._route(text)
        best = routed.best
        if (routed.decision != "match" or best is None or best.score < EARLY_MATCH
                or best.intent == self.state.bot):
            return None
        return best.intent, {"text": text, "score": round(best.score, 3), "layer": best.layer}

    async def _topic_change(self, bot_id: str, detail: dict[str, Any]) -> list[Action]:
        """Straight to the other bot, unless this one has made progress (an answer taken, the
        caller verified): then one yes/no question first."""
        st = self.state
        if st.verified or st.history or any(not k.startswith("_") for k in st.slots):
            st.vars[SWITCH] = bot_id
            return [Step("topic_change", {"to": bot_id, "confirm": True, **detail}),
                    *self._ask(self._switch_slot(bot_id))]
        return await self._switch_to(bot_id, detail)

    def _switch_slot(self, bot_id: str) -> SlotSpec:
        """The yes/no question 您是要改为办理X吗？ (the answer expected while ``SWITCH`` is set)."""
        name = self.catalog.bots[bot_id].name
        return self.catalog.yes_no_slot(P["switch_confirm"].format(bot=name))

    async def _switch_answer(self, yes: Any) -> list[Action]:
        st = self.state
        bot_id = st.vars[SWITCH]
        if yes is None:  # neither yes nor no: the question stays
            return self._failure("invalid_yes_no",
                                 [Say(P["invalid"]), *self._ask(self._switch_slot(bot_id))])
        del st.vars[SWITCH]
        if yes:
            return await self._switch_to(bot_id, {"confirmed": True})
        current = self._current_ask()  # no: back to the question that was asked
        out: list[Action] = [Step("topic_change", {"to": bot_id, "declined": True})]
        return out + (self._ask(current[1]) if current else await self._advance())

    async def _switch_to(self, bot_id: str, detail: dict[str, Any]) -> list[Action]:
        """The other bot from its start. For a bot of the same identity kind, what the caller
        gave is kept: the verification, or the card or account number (not a PIN unchecked)."""
        st, old = self.state, self.bot
        new = self.catalog.bots[bot_id]
        fresh = DialogState(turns=st.turns)
        if "_verify_fails" in st.vars:
            fresh.vars["_verify_fails"] = st.vars["_verify_fails"]
        if old is not None and old.identity == new.identity != "none":
            ids = self.catalog.identity_slots(new.identity)
            fresh.verified = st.verified
            fresh.slots = {k: v for k, v in st.slots.items()
                           if k in ids and (st.verified or not ids[k].sensitive)}
            if st.verified:
                fresh.vars.update({k: v for k, v in st.vars.items()
                                   if k in ("card_tail", "account_tail")})
        self.state = fresh
        step = Step("topic_change", {"from": old.id if old else None, "to": bot_id, **detail})
        return [step, *await self._enter(bot_id, via="topic_change")]

