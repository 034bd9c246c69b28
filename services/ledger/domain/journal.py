"""Journal entries: balanced sets of lines with a posting key and a request hash.

Idempotency (TigerBeetle's "exists with different fields"): an entry is identified by its ``posting_key``;
its ``request_hash`` is the SHA-256 of the canonical JSON of the *request* that produced it (kind, request,
part). Posting a key that exists with the same hash answers with the existing entry; the same key with a
different hash is a conflict and must never produce a second posting.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from services.ledger.domain.accounts import Side, account_info
from services.ledger.domain.canonical import dump_canonical, sha256_hex, to_canonical
from services.ledger.domain.errors import AccountCodeError, EntryValidationError

__all__ = ["EntryKind", "JournalEntry", "Line", "LineBuilder", "request_hash"]

_HEX64 = re.compile(r"[0-9a-f]{64}")


class EntryKind(StrEnum):
    """What moment of an order's (or inmate's) life an entry records."""

    SALE_COMPLETED = "sale_completed"
    SETTLEMENT = "settlement"
    DISTRIBUTION = "distribution"
    REFUND = "refund"
    REFUND_REVERSAL = "refund_reversal"
    PAYOUT = "payout"


@dataclass(frozen=True, slots=True)
class Line:
    """One journal line: a positive whole-rupiah amount on one side of one account."""

    account: str
    side: Side
    amount: int


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """A balanced journal entry, as built by :mod:`services.ledger.domain.postings`.

    ``policy_ref`` (``policy_id@vN``) is set on distributions and their reversals; ``reverses`` is the
    posting key of the entry a refund reverses; ``order_key`` and ``batch_id`` let reports trace a savings
    line back to its sale.
    """

    posting_key: str
    request_hash: str
    kind: EntryKind
    memo: str
    effective_at: datetime
    lines: tuple[Line, ...]
    policy_ref: str | None = None
    reverses: str | None = None
    order_key: str | None = None
    batch_id: str | None = None

    @property
    def debit_total(self) -> int:
        """Sum of the debit lines."""
        return sum(line.amount for line in self.lines if line.side is Side.DEBIT)

    @property
    def credit_total(self) -> int:
        """Sum of the credit lines."""
        return sum(line.amount for line in self.lines if line.side is Side.CREDIT)

    def validate(self) -> None:
        """Raise :class:`EntryValidationError` unless the entry can be committed.

        Checks: posting key present, request hash is 64 hex digits, aware effective time, at least two lines,
        each amount a positive ``int``, each side D or C, each account code valid and used once per entry,
        and debits equal credits.
        """
        where = f"entry {self.posting_key!r}"
        if not self.posting_key:
            raise EntryValidationError("entry has an empty posting key")
        if not _HEX64.fullmatch(self.request_hash):
            raise EntryValidationError(f"{where}: request hash must be 64 lower-case hex digits")
        if self.effective_at.utcoffset() is None:
            raise EntryValidationError(f"{where}: effective time has no time zone")
        if len(self.lines) < 2:
            raise EntryValidationError(f"{where}: needs at least two lines, has {len(self.lines)}")
        seen: set[str] = set()
        for line in self.lines:
            if isinstance(line.amount, bool) or not isinstance(line.amount, int) or line.amount <= 0:
                raise EntryValidationError(f"{where}: line {line.account} amount {line.amount!r} is not a positive int")
            if not isinstance(line.side, Side):
                raise EntryValidationError(f"{where}: line {line.account} side {line.side!r} is not D or C")
            try:
                account_info(line.account)
            except AccountCodeError as exc:
                raise EntryValidationError(f"{where}: {exc}") from None
            if line.account in seen:
                raise EntryValidationError(f"{where}: account {line.account} appears on two lines")
            seen.add(line.account)
        if self.debit_total != self.credit_total:
            raise EntryValidationError(f"{where}: unbalanced, debits {self.debit_total} != credits {self.credit_total}")


def request_hash(kind: EntryKind, request: object, part: str | None = None) -> str:
    """SHA-256 hex of the canonical JSON ``{"kind", "request", "part"}``.

    ``part`` distinguishes the several entries one request produces (a batch id for distributions and
    refund reversals). The request is any canonical-JSON-able value, usually a request dataclass.
    """
    plain = {"kind": kind.value, "request": _canonical_request(request), "part": to_canonical(part)}
    return sha256_hex(dump_canonical(plain))


_REQUEST_CACHE: dict[int, tuple[object, object]] = {}


def _canonical_request(request: object) -> object:
    """The canonical form of a request, computed once per request object (a settlement's several entries and
    a completion's hash share it). Keyed by identity, holding the object so the id cannot be reused."""
    hit = _REQUEST_CACHE.get(id(request))
    if hit is not None and hit[0] is request:
        return hit[1]
    value = to_canonical(request)
    if len(_REQUEST_CACHE) >= 4096:
        _REQUEST_CACHE.clear()
    _REQUEST_CACHE[id(request)] = (request, value)
    return value


class LineBuilder:
    """Accumulates signed amounts per account and nets them into lines (debits first, then credits).

    Within each side, accounts keep the order in which they were first touched, so builders produce the
    same line order for the same inputs. Accounts that net to zero disappear.
    """

    def __init__(self) -> None:
        self._net: dict[str, int] = {}

    def debit(self, account: str, amount: int) -> None:
        """Add ``amount`` (may be 0 or negative, meaning a credit) on the debit side of ``account``."""
        self._net[account] = self._net.get(account, 0) + amount

    def credit(self, account: str, amount: int) -> None:
        """Add ``amount`` on the credit side of ``account``."""
        self.debit(account, -amount)

    def extend(self, signed: Iterable[tuple[str, int]]) -> None:
        """Add ``(account, signed amount)`` pairs; positive is a debit."""
        for account, amount in signed:
            self.debit(account, amount)

    def lines(self) -> tuple[Line, ...]:
        """The netted lines."""
        debits = [Line(a, Side.DEBIT, n) for a, n in self._net.items() if n > 0]
        credits = [Line(a, Side.CREDIT, -n) for a, n in self._net.items() if n < 0]
        return (*debits, *credits)
