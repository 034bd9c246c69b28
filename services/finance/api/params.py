"""Query parameters shared by the read routes: the moment (``as_of``, ``known_at``), a period, a page; and the
4xx answers (422 naming the field, 404 for what is not in the viewer's scope)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, NoReturn

from fastapi import HTTPException, Query
from pydantic import AfterValidator, AwareDatetime

from services.finance.api.models import Problem
from services.finance.queries.balances import Moment
from services.finance.time_range import accepted_moment

QueryMoment = Annotated[AwareDatetime, AfterValidator(accepted_moment)]
"""A time with a zone, within :mod:`services.finance.time_range` (else a 422 naming the field)."""

AsOf = Annotated[
    QueryMoment | None,
    Query(description="Count entries effective at or before this time (ISO 8601 with a zone). Default: all."),
]
KnownAt = Annotated[
    QueryMoment | None,
    Query(description="Count entries recorded at or before this time (what the ledger knew then). Default: all."),
]
Start = Annotated[
    QueryMoment | None, Query(alias="from", description="Period start (effective, inclusive, with a zone).")
]
End = Annotated[QueryMoment | None, Query(alias="to", description="Period end (effective, exclusive, with a zone).")]
NO_NUL = r"^[^\x00]*$"
"""Text PostgreSQL can hold: no NUL character (a 422, not a database error)."""

Limit = Annotated[int, Query(ge=1, le=500, description="Page size.")]


def text_query(description: str, max_length: int = 300) -> Any:
    """A text query parameter: at most ``max_length`` characters, no NUL."""
    return Query(max_length=max_length, pattern=NO_NUL, description=description)


Cursor = Annotated[str | None, text_query("``next_cursor`` of the previous page.")]

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "Not found, or not in the viewer's lapas."},
}


def invalid(field: str, message: str, location: str = "query") -> NoReturn:
    """Answer 422 naming ``field``, shaped like FastAPI's own validation errors."""
    raise HTTPException(status_code=422, detail=[{"loc": [location, field], "msg": message, "type": "value_error"}])


def not_found(what: str) -> NoReturn:
    """Answer 404: the same for what does not exist and for what another lapas holds."""
    raise HTTPException(status_code=404, detail=f"no such {what}")


def moment(as_of: datetime | None, known_at: datetime | None) -> Moment:
    """The :class:`Moment` of a request."""
    return Moment(as_of=as_of, known_at=known_at)


def period(start: datetime | None, end: datetime | None) -> tuple[datetime | None, datetime | None]:
    """``from`` and ``to``, refused (422 naming ``to``) when the period ends before it starts."""
    if start is not None and end is not None and end < start:
        invalid("to", "the period ends before it starts")
    return start, end


def sequence_cursor(cursor: str | None) -> int:
    """The sequence after which a page of entries starts (422 naming ``cursor`` when it is not one)."""
    if cursor is None:
        return 0
    if not cursor.isdigit() or len(cursor) > 18:
        invalid("cursor", "not a cursor this API gave")
    return int(cursor)
