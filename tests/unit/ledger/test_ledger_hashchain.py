"""Hash chain: canonical serialisation, and any change to any committed entry is found."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ledger.domain.accounts import Side
from services.ledger.domain.canonical import canonical_json
from services.ledger.domain.distribution import plan_distribution
from services.ledger.domain.hashchain import (
    GENESIS_HASH,
    CommittedEntry,
    chain_hash,
    seal_chain,
    serialise_entry,
    verify_chain,
)
from services.ledger.domain.journal import EntryKind, JournalEntry, Line
from services.ledger.domain.postings import build_completion, build_distribution, build_settlement
from tests.unit.ledger.ledger_support import DEMO_POLICIES, completions, settlements

RECORDED = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def committed(entries: list[JournalEntry]) -> list[CommittedEntry]:
    return seal_chain(
        CommittedEntry(n, e, RECORDED + timedelta(seconds=n), source_event=f"evt-{n}") for n, e in enumerate(entries)
    )


@st.composite
def chains(draw: st.DrawFn) -> list[CommittedEntry]:
    entries: list[JournalEntry] = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        completion = draw(completions())
        settlement = draw(settlements(completion))
        plan = plan_distribution(completion, settlement, DEMO_POLICIES)
        entries += [build_completion(completion), build_settlement(settlement, completion.gross)]
        entries += build_distribution(plan, settlement)
    return committed(entries)


def _mutations(c: CommittedEntry, data: st.DataObject) -> CommittedEntry:
    draw = data.draw
    """One semantic change to one field of a committed entry (or of one of its lines)."""
    e = c.entry
    line_index = draw(st.integers(min_value=0, max_value=len(e.lines) - 1))
    line = e.lines[line_index]
    other_side = Side.CREDIT if line.side is Side.DEBIT else Side.DEBIT
    changed_lines = {
        "amount": dataclasses.replace(
            line, amount=line.amount + draw(st.sampled_from([1, -1 if line.amount > 1 else 2]))
        ),
        "side": dataclasses.replace(line, side=other_side),
        "account": dataclasses.replace(line, account=line.account + "x"),
    }
    which = draw(
        st.sampled_from(
            [
                "sequence",
                "recorded_at",
                "source_event",
                "posting_key",
                "request_hash",
                "kind",
                "memo",
                "effective_at",
                "policy_ref",
                "reverses",
                "order_key",
                "batch_id",
                "line",
                "drop_line",
            ]
        )
    )
    if which == "sequence":
        return dataclasses.replace(c, sequence=c.sequence + 1)
    if which == "recorded_at":
        return dataclasses.replace(c, recorded_at=c.recorded_at + timedelta(microseconds=1))
    if which == "source_event":
        return dataclasses.replace(c, source_event=None if c.source_event else "evt")
    if which == "line":
        kind = draw(st.sampled_from(sorted(changed_lines)))
        edited = list(e.lines)
        edited[line_index] = changed_lines[kind]
        return dataclasses.replace(c, entry=dataclasses.replace(e, lines=tuple(edited)))
    if which == "drop_line":
        lines = e.lines[:line_index] + e.lines[line_index + 1 :]
        return dataclasses.replace(c, entry=dataclasses.replace(e, lines=lines))
    value = getattr(e, which)
    if which == "effective_at":
        new: Any = value + timedelta(microseconds=1)
    elif which == "kind":
        new = EntryKind.PAYOUT if value is not EntryKind.PAYOUT else EntryKind.REFUND
    elif which == "request_hash":
        new = ("0" if value[0] != "0" else "1") + value[1:]
    else:
        new = "changed" if value != "changed" else "changed again"
    return dataclasses.replace(c, entry=dataclasses.replace(e, **{which: new}))


@settings(max_examples=120, deadline=None)
@given(chains(), st.data())
def test_any_single_field_change_is_found_at_that_entry(chain: list[CommittedEntry], data: st.DataObject) -> None:
    assert verify_chain(chain) is None
    index = data.draw(st.integers(min_value=0, max_value=len(chain) - 1))
    tampered = list(chain)
    tampered[index] = _mutations(chain[index], data)
    assert verify_chain(tampered) == index


@settings(max_examples=50, deadline=None)
@given(chains(), st.data())
def test_deleting_inserting_or_swapping_entries_is_found(chain: list[CommittedEntry], data: st.DataObject) -> None:
    index = data.draw(st.integers(min_value=0, max_value=len(chain) - 1))
    deleted = chain[:index] + chain[index + 1 :]
    if index < len(chain) - 1:
        assert verify_chain(deleted) == index
    else:
        assert verify_chain(deleted) is None  # a truncated tail is caught by the anchored head hash
        assert deleted[-1:] != chain[-1:]
    assert verify_chain([*chain[:index], chain[index], *chain[index:]]) == index + 1
    if len(chain) > 1 and index < len(chain) - 1:
        swapped = list(chain)
        swapped[index], swapped[index + 1] = swapped[index + 1], swapped[index]
        assert verify_chain(swapped) == index


def test_re_sealing_from_the_tamper_point_changes_the_head() -> None:
    entry = _fixed_entry()
    chain = committed([entry, dataclasses.replace(entry, posting_key="k2")])
    forged = seal_chain([dataclasses.replace(chain[0], entry=dataclasses.replace(entry, memo="forged")), chain[1]])
    assert verify_chain(forged) is None  # internally consistent ...
    assert forged[-1].chain_hash != chain[-1].chain_hash  # ... but the published head no longer matches
    assert verify_chain(chain[1:], start_hash=chain[0].chain_hash) is None


def _fixed_entry() -> JournalEntry:
    return JournalEntry(
        posting_key="shopee:shop-cpn:1:completed",
        request_hash="ab" * 32,
        kind=EntryKind.SALE_COMPLETED,
        memo="order completed",
        effective_at=datetime(2026, 2, 1, 10, tzinfo=timezone(timedelta(hours=7))),
        lines=(
            Line("asset:marketplace_receivable:cipinang:shopee", Side.DEBIT, 150_000),
            Line("clearing:undistributed_proceeds:cipinang", Side.CREDIT, 150_000),
        ),
        order_key="shopee:shop-cpn:1",
    )


def test_serialisation_is_canonical_and_pinned() -> None:
    entry = _fixed_entry()
    c = CommittedEntry(0, entry, RECORDED, "evt-0")
    assert serialise_entry(c) == (
        b'["karya-journal/1",0,"shopee:shop-cpn:1:completed","' + b"ab" * 32 + b'","sale_completed",'
        b'"2026-02-01T03:00:00.000000+00:00","2026-03-01T12:00:00.123456+00:00",null,null,'
        b'"shopee:shop-cpn:1",null,"evt-0","order completed",'
        b'[["asset:marketplace_receivable:cipinang:shopee","D",150000],["clearing:undistributed_proceeds:cipinang","C",150000]]]'
    )
    # Line order and the time zone the time was written in do not matter.
    reordered = dataclasses.replace(entry, lines=entry.lines[::-1], effective_at=datetime(2026, 2, 1, 3, tzinfo=UTC))
    assert serialise_entry(dataclasses.replace(c, entry=reordered)) == serialise_entry(c)
    # The stored hash is not part of what is hashed.
    assert serialise_entry(dataclasses.replace(c, chain_hash="f" * 64)) == serialise_entry(c)
    assert chain_hash(GENESIS_HASH, c) == chain_hash(GENESIS_HASH, dataclasses.replace(c, entry=reordered))
    assert chain_hash(GENESIS_HASH, c) != chain_hash("1" * 64, c)


def test_empty_chain_verifies() -> None:
    assert verify_chain([]) is None


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (1.5, "float"),
        ({1: "a"}, "mapping key"),
        (datetime(2026, 1, 1), "no time zone"),
        (object(), "not allowed"),
    ],
)
def test_canonical_json_refuses_ambiguous_values(value: object, error: str) -> None:
    with pytest.raises((TypeError, ValueError), match=error):
        canonical_json(value)
