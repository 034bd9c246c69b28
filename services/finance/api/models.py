"""Response models of the read API (what its OpenAPI document describes). Money is integer rupiah."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Rupiah = int


class AccountTotals(BaseModel):
    """One account's debits, credits and balance on its normal side, over the lines the request counts."""

    account: str = Field(examples=["revenue:sales:sukamiskin"])
    type: str
    normal_side: Literal["D", "C"]
    debit: Rupiah
    credit: Rupiah
    balance: Rupiah


class AccountList(BaseModel):
    """Accounts with lines in the viewer's scope, as of / as known at a time."""

    as_of: datetime | None
    known_at: datetime | None
    accounts: list[AccountTotals]


class TrialBalance(AccountList):
    """Every account in scope with the grand totals; ``balanced`` when debits equal credits."""

    total_debit: Rupiah
    total_credit: Rupiah
    balanced: bool


class Entry(BaseModel):
    """A journal entry; ``amount`` is the sum of its debits (equal to its credits)."""

    sequence: int
    posting_key: str
    kind: str
    memo: str
    effective_at: datetime
    recorded_at: datetime
    order_key: str | None
    batch_id: str | None
    policy_ref: str | None
    reverses: str | None
    source_event: str | None = Field(description="Id of the event whose handling posted the entry.")
    amount: Rupiah


class EntryPage(BaseModel):
    """A page of entries in sequence order; pass ``next_cursor`` as ``cursor`` for the next one (null: last)."""

    entries: list[Entry]
    next_cursor: str | None


class Line(BaseModel):
    """One line of an entry."""

    line_no: int
    account: str
    side: Literal["D", "C"]
    amount: Rupiah


class ChainLink(BaseModel):
    """Where the entry sits in the hash chain."""

    prev_hash: str
    chain_hash: str
    previous_sequence: int | None = Field(description="The entry before it that the viewer sees.")
    next_sequence: int | None


class Delivery(BaseModel):
    """A webhook delivery as the redacted view shows it: no buyer name, phone or address, no headers."""

    delivery_id: int
    channel: str
    webhook_type: str
    received_at: datetime
    body_bytes: int
    body_sha256: str = Field(description="SHA-256 of the body as received.")
    redacted_at: datetime | None
    body: dict[str, Any] | None = None


class EntryDetail(Entry):
    """One entry with its lines, its chain link and what caused it."""

    chain: ChainLink
    lines: list[Line]
    deliveries: list[Delivery] = Field(description="The order's webhook deliveries, redacted.")


class Order(BaseModel):
    """What the ledger knows of one order, its entries and its webhook deliveries."""

    order_key: str
    lapas_id: str
    refunded_gross: Rupiah
    updated_at: datetime
    entries: list[Entry]
    deliveries: list[Delivery]


class StatementLine(BaseModel):
    """A posting on the inmate's savings with the balance after it."""

    sequence: int
    posting_key: str
    kind: str
    effective_at: datetime
    recorded_at: datetime
    order_key: str | None
    batch_id: str | None
    policy_ref: str | None
    debit: Rupiah
    credit: Rupiah
    balance: Rupiah


class InmateStatement(BaseModel):
    """An inmate's savings between two times: opening balance, postings with running balance, closing balance."""

    inmate_id: str
    account: str
    start: datetime | None
    end: datetime | None
    opening_balance: Rupiah
    postings: list[StatementLine]
    closing_balance: Rupiah


class OpenItem(BaseModel):
    """An order with money left in a clearing account (unallocated proceeds or suspense)."""

    order_key: str | None
    account: str
    amount: Rupiah = Field(description="On the account's side: credit for unallocated, debit for suspense.")
    first_at: datetime
    last_at: datetime
    entries: int


class OpenItemPage(BaseModel):
    """A page of open items by order key."""

    items: list[OpenItem]
    next_cursor: str | None


class ParkedEvent(BaseModel):
    """An event waiting for what it depends on (a settlement before its completion...)."""

    event_id: str
    order_key: str
    type: str
    waiting_for: str
    received_at: datetime


class ParkedPage(BaseModel):
    """A page of parked events."""

    items: list[ParkedEvent]
    next_cursor: str | None


class ReconciliationRow(BaseModel):
    """One channel's month: its orders, the receivable booked and settled, what is open, matched and unmatched."""

    channel: str = Field(examples=["shopee"])
    month: str = Field(description="YYYY-MM of the completions, in the viewer's zone.", examples=["2026-05"])
    orders: int
    booked: Rupiah
    settled: Rupiah
    open: Rupiah
    matched: int
    unmatched: int


class UnmatchedOrder(BaseModel):
    """An order completed but not settled after the overdue days (``unsettled``), or settled with something left
    open (``difference``)."""

    order_key: str
    channel: str
    month: str
    booked: Rupiah
    settled: Rupiah
    open: Rupiah
    completed_at: datetime
    settled_at: datetime | None
    state: Literal["unsettled", "difference", "matched", "awaiting"]


class UnmatchedSettlement(BaseModel):
    """A settlement the ledger parked because its order's completion has not arrived (every-lapas viewers only:
    its lapas is not known yet)."""

    order_key: str
    channel: str
    received_at: datetime
    settled_at: datetime
    gross: Rupiah | None


class Reconciliation(BaseModel):
    """Marketplace receivables against settlements per channel and month, with the unmatched items."""

    month: str | None
    channel: str | None
    zone: str = Field(description="IANA zone the months are counted in (the viewer's lapas').")
    overdue_days: int
    summary: list[ReconciliationRow]
    unmatched: list[UnmatchedOrder]
    settlements_without_completion: list[UnmatchedSettlement]


class ChainHead(BaseModel):
    """The hash chains when a figure was read: the highest sequence of their heads and the root hash of every
    segment's head (``karya-heads/1``, what an anchor commits to)."""

    sequence: int
    hash: str


class ReportFigure(BaseModel):
    """One line of the monthly lapas report: its key and the signed total on its accounts' normal side."""

    key: Literal[
        "sales",
        "ppn_output",
        "fees",
        "ppn_input",
        "tax_withheld",
        "pph22_expense",
        "pph22_reclaimable",
        "pnbp",
        "premi",
        "suppliers",
        "capital",
    ]
    amount: Rupiah


class LapasReport(BaseModel):
    """One lapas' month in its own zone, counted over the entries up to ``head`` (the page's and the PDF's
    numbers)."""

    lapas_id: str
    month: str
    zone: str = Field(examples=["Asia/Makassar"])
    start: datetime
    end: datetime
    head: ChainHead
    figures: list[ReportFigure]


class VerificationRun(BaseModel):
    """A verification of every segment's hash chain and every anchor started from the workspace, and its result
    (None while it runs or when it was interrupted; the anchor fields None for runs before anchors existed)."""

    id: int
    started_by: str
    role: str
    started_at: datetime
    ended_at: datetime | None
    state: Literal["ok", "broken", "running", "interrupted"]
    entries: int | None
    head_hash: str | None = Field(description="The root hash of the segment heads verified.")
    first_broken: int | None
    problem: str | None
    anchors: int | None = Field(default=None, description="Anchors checked.")
    latest_anchor: int | None = Field(default=None, description="The number of the latest anchor found intact.")
    latest_anchor_hash: str | None = None
    first_broken_anchor: int | None = None


class VerificationHistory(BaseModel):
    """The latest verification runs, newest first."""

    runs: list[VerificationRun]


class Problem(BaseModel):
    """An error: what was wrong."""

    detail: str | list[dict[str, Any]]
