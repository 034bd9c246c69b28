"""Integer rupiah as people read it: ``Rp 1.234.567`` (dot thousands, no decimals), a minus sign or a Dr/Cr
side, and the inverse parser so a formatted amount reads back to the same integer."""

from __future__ import annotations

import re
from typing import Literal

from services.presentation.messages import Lang, message

Side = Literal["D", "C"]
_AMOUNT = re.compile(r"^(-)?Rp (\d{1,3}(?:\.\d{3})*)(?: (\S+))?$")


def group(amount: int) -> str:
    """The digits of ``abs(amount)`` grouped by threes with dots: ``1.234.567``."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"rupiah are whole numbers, got {amount!r}")
    return f"{abs(amount):,}".replace(",", ".")


def rupiah(amount: int) -> str:
    """``Rp 1.234.567``; a negative amount gets a leading minus: ``-Rp 1.234.567``."""
    return f"{'-' if amount < 0 else ''}Rp {group(amount)}"


def side_label(side: Side, lang: Lang = "id") -> str:
    """The short name of a side: ``D``/``K`` (debet/kredit) in Bahasa Indonesia, ``Dr``/``Cr`` in English."""
    return message("debit_short" if side == "D" else "credit_short", lang)


def rupiah_side(balance: int, normal_side: Side, lang: Lang = "id") -> str:
    """A balance on its side, never negative: a debit-normal balance of -5.000 is ``Rp 5.000 K`` (``Cr``).

    ``balance`` is signed towards ``normal_side`` (as the ledger's reports give it); zero is shown on that side.
    """
    other: Side = "C" if normal_side == "D" else "D"
    side = normal_side if balance >= 0 else other
    return f"Rp {group(balance)} {side_label(side, lang)}"


def parse_rupiah(text: str, normal_side: Side = "D") -> int:
    """The integer behind :func:`rupiah` or :func:`rupiah_side` (either language); ``ValueError`` otherwise.

    A side label opposite ``normal_side`` gives a negative number, as the ledger's signed balances are.
    """
    match = _AMOUNT.match(text.strip())
    if match is None:
        raise ValueError(f"not a rupiah amount: {text!r} (expected e.g. 'Rp 1.234.567' or 'Rp 1.234.567 Dr')")
    minus, digits, label = match.groups()
    value = int(digits.replace(".", ""))
    if label is None:
        return -value if minus else value
    if minus:
        raise ValueError(f"a sided amount has no minus sign: {text!r}")
    sides = {message(k, lang): s for lang in ("id", "en") for k, s in (("debit_short", "D"), ("credit_short", "C"))}
    if label not in sides:
        raise ValueError(f"unknown side {label!r} in {text!r}")
    return value if sides[label] == normal_side else -value
