"""Live assist: the caller's words during the agent call, added to the screen pop as they come.

When an agent answers (AMI ``AgentConnect`` for a pop this process made), the caller's side of
the call is tapped (``ears_for(channel_id)``: in the app an ARI snoop with the IVR's own
endpointer and the shared recogniser) and each utterance is handed to ``on_words(handoff_id,
text)``: the handoff service appends it to the pop's transcript (digits masked), shows it on the
agent's desktop and asks for knowledge suggestions again from the grown transcript.

It ends with the agent call (``AgentComplete``, ``QueueCallerAbandon``: ``stop``), after
``max_s`` in any case, or after ``idle_s`` without words (a missed AMI event must not hold a
slot for long). At most ``max_calls`` calls are followed at once; beyond that a call is not
transcribed and is counted (``refused``). Each follow is one task owned here, cancelled by
``stop`` and ``close``; a tap that cannot be opened, or a recogniser that fails, ends that
follow only and is counted (``failed``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Protocol

log = logging.getLogger("handoff.live")


class Heard(Protocol):
    @property
    def text(self) -> str: ...


class LiveEars(Protocol):
    """What is used of ``ivr.calls.listener.Listener``."""

    async def start(self) -> None: ...

    async def next_utterance(self, no_input_s: float) -> Heard | None: ...

    async def close(self) -> None: ...


EarsFactory = Callable[[str], LiveEars | None]
OnWords = Callable[[str, str], Awaitable[None]]

POLL_S = 5.0  # how long one wait for words lasts (the limits are checked in between)


class LiveTranscripts:
    def __init__(self, ears_for: EarsFactory, on_words: OnWords, *, max_calls: int = 2,
                 max_s: float = 3600.0, idle_s: float = 600.0) -> None:
        self.ears_for = ears_for
        self.on_words = on_words
        self.max_calls = max_calls
        self.max_s = max_s
        self.idle_s = idle_s
        self._tasks: dict[str, asyncio.Task[None]] = {}  # handoff id -> its follow
        self.outcomes: Counter[str] = Counter()  # started, refused, failed, ended
        self.utterances = 0

    @property
    def following(self) -> int:
        return len(self._tasks)

    def follow(self, handoff_id: str, channel_id: str) -> bool:
        """Start transcribing the caller of ``channel_id`` (idempotent per handoff)."""
        if handoff_id in self._tasks:
            return True
        if len(self._tasks) >= self.max_calls:
            self.outcomes["refused"] += 1
            log.info("handoff %s not transcribed live: %d calls followed already",
                     handoff_id[:8], len(self._tasks))
            return False
        ears = self.ears_for(channel_id)
        if ears is None:  # no recogniser loaded
            self.outcomes["refused"] += 1
            return False
        task = asyncio.create_task(self._run(handoff_id, ears), name=f"live-{handoff_id[:8]}")
        self._tasks[handoff_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(handoff_id, None))
        self.outcomes["started"] += 1
        return True

    def stop(self, handoff_id: str) -> None:
        task = self._tasks.pop(handoff_id, None)
        if task is not None:
            task.cancel()

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, handoff_id: str, ears: LiveEars) -> None:
        started = last_words = time.monotonic()
        try:
            await ears.start()
            while True:
                now = time.monotonic()
                if now - started > self.max_s or now - last_words > self.idle_s:
                    self.outcomes["ended"] += 1
                    return
                heard = await ears.next_utterance(POLL_S)
                if heard is None or not heard.text.strip():
                    continue
                last_words = time.monotonic()
                self.utterances += 1
                await self.on_words(handoff_id, heard.text.strip())
        except asyncio.CancelledError:
            self.outcomes["ended"] += 1
            raise
        except Exception:  # this follow ends; the call and the other follows go on
            self.outcomes["failed"] += 1
            log.exception("live transcript of handoff %s stopped", handoff_id[:8])
        finally:
            try:
                await ears.close()
            except Exception as exc:  # the tap's channels may be gone with the call already
                log.warning("live tap of handoff %s not closed cleanly: %s", handoff_id[:8], exc)

    def metrics_lines(self) -> list[str]:
        out = ["# TYPE ivr_handoff_live_transcripts_total counter"]
        out += [f'ivr_handoff_live_transcripts_total{{outcome="{k}"}} {self.outcomes[k]}'
                for k in ("started", "refused", "failed", "ended")]
        out += ["# TYPE ivr_handoff_live_utterances_total counter",
                f"ivr_handoff_live_utterances_total {self.utterances}",
                "# TYPE ivr_handoff_live_calls gauge", f"ivr_handoff_live_calls {self.following}"]
        return out
