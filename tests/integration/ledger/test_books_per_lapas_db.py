"""Books per lapas on the real database (issue 17 item 1): sales of three lapas and one of no known lapas go through
the ledger's posting use case — completions, settlements with fees and a short payment, a refund, an order completed
without a batch — then a savings payout; ``karya ledger trial-balance --lapas X`` balances for every lapas, the
lapas' accounts partition the whole trial balance, and a lapas' report names only its own accounts."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from typer.testing import CliRunner

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from services.ledger.cli import ledger_app
from services.ledger.domain import accounts
from services.ledger.outbound import LedgerTopics
from services.ledger.payouts import pay_out
from tests.integration.ledger_support import (
    Batch,
    LedgerDatabase,
    completed,
    completed_payload,
    ledger_cli_root,
    ledger_uow,
    new_inmate,
    new_order_key,
    new_processor,
    post,
    refunded,
    settled,
)

pytestmark = pytest.mark.integration
AT = datetime(2026, 6, 2, 9, tzinfo=UTC)


async def _trial_balance(urls: RoleUrls, *args: str) -> dict[str, Any]:
    runner = CliRunner()
    result = await asyncio.to_thread(
        runner.invoke, ledger_app, ["trial-balance", "--json", *args], obj=ledger_cli_root(urls)
    )
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


async def test_every_lapas_trial_balance_balances_and_they_sum_to_the_ledger(own_database: LedgerDatabase) -> None:
    urls = own_database.urls
    a, b, c = new_inmate(), new_inmate(), new_inmate()
    sales = {
        "cipinang": [Batch("B-CPN-1", "CPN-GLV-001", "cipinang", 2, 75_000, 20_000, "sup-benang", ((a, 1),))],
        "kerobokan": [Batch("B-KRB-1", "KRB-CCN-001", "kerobokan", 3, 40_000, 9_000, "sup-kelapa", ((b, 1),))],
        "tangerang": [Batch("B-TNG-1", "TNG-MAT-001", "tangerang", 1, 60_000, 12_000, "sup-kelapa", ((c, 1),))],
    }
    events = []
    for lapas, batches in sales.items():
        key = new_order_key("shopee")
        gross = sum(x.value for x in batches)
        short = 1_000 if lapas == "kerobokan" else 0  # kerobokan's escrow pays 1,000 less: its suspense
        net = gross - gross * 8 // 100 - (gross * 5 + 500) // 1000 - short
        events += [completed(key, batches, AT), settled(key, gross, AT, net=net)]
        if lapas == "cipinang":
            events.append(refunded(key, "RF-1", 75_000, AT))
    nobody = new_order_key("tokopedia")  # completed naming neither a lapas nor a batch
    lost = completed(nobody, sales["tangerang"], AT)
    lost = lost.model_copy(update={"data": {**completed_payload(nobody, sales["tangerang"], AT), "allocations": [],
                                            "lapas_id": None}})  # fmt: skip
    events += [lost, settled(nobody, 60_000, AT)]
    engine = make_engine(urls.service, pool_size=1)
    try:
        assert await post(engine, new_processor(), events) == []
        async with engine.begin() as conn:
            paid = await pay_out(ledger_uow(conn), LedgerTopics(), a, 1_000, "REL-1", AT)
            assert paid.posted
    finally:
        await engine.dispose()

    whole = await _trial_balance(urls)
    per_lapas = {lapas: await _trial_balance(urls, "--lapas", lapas) for lapas in [*sales, accounts.UNKNOWN_LAPAS]}
    for lapas, books in per_lapas.items():
        assert books["balanced"] and books["total_debit"] == books["total_credit"] > 0, lapas
        assert {r["lapas"] for r in books["accounts"]} == {lapas}
    # every account is in exactly one lapas' books, and the lapas' books add up to the ledger
    assert sorted(r["account"] for books in per_lapas.values() for r in books["accounts"]) == sorted(
        r["account"] for r in whole["accounts"]
    )
    assert sum(books["total_debit"] for books in per_lapas.values()) == whole["total_debit"]
    cipinang = {r["account"]: r["balance"] for r in per_lapas["cipinang"]["accounts"]}
    # the payout left cipinang's bank (a's lapas), the refund too; PPh 22 and fees are cipinang's own
    assert accounts.inmate_savings(a) in cipinang and accounts.bank("cipinang") in cipinang
    assert (
        accounts.pph22_prepaid("cipinang") in cipinang
        and accounts.fee_expense("cipinang", "commission_fee") in cipinang
    )
    assert {r["account"]: r["balance"] for r in per_lapas["kerobokan"]["accounts"]}[
        accounts.suspense("kerobokan")
    ] == 1_000
    unknown = {r["account"] for r in per_lapas[accounts.UNKNOWN_LAPAS]["accounts"]}
    assert {accounts.bank("unknown"), accounts.unallocated_proceeds("unknown")} <= unknown
