"""Who (or what) a survey call reached on a Chinese network, and what to do about it.

Before a survey call is answered the network often speaks instead of ringing: 空号, 停机,
关机 / 无法接通 / 不在服务区, 正在通话中, as early media or after a fake answer; or plays a
coloured ring-back (彩铃) instead of the ring-back tone. Asterisk's ``AMD()`` knows none of
it. ``classify`` reads the call's first seconds (``campaigns.callaudio``: tones, cadence,
music) and, when there is speech, the recogniser's words (the announcements' phrases as hints),
then decides:

=================  ============================================  ===========================
outcome            heard                                         policy
=================  ============================================  ===========================
``vacant``         空号, 号码不存在                                never again; contact flagged
``suspended``      停机, 暂停服务                                  never again; contact flagged
``unreachable``    关机, 无法接通, 不在服务区, an announcement's     retry later (2 h)
                   opening (您拨打…); congestion tone
``busy``           正在通话中, 用户正忙; the busy tone               retry (5 min)
``ringback_music`` music before an answer                        not an answer: keep ringing
``machine``        留言 / 提示音后 / 小秘书; a long greeting         the campaign's machine action
``human``          a short hello, or silence after an answer     the survey
=================  ============================================  ===========================

``None`` means nothing decided yet (a ring-back tone, silence before an answer, or words before
an answer that are none of an announcement's: a spoken 彩铃, 欢迎致电…请稍候, is as likely as
the network, and hanging up on it would hang up on a person about to answer): keep listening.
An announcement worded otherwise then rings out, and is retried as unanswered. Phrases match
on fuzzy pinyin (``dialog.nlu.pinyin``), so a recogniser's homophones (停基, 控号) still count.
A person is never taken for an announcement by sound alone: only an announcement's words, or
network tones, make one; speech after an answer with no such words is a person (or a machine
when it goes on like a greeting).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from campaigns.callaudio import AudioFacts, analyse
from dialog.nlu.pinyin import fuzzy_pinyin

OUTCOMES = ("vacant", "suspended", "unreachable", "busy", "ringback_music", "machine", "human")
ANNOUNCEMENTS = ("vacant", "suspended", "unreachable", "busy")

# checked in this order: a more specific phrase first (a voicemail greeting says 暂时无法接听
# too, so 留言 comes before unreachable's phrases)
PHRASES: dict[str, tuple[str, ...]] = {
    "vacant": ("空号", "号码不存在", "号码有误", "查证后再拨", "核对后再拨"),
    "suspended": ("停机", "暂停服务", "暂停使用"),
    "busy": ("正在通话中", "通话中", "用户正忙", "电话正忙"),
    "machine": ("留言", "提示音后", "小秘书", "语音信箱"),
    "unreachable": ("关机", "无法接通", "不在服务区", "无法接听", "暂时无法"),
}
# the announcements as the carriers word them (China Mobile, Unicom, Telecom and the virtual
# operators): a recogniser that garbles the telling words (停机 as 停止) still lands nearest
# the right one over the whole sentence
TEMPLATES: dict[str, tuple[str, ...]] = {
    "vacant": ("您拨打的号码是空号请查证后再拨", "您拨打的号码不存在请查证后再拨",
               "您拨打的电话号码是空号请核对后再拨", "对不起您拨打的号码是空号"),
    "suspended": ("您拨打的电话已停机", "您拨打的用户已停机", "您拨打的号码已暂停服务",
                  "对不起您拨打的电话已欠费停机", "您拨打的号码已暂停使用"),
    "unreachable": ("您拨打的电话已关机", "您拨打的用户暂时无法接通请稍后再拨",
                    "您拨打的电话不在服务区请稍后再拨", "您拨打的电话暂时无法接通",
                    "对不起您拨打的用户已关机"),
    "busy": ("您拨打的电话正在通话中请稍后再拨", "您拨打的用户正忙请稍后再拨",
             "对不起您拨打的电话正在通话中", "您拨打的用户正在通话中请不要挂机"),
}
TEMPLATE_MAX_DISTANCE = 0.34  # syllable edits per template syllable, nearest template
# ... and nearer by this than any other outcome's: the opening words alone (您好，您拨打的电话)
# are as near to 已停机 as to 已关机, and must decide nothing
TEMPLATE_MARGIN = 0.08
# every announcement starts so (without 的: pypinyin reads 打的 as "da di"): unknown wording
# after it is still the network's
OPENER = "您拨打"
HINTS = "空号 停机 暂停服务 关机 无法接通 不在服务区 正在通话中 留言 喂 你好"
MACHINE_SPEECH_S = 3.0  # answered, this much speech without an announcement: a greeting


@dataclass(frozen=True)
class RetryPolicy:
    retry: bool
    after_s: int = 0
    flag: str | None = None  # kept on the contact: never dialled again by any campaign
    answered: bool = False  # the survey may start

    @property
    def never_again(self) -> bool:
        return self.flag is not None


POLICIES: dict[str, RetryPolicy] = {
    "vacant": RetryPolicy(retry=False, flag="vacant"),
    "suspended": RetryPolicy(retry=False, flag="suspended"),
    "unreachable": RetryPolicy(retry=True, after_s=7200),
    "busy": RetryPolicy(retry=True, after_s=300),
    "ringback_music": RetryPolicy(retry=False),  # not an outcome of the attempt: keep ringing
    "machine": RetryPolicy(retry=True, after_s=3600),
    "human": RetryPolicy(retry=False, answered=True),
}


@dataclass(frozen=True)
class Verdict:
    outcome: str | None  # None: keep listening (ring-back tone, silence before an answer)
    why: str
    text: str = ""
    facts: AudioFacts | None = None


class Heard(Protocol):
    @property
    def text(self) -> str: ...


class Transcriber(Protocol):
    """What classifying needs of a recogniser (``asr.base.Recognizer`` is one)."""

    async def transcribe(self, pcm: bytes, sample_rate: int, *, hints: str | None = None
                         ) -> Heard: ...


def _syllables(phrases: tuple[str, ...]) -> list[tuple[str, ...]]:
    return [tuple(fuzzy_pinyin(p)) for p in phrases]


_PATTERNS = {outcome: _syllables(ps) for outcome, ps in PHRASES.items()}


def heard_phrase(text: str) -> str | None:
    """The outcome whose phrase ``text`` contains (on fuzzy pinyin), or None."""
    said = tuple(fuzzy_pinyin(text))
    for outcome, patterns in _PATTERNS.items():
        for p in patterns:
            if any(said[i:i + len(p)] == p for i in range(len(said) - len(p) + 1)):
                return outcome
    return None


def _distance(template: tuple[str, ...], said: tuple[str, ...]) -> int:
    """Syllable edits to find ``template`` anywhere in ``said`` (free start and end)."""
    prev = [0] * (len(said) + 1)
    for i, t in enumerate(template, 1):
        cur = [i] + [0] * len(said)
        for j, s in enumerate(said, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (t != s))
        prev = cur
    return min(prev)


_TEMPLATES = [(outcome, tuple(fuzzy_pinyin(t))) for outcome, ts in TEMPLATES.items()
              for t in ts]
_OPENER = tuple(fuzzy_pinyin(OPENER))


def nearest_announcement(text: str) -> tuple[str | None, float, float]:
    """The announcement ``text`` is nearest to, its distance (edits per syllable), and how much
    nearer it is than the nearest announcement of another outcome."""
    said = tuple(fuzzy_pinyin(text))
    nearest: dict[str, float] = {}
    for outcome, template in _TEMPLATES:
        d = _distance(template, said) / len(template)
        nearest[outcome] = min(d, nearest.get(outcome, 1.0))
    ranked = sorted(nearest.items(), key=lambda kv: kv[1])
    if not ranked:
        return None, 1.0, 0.0
    runner_up = ranked[1][1] if len(ranked) > 1 else 1.0
    return ranked[0][0], ranked[0][1], runner_up - ranked[0][1]


def read_words(text: str) -> tuple[str | None, str]:
    """An outcome from the words alone, and how: a telling phrase, the nearest carrier
    announcement, or an announcement's opening words (then ``unreachable``: retried later,
    never struck off on a guess)."""
    phrase = heard_phrase(text)
    if phrase is not None:
        return phrase, "phrase"
    outcome, d, margin = nearest_announcement(text)
    if outcome is not None and d <= TEMPLATE_MAX_DISTANCE and margin >= TEMPLATE_MARGIN:
        return outcome, f"announcement ({d:.2f})"
    if _distance(_OPENER, tuple(fuzzy_pinyin(text))) <= 1:
        return "unreachable", "an announcement's opening"
    return None, ""


SETTLED_QUIET_S = 0.6  # quiet after the words: what was said is whole, not cut by the window


def decide(facts: AudioFacts, text: str, *, answered: bool, settled: bool = True) -> Verdict:
    """The outcome of what was heard (see the module's table). ``settled`` False: the window
    may have cut the words short (listening goes on), so only a telling phrase, a tone cadence
    or music decide; the rest (a nearest announcement too: the words may go on) waits."""
    outcome, how = read_words(text) if text.strip() else (None, "")
    if outcome is not None and (settled or how == "phrase"):
        return Verdict(outcome, f"{how}: {text}", text, facts)
    if not settled and facts.cadence not in ("busy", "congestion") and not facts.music:
        return Verdict(None, "listening", text, facts)
    if facts.cadence == "busy":
        return Verdict("busy", "busy tone", text, facts)
    if facts.cadence == "congestion":
        return Verdict("unreachable", "congestion tone", text, facts)
    if not answered:
        if facts.cadence == "ringback" and not text.strip():
            return Verdict(None, "ringing", text, facts)
        if facts.music:
            return Verdict("ringback_music", "music before an answer", text, facts)
        if facts.speech_s >= 0.5 and text.strip():
            return Verdict(None, "words before an answer, none an announcement's", text, facts)
        return Verdict(None, "ringing" if facts.tone_s else "quiet", text, facts)
    if facts.music or facts.speech_s >= MACHINE_SPEECH_S:
        return Verdict("machine", "a long greeting", text, facts)
    return Verdict("human", "silence" if facts.silent else "a short hello", text, facts)


async def classify(pcm: bytes, rate: int, recognizer: Transcriber, *,
                   answered: bool, provisional: bool = False) -> Verdict:
    """Classify a window of the call's audio (16-bit mono PCM at 8 or 16 kHz).
    ``provisional``: more audio is coming (early media as it arrives); then words still being
    said decide only when they are telling (``decide``'s ``settled``)."""
    facts = analyse(pcm, rate)
    text = ""
    if facts.speech_s >= 0.3 and facts.cadence not in ("busy", "congestion"):
        transcript = await recognizer.transcribe(pcm, rate, hints=HINTS)
        text = transcript.text or ""
    settled = not provisional or facts.trailing_quiet_s >= SETTLED_QUIET_S
    return decide(facts, text, answered=answered, settled=settled)
