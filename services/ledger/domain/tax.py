"""Tax treatment per lapas: PPN (VAT) and PPh 22 withheld by marketplaces, as versioned configuration. Pure.

Whether a lapas' sales carry PPN and how the PPh 22 a marketplace withholds is treated are facts about the legal
entity that sells for the lapas, not code (``../shared/domain.md``: uncertain, so configuration). A
:class:`TaxSetting` is versioned and effective-dated per lapas like a split policy, loaded from the ``tax_settings``
section of a policy file (:mod:`services.ledger.domain.policy_file`), selected at the order's completion and
recorded on each settlement entry (its ``policy_ref``, e.g. ``tax:cipinang@v1``).

**PPN** (``pkp: true``): marketplace prices include PPN; the PPN inside an amount A is ``A × f / (1 + f)`` with
``f = rate × base`` (12% × 11/12 = 11% from 2025, dated by the setting's versions), rounded half up to the rupiah.
Output PPN is taken off revenue when revenue is recognised (a liability, ``liability:ppn_output:<lapas>``) and
given back when a refund takes revenue back; both are computed on the order's cumulative amounts, so a fully
refunded order owes no PPN to the rupiah. The PPN inside each marketplace fee is input PPN
(``asset:ppn_input:<lapas>``): the fee expense is the fee without it.

**PPh 22** (0.5% of the price excluding PPN, PMK 37/2025), by treatment:

- ``creditable`` — a prepaid tax (``asset:pph22_prepaid``); the income tax it prepays is accrued with it
  (``Dr expense:income_tax / Cr liability:income_tax_payable``), so the order keeps no residual; the annual return
  sets the prepaid against the payable;
- ``expense`` — a cost of the sale (``expense:pph22_withheld``), e.g. for a unit that is no income-tax subject;
- ``exempt`` — claimed back under an exemption letter (``asset:pph22_reclaimable``): the lapas' money, split with
  the rest of the proceeds.

A settlement whose withholding differs from 0.5% of its price excluding PPN by more than ``pph22_tolerance``
rupiah is flagged for review (:func:`withholding_check`).

A lapas with **no** setting keeps the treatment from before settings existed (:data:`UNSET`: no PPN, PPh 22 as a
prepaid tax with nothing accrued against it, so a settled order leaves an income of its W): load a setting for
every lapas (``karya policy load`` lists those without).

The distribution follows the treatment: its base is ``min(N, G − F − W) − output PPN + input PPN (+ W when
exempt)`` (:func:`base_adjustment`), so revenue − fees − tax − distribution of a settled order is 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from fractions import Fraction

from services.ledger.domain import accounts
from services.ledger.domain.journal import LineBuilder

__all__ = [
    "UNSET",
    "Pph22Treatment",
    "TaxSetting",
    "WithholdingCheck",
    "WithholdingSlip",
    "base_adjustment",
    "fee_lines",
    "input_ppn",
    "ppn_inside",
    "recognise_revenue",
    "select_tax_setting",
    "withheld_lines",
    "withholding_check",
]


class Pph22Treatment(StrEnum):
    """How the PPh 22 a marketplace withholds is booked."""

    CREDITABLE = "creditable"
    EXPENSE = "expense"
    EXEMPT = "exempt"


@dataclass(frozen=True, slots=True)
class TaxSetting:
    """One version of a lapas' tax treatment (see the module docstring)."""

    lapas_id: str
    version: int
    effective_from: datetime
    pkp: bool = False
    ppn_rate: Fraction = Fraction(12, 100)
    ppn_base: Fraction = Fraction(11, 12)
    pph22: Pph22Treatment = Pph22Treatment.CREDITABLE
    pph22_rate: Fraction = Fraction(5, 1000)
    pph22_tolerance: int = 0
    description: str = ""
    accrue_income_tax: bool = True

    @property
    def ref(self) -> str:
        """``tax:<lapas>@v<version>`` (``tax:unset`` for :data:`UNSET`), recorded on each settlement entry."""
        return "tax:unset" if self.version == 0 else f"tax:{self.lapas_id}@v{self.version}"

    @property
    def ppn_fraction(self) -> Fraction:
        """The effective PPN rate on the price excluding PPN (rate × base: 11% from 2025)."""
        return self.ppn_rate * self.ppn_base if self.pkp else Fraction(0)


UNSET = TaxSetting(lapas_id="*", version=0, effective_from=datetime(1900, 1, 1, tzinfo=UTC), accrue_income_tax=False)
"""The treatment of a lapas with no setting loaded: no PPN; PPh 22 a prepaid tax with nothing accrued against it."""


def select_tax_setting(settings: Sequence[TaxSetting], lapas_id: str, at: datetime) -> TaxSetting:
    """The version of ``lapas_id``'s setting in force at ``at`` (the latest ``effective_from`` at or before it),
    or :data:`UNSET`."""
    best: TaxSetting | None = None
    for s in settings:
        if s.lapas_id != lapas_id or s.effective_from > at:
            continue
        if best is None or s.effective_from > best.effective_from:
            best = s
    return best if best is not None else UNSET


def _scaled(amount: int, ratio: Fraction) -> int:
    """``amount × ratio`` rounded to the whole rupiah, halves away from zero (integer arithmetic: it runs for every
    settlement)."""
    numerator, denominator = ratio.numerator, ratio.denominator
    magnitude = (2 * abs(amount) * numerator + denominator) // (2 * denominator)
    return -magnitude if amount < 0 else magnitude


def ppn_inside(amount: int, setting: TaxSetting) -> int:
    """The PPN inside ``amount`` (a price or fee that includes it, ``amount × f/(1+f)``); 0 when not PKP."""
    if not setting.pkp or not amount:
        return 0
    f = setting.ppn_fraction
    return _scaled(amount, f / (1 + f))


def input_ppn(fees: Mapping[str, int], setting: TaxSetting) -> dict[str, int]:
    """The input PPN inside each fee type (each fee is its own invoice line, so each is rounded on its own)."""
    return {fee_type: ppn_inside(amount, setting) for fee_type, amount in fees.items()}


def base_adjustment(setting: TaxSetting, recognised: int, fees: Mapping[str, int], withheld: int) -> int:
    """What the tax treatment changes in the distributable base ``min(N, G − F − W)`` of an order that has
    recognised ``recognised`` gross, paid ``fees`` and had ``withheld`` withheld (cumulative): − output PPN +
    input PPN, + W when the withholding is claimed back."""
    exempt = withheld if setting.pph22 is Pph22Treatment.EXEMPT else 0
    return -ppn_inside(recognised, setting) + sum(input_ppn(fees, setting).values()) + exempt


def recognise_revenue(lines: LineBuilder, lapas: str, before: int, amount: int, setting: TaxSetting) -> int:
    """Credit revenue with ``amount`` of gross recognised (negative: taken back) after ``before`` recognised so far,
    less the output PPN inside it, which is credited to PPN output; returns that PPN. The PPN is the difference of
    the PPN inside the cumulative amounts, so the order's PPN is always that of its net recognised gross."""
    ppn = ppn_inside(before + amount, setting) - ppn_inside(before, setting)
    lines.credit(accounts.sales_revenue(lapas), amount - ppn)
    lines.credit(accounts.ppn_output(lapas), ppn)
    return ppn


def fee_lines(
    lines: LineBuilder,
    lapas: str,
    fees: Mapping[str, int],
    setting: TaxSetting,
    sign: int = 1,
    before: Mapping[str, int] | None = None,
) -> None:
    """Debit (``sign`` −1: credit) each fee type without its input PPN, and input PPN with the rest. ``before``: the
    order's fees per type before these (earlier settlements): the input PPN is the difference of the PPN inside the
    cumulative fees, so the order's input PPN is always that of its fees in total (what its distribution counts)."""
    if before:
        inside = {
            t: ppn_inside(before.get(t, 0) + amount, setting) - ppn_inside(before.get(t, 0), setting)
            for t, amount in fees.items()
        }
    else:
        inside = input_ppn(fees, setting)
    for fee_type, amount in sorted(fees.items()):
        lines.debit(accounts.fee_expense(lapas, fee_type), sign * (amount - inside[fee_type]))
    lines.debit(accounts.ppn_input(lapas), sign * sum(inside.values()))


def withheld_lines(lines: LineBuilder, lapas: str, withheld: int, setting: TaxSetting) -> None:
    """The lines of ``withheld`` PPh 22 (negative: given back) under the setting's treatment."""
    if setting.pph22 is Pph22Treatment.EXPENSE:
        lines.debit(accounts.pph22_expense(lapas), withheld)
    elif setting.pph22 is Pph22Treatment.EXEMPT:
        lines.debit(accounts.pph22_reclaimable(lapas), withheld)
    else:
        lines.debit(accounts.pph22_prepaid(lapas), withheld)
        if setting.accrue_income_tax:
            lines.debit(accounts.income_tax_expense(lapas), withheld)
            lines.credit(accounts.income_tax_payable(lapas), withheld)


@dataclass(frozen=True, slots=True)
class WithholdingCheck:
    """A settlement's PPh 22 against 0.5% of its price excluding PPN."""

    withheld: int
    expected: int
    tolerance: int

    @property
    def flagged(self) -> bool:
        """Whether the difference exceeds the tolerance: a person reviews it."""
        return abs(self.withheld - self.expected) > self.tolerance


def withholding_check(gross: int, withheld: int, setting: TaxSetting) -> WithholdingCheck:
    """Compare ``withheld`` with the setting's rate of ``gross`` less the PPN inside it."""
    expected = _scaled(gross - ppn_inside(gross, setting), setting.pph22_rate)
    return WithholdingCheck(withheld=withheld, expected=expected, tolerance=setting.pph22_tolerance)


@dataclass(frozen=True, slots=True)
class WithholdingSlip:
    """The record of one settlement's PPh 22 (``ledger.withholding_slips``): the slip reference is the marketplace's
    invoice number when the channel reports one, else its settlement id."""

    posting_key: str
    order_key: str
    lapas_id: str
    settled_at: datetime
    check: WithholdingCheck
    slip_ref: str
    tax_ref: str
