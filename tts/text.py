"""Text preparation for Mandarin TTS: reading digits/letters/symbols, splitting into sentences.

Kept deliberately simple and predictable (IVR prompts, LLM answers):

* digit runs of 3+ digits, or with a leading zero, are read digit by digit (956100 -> 九五六一零零),
  unless a measure word follows (100元 -> 一百元); 4 digits before 年 are read digit by digit;
* shorter runs are read as numbers (12 -> 十二, 2个 -> 两个); decimals and percentages are read
  (3.5 -> 三点五, 5% -> 百分之五), clock times too (8:30 -> 八点三十分);
* Latin letters are spelled with Chinese approximations of their English names;
* # -> 井号, * -> 星号, + -> 加; ASCII sentence punctuation becomes its Chinese counterpart;
* anything else that is not Chinese or sentence punctuation is dropped.
"""

from __future__ import annotations

import re

DIGITS = "零一二三四五六七八九"

# punctuation that ends a sentence (hard split) and that may split a long sentence (soft split)
STRONG_PUNCT = "。！？；"
WEAK_PUNCT = "，、："
PUNCT = STRONG_PUNCT + WEAK_PUNCT

_ASCII_PUNCT = {",": "，", ".": "。", "!": "！", "?": "？", ";": "；", ":": "："}
_FULLWIDTH_PUNCT = {"．": "。", "｡": "。", "､": "、", "﹐": "，", "﹒": "。", "…": "。"}

# a number followed by one of these is a quantity: read it as a number, not digit by digit
_MEASURE = set("元块角分度个位次天周月日号时点秒台户张条种项件米升吨方千万亿岁人家份倍克斤公里")
_LIANG = set("个位次天台户张条种项件份家")  # 2 before these is 两

_LETTERS = {
    "A": "诶", "B": "必", "C": "西", "D": "迪", "E": "伊", "F": "艾弗", "G": "吉", "H": "艾尺",
    "I": "艾", "J": "杰", "K": "开", "L": "艾勒", "M": "艾姆", "N": "恩", "O": "欧", "P": "批",
    "Q": "丘", "R": "阿尔", "S": "艾斯", "T": "提", "U": "优", "V": "维", "W": "达布留",
    "X": "艾克斯", "Y": "歪", "Z": "贼德",
}  # fmt: skip
_SYMBOLS = {"#": "井号", "＃": "井号", "*": "星号", "＊": "星号", "+": "加", "＋": "加", "&": "和"}

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_KEEP = re.compile(rf"[^{_CJK}{PUNCT} ]+")
_HAS_CJK = re.compile(rf"[{_CJK}]")


def digits_to_chinese(digits: str) -> str:
    """Digit by digit: '956100' -> '九五六一零零'."""
    return "".join(DIGITS[int(d)] for d in digits)


def _four(n: int) -> str:
    """1..9999 -> Chinese, with inner zeros ('一千零五')."""
    out = ""
    pending_zero = False
    for power, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        d = n // power % 10
        if d == 0:
            pending_zero = bool(out)
            continue
        if pending_zero:
            out += "零"
            pending_zero = False
        out += DIGITS[d] + unit
    return out


def cardinal(n: int) -> str:
    """0 <= n < 10**12 as a Chinese number: 12 -> 十二, 100 -> 一百, 10086 -> 一万零八十六."""
    if n < 0 or n >= 10**12:
        raise ValueError(f"number out of range: {n}")
    if n == 0:
        return "零"
    out = ""
    gap = False  # a zero group or a short group since the last unit
    for group, unit in ((n // 10**8, "亿"), (n // 10**4 % 10**4, "万"), (n % 10**4, "")):
        if group == 0:
            gap = gap or bool(out)
            continue
        if out and (gap or group < 1000):
            out += "零"
        out += _four(group) + unit
        gap = False
    if out.startswith("一十"):
        out = out[1:]
    return out


def _read_number(match: re.Match[str]) -> str:
    whole, frac = match.group(1), match.group(2)
    after = match.string[match.end() : match.end() + 1]
    if frac is not None:
        head = cardinal(int(whole)) if len(whole) <= 12 else digits_to_chinese(whole)
        return f"{head}点{digits_to_chinese(frac)}"
    if after == "年" and len(whole) == 4:
        return digits_to_chinese(whole)
    quantity = after in _MEASURE
    if whole.startswith("0") and len(whole) > 1:
        return digits_to_chinese(whole)
    if len(whole) <= 2 or (quantity and len(whole) <= 12):
        if whole == "2" and after in _LIANG:
            return "两"
        return cardinal(int(whole))
    return digits_to_chinese(whole)


def _read_time(match: re.Match[str]) -> str:
    hour, minute = int(match.group(1)), int(match.group(2))
    if minute == 0:
        return f"{cardinal(hour)}点整"
    mm = ("零" + DIGITS[minute]) if minute < 10 else cardinal(minute)
    return f"{cardinal(hour)}点{mm}分"


def _read_percent(match: re.Match[str]) -> str:
    number = re.sub(r"(\d+)(?:\.(\d+))?", _read_number, match.group(1))
    return f"百分之{number}"


def _fullwidth_to_ascii(text: str) -> str:
    out = []
    for ch in text:
        code = ord(ch)
        if 0xFF10 <= code <= 0xFF19 or 0xFF21 <= code <= 0xFF3A or 0xFF41 <= code <= 0xFF5A:
            out.append(chr(code - 0xFEE0))
        elif ch == "％":
            out.append("%")
        elif ch == "：" and out and out[-1].isdigit():
            out.append(":")  # 8：30
        else:
            out.append(_FULLWIDTH_PUNCT.get(ch, ch))
    return "".join(out)


def normalize(text: str) -> str:
    """Make ``text`` speakable by a Mandarin G2P: only Chinese, sentence punctuation and spaces."""
    t = _fullwidth_to_ascii(text)
    t = re.sub(r"\s+", " ", t)
    t = re.sub(r"(?<![\d:])(\d{1,2}):(\d{2})(?![\d:])", _read_time, t)
    t = re.sub(r"(\d+(?:\.\d+)?)%", _read_percent, t)
    t = re.sub(r"[¥￥]\s*(\d+)(?:\.(\d{1,2}))?(?:元)?|(\d+)\.(\d{1,2})元", _read_money, t)
    t = re.sub(r"(?<=\d)[-‐–—](?=\d)", " ", t)  # 400-800-1234: a short break
    t = re.sub(r"(\d+)(?:\.(\d+))?", _read_number, t)
    t = re.sub(r"[A-Za-z]", lambda m: _LETTERS[m.group(0).upper()], t)
    t = re.sub(r"([#＃*＊])号", r"\1", t)  # '#号键' is '井号键', not '井号号键'
    t = "".join(_SYMBOLS.get(ch, _ASCII_PUNCT.get(ch, ch)) for ch in t)
    t = _KEEP.sub(" ", t)
    t = re.sub(rf" *([{PUNCT}]) *", r"\1", t)  # no spaces around punctuation
    t = re.sub(rf"([{PUNCT}])[{PUNCT}]+", r"\1", t)  # '。。' / '，。' -> first mark
    t = re.sub(r" {2,}", " ", t).strip()
    return t.lstrip(PUNCT).strip()


def _read_money(m: re.Match[str]) -> str:
    """¥128.50 / 128.50元 -> 一百二十八元五角; 0.05元 -> 五分; 300.00元 -> 三百元."""
    yuan, cents = (m.group(1), m.group(2)) if m.group(1) is not None else (m.group(3), m.group(4))
    cents = (cents or "").ljust(2, "0")
    jiao, fen = int(cents[0]), int(cents[1])
    n = int(yuan)
    out = f"{cardinal(n)}元" if n or not (jiao or fen) else ""
    if jiao:
        out += f"{DIGITS[jiao]}角"
    elif fen and n:
        out += "零"
    if fen:
        out += f"{DIGITS[fen]}分"
    return out


def speakable(text: str) -> bool:
    return bool(_HAS_CJK.search(text))


def split_sentences(text: str, max_chars: int = 24, first_max_chars: int = 12) -> list[str]:
    """Split normalised text into chunks to render one by one.

    Sentences end at 。！？；. A sentence longer than ``max_chars`` is split at ，、： (pieces
    merged greedily up to ``max_chars``); the very first chunk uses the smaller
    ``first_max_chars`` so a streamed answer starts quickly. A run without punctuation longer
    than the limit is cut hard. Chunks keep their punctuation; chunks with nothing to say are
    dropped.
    """
    sentences = [s for s in re.findall(rf"[^{STRONG_PUNCT}]+[{STRONG_PUNCT}]*", text) if s.strip()]
    chunks: list[str] = []
    for sentence in sentences:
        pieces = [p for p in re.findall(rf"[^{WEAK_PUNCT}]+[{WEAK_PUNCT}]*", sentence) if p]
        current = ""
        for piece in pieces:
            limit = first_max_chars if not chunks else max_chars
            if current and len(current) + len(piece) > limit:
                chunks.append(current)
                current = ""
            current += piece
            while len(current) > max_chars:  # no punctuation to split at: cut (at a space if any)
                cut = current.rfind(" ", 1, max_chars + 1)
                if cut < max_chars // 2:
                    cut = max_chars
                chunks.append(current[:cut])
                current = current[cut:].lstrip()
            if chunks and not current.strip(PUNCT + " "):
                chunks[-1] += current.strip()
                current = ""
        if current:
            chunks.append(current)
    return [c.strip() for c in chunks if speakable(c)]


def pause_after(chunk: str) -> float:
    """Seconds of silence after a chunk, by its closing punctuation."""
    if chunk.endswith(tuple(STRONG_PUNCT)):
        return 0.30
    if chunk.endswith(tuple(WEAK_PUNCT)):
        return 0.15
    return 0.05
