"""Helpers the Alembic migrations call, so every service's migrations share one definition of common steps."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from infra.db.roles import AUDITOR, SERVICE, mutable_table_grants, schema_grants
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


def batched_redaction_ddl(
    schema: str, name: str, *, what: str, table: str, key: str, redacted_at: str, age: str, alias: str, assignments: str
) -> list[str]:
    """A ``SECURITY DEFINER`` function ``<schema>.<name>(older_than, max_rows)`` that redacts, in one batch of at
    most ``max_rows``, the rows of ``table`` older than ``older_than`` (at least a day) not yet redacted, setting
    ``assignments``; callable by the service role only. Returns how many rows it redacted."""
    function = f"{schema}.{name}"
    return [
        f"""CREATE FUNCTION {function}(older_than interval, max_rows integer) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    DECLARE
        redacted integer;
    BEGIN
        IF older_than < interval '1 day' OR max_rows < 1 THEN
            RAISE EXCEPTION '{what} are redacted after at least one day, in batches of at least one row'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        WITH due AS (
            SELECT {key} FROM {schema}.{table}
            WHERE {redacted_at} IS NULL AND {age} < clock_timestamp() - older_than
            ORDER BY {age} LIMIT max_rows
            FOR UPDATE SKIP LOCKED)
        UPDATE {schema}.{table} AS {alias}
        SET {assignments}
        FROM due WHERE {alias}.{key} = due.{key};
        GET DIAGNOSTICS redacted = ROW_COUNT;
        RETURN redacted;
    END $$""",
        f"REVOKE ALL ON FUNCTION {function}(interval, integer) FROM PUBLIC, {AUDITOR}",
        f"GRANT EXECUTE ON FUNCTION {function}(interval, integer) TO {SERVICE}",
    ]
