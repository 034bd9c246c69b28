"""``constraint_of``: the constraint a database refusal names, wherever the driver keeps it."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from infra.db.refusals import constraint_of


class _DriverError(Exception):
    def __init__(self, constraint_name: str | None) -> None:
        super().__init__("refused")
        self.constraint_name = constraint_name


class _AdaptedError(Exception):
    """SQLAlchemy's adapted DBAPI error: no name of its own, the driver's error as its cause."""


def test_the_name_on_the_driver_error_or_on_its_cause() -> None:
    assert (
        constraint_of(IntegrityError("INSERT", {}, _DriverError("savings_never_negative"))) == "savings_never_negative"
    )
    adapted = _AdaptedError("refused")
    adapted.__cause__ = _DriverError("chain_anchors_pkey")
    assert constraint_of(IntegrityError("INSERT", {}, adapted)) == "chain_anchors_pkey"


def test_none_when_the_refusal_names_no_constraint() -> None:
    assert constraint_of(IntegrityError("INSERT", {}, _DriverError(None))) is None
    assert constraint_of(IntegrityError("INSERT", {}, _AdaptedError("refused"))) is None
