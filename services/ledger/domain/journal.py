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

__all__ = ["Conflict", "EntryKind", "JournalEntry", "Line", "LineBuilder", "request_hash"]

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Line:
    """One journal line: a positive whole-rupiah amount on one side of one account."""

    account: str
    side: Side
    amount: int


class EntryKind(StrEnum):
    """What moment of an order's (or inmate's) life an entry records; ``reversal`` and ``adjustment`` are the
    corrections two people posted (:mod:`services.ledger.domain.corrections`), the last three the settlements of
    what is owed (:mod:`services.ledger.domain.settlements`)."""

    SALE_COMPLETED = "sale_completed"
    SETTLEMENT = "settlement"
    DISTRIBUTION = "distribution"
    REFUND = "refund"
    REFUND_REVERSAL = "refund_reversal"
    PAYOUT = "payout"
    REVERSAL = "reversal"
    ADJUSTMENT = "adjustment"
    PNBP_DEPOSIT = "pnbp_deposit"
    SUPPLIER_PAYMENT = "supplier_payment"
    CAPITAL_USE = "capital_use"


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """A balanced journal entry, as built by :mod:`services.ledger.domain.postings`.

    ``policy_ref`` (``policy_id@vN``) is set on distributions and their reversals, and on settlements and refunds
    the tax setting they were posted under (``tax:<lapas>@vN``, when the lapas has one); ``reverses`` is the
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
        total = 0
        for line in self.lines:
            if line.side is _DEBIT:
                total += line.amount
        return total

    @property
    def credit_total(self) -> int:
        """Sum of the credit lines."""
        total = 0
        for line in self.lines:
            if line.side is _CREDIT:
                total += line.amount
        return total

    @property
    def _where(self) -> str:
        return f"entry {self.posting_key!r}"

    def validate(self) -> None:
        """Raise :class:`EntryValidationError` unless the entry can be committed.

        Checks: posting key present, request hash is 64 hex digits, aware effective time, at least two lines,
        each amount a positive ``int``, each side D or C, each account code valid and used once per entry,
        and debits equal credits.
        """
        if not self.posting_key:
            raise EntryValidationError("entry has an empty posting key")
        if not _HEX64.fullmatch(self.request_hash):
            raise EntryValidationError(f"{self._where}: request hash must be 64 lower-case hex digits")
        if self.effective_at.utcoffset() is None:
            raise EntryValidationError(f"{self._where}: effective time has no time zone")
        if len(self.lines) < 2:
            raise EntryValidationError(f"{self._where}: needs at least two lines, has {len(self.lines)}")
        seen: set[str] = set()
        debits = credits = 0
        for line in self.lines:
            amount, side, account = line.amount, line.side, line.account
            if (type(amount) is not int and (isinstance(amount, bool) or not isinstance(amount, int))) or amount <= 0:
                raise EntryValidationError(f"{self._where}: line {account} amount {amount!r} is not a positive int")
            if side is _DEBIT:
                debits += amount
            elif side is _CREDIT:
                credits += amount
            else:
                raise EntryValidationError(f"{self._where}: line {account} side {side!r} is not D or C")
            try:
                account_info(account)
            except AccountCodeError as exc:
                raise EntryValidationError(f"{self._where}: {exc}") from None
            if account in seen:
                raise EntryValidationError(f"{self._where}: account {account} appears on two lines")
            seen.add(account)
        if debits != credits:
            raise EntryValidationError(f"{self._where}: unbalanced, debits {debits} != credits {credits}")


# Members as module constants: reading a member (or its value) off an enum class costs a descriptor call.
_DEBIT, _CREDIT = Side.DEBIT, Side.CREDIT
_KIND_VALUE = {kind: kind.value for kind in EntryKind}


def request_hash(kind: EntryKind, request: object, part: str | None = None) -> str:
    """SHA-256 hex of the canonical JSON ``{"kind", "request", "part"}``.

    ``part`` distinguishes the several entries one request produces (a batch id for distributions and
    refund reversals). The request is any canonical-JSON-able value, usually a request dataclass.

    The request's canonical JSON is computed once per request object (a settlement's several entries share
    it): canonical JSON of an object is its sorted members' JSON joined, so the bytes are assembled from the
    members' bytes (conversions and dumps run in the order ``dump_canonical`` of the whole would meet them).
    """
    value = _KIND_VALUE[kind] if type(kind) is EntryKind else kind.value
    hit = _REQUEST_CACHE.get(id(request))
    if hit is not None and hit[0] is request:
        dumped_request = hit[1]
        plain_part = part if type(part) is str else to_canonical(part)
        head = dump_canonical(value), dump_canonical(plain_part)
    else:
        plain_request = to_canonical(request)
        plain_part = part if type(part) is str else to_canonical(part)
        head = dump_canonical(value), dump_canonical(plain_part)
        dumped_request = dump_canonical(plain_request)
        if len(_REQUEST_CACHE) >= 4096:
            _REQUEST_CACHE.clear()
        _REQUEST_CACHE[id(request)] = (request, dumped_request)
    return sha256_hex(b'{"kind":' + head[0] + b',"part":' + head[1] + b',"request":' + dumped_request + b"}")


#: Canonical JSON of recent requests, by identity (holding the request, so the id cannot be reused).
_REQUEST_CACHE: dict[int, tuple[object, bytes]] = {}


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
        self._net[account] = self._net.get(account, 0) - amount

    def extend(self, signed: Iterable[tuple[str, int]]) -> None:
        """Add ``(account, signed amount)`` pairs; positive is a debit."""
        for account, amount in signed:
            self.debit(account, amount)

    def lines(self) -> tuple[Line, ...]:
        """The netted lines."""
        debits = [Line(a, _DEBIT, n) for a, n in self._net.items() if n > 0]
        credits = [Line(a, _CREDIT, -n) for a, n in self._net.items() if n < 0]
        return (*debits, *credits)


@dataclass(frozen=True, slots=True)
class Conflict:
    """A posting key seen again with a different request: recorded, alerted, never posted twice."""

    posting_key: str
    existing_hash: str
    new_hash: str
    source_event: str | None
