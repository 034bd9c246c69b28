"""Books per lapas (issue 17, item 1), property-tested on the pure posting plan: for random sales of several lapas
— channels, fees, short payments to suspense, second settlements, refunds, orders completed without a batch (a
known lapas, or none at all) — every lapas' trial balance sums to zero on its own, the lapas partition the whole
ledger (their sum is the ledger), no entry crosses two lapas, and no distributed order leaves a residual
(revenue − fees − taxes − distribution is what waits in its lapas' suspense) — under a random tax setting per lapas
(PKP or not, each PPh 22 treatment, or none: then the PPh 22 prepaid is the order's income, as before settings)."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from infra.messaging.envelope import Envelope
from services.ledger.domain import accounts
from services.ledger.domain.tax import Pph22Treatment, TaxSetting
from tests.integration.ledger_support import Batch, completed, refunded, settled
from tests.unit.ledger.ledger_support import (
    CHANNELS,
    FEE_TYPES,
    INMATE_LAPAS,
    INMATES,
    LAPAS_SKUS,
    SUPPLIERS,
    at,
    per_lapas_totals,
)
from tests.unit.ledger.test_settlement_cumulative_plan import Books

NO_LAPAS = "no lapas"


@st.composite
def sale(draw: st.DrawFn, n: int) -> tuple[str, str, list[Envelope]]:
    """One order's events in their order: its key, its lapas (``accounts.UNKNOWN_LAPAS`` when not even the lapas
    is known) and the completion, one or two settlements and maybe a refund."""
    lapas = draw(st.sampled_from([*LAPAS_SKUS, NO_LAPAS]))
    channel = draw(st.sampled_from(CHANNELS))
    key = f"{channel}:shop-{n}:{n:06d}"
    batches = (
        [
            Batch(
                f"B{n}-{i}",
                draw(st.sampled_from(LAPAS_SKUS[lapas])),
                lapas,
                draw(st.integers(1, 3)),
                price := draw(st.integers(10, 200)) * 1_000,
                draw(st.integers(0, price // 1_000)) * 500,
                draw(st.sampled_from(SUPPLIERS)),
                tuple(
                    (inmate, draw(st.integers(1, 3)))
                    for inmate in draw(st.sets(st.sampled_from(INMATES[lapas]), min_size=1))
                ),
            )
            for i in range(draw(st.integers(1, 2)) if lapas != NO_LAPAS else 1)
        ]
        if lapas != NO_LAPAS
        else [Batch(f"B{n}", "X", "x", 1, draw(st.integers(10, 200)) * 1_000, 0, "s", ())]
    )
    completion = completed(key, batches, at(n))
    gross = int(completion.data["gross_amount"])
    unallocated = lapas == NO_LAPAS or (draw(st.booleans()) and draw(st.booleans()))
    if unallocated:
        data: dict[str, Any] = {**completion.data, "allocations": []}
        if lapas == NO_LAPAS:
            data["lapas_id"] = None
        completion = completion.model_copy(update={"data": data})
    events = [completion]
    first = draw(st.integers(gross // 2, gross)) if draw(st.booleans()) else gross
    for i, part in enumerate([first, gross - first] if first < gross else [gross]):
        fees = {t: draw(st.integers(0, part // 20)) for t in draw(st.sets(st.sampled_from(FEE_TYPES), max_size=2))}
        short = draw(st.sampled_from([0, 0, 0, 1_000]))
        withheld = (part * 5 + 500) // 1000
        net = max(0, part - sum(fees.values()) - withheld - short)
        events.append(settled(key, part, at(n + 1 + i), fees=fees, settlement_id=f"S{n}-{i}", net=net))
    if draw(st.booleans()):
        events.append(refunded(key, f"R{n}", draw(st.integers(1, gross)), at(n + 5)))
    return key, (accounts.UNKNOWN_LAPAS if lapas == NO_LAPAS else lapas), events


def _batches(orders: list[tuple[str, str, list[Envelope]]], seed: int) -> list[list[Envelope]]:
    """Every order's events, interleaved across orders (each order's own order kept), cut into Kafka batches."""
    rng = random.Random(seed)
    queues = [list(events) for _, _, events in orders]
    stream: list[Envelope] = []
    while any(queues):
        stream.append(rng.choice([q for q in queues if q]).pop(0))
    cuts = sorted(rng.sample(range(1, len(stream)), min(3, len(stream) - 1)))
    return [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]


_SETTING = st.one_of(st.none(), st.tuples(st.booleans(), st.sampled_from(list(Pph22Treatment))))


@settings(max_examples=120, deadline=timedelta(seconds=5))
@given(
    st.integers(1, 6).flatmap(lambda k: st.tuples(*(sale(n) for n in range(k)))),
    st.integers(0, 2**32),
    st.fixed_dictionaries({lapas: _SETTING for lapas in LAPAS_SKUS}),
)
def test_every_lapas_books_balance_and_the_lapas_sum_to_the_ledger(
    orders: tuple[tuple[str, str, list[Envelope]], ...],
    seed: int,
    chosen: dict[str, tuple[bool, Pph22Treatment] | None],
) -> None:
    taxes = [
        TaxSetting(lapas, 1, datetime(2020, 1, 1, tzinfo=UTC), pkp=c[0], pph22=c[1])
        for lapas, c in chosen.items()
        if c is not None
    ]
    unset = {lapas for lapas, c in chosen.items() if c is None} | {accounts.UNKNOWN_LAPAS}
    books = Books(taxes)
    for batch in _batches(list(orders), seed):
        books.post(batch)
    ledger = books.ledger
    # Each lapas' trial balance sums to zero, and no account is outside every lapas' books.
    totals = per_lapas_totals(ledger.balances, INMATE_LAPAS)
    assert None not in totals and all(total == 0 for total in totals.values()), totals
    # The lapas partition the ledger: their debits and credits add up to the whole ledger's.
    debits: dict[str | None, int] = defaultdict(int)
    credits: dict[str | None, int] = defaultdict(int)
    for entry in ledger.entries.values():
        for line in entry.lines:
            side = debits if line.side is accounts.Side.DEBIT else credits
            side[accounts.account_lapas(line.account, INMATE_LAPAS)] += line.amount
    assert debits == credits
    assert sum(debits.values()) == ledger.debits == ledger.credits
    # Every entry of an order is in its lapas' books; a distributed order leaves no residual nobody owns.
    lapas_of = {key: lapas for key, lapas, _ in orders}
    residual: dict[str, int] = defaultdict(int)
    for entry in ledger.entries.values():
        assert entry.order_key is not None
        owners = {accounts.account_lapas(line.account, INMATE_LAPAS) for line in entry.lines}
        assert owners == {lapas_of[entry.order_key]}, (entry.posting_key, owners)
        for line in entry.lines:
            kind = accounts.account_info(line.account).type
            prepaid_is_income = lapas_of[entry.order_key] in unset and line.account.startswith("asset:pph22_prepaid:")
            if (
                kind in (accounts.AccountType.REVENUE, accounts.AccountType.EXPENSE)
                or prepaid_is_income
                or line.account.startswith("clearing:suspense:")
            ):
                residual[entry.order_key] += line.amount if line.side is accounts.Side.CREDIT else -line.amount
    for key, _, _ in orders:
        facts = books.facts.get(key)
        distributed = (
            facts is not None
            and facts.hold is None
            and any(e.posting_key.startswith(f"{key}:distribution:") for e in ledger.entries.values())
        )
        if distributed:
            assert residual[key] == 0, (key, residual[key])
