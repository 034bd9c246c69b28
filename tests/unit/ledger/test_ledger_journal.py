"""Journal entries: validation of every invariant, and request hashes for idempotency."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.ledger.domain import accounts as acc
from services.ledger.domain.accounts import Side
from services.ledger.domain.distribution import plan_distribution
from services.ledger.domain.errors import EntryValidationError
from services.ledger.domain.journal import EntryKind, JournalEntry, Line
from services.ledger.domain.model import CompletionRequest
from services.ledger.domain.postings import build_completion
from services.ledger.domain.refunds import build_line_refund
from tests.unit.ledger.ledger_support import COMPLETION, DEMO_POLICIES, GLOVES, ORDER, SETTLEMENT, A, refund

# --- journal entries and request hashes ---------------------------------------------------------


def test_request_hash_covers_the_request_not_the_state() -> None:
    plan = plan_distribution(COMPLETION, SETTLEMENT, DEMO_POLICIES)
    allocations = COMPLETION.allocations
    first, _ = build_line_refund(plan, allocations, refund("R1", 50_000), 0, {}, {}, {})
    later, _ = build_line_refund(plan, allocations, refund("R1", 50_000), 100_000, {}, {}, {acc.inmate_savings(A): 0})
    assert [(e.posting_key, e.request_hash) for e in first] == [(e.posting_key, e.request_hash) for e in later]
    changed, _ = build_line_refund(plan, allocations, refund("R1", 50_001), 0, {}, {}, {})
    assert [e.request_hash for e in changed] != [e.request_hash for e in first]
    assert build_completion(COMPLETION).request_hash == build_completion(COMPLETION).request_hash
    other_time = CompletionRequest(ORDER, 150_000, datetime(2026, 2, 1, 3, tzinfo=UTC), (GLOVES,))
    assert build_completion(other_time).request_hash == build_completion(COMPLETION).request_hash  # same instant
    one_more = CompletionRequest(ORDER, 150_001, COMPLETION.completed_at, (GLOVES,))
    assert build_completion(one_more).request_hash != build_completion(COMPLETION).request_hash


def _entry(*lines: Line, **changes: object) -> JournalEntry:
    fields: dict[str, object] = {
        "posting_key": "k",
        "request_hash": "a" * 64,
        "kind": EntryKind.PAYOUT,
        "memo": "m",
        "effective_at": datetime(2026, 1, 1, tzinfo=UTC),
        "lines": lines,
    }
    fields.update(changes)
    return JournalEntry(**fields)  # type: ignore[arg-type]


BANK, SAVINGS = acc.bank("cipinang"), acc.inmate_savings(A)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            _entry(Line(BANK, Side.DEBIT, 5), Line(SAVINGS, Side.CREDIT, 4)),
            "unbalanced, debits 5 != credits 4",
        ),
        (_entry(Line(BANK, Side.DEBIT, 0), Line(SAVINGS, Side.CREDIT, 0)), "is not a positive int"),
        (_entry(Line(BANK, Side.DEBIT, -5), Line(SAVINGS, Side.CREDIT, -5)), "is not a positive int"),
        (_entry(Line(BANK, Side.DEBIT, True), Line(SAVINGS, Side.CREDIT, True)), "is not a positive int"),
        (_entry(Line(BANK, Side.DEBIT, 5.0), Line(SAVINGS, Side.CREDIT, 5.0)), "is not a positive int"),  # type: ignore[arg-type]
        (_entry(Line(BANK, Side.DEBIT, 5)), "needs at least two lines"),
        (_entry(Line(BANK, Side.DEBIT, 5), Line(BANK, Side.CREDIT, 5)), "appears on two lines"),
        (_entry(Line("asset:cash", Side.DEBIT, 5), Line(SAVINGS, Side.CREDIT, 5)), "unknown asset account"),
        (_entry(Line(BANK, "D", 5), Line(SAVINGS, Side.CREDIT, 5)), "is not D or C"),  # type: ignore[arg-type]
        (
            _entry(Line(BANK, Side.DEBIT, 5), Line(SAVINGS, Side.CREDIT, 5), posting_key=""),
            "empty posting key",
        ),
        (
            _entry(Line(BANK, Side.DEBIT, 5), Line(SAVINGS, Side.CREDIT, 5), request_hash="xyz"),
            "request hash",
        ),
        (
            _entry(Line(BANK, Side.DEBIT, 5), Line(SAVINGS, Side.CREDIT, 5), effective_at=datetime(2026, 1, 1)),
            "no time zone",
        ),
    ],
)
def test_entry_validation(entry: JournalEntry, message: str) -> None:
    with pytest.raises(EntryValidationError, match=message):
        entry.validate()


def test_a_valid_entry_passes() -> None:
    _entry(Line(BANK, Side.DEBIT, 5), Line(SAVINGS, Side.CREDIT, 5)).validate()
