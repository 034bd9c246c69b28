"""Errors raised by the pure ledger domain.

Every error is a :class:`LedgerDomainError` (a ``ValueError``) whose message is written for a person: the
adapters can put ``str(error)`` in a dead-letter reason or a CLI message as it is. Messages name order keys,
account codes, policy references, amounts and pseudonymous inmate ids (ledger inputs carry nothing else), so
they may also be logged (see :mod:`infra.errors`).
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AccountCodeError",
    "AllocationError",
    "DistributionError",
    "EntryValidationError",
    "InsufficientBalanceError",
    "LedgerDomainError",
    "NoPolicyError",
    "PolicyError",
    "RefundError",
    "RequestError",
]


class LedgerDomainError(ValueError):
    """Base of every error of the ledger domain."""

    loggable_message: ClassVar[bool] = True


class AllocationError(LedgerDomainError):
    """Money cannot be divided with the given weights (none, negative, all zero)."""


class AccountCodeError(LedgerDomainError):
    """An account code is malformed or names an unknown kind of account."""


class PolicyError(LedgerDomainError):
    """A split policy file or record is invalid; the message names source, policy and field."""


class NoPolicyError(LedgerDomainError):
    """No split policy is in force for a lapas / product at a time."""


class EntryValidationError(LedgerDomainError):
    """A journal entry breaks an invariant (unbalanced, < 2 lines, non-positive amount, ...)."""


class RequestError(LedgerDomainError):
    """A posting request (completion, settlement, refund, payout) is malformed."""


class DistributionError(LedgerDomainError):
    """Settled proceeds cannot be distributed (e.g. below the material cost of a batch)."""


class RefundError(LedgerDomainError):
    """A refund cannot be posted (more than was sold, order not settled, ...)."""


class InsufficientBalanceError(LedgerDomainError):
    """A payout asks for more than the inmate's savings balance."""
