"""The pure plan of settling what is owed: exact journals of a PNBP deposit, a supplier payment and a use of
production capital; formats of the billing code, NTPN and references; never above what is owed (at proposal and at
approval), so a payable never goes negative and every entry balances (Hypothesis); one entry per posting key; four
eyes; and the payee and type rules of an inmate payout."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ledger.domain.accounts import Side
from services.ledger.domain.corrections import CorrectionKind, CorrectionRefused, Draft, Proposal, plan_approval
from services.ledger.domain.errors import InsufficientBalanceError, LedgerDomainError
from services.ledger.domain.journal import EntryKind, Line, request_hash
from services.ledger.domain.model import PayoutRequest
from services.ledger.domain.settlements import (
    PayoutType,
    RegistryVerdict,
    Settlement,
    SettlementRefused,
    available,
    check_approval,
    check_payee,
    plan_settlement,
    settlement_of,
)
from services.ledger.payouts import PayoutFacts, PayoutTerms, plan_payout

D, C = Side.DEBIT, Side.CREDIT
AT = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
BILLING = "820261203000123"
NTPN = "0A1B2C3D4E5F6G7H"
PNBP = Settlement(CorrectionKind.PNBP_DEPOSIT, "cipinang", 24_750, BILLING, NTPN)
SUPPLIER = Settlement(CorrectionKind.SUPPLIER_PAYMENT, "sup-kayu", 40_000, "TRF-2026-12-001", lapas="cipinang")
CAPITAL = Settlement(CorrectionKind.CAPITAL_USE, "cipinang", 15_000, "PO-77")


def plan(s: Settlement, balances: dict[str, int], **kw: object) -> Draft | Proposal:
    args: dict[str, object] = {"posted": False, "pending": None, "reason": None, "proposed_by": "ani"} | kw
    return plan_settlement(s, balances, **args)  # type: ignore[arg-type]


def stored(draft: Draft | Proposal, proposal_id: int = 7) -> Proposal:
    assert isinstance(draft, Draft)
    return Proposal(proposal_id, draft, AT)


def test_a_pnbp_deposit_debits_the_payable_and_credits_the_bank_under_its_billing_code() -> None:
    draft = plan(PNBP, {"liability:pnbp_payable:cipinang": 24_750})
    assert isinstance(draft, Draft)
    assert draft.lines == (
        Line("liability:pnbp_payable:cipinang", D, 24_750),
        Line("asset:bank:cipinang:main", C, 24_750),
    )
    assert draft.posting_key == f"pnbp_deposit:cipinang:{BILLING}" and draft.reference == NTPN
    entry = plan_approval(stored(draft), "budi", AT, reverted=False)
    assert entry.kind is EntryKind.PNBP_DEPOSIT and entry.posting_key == f"pnbp_deposit:cipinang:{BILLING}"
    assert entry.memo == (
        f"pnbp deposit (billing code {BILLING}, NTPN {NTPN}), reference {NTPN}; reason: PNBP deposit of cipinang; "
        "proposed by ani, approved by budi (proposal 7)"
    )


def test_a_supplier_payment_and_a_use_of_capital_have_their_exact_journals() -> None:
    paid = plan(SUPPLIER, {"liability:supplier_payable:cipinang:sup-kayu": 40_000})
    assert isinstance(paid, Draft) and paid.posting_key == "supplier_payment:cipinang:sup-kayu:TRF-2026-12-001"
    assert paid.lines == (
        Line("liability:supplier_payable:cipinang:sup-kayu", D, 40_000),
        Line("asset:bank:cipinang:main", C, 40_000),
    )
    assert plan_approval(stored(paid), "budi", AT, reverted=False).kind is EntryKind.SUPPLIER_PAYMENT
    used = plan(replace(CAPITAL, bank="bri-cipinang"), {"equity:production_capital:cipinang": 17_325})
    assert isinstance(used, Draft) and used.posting_key == "capital_use:cipinang:PO-77"
    assert used.lines == (
        Line("asset:production_materials:cipinang", D, 15_000),
        Line("asset:bank:cipinang:bri-cipinang", C, 15_000),
    )
    assert settlement_of(stored(used)) == replace(CAPITAL, bank="bri-cipinang")
    assert settlement_of(stored(paid)) == SUPPLIER


@pytest.mark.parametrize(
    ("settlement", "rule"),
    [
        (replace(PNBP, reference="82026120300012"), "billing_code_format"),  # 14 digits
        (replace(PNBP, reference="82026120300012X"), "billing_code_format"),
        (replace(PNBP, receipt="0A1B2C3D4E5F6G7"), "ntpn_format"),  # 15 characters
        (replace(PNBP, receipt="0a1b2c3d4e5f6g7h"), "ntpn_format"),  # the CLI upper-cases; the rule does not guess
        (replace(PNBP, receipt=None), "ntpn_format"),
        (replace(SUPPLIER, reference="a:b"), "reference_format"),
        (replace(SUPPLIER, reference=""), "reference_format"),
        (replace(SUPPLIER, amount=0), "positive_amount"),
        (replace(CAPITAL, amount=-5), "positive_amount"),
    ],
)
def test_formats_are_checked_and_name_their_rule(settlement: Settlement, rule: str) -> None:
    with pytest.raises(SettlementRefused, match=rf"\({rule}\)"):
        plan(
            settlement,
            {"liability:pnbp_payable:cipinang": 10**9, "liability:supplier_payable:cipinang:sup-kayu": 10**9},
        )


def test_an_unnamed_proposer_or_a_bad_owner_is_refused() -> None:
    with pytest.raises(SettlementRefused, match="acting_user_required"):
        plan(PNBP, {}, proposed_by=" ")
    with pytest.raises(SettlementRefused, match="needs a supplier id"):
        plan(replace(SUPPLIER, owner="a:b"), {})


def test_over_payment_is_refused_at_proposal_and_at_approval() -> None:
    with pytest.raises(SettlementRefused, match=r"\(within_balance\): 24,750 exceeds the balance 24,749"):
        plan(PNBP, {"liability:pnbp_payable:cipinang": 24_749})
    draft = stored(plan(PNBP, {"liability:pnbp_payable:cipinang": 30_000}))
    check_approval(draft, {"liability:pnbp_payable:cipinang": 24_750}, posted=False)
    with pytest.raises(SettlementRefused, match=r"approval of proposal 7 refused \(within_balance\)"):
        check_approval(draft, {"liability:pnbp_payable:cipinang": 10_000}, posted=False)
    with pytest.raises(SettlementRefused, match="settle_once"):
        check_approval(draft, {"liability:pnbp_payable:cipinang": 30_000}, posted=True)


def test_capital_can_be_spent_only_where_it_has_not_bought_materials_yet() -> None:
    balances = {"equity:production_capital:cipinang": 20_000, "asset:production_materials:cipinang": 6_000}
    assert available(CAPITAL, balances) == 14_000
    with pytest.raises(SettlementRefused, match="exceeds the production capital not yet spent 14,000"):
        plan(CAPITAL, balances)
    assert isinstance(plan(replace(CAPITAL, amount=14_000), balances), Draft)


def test_one_entry_per_posting_key_and_the_same_proposal_again_is_answered_with_the_open_one() -> None:
    balances = {"liability:pnbp_payable:cipinang": 100_000}
    first = stored(plan(PNBP, balances))
    assert plan(PNBP, balances, pending=first, proposed_by="citra") is first
    with pytest.raises(SettlementRefused, match=r"settle_once.*proposal 7 already proposes"):
        plan(replace(PNBP, amount=20_000), balances, pending=first)
    with pytest.raises(SettlementRefused, match=r"settle_once.*already posted"):
        plan(PNBP, balances, posted=True)


def test_the_proposer_cannot_approve_a_settlement() -> None:
    proposal = stored(plan(SUPPLIER, {"liability:supplier_payable:cipinang:sup-kayu": 40_000}))
    with pytest.raises(CorrectionRefused, match="four_eyes"):
        plan_approval(proposal, "ani", AT, reverted=False)


owed = st.integers(min_value=-50_000, max_value=10**9)
amounts = st.integers(min_value=1, max_value=10**9)
kinds = st.sampled_from([PNBP, SUPPLIER, CAPITAL])


@given(kinds, owed, st.integers(min_value=0, max_value=10**9), amounts)
def test_a_planned_settlement_balances_and_never_leaves_what_is_owed_negative(
    template: Settlement, balance: int, spent: int, amount: int
) -> None:
    settlement = replace(template, amount=amount)
    first = "equity:production_capital:cipinang" if settlement.kind is CorrectionKind.CAPITAL_USE else None
    balances = (
        {first: balance, "asset:production_materials:cipinang": spent}
        if first
        else {"liability:pnbp_payable:cipinang": balance, "liability:supplier_payable:cipinang:sup-kayu": balance}
    )
    left = available(settlement, balances)
    try:
        draft = plan(settlement, balances)
    except SettlementRefused as exc:
        assert "within_balance" in str(exc) and amount > left
        return
    assert isinstance(draft, Draft)
    debits = sum(line.amount for line in draft.lines if line.side is D)
    assert debits == sum(line.amount for line in draft.lines if line.side is C) == amount
    assert left - amount >= 0


@given(st.integers(min_value=0, max_value=10**7), st.lists(amounts.map(lambda a: a % 10**6 + 1), max_size=12))
def test_approvals_in_any_order_never_take_a_payable_below_zero(balance: int, requests: list[int]) -> None:
    """Proposals each checked alone may together exceed the payable; approvals check the balance left then."""
    account = "liability:pnbp_payable:cipinang"
    proposals = [
        stored(plan(replace(PNBP, amount=a, reference=f"{i:015d}"), {account: 10**9}), i)
        for i, a in enumerate(requests)
    ]
    for p in proposals:
        try:
            check_approval(p, {account: balance}, posted=False)
        except SettlementRefused:
            continue
        entry = plan_approval(p, "budi", AT, reverted=False)
        assert entry.debit_total == entry.credit_total
        balance -= entry.debit_total
        assert balance >= 0


@pytest.mark.parametrize(
    ("payout_type", "verdict", "rule"),
    [
        (PayoutType.RELEASE, RegistryVerdict.UNKNOWN, "payee_is_registered"),
        (PayoutType.ALLOWANCE, RegistryVerdict.MISMATCH, "payee_is_registered"),
        (PayoutType.RELEASE, RegistryVerdict.IN_CUSTODY, "payout_type_fits_custody"),
        (PayoutType.PERIODIC, RegistryVerdict.RELEASED, "payout_type_fits_custody"),
        (PayoutType.RELEASE, RegistryVerdict.RELEASED, None),
        (PayoutType.ALLOWANCE, RegistryVerdict.IN_CUSTODY, None),
        (PayoutType.PERIODIC, RegistryVerdict.IN_CUSTODY, None),
    ],
)
def test_the_registry_confirms_the_payee_and_the_type_fits_custody(
    payout_type: PayoutType, verdict: RegistryVerdict, rule: str | None
) -> None:
    if rule is None:
        check_payee("WBP-7F3K2Q", payout_type, verdict)
        return
    with pytest.raises(SettlementRefused, match=rf"\({rule}\)") as refused:
        check_payee("WBP-7F3K2Q", payout_type, verdict)
    assert "WBP-7F3K2Q" in str(refused.value)


def test_a_typed_payout_records_its_type_and_payer_and_a_plain_release_reads_as_before() -> None:
    request = PayoutRequest("WBP-7F3K2Q", "ALW-1", 5_000, AT)
    facts = PayoutFacts(None, 8_000, 8_000)
    plain = plan_payout(request, facts)
    assert plain is not None and plain.request_hash == request_hash(EntryKind.PAYOUT, request)
    assert plain.memo == "savings payout ALW-1 to WBP-7F3K2Q on release: 5000"
    typed = plan_payout(request, facts, PayoutTerms(PayoutType.ALLOWANCE, "budi", RegistryVerdict.IN_CUSTODY))
    assert typed is not None and typed.lines == plain.lines and typed.request_hash != plain.request_hash
    assert typed.memo == (
        "savings payout ALW-1 (allowance) to WBP-7F3K2Q: 5000; paid by budi; payee confirmed by the inmate registry"
    )
    unchecked = plan_payout(request, facts, PayoutTerms(PayoutType.PERIODIC, "budi"))
    assert unchecked is not None and unchecked.memo.endswith("payee not checked against the registry")
    with pytest.raises(SettlementRefused, match="payee_is_registered"):
        plan_payout(request, facts, PayoutTerms(PayoutType.RELEASE, "budi", RegistryVerdict.MISMATCH))
    with pytest.raises(InsufficientBalanceError, match="savings_never_negative"):
        plan_payout(replace(request, amount=8_001), facts, PayoutTerms(PayoutType.ALLOWANCE, "budi"))
    # a retry is decided by the stored hash: the same terms match, another type does not
    posted = PayoutFacts((typed.request_hash, AT), 0, 0)
    again = PayoutTerms(PayoutType.ALLOWANCE, "budi", RegistryVerdict.IN_CUSTODY)
    assert plan_payout(replace(request, paid_at=datetime(2026, 12, 4, tzinfo=UTC)), posted, again) is None
    with pytest.raises(LedgerDomainError, match="already used"):
        plan_payout(request, posted, PayoutTerms(PayoutType.PERIODIC, "budi", RegistryVerdict.IN_CUSTODY))
