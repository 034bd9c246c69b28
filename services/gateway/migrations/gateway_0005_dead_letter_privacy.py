"""gateway: a dead-lettered delivery's payload (the raw body again) is hidden from the auditor and redacted after
the retention like the raw delivery itself.

The normaliser's dead letters keep the whole ``delivery_received`` event, whose ``data.body`` is the webhook body
with the buyer in it. The auditor keeps SELECT on every other column (the error text is value-free, see
:func:`infra.errors.error_text`); ``gateway.redact_dead_letters(older_than, max_rows)`` (SECURITY DEFINER, the
same one-day floor) replaces the payload by the event with its body redacted by ``gateway.redacted_body``
(migration ``gateway_0004``) and every other personal key blanked; a payload that is not a JSON object becomes
empty. The row, its origin (topic, partition, offset) and its error stay.

Revision ID: gateway_0005
Revises: gateway_0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from infra.db.roles import AUDITOR
from infra.db.steps import batched_redaction_ddl, statement_migration

revision = "gateway_0005"
down_revision = "gateway_0004"

S = "gateway"
VISIBLE = 'id, consumer, topic, "partition", "offset", event_id, key, headers, error, attempts, created_at'

UPGRADE = [
    f"ALTER TABLE {S}.dead_letters ADD COLUMN payload_redacted_at timestamptz",
    f"CREATE INDEX dead_letters_unredacted_idx ON {S}.dead_letters (created_at) WHERE payload_redacted_at IS NULL",
    f"REVOKE SELECT ON {S}.dead_letters FROM {AUDITOR}",
    f"GRANT SELECT ({VISIBLE}, payload_redacted_at) ON {S}.dead_letters TO {AUDITOR}",
    f"""CREATE FUNCTION {S}.redacted_envelope(payload bytea) RETURNS bytea
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
    DECLARE
        doc jsonb;
    BEGIN
        BEGIN
            doc := convert_from(payload, 'UTF8')::jsonb;
        EXCEPTION WHEN data_exception THEN
            RETURN ''::bytea;
        END;
        IF jsonb_typeof(doc) <> 'object' THEN
            RETURN ''::bytea;
        END IF;
        IF jsonb_typeof(doc -> 'data' -> 'body') = 'string' THEN
            doc := jsonb_set(doc, '{{data,body}}', to_jsonb(coalesce(
                {S}.redacted_body(convert_to(doc -> 'data' ->> 'body', 'UTF8'))::text, '')));
        END IF;
        RETURN convert_to({S}.redact_personal(doc)::text, 'UTF8');
    END $$""",
    *batched_redaction_ddl(
        S,
        "redact_dead_letters",
        what="dead letters",
        table="dead_letters",
        key="id",
        redacted_at="payload_redacted_at",
        age="created_at",
        alias="d",
        assignments=f"payload = {S}.redacted_envelope(d.payload), payload_redacted_at = clock_timestamp()",
    ),
]

DOWNGRADE = [
    f"DROP FUNCTION {S}.redact_dead_letters(interval, integer)",
    f"DROP FUNCTION {S}.redacted_envelope(bytea)",
    f"REVOKE SELECT ON {S}.dead_letters FROM {AUDITOR}",
    f"DROP INDEX {S}.dead_letters_unredacted_idx",
    f"ALTER TABLE {S}.dead_letters DROP COLUMN payload_redacted_at",
    f"GRANT SELECT ON {S}.dead_letters TO {AUDITOR}",
]


upgrade, downgrade = statement_migration(UPGRADE, DOWNGRADE)
