"""The fast paths of canonical JSON, the hash chain, entry validation and account codes give exactly
what the reference implementations (``ledger_reference``, the code before the fast paths) give: the same
values, bytes and hashes, and the same error type and message for what they refuse — first call and repeated
calls (the caches) alike."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from enum import IntEnum
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from services.ledger.domain import accounts
from services.ledger.domain.accounts import AccountType, Side
from services.ledger.domain.canonical import canonical_json, to_canonical, utc_iso
from services.ledger.domain.distribution import plan_distribution
from services.ledger.domain.hashchain import CommittedEntry, serialise_entry
from services.ledger.domain.journal import EntryKind, JournalEntry, Line, request_hash
from services.ledger.domain.postings import build_completion, build_distribution, build_settlement
from tests.unit.ledger import ledger_reference as ref
from tests.unit.ledger.ledger_reference import outcome
from tests.unit.ledger.ledger_support import DEMO_POLICIES, completions, settlements


class Level(IntEnum):
    LOW = 1


class Tag(str):
    """A str subclass that is not an enum: canonical JSON refuses it."""


@dataclasses.dataclass(frozen=True)
class Box:
    name: str
    value: object


ZONES = [UTC, timezone(timedelta(hours=7)), timezone(timedelta(hours=-3, minutes=-30)), ZoneInfo("Europe/Berlin")]
moments = st.builds(
    lambda naive, zone, fold: naive.replace(tzinfo=zone, fold=fold),
    st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2200, 1, 1)),
    st.sampled_from([*ZONES, None]),
    st.sampled_from([0, 1]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=8),
    st.fractions(max_denominator=50),
    st.floats(allow_nan=False),
    moments,
    st.sampled_from([Side.DEBIT, EntryKind.REFUND, Level.LOW, Tag("x"), b"raw", object]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=5), inner, max_size=4),
        st.dictionaries(st.integers(), inner, min_size=1, max_size=2),
        st.dictionaries(st.text(max_size=5), inner, max_size=3).map(MappingProxyType),
        st.builds(Box, st.text(max_size=5), inner),
    ),
    max_leaves=12,
)


@settings(max_examples=400)
@given(values)
def test_to_canonical_equals_the_reference(value: object) -> None:
    expected = outcome(ref.to_canonical, value)
    assert outcome(to_canonical, value) == expected
    assert outcome(to_canonical, value) == expected  # again, through the remembered rules and times
    assert outcome(canonical_json, value) == outcome(ref.canonical_json, value)


@settings(max_examples=300)
@given(moments)
def test_utc_iso_equals_the_reference_first_and_cached(moment: datetime) -> None:
    expected = outcome(ref.utc_iso, moment)
    assert outcome(utc_iso, moment) == expected
    assert outcome(utc_iso, moment) == expected
    twin = moment.replace(fold=1 - moment.fold)  # equal to moment, maybe another instant: never mixed up
    assert outcome(utc_iso, twin) == outcome(ref.utc_iso, twin)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_request_hashes_plans_and_entries_equal_the_reference(data: st.DataObject) -> None:
    completion = data.draw(completions())
    settlement = data.draw(settlements(completion))
    for kind, request, part in [
        (EntryKind.SALE_COMPLETED, completion, None),
        (EntryKind.SETTLEMENT, settlement, None),
        (EntryKind.DISTRIBUTION, settlement, completion.allocations[0].batch_id),
    ]:
        assert request_hash(kind, request, part) == ref.request_hash(kind, request, part)
    plan = outcome(plan_distribution, completion, settlement, DEMO_POLICIES)
    assert plan == outcome(ref.plan_distribution, completion, settlement, DEMO_POLICIES)
    entries = [build_completion(completion), build_settlement(settlement, completion.gross)]
    if plan[0] == "ok":
        entries += build_distribution(plan[1], settlement)
    recorded = data.draw(moments.filter(lambda m: m.utcoffset() is not None))
    for n, entry in enumerate(entries):
        source, segment = data.draw(st.none() | st.text(max_size=6)), data.draw(st.sampled_from(["legacy", "s0", "s5"]))
        committed = CommittedEntry(n, entry, recorded, source_event=source, segment=segment)
        assert serialise_entry(committed) == ref.serialise_entry(committed)


odd_entry_fields = {
    "sequence": st.sampled_from([7, True, Level.LOW, "7"]),
    "posting_key": st.sampled_from(["o:s:1:completed", Tag("o:s:1:completed"), "", "kunci — ü"]),
    "kind": st.sampled_from([EntryKind.REFUND, "refund", Level.LOW]),
    "memo": st.sampled_from(["memo", "Rp 25.000 — lunas", "\x7f", 5]),
    "policy_ref": st.sampled_from([None, "p@v1", Tag("p@v1")]),
    "source_event": st.sampled_from([None, "evt-1", 3]),
    "side": st.sampled_from([Side.DEBIT, "D"]),
    "amount": st.sampled_from([5, True, Level.LOW, -5, 2.5]),
    "account": st.sampled_from(["asset:bank:main", Tag("asset:bank:main"), 3]),
    "segment": st.sampled_from(["legacy", "s1", Tag("s1"), Tag("legacy")]),
}


@settings(max_examples=300)
@given(st.fixed_dictionaries(odd_entry_fields), moments)
def test_serialise_entry_with_unusual_values_equals_the_reference(f: dict[str, Any], effective: datetime) -> None:
    lines = (
        Line(f["account"], f["side"], f["amount"]),
        Line("clearing:suspense", Side.CREDIT, 5),
    )
    entry = JournalEntry(f["posting_key"], "0" * 64, f["kind"], f["memo"], effective, lines, f["policy_ref"])
    committed = CommittedEntry(
        f["sequence"], entry, datetime(2026, 1, 1, tzinfo=UTC), f["source_event"], segment=f["segment"]
    )
    assert outcome(serialise_entry, committed) == outcome(ref.serialise_entry, committed)


entry_parts = {
    "posting_key": st.sampled_from(["o:s:1:settlement", ""]),
    "request_hash": st.sampled_from(["a" * 64, "A" * 64, "a" * 63, "0123456789abcdef" * 4]),
    "effective_at": st.sampled_from([datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1)]),
    "lines": st.lists(
        st.builds(
            Line,
            st.sampled_from(
                ["asset:bank:cpn:main", "clearing:suspense:cpn", "asset:bank", "nope:x", "revenue:sales:cpn"]
            ),
            st.sampled_from([Side.DEBIT, Side.CREDIT, "D"]),
            st.sampled_from([1, 2, 3, 0, -1, True, Level.LOW, 2.0]),
        ),
        max_size=4,
    ).map(tuple)
    | st.lists(st.builds(Line, st.just("asset:bank:main"), st.just(Side.DEBIT), st.just(4)), max_size=2),
}


@settings(max_examples=500)
@given(st.fixed_dictionaries(entry_parts))
def test_entry_validation_equals_the_reference(parts: dict[str, Any]) -> None:
    entry = JournalEntry(kind=EntryKind.SETTLEMENT, memo="m", **parts)
    expected = outcome(ref.validate_entry, entry)
    assert outcome(JournalEntry.validate, entry) == expected
    assert outcome(JournalEntry.validate, entry) == expected  # a valid entry is remembered
    assert entry.debit_total == sum(x.amount for x in entry.lines if x.side is Side.DEBIT)
    assert entry.credit_total == sum(x.amount for x in entry.lines if x.side is Side.CREDIT)


HELPERS: list[tuple[Callable[..., str], AccountType, str, int]] = [
    # (helper, type, kind, arity: 2 = lapas and owner, 1 = one id: a lapas or an inmate)
    (accounts.bank, AccountType.ASSET, "bank", 2),
    (accounts.marketplace_receivable, AccountType.ASSET, "marketplace_receivable", 2),
    (accounts.pph22_prepaid, AccountType.ASSET, "pph22_prepaid", 1),
    (accounts.inmate_receivable, AccountType.ASSET, "inmate_receivable", 1),
    (accounts.inmate_savings, AccountType.LIABILITY, "inmate_savings", 1),
    (accounts.pnbp_payable, AccountType.LIABILITY, "pnbp_payable", 1),
    (accounts.supplier_payable, AccountType.LIABILITY, "supplier_payable", 2),
    (accounts.deduction_payable, AccountType.LIABILITY, "deduction_payable", 2),
    (accounts.production_capital, AccountType.EQUITY, "production_capital", 1),
    (accounts.sales_revenue, AccountType.REVENUE, "sales", 1),
    (accounts.fee_expense, AccountType.EXPENSE, "marketplace_fee", 2),
    (accounts.material_cost_expense, AccountType.EXPENSE, "material_cost", 1),
    (accounts.pnbp_share_expense, AccountType.EXPENSE, "pnbp_share", 1),
    (accounts.inmate_premi_expense, AccountType.EXPENSE, "inmate_premi", 1),
    (accounts.capital_allocation_expense, AccountType.EXPENSE, "capital_allocation", 1),
    (accounts.undistributed_proceeds, AccountType.CLEARING, "undistributed_proceeds", 1),
    (accounts.suspense, AccountType.CLEARING, "suspense", 1),
]
IDS = st.sampled_from(["main", "WBP-CPN001", "cipinang", "", "a:b", Tag("main")])


@settings(max_examples=300)
@given(st.sampled_from(HELPERS), IDS, IDS)
def test_account_codes_equal_the_reference(
    helper: tuple[Callable[..., str], AccountType, str, int], first: str, second: str
) -> None:
    fn, account_type, name, arity = helper
    if arity == 2:
        args: tuple[str, ...] = (first, second)
        parts: tuple[str | None, str | None] = (first, second)
    else:
        args, parts = (first,), (None, first)
    expected = outcome(ref.account_code, account_type, name, *parts)
    assert outcome(fn, *args) == expected
    assert outcome(fn, *args) == expected  # cached
    assert outcome(accounts._code, account_type, name, *parts) == expected


@settings(max_examples=400)
@given(values, st.none() | st.text(max_size=4) | st.sampled_from(["batch — ü", "\x7f", 1.5, Tag("p"), Level.LOW]))
def test_request_hash_of_any_value_equals_the_reference(request: object, part: Any) -> None:
    expected = outcome(ref.request_hash, EntryKind.REFUND, request, part)
    assert outcome(request_hash, EntryKind.REFUND, request, part) == expected
    assert outcome(request_hash, EntryKind.REFUND, request, part) == expected  # the request's JSON remembered
    assert outcome(request_hash, "refund", request, part) == outcome(ref.request_hash, "refund", request, part)
