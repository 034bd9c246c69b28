"""Closing a lapas' accounting month (``karya ledger close``) and listing the closed ones (``karya ledger periods``).

*load → plan → write* in the caller's unit of work: the lapas' province from the catalogue (the orders service's
schema, handed in by the caller's root) and so its zone (:func:`services.contracts.zones.lapas_zone`), the chain
head (locked: postings under way finish first, and those after the close see it) and the lapas' closed periods;
:func:`services.ledger.domain.periods.plan_close`, pure; one row in ``ledger.closed_periods`` and an anchor over every
segment's head (reason ``period_close``, :func:`services.ledger.chain_anchor.take_anchor`). The database refuses
a second close and a month that has not ended as well (migration ``ledger_0010``) and, from then on, any entry of
the lapas effective inside the month. Reopening a period is not supported.
"""

from __future__ import annotations

from datetime import datetime
from typing import NoReturn

from sqlalchemy.exc import IntegrityError

from infra.db.refusals import constraint_of
from infra.db.unit_of_work import UnitOfWork
from services.contracts.zones import UnknownZone, lapas_zone
from services.ledger.adapters.locks import lock_journal
from services.ledger.adapters.periods_repo import (
    all_closed_periods,
    insert_closed_period,
    lapas_province,
)
from services.ledger.chain_anchor import take_anchor
from services.ledger.domain.periods import ClosedPeriod, PeriodRefused, plan_close

__all__ = ["PeriodRefused", "close_period", "list_periods"]

_DATABASE_RULES = {"closed_periods_pkey": "close_once", "month_ended": "month_ended"}


async def close_period(
    uow: UnitOfWork, lapas_id: str, period: str, *, acting: str | None, now: datetime, catalogue_schema: str
) -> ClosedPeriod:
    """Close ``period`` (``YYYY-MM``) of ``lapas_id`` as ``acting`` at ``now``; :class:`PeriodRefused` names the rule
    a refused close breaks (``lapas_exists``, ``lapas_zone``, ``acting_user_required``, ``period_format``,
    ``month_ended``, ``close_once``), and nothing is written then."""
    # load
    known, province = await lapas_province(uow, lapas_id, catalogue_schema)
    if not known:
        raise PeriodRefused("lapas_exists", f"the catalogue has no lapas {lapas_id!r}")
    try:
        zone = lapas_zone(lapas_id, province)
    except UnknownZone as exc:
        raise PeriodRefused("lapas_zone", str(exc)) from exc
    await lock_journal(uow)
    closed = await all_closed_periods(uow, lapas_id)
    # plan
    planned = plan_close(lapas_id, period, zone, closed, acting, now)
    # write
    try:
        await insert_closed_period(uow, planned)
    except IntegrityError as exc:
        _refusal(exc, planned)
    # Every segment's head at the close, pinned together (postings are stopped: these heads are the close's).
    await take_anchor(uow, "period_close", now)
    return planned


async def list_periods(uow: UnitOfWork, lapas_id: str | None = None) -> list[ClosedPeriod]:
    """The closed periods (of ``lapas_id`` if given), by lapas and month."""
    return await all_closed_periods(uow, lapas_id)


def _refusal(exc: IntegrityError, period: ClosedPeriod) -> NoReturn:
    """A database refusal of the close (a concurrent close, or the database's clock) as :class:`PeriodRefused`."""
    rule = _DATABASE_RULES.get(constraint_of(exc) or "")
    if rule is None:
        raise exc
    raise PeriodRefused(rule, f"{period.period} of {period.lapas_id}: the database refused it") from exc
