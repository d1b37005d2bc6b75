"""Telling a survey call's first seconds apart (issue 23), without a recogniser: the 450 Hz
cadences, music against speech and line noise (``campaigns.callaudio``), and the words a
recogniser may garble (``campaigns.carrier.read_words``: phrases, the nearest carrier
announcement, an announcement's opening); a person's words never make an announcement."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest

from campaigns.callaudio import analyse
from campaigns.carrier import ANNOUNCEMENTS, POLICIES, decide, read_words
from ivr.sim.carrier import WORDS, line, music, tone


def pcm(x: np.ndarray) -> bytes:
    return line(x, random.Random(1))


def test_ring_back_and_busy_cadences() -> None:
    ring = analyse(pcm(tone(1.0, 4.0, 6.0)))
    assert ring.cadence == "ringback" and not ring.music and ring.speech_s == 0
    assert decide(ring, "", answered=False).outcome is None  # keep ringing
    busy = analyse(pcm(tone(0.35, 0.35, 4.0)))
    assert busy.cadence == "busy" and decide(busy, "", answered=False).outcome == "busy"
    congestion = analyse(pcm(tone(0.7, 0.7, 5.0)))
    assert decide(congestion, "", answered=True).outcome == "unreachable"


def test_music_is_not_speech_and_hiss_is_not_music() -> None:
    for seed in range(5):
        facts = analyse(pcm(music(4.0, random.Random(seed)) * 0.4))
        assert facts.music and facts.cadence is None, facts
        assert decide(facts, "", answered=False).outcome == "ringback_music"
    quiet = analyse(pcm(np.zeros(24000)))
    assert quiet.silent and not quiet.music
    assert decide(quiet, "", answered=False).outcome is None
    assert decide(quiet, "", answered=True).outcome == "human"  # waits for us to speak


@pytest.mark.parametrize(("heard", "outcome"), [
    ("您拨打的号码是空号，请查证后再拨。", "vacant"),
    ("您好,您拨打的电话也停止。", "suspended"),  # 停机 misheard: the nearest announcement
    ("您拨大的号码,以三听服务。", "suspended"),
    ("您好您伯达的电话以关系。", "unreachable"),
    ("对不起,您拨打的用户正盟,请稍后再拨。", "busy"),
    ("您好,您拨打的用户暂时无法接听您的电话。请在提示音后留言。", "machine"),
    ("对不起,连播达的用户也听见。", "unreachable"),  # only the opening: retried, not struck off
])
def test_garbled_announcements(heard: str, outcome: str) -> None:
    assert read_words(heard)[0] == outcome


def test_the_opening_words_alone_decide_nothing_while_they_go_on() -> None:
    """Heard live, a window may end after 您好，您拨打的电话: as near to 已停机 as to 已关机 or
    正在通话中, so no announcement decides it; while the words go on nothing does, and once
    they have stopped it is at most retried (unreachable), never struck off."""
    opening = "您好您拨打的电话。"
    assert read_words(opening) == ("unreachable", "an announcement's opening")
    talking = analyse(pcm(np.zeros(8000)))
    assert decide(talking, opening, answered=False, settled=False).outcome is None
    assert decide(talking, "你好,您拨打的号码是空号。", answered=False,
                  settled=False).outcome == "vacant"  # a telling phrase needs no more


def test_people_are_never_announcements() -> None:
    """Nor the words a coloured ring-back says over its music."""
    said = [*WORDS["human"], "嗯", "不需要", "我在开会，等会儿再打给我", "你哪里？打错了吧",
            "我不是机主", "这个号码我刚换的", "你们是中石油的吗",
            *WORDS["ringback_music"], "您的电话正在接通中，请稍候"]  # a 彩铃's words
    for text in said:
        assert read_words(text)[0] not in ANNOUNCEMENTS, text


def test_policies() -> None:
    assert POLICIES["vacant"].never_again and POLICIES["suspended"].never_again
    assert POLICIES["unreachable"].retry and not POLICIES["unreachable"].never_again
    assert POLICIES["human"].answered and not POLICIES["ringback_music"].retry


def test_words_before_an_answer_that_are_no_announcement_ring_on() -> None:
    """A spoken 彩铃 (欢迎致电…请稍候) is not the network: hanging up on it would hang up on a
    person about to answer. Only an announcement's words (or its opening) end a dial."""
    talking = analyse(pcm(np.zeros(8000)))
    talking = replace(talking, speech_s=3.0)
    for text in WORDS["ringback_music"]:
        assert decide(talking, text, answered=False).outcome is None, text
    assert decide(talking, "您拨打的电话暂时无法接通", answered=False).outcome == "unreachable"


async def test_a_dial_waits_for_an_announcement_heard_after_the_answer() -> None:
    """``ariorigin``: AMD said MACHINE (or the survey began) while the listening goes on; an
    announcement it then hears is found; a person or a machine it hears is not its to say."""
    import asyncio

    from campaigns.ariorigin import _Dialing
    from campaigns.carrier import Verdict

    call = _Dialing(asyncio.Queue(4))
    assert await call.announcement(0.01) is None  # nothing listened

    async def hears(verdict: Verdict, after_s: float) -> Verdict:
        await asyncio.sleep(after_s)
        return verdict

    call.listening = asyncio.create_task(hears(Verdict("vacant", "phrase: 空号"), 0.05))
    assert await call.announcement(0.0) is None  # not decided yet
    found = await call.announcement(2.0)
    assert found is not None and found.outcome == "vacant"
    call.listening = asyncio.create_task(hears(Verdict("human", "a short hello"), 0.0))
    assert await call.announcement(2.0) is None
