"""Running a bot's steps (``dialog.scenario``): say, ask, confirm, goto, a business action, a
transfer, the end; and the caller's identity verified before a bot that needs it. What a
refused or unreachable back end does: the bot's ``on_error`` step, else an agent; a back end
that cannot check a PIN is not a wrong PIN (an agent at once, nothing counted), and two wrong
verifications, or a card locked across calls, go to an agent. ``DialogEngine`` mixes this in
and provides the hooks below.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

from dialog.actions import Action, Hangup, Say, Step
from dialog.actions import Transfer as TransferAction
from dialog.catalog import Catalog
from dialog.prompts import P
from dialog.scenario import BotSpec, SlotSpec
from dialog.scenario import Step as BotStep
from dialog.state import DialogState

ActionFn = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class ActionRefused(Exception):
    """A business action refused the request; ``message`` is Chinese text to speak.
    ``unavailable``: the back end did not answer (down, or past its deadline), which is not a
    refusal of this caller: a verification that could not be checked is not a wrong PIN."""

    def __init__(self, message: str, *, unavailable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.unavailable = unavailable


class BotSteps:
    """A bot's steps run; mixed into ``DialogEngine``, which provides the hooks below."""

    catalog: Catalog
    state: DialogState
    actions: Mapping[str, ActionFn]
    call_id: str

    # ---- the engine's hooks ----------------------------------------------------------------
    @property
    def bot(self) -> BotSpec | None:
        raise NotImplementedError

    def _ask(self, slot: SlotSpec, *, again: bool = False) -> list[Action]:
        raise NotImplementedError

    def _fill(self, template: str) -> str:
        raise NotImplementedError

    def _current_ask(self) -> tuple[str, SlotSpec] | None:
        raise NotImplementedError

    def _transfer(self, reason: str, line: str | None = None,
                  say_key: str = "transfer") -> list[Action]:
        raise NotImplementedError

    # ---- the steps ---------------------------------------------------------------------------
    def _index(self, step_id: str | None) -> int:
        assert self.bot is not None
        return next(i for i, s in enumerate(self.bot.steps) if s.id == step_id)

    async def _advance(self) -> list[Action]:
        """Run steps until one needs the caller's input, or the call leaves the bot."""
        st = self.state
        bot = self.bot
        assert bot is not None
        out: list[Action] = []
        verify = st.vars.get("_verify")
        if verify:
            identity = self.catalog.identity_slots(verify)
            missing = next((n for n in identity if n not in st.slots), None)
            if missing is not None:
                return out + self._ask(identity[missing])
            outcome = await self._verify(verify)
            if outcome == "locked":
                return out + self._verification_locked()
            if outcome == "unavailable":  # nothing the caller did: an agent, at once
                return [*out, Step("backend_unavailable", {"action": f"verify.{verify}"}),
                        Say(P["system_busy"], "system_busy"),
                        *self._transfer("backend_unavailable")]
            if outcome != "ok":
                return out + self._verification_failed()
            st.verified = True
            st.vars.pop("_verify", None)
            out.append(Step("verified", {"kind": verify}))
        for _ in range(200):  # a guard against goto loops in a bot file
            if st.pc >= len(bot.steps):
                st.mode = "done"
                return [*out, Say(P["goodbye"], "goodbye"), Hangup("completed")]
            step = bot.steps[st.pc]
            if not self._condition(step):
                st.pc += 1
                continue
            kind = step.kind
            if kind == "say":
                out.append(Say(self._fill(step.say or ""), barge_in=step.barge_in))
                st.pc += 1
            elif kind == "goto":
                st.pc = self._index(step.goto)
            elif kind == "action":
                err = await self._run_action(step)
                if err is not None:
                    out += [Step("action_refused", {"action": step.action}), Say(err)]
                    if step.on_error:
                        st.pc = self._index(step.on_error)
                        continue
                    return out + self._transfer("backend_refused")
                st.pc += 1
            elif kind in ("ask", "confirm"):
                name = step.ask or "confirmed"
                if name in st.slots and kind == "ask":
                    st.pc += 1
                    continue
                current = self._current_ask()
                assert current is not None
                return out + self._ask(current[1])
            elif kind == "transfer":
                st.mode = "done"
                target = TransferAction(step.transfer or bot.line, step.reason or bot.id)
                return [*out, Say(P["transfer"], "transfer"), target]
            elif kind == "end":
                st.mode = "done"
                return [*out, Say(P["goodbye"], "goodbye"), Hangup(step.end or "completed")]
        return out + self._transfer("bot_loop")

    def _condition(self, step: BotStep) -> bool:
        if step.when is None:
            return True
        values = {**self.state.slots, **self.state.vars}
        value = values.get(step.when)
        if step.equals is None:
            return bool(value)
        return str(value) == str(step.equals)

    async def _run_action(self, step: BotStep) -> str | None:
        fn = self.actions.get(step.action or "")
        if fn is None:
            return P["system_busy"]
        args: dict[str, Any] = {
            k: self._fill(v) if isinstance(v, str) else v for k, v in step.args.items()
        }
        args["_slots"] = dict(self.state.slots)
        args["_vars"] = dict(self.state.vars)
        args["_idem"] = f"{self.call_id}:{self.state.bot}:{self.state.pc}"
        try:
            result = await fn(args)
        except ActionRefused as exc:
            self.state.vars["error"] = exc.message
            return exc.message
        self.state.vars.update(result)
        return None

    async def _verify(self, kind: str) -> Literal["ok", "failed", "locked", "unavailable"]:
        """``locked``: the card or account is locked after repeated failures across calls (the
        action did not check the secret); ``unavailable``: the back end could not check it."""
        fn = self.actions.get(f"verify.{kind}")
        if fn is None:
            return "failed"
        try:
            result = await fn({"_slots": dict(self.state.slots)})
        except ActionRefused as exc:
            return "unavailable" if exc.unavailable else "failed"
        self.state.vars.update({k: v for k, v in result.items() if k not in ("ok", "locked")})
        if result.get("locked"):
            return "locked"
        return "ok" if result.get("ok") else "failed"

    def _verification_locked(self) -> list[Action]:
        st = self.state
        for name in self.catalog.identity_slots(st.vars.get("_verify")):
            st.slots.pop(name, None)
        return [Step("verify_locked", {"kind": st.vars.get("_verify")}),
                *self._transfer("verification_locked", say_key="verify_locked")]

    def _verification_failed(self) -> list[Action]:
        st = self.state
        fails = st.vars["_verify_fails"] = int(st.vars.get("_verify_fails", 0)) + 1
        for name in self.catalog.identity_slots(st.vars.get("_verify")):
            st.slots.pop(name, None)
        if fails > 1:
            return [Step("verify_failed", {"count": fails}),
                    *self._transfer("verification_failed", say_key="verify_transfer")]
        pending = self._current_ask()
        assert pending is not None
        return [Step("verify_failed", {"count": fails}), Say(P["verify_failed"]),
                *self._ask(pending[1])]

