"""Helpers the Alembic migrations call, so every service's migrations share one definition of common steps."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from infra.db.roles import mutable_table_grants, schema_grants
from infra.messaging.ddl import drop_messaging_tables_ddl, messaging_tables_ddl


def run_statements(statements: Iterable[str]) -> None:
    """Execute each SQL statement in order inside the running Alembic migration."""
    from alembic import op

    for statement in statements:
        op.execute(statement)


def service_schema_ddl(schema: str) -> list[str]:
    """A service's schema with its grants and messaging tables (the first migration of every service)."""
    return [
        f"CREATE SCHEMA {schema}",
        *schema_grants(schema),
        *messaging_tables_ddl(schema),
        # The relay marks outbox rows sent; retried events release their inbox claim.
        *mutable_table_grants(schema, "outbox", delete=True),
        *mutable_table_grants(schema, "inbox", delete=True),
    ]


def drop_service_schema_ddl(schema: str) -> list[str]:
    """Undo :func:`service_schema_ddl`."""
    return [*drop_messaging_tables_ddl(schema), f"DROP SCHEMA {schema}"]


def statement_migration(up: Sequence[str], down: Sequence[str]) -> tuple[Callable[[], None], Callable[[], None]]:
    """The ``upgrade`` and ``downgrade`` of a migration that runs ``up`` (and undoes it with ``down``)."""
    return (lambda: run_statements(up)), (lambda: run_statements(down))
