"""The pure correction plan: a revert is the exact mirror, an adjustment balanced and on adjustable accounts only,
an approval or a rejection needs a second person, a withdrawal the proposer, and a proposal is decided once; every
refusal names its rule."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ledger.domain.accounts import Side
from services.ledger.domain.correction_file import parse_adjustment
from services.ledger.domain.corrections import (
    Adjustment,
    CorrectionKind,
    CorrectionRefused,
    Decision,
    Draft,
    PostedEntry,
    Proposal,
    ProposalState,
    plan_adjustment,
    plan_approval,
    plan_closure,
    plan_revert,
)
from services.ledger.domain.journal import EntryKind, Line

D, C = Side.DEBIT, Side.CREDIT
AT = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
SETTLEMENT = PostedEntry(
    "shopee:s1:o1:settlement",
    EntryKind.SETTLEMENT,
    (
        Line("asset:bank:tangerang:main", D, 281_000),
        Line("expense:marketplace_fee:tangerang:commission_fee", D, 15_000),
        Line("asset:pph22_prepaid:tangerang", D, 1_500),
        Line("clearing:suspense:tangerang", D, 2_500),
        Line("asset:marketplace_receivable:tangerang:shopee", C, 300_000),
    ),
    order_key="shopee:s1:o1",
)


def revert(**kw: object) -> Draft:
    args: dict[str, object] = {"reverted": False, "open_proposal": None, "reason": "posted twice", "proposed_by": "ani"}
    args.update(kw)
    target = args.pop("target", SETTLEMENT)
    return plan_revert("shopee:s1:o1:settlement", target, **args)  # type: ignore[arg-type]


def test_a_revert_is_the_exact_mirror_line_by_line() -> None:
    draft = revert()
    assert draft.kind is CorrectionKind.REVERT and draft.target == SETTLEMENT.posting_key
    assert draft.lines == (
        Line("asset:bank:tangerang:main", C, 281_000),
        Line("expense:marketplace_fee:tangerang:commission_fee", C, 15_000),
        Line("asset:pph22_prepaid:tangerang", C, 1_500),
        Line("clearing:suspense:tangerang", C, 2_500),
        Line("asset:marketplace_receivable:tangerang:shopee", D, 300_000),
    )
    assert (draft.order_key, draft.reason, draft.proposed_by) == ("shopee:s1:o1", "posted twice", "ani")


@given(st.lists(st.integers(min_value=1, max_value=10**12), min_size=1, max_size=6))
def test_any_mirror_undoes_its_entry_account_by_account(amounts: list[int]) -> None:
    lines = [Line(f"expense:marketplace_fee:tangerang:f{i}", D, a) for i, a in enumerate(amounts)]
    target = PostedEntry("k", EntryKind.SETTLEMENT, (*lines, Line("clearing:suspense:tangerang", C, sum(amounts))))
    draft = plan_revert("k", target, reverted=False, open_proposal=None, reason="r", proposed_by="a")
    net: dict[str, int] = {}
    for line in (*target.lines, *draft.lines):
        net[line.account] = net.get(line.account, 0) + (line.amount if line.side is D else -line.amount)
    assert set(net.values()) == {0}


@pytest.mark.parametrize(
    ("kw", "rule"),
    [
        ({"target": None}, "no_such_entry"),
        ({"target": PostedEntry("revert:x", EntryKind.REVERSAL, SETTLEMENT.lines)}, "no_revert_of_revert"),
        ({"reverted": True}, "revert_once"),
        ({"open_proposal": 7}, "revert_once"),
        ({"reason": "  "}, "reason_required"),
        ({"proposed_by": ""}, "acting_user_required"),
    ],
)
def test_revert_refusals_name_their_rule(kw: dict[str, object], rule: str) -> None:
    with pytest.raises(CorrectionRefused, match=rf"refused \({rule}\)"):
        revert(**kw)


CLEAR_FEE = {
    "memo": "unmapped fee",
    "lines": [
        {"account": "expense:marketplace_fee:tangerang:unmapped", "debit": 2_500},
        {"account": "clearing:suspense:tangerang", "credit": 2_500},
    ],
}


def test_an_adjustment_file_becomes_a_balanced_draft() -> None:
    draft = plan_adjustment(parse_adjustment(CLEAR_FEE, "f.yaml"), reason="fee found", proposed_by="ani")
    assert draft.kind is CorrectionKind.ADJUST and draft.target is None and draft.memo == "unmapped fee"
    assert draft.lines == (
        Line("expense:marketplace_fee:tangerang:unmapped", D, 2_500),
        Line("clearing:suspense:tangerang", C, 2_500),
    )


@pytest.mark.parametrize(
    ("lines", "reference", "message"),
    [
        ([("liability:inmate_savings:WBP-ABC123", "debit", 10), ("clearing:suspense:tangerang", "credit", 10)], None,
         r"\(adjustable_accounts\): liability:inmate_savings:WBP-ABC123 may not"),
        ([("revenue:sales:tangerang", "debit", 10), ("clearing:suspense:tangerang", "credit", 10)], None,
         r"\(adjustable_accounts\): revenue:sales:tangerang"),
        ([("asset:bank:tangerang:main", "debit", 10), ("clearing:suspense:tangerang", "credit", 10)], None,
         r"\(adjustable_accounts\): a line on asset:bank:tangerang:main needs a 'reference'"),
        ([("expense:marketplace_fee:tangerang:x", "debit", 2_500), ("clearing:suspense:tangerang", "credit", 2_000)],
         None,
         r"\(balanced_entry\): debits 2,500 != credits 2,000 \(difference \+500\)"),
        ([("clearing:suspense:tangerang", "debit", 10)], None, "at least two lines"),
        ([("clearing:suspense:tangerang", "debit", 10), ("clearing:suspense:tangerang", "credit", 10)], None,
         "appears on two lines"),
        ([("liability:supplier_payable:tangerang:sup-a", "debit", 10), ("clearing:suspense:tangerang", "credit", 10)],
         None, r"\(adjustable_accounts\): liability:supplier_payable:tangerang:sup-a may not"),
        ([("clearing:nothing", "debit", 10), ("clearing:suspense:tangerang", "credit", 10)], None, "refused: "),
    ],
)  # fmt: skip
def test_adjustment_refusals_name_their_rule(
    lines: list[tuple[str, str, int]], reference: str | None, message: str
) -> None:
    data = {"lines": [{"account": a, side: n} for a, side, n in lines], "reference": reference}
    with pytest.raises(CorrectionRefused, match=message):
        plan_adjustment(parse_adjustment(data, "f"), reason="r", proposed_by="ani")


def test_a_bank_line_with_a_reference_is_adjustable() -> None:
    data = {**CLEAR_FEE, "reference": "BCA-0017"}
    data["lines"] = [
        {"account": "asset:bank:tangerang:main", "debit": 7},
        {"account": "clearing:suspense:tangerang", "credit": 7},
    ]
    assert plan_adjustment(parse_adjustment(data, "f"), reason="r", proposed_by="a").reference == "BCA-0017"


@pytest.mark.parametrize(
    "line",
    [
        {"account": "clearing:suspense:tangerang", "debit": 2500.0},
        {"account": "clearing:suspense:tangerang", "debit": "2500"},
        {"account": "clearing:suspense:tangerang", "debit": True},
        {"account": "clearing:suspense:tangerang", "debit": 0},
        {"account": "clearing:suspense:tangerang", "debit": 1, "credit": 1},
        {"account": "clearing:suspense:tangerang"},
        {"debit": 1},
    ],
)
def test_malformed_lines_are_refused(line: dict[str, object]) -> None:
    with pytest.raises(CorrectionRefused, match="line 1"):
        parse_adjustment({"lines": [line, {"account": "asset:pph22_prepaid:tangerang", "credit": 1}]}, "f")


def proposal(draft: Draft, approved_by: str | None = None) -> Proposal:
    decision = None if approved_by is None else Decision(ProposalState.APPROVED, approved_by, AT)
    return Proposal(12, draft, AT, decision)


def test_approval_posts_the_draft_with_proposer_approver_and_reason_in_memo_and_hash() -> None:
    entry = plan_approval(proposal(revert()), "budi", AT, reverted=False)
    assert entry.posting_key == "revert:shopee:s1:o1:settlement" and entry.kind is EntryKind.REVERSAL
    assert entry.reverses == SETTLEMENT.posting_key and entry.order_key == "shopee:s1:o1"
    assert entry.lines == revert().lines and entry.effective_at == AT
    assert entry.memo == (
        "revert of shopee:s1:o1:settlement; reason: posted twice; proposed by ani, approved by budi (proposal 12)"
    )
    other = plan_approval(proposal(revert()), "citra", AT, reverted=False)
    assert other.request_hash != entry.request_hash  # the approver is part of the request
    adjusted = plan_approval(
        proposal(plan_adjustment(parse_adjustment(CLEAR_FEE, "f"), reason="fee found", proposed_by="ani")),
        "budi",
        AT,
        reverted=False,
    )
    assert adjusted.posting_key == "adjust:12" and adjusted.kind is EntryKind.ADJUSTMENT
    assert (
        adjusted.memo == "adjustment (unmapped fee); reason: fee found; proposed by ani, approved by budi (proposal 12)"
    )


@pytest.mark.parametrize(
    ("approver", "approved_by", "reverted", "rule"),
    [
        ("ani", None, False, "four_eyes"),
        (" ani ", None, False, "four_eyes"),
        ("budi", "citra", False, "approve_once"),
        ("budi", None, True, "revert_once"),
        ("", None, False, "acting_user_required"),
    ],
)
def test_approval_refusals_name_their_rule(approver: str, approved_by: str | None, reverted: bool, rule: str) -> None:
    with pytest.raises(CorrectionRefused, match=rf"refused \({rule}\)"):
        plan_approval(proposal(revert(), approved_by), approver, AT, reverted=reverted)


def test_an_adjustment_from_any_allowed_account_pair_balances() -> None:
    draft = plan_adjustment(
        Adjustment(
            (Line("asset:marketplace_receivable:tangerang:shopee", D, 5), Line("asset:pph22_prepaid:tangerang", C, 5))
        ),
        reason="r",
        proposed_by="a",
    )
    assert sum(x.amount for x in draft.lines if x.side is D) == sum(x.amount for x in draft.lines if x.side is C)


REJECTED, WITHDRAWN, APPROVED = ProposalState.REJECTED, ProposalState.WITHDRAWN, ProposalState.APPROVED


def closed(state: ProposalState, by: str) -> Proposal:
    return Proposal(12, revert(), AT, Decision(state, by, AT, None if state is APPROVED else "not needed"))


def test_another_person_rejects_and_the_proposer_withdraws_with_who_when_and_why() -> None:
    assert proposal(revert()).state is ProposalState.OPEN
    rejected = plan_closure(proposal(revert()), REJECTED, " budi ", " posted correctly after all ", AT)
    assert rejected == Decision(REJECTED, "budi", AT, "posted correctly after all")
    withdrawn = plan_closure(proposal(revert()), WITHDRAWN, "ani", "wrong entry", AT)
    assert withdrawn == Decision(WITHDRAWN, "ani", AT, "wrong entry")
    assert withdrawn.describe() == f"withdrawn by ani at {AT.isoformat()} (reason: wrong entry)"


@pytest.mark.parametrize(
    ("state", "by", "reason", "decided", "rule"),
    [
        (REJECTED, "ani", "no", None, "four_eyes"),
        (WITHDRAWN, "budi", "no", None, "withdraw_own"),
        (REJECTED, "budi", " ", None, "reason_required"),
        (WITHDRAWN, "", "no", None, "acting_user_required"),
        (REJECTED, "budi", "no", closed(APPROVED, "citra"), "decide_once"),
        (REJECTED, "budi", "no", closed(WITHDRAWN, "ani"), "decide_once"),
        (WITHDRAWN, "ani", "no", closed(REJECTED, "citra"), "decide_once"),
        (WITHDRAWN, "ani", "no", closed(WITHDRAWN, "ani"), "decide_once"),
    ],
)
def test_closing_refusals_name_their_rule(
    state: ProposalState, by: str, reason: str, decided: Proposal | None, rule: str
) -> None:
    with pytest.raises(CorrectionRefused, match=rf"refused \({rule}\)"):
        plan_closure(decided or proposal(revert()), state, by, reason, AT)


@pytest.mark.parametrize("state", [REJECTED, WITHDRAWN])
def test_a_rejected_or_withdrawn_proposal_is_never_approved(state: ProposalState) -> None:
    by = "citra" if state is REJECTED else "ani"
    with pytest.raises(CorrectionRefused, match=rf"refused \(decide_once\): proposal 12 was {state.value} by {by}"):
        plan_approval(closed(state, by), "budi", AT, reverted=False)


def test_only_a_rejection_or_withdrawal_closes_without_posting() -> None:
    with pytest.raises(ValueError, match="rejected or withdrawn"):
        plan_closure(proposal(revert()), APPROVED, "budi", "r", AT)


def test_a_legacy_global_account_is_reclassified_to_its_lapas_by_an_adjustment() -> None:
    # Old journals keep their global codes; an approved adjustment moves a balance to the per-lapas account of the
    # same kind (a supplier payable is never adjusted otherwise).
    moved = Adjustment(
        (
            Line("liability:supplier_payable:sup-pandan", D, 60_000),
            Line("liability:supplier_payable:tangerang:sup-pandan", C, 60_000),
        )
    )
    assert plan_adjustment(moved, reason="per-lapas chart", proposed_by="ani").lines == moved.lines
    with pytest.raises(CorrectionRefused, match="adjustable_accounts"):
        plan_adjustment(
            Adjustment(
                (Line("liability:supplier_payable:sup-pandan", D, 5), Line("clearing:suspense:tangerang", C, 5))
            ),
            reason="r",
            proposed_by="a",
        )
