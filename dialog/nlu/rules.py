"""A small contact-center rule syntax, compiled to regular expressions.

Rules are matched against text normalised with
:func:`dialog.nlu.text.normalize_for_match` (simplified, lower-case, no punctuation or
spaces), and literal text in a rule is normalised the same way. A rule matches when its
pattern occurs *anywhere* in the utterance. Whitespace in a rule is ignored.

=================  ==========================================================================
``挂失``            literal text
``[我要]``          optional part (may contain any syntax, e.g. ``[(我|我想)要]``)
``(挂失|丢了)``     alternatives; may be nested; an alternative may not be empty
``*``               gap wildcard: any characters, as few as possible
``{0,4}``           bounded gap: between 0 and 4 arbitrary characters (``{,4}`` = ``{0,4}``,
                    ``{3}`` = exactly 3). ``卡{0,4}丢`` matches 卡丢, 卡弄丢, 卡不小心丢
``a & b``           AND: every sub-rule must occur, in any order (``余额 & 加油卡``)
``!(取消|解除)``     negation guard, trailing only: the rule does NOT match when the guard
                    pattern occurs anywhere in the utterance (several guards allowed;
                    ``!取消`` guards a plain literal run)
``\\x``             escape: a literal ``x`` even if it is one of ``[]()|*{}&!\\``
=================  ==========================================================================

Example: ``(卡|加油卡){0,4}(挂失|丢失|丢了) !(取消|解除)``.

A malformed rule raises :class:`RuleSyntaxError` carrying the 0-based ``position`` in the
source. :meth:`Rule.vetoes` tells whether the positive part matched but a guard fired, which
the intent matcher uses to suppress the whole intent (``解除挂失`` is not a 挂失 request).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dialog.nlu.text import normalize_for_match

__all__ = ["Rule", "RuleSyntaxError", "compile_rule"]

_SPECIAL = frozenset("[]()|*{}&!\\")


class RuleSyntaxError(ValueError):
    """A malformed rule; ``position`` is the 0-based offset in the rule source."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (at position {position})")
        self.message = message
        self.position = position


@dataclass(frozen=True)
class Rule:
    """A compiled rule: every ``required`` pattern must be found, no ``guards`` pattern may be."""

    source: str
    required: tuple[re.Pattern[str], ...]
    guards: tuple[re.Pattern[str], ...] = ()

    def _positive(self, text: str) -> bool:
        return all(p.search(text) for p in self.required)

    def _guarded(self, text: str) -> bool:
        return any(g.search(text) for g in self.guards)

    def matches(self, text: str, *, normalized: bool = False) -> bool:
        """True when the rule matches ``text`` (normalised first unless ``normalized``)."""
        s = text if normalized else normalize_for_match(text)
        return self._positive(s) and not self._guarded(s)

    def vetoes(self, text: str, *, normalized: bool = False) -> bool:
        """True when the positive part matches but a negation guard fires."""
        s = text if normalized else normalize_for_match(text)
        return bool(self.guards) and self._positive(s) and self._guarded(s)


class _Parser:
    def __init__(self, src: str) -> None:
        self.src = src
        self.pos = 0

    def error(self, message: str, pos: int | None = None) -> RuleSyntaxError:
        return RuleSyntaxError(message, self.pos if pos is None else pos)

    def skip_ws(self) -> None:
        while self.pos < len(self.src) and self.src[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        self.skip_ws()
        return self.src[self.pos] if self.pos < len(self.src) else ""

    def parse_rule(self) -> tuple[list[str], list[str]]:
        parts = [self.parse_part()]
        while self.peek() == "&":
            self.pos += 1
            parts.append(self.parse_part())
        guards: list[str] = []
        while self.peek() == "!":
            bang = self.pos
            self.pos += 1
            if self.peek() in ("(", "["):
                guard = self.parse_item()
            else:
                guard = self.parse_literal()
            if not guard:
                raise self.error("'!' must be followed by a pattern", bang)
            guards.append(guard)
        c = self.peek()
        if c:
            if guards:
                raise self.error("a negation guard must come at the end of the rule")
            raise self.error(f"unexpected {c!r}")
        return parts, guards

    def parse_part(self) -> str:
        start = self.pos
        regex = self.parse_alt()
        if not regex:
            raise self.error("empty rule or sub-rule", start)
        return regex

    def parse_alt(self) -> str:
        options = [self.parse_seq()]
        while self.peek() == "|":
            bar = self.pos
            if not options[-1]:
                raise self.error("empty alternative", bar)
            self.pos += 1
            options.append(self.parse_seq())
            if not options[-1]:
                raise self.error("empty alternative", self.pos)
        return options[0] if len(options) == 1 else "(?:" + "|".join(options) + ")"

    def parse_seq(self) -> str:
        out: list[str] = []
        while True:
            c = self.peek()
            if not c or c in "|)]&!":
                return "".join(out)
            out.append(self.parse_item())

    def parse_item(self) -> str:
        c = self.peek()
        start = self.pos
        if c == "(" or c == "[":
            close = ")" if c == "(" else "]"
            self.pos += 1
            inner = self.parse_alt()
            if self.peek() != close:
                got = repr(self.peek()) if self.peek() else "end of rule"
                raise self.error(f"{c!r} opened here is not closed by {close!r} (got {got})",
                                 start)
            self.pos += 1
            if not inner:
                raise self.error(f"empty {c}{close}", start)
            return f"(?:{inner})" + ("?" if c == "[" else "")
        if c == "*":
            self.pos += 1
            return ".*?"
        if c == "{":
            return self.parse_gap()
        if c in (")", "]", "}"):
            raise self.error(f"unmatched {c!r}")
        return self.parse_literal()

    def parse_gap(self) -> str:
        start = self.pos
        end = self.src.find("}", start)
        if end < 0:
            raise self.error("'{' is not closed by '}'", start)
        body = self.src[start + 1:end].replace(" ", "")
        m = re.fullmatch(r"(\d*)(,(\d*))?", body)
        if not m or (not m.group(1) and not m.group(3)):
            raise self.error(f"bad gap {{{body}}}: use {{m,n}}, {{,n}} or {{n}}", start)
        lo = int(m.group(1) or 0)
        hi = int(m.group(3)) if m.group(3) else (lo if not m.group(2) else -1)
        if hi < 0:
            raise self.error("an open gap {m,} is not allowed; use '*'", start)
        if hi < lo:
            raise self.error(f"bad gap {{{body}}}: {hi} < {lo}", start)
        self.pos = end + 1
        return f".{{{lo},{hi}}}?"

    def parse_literal(self) -> str:
        chars: list[str] = []
        while self.pos < len(self.src):
            c = self.src[self.pos]
            if c == "\\":
                if self.pos + 1 >= len(self.src):
                    raise self.error("dangling escape '\\' at end of rule")
                chars.append(self.src[self.pos + 1])
                self.pos += 2
                continue
            if c in _SPECIAL:
                break
            if not c.isspace():
                chars.append(c)
            self.pos += 1
        text = "".join(chars)
        norm = normalize_for_match(text)
        if text and not norm:
            norm = text.lower()  # an escaped symbol: keep it literally
        return re.escape(norm)


def compile_rule(src: str) -> Rule:
    """Compile rule source (see the module docstring) into a :class:`Rule`."""
    if not src.strip():
        raise RuleSyntaxError("empty rule", 0)
    parts, guards = _Parser(src).parse_rule()
    return Rule(source=src, required=tuple(re.compile(p) for p in parts),
                guards=tuple(re.compile(g) for g in guards))
