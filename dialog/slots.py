"""Turn a caller's answer (DTMF digits or recognised speech) into a slot value, or a reason."""

from __future__ import annotations

from datetime import date
from typing import Any

from dialog.nlu import normalize as nz
from dialog.scenario import SlotSpec
from ivr.core.chinatime import china_today


def parse_slot(slot: SlotSpec, raw: str, *, dtmf: bool,
               today: date | None = None) -> tuple[Any, str | None]:
    """(value, None) when the answer fills the slot, else (None, Chinese reason to say)."""
    text = raw.rstrip("#") if dtmf else raw
    kind = slot.type
    if kind == "yes_no":
        if dtmf:
            keys: dict[str, tuple[bool | None, str | None]] = {
                "1": (True, None),
                "2": (False, None),
            }
            return keys.get(text[:1], (None, "请按1确认，按2否认。"))
        answer = nz.extract_yes_no(text)
        return (answer, None) if answer is not None else (None, "请回答是或者不是。")
    if kind == "choice":
        for value, words in slot.choices.items():
            if dtmf and words and text[:1] == words[0]:
                return value, None
            if not dtmf and any(w in text for w in words[1:] or words):
                return value, None
        return None, "抱歉，没有这个选项。"
    if kind == "card_number":
        return nz.extract_card_number(text)
    if kind == "gas_account":
        return nz.extract_digits(text, 10, 10)
    if kind == "phone":
        return nz.extract_phone(text)
    if kind == "id_tail":
        # on a keypad the X of an ID number is the star key
        return nz.extract_id_tail(text.replace("*", "X") if dtmf else text, 6)
    if kind == "pin":
        return nz.extract_digits(text, 6, 6)
    if kind == "digits":
        return nz.extract_digits(text, 1, slot.max_digits or 32)
    if kind == "amount":
        amount = nz.parse_amount(text)
        return (amount, None) if amount is not None else (None, "请说出金额，比如一百元。")
    if kind == "date":
        rng = nz.parse_date(text, today or china_today())  # the caller's today
        return (rng, None) if rng is not None else (None, "请说出日期，比如上个月或者三月五号。")
    value = text.strip()
    return (value, None) if value else (None, "请再说一遍。")
