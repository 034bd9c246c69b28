"""What a database refusal names: the constraint (or the rule a trigger raises under ``CONSTRAINT = ...``) behind an
:class:`~sqlalchemy.exc.IntegrityError`, for use cases that turn a refusal into their own answer."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError


def constraint_of(exc: IntegrityError) -> str | None:
    """The constraint a database refusal names (asyncpg keeps it on the driver's exception, directly or as the
    DBAPI error's cause); None when it names none."""
    for candidate in (exc.orig, getattr(exc.orig, "__cause__", None)):
        name = getattr(candidate, "constraint_name", None)
        if isinstance(name, str) and name:
            return name
    return None
