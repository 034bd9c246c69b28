"""gateway: raw deliveries are redacted for every role but the gateway's, and in place after the retention.

A webhook body carries the buyer's name, phone and address. The auditor loses SELECT on
``gateway.raw_deliveries`` and reads ``gateway.raw_deliveries_redacted`` instead: metadata, the size and
SHA-256 of the body as received, and the body with the values of personal keys blanked. Which keys are personal
is decided here once, in SQL (:data:`PERSONAL_KEY_FRAGMENTS`), and used by the view and by the retention.

Retention (UU PDP): ``gateway.redact_raw_deliveries(older_than, max_rows)`` replaces the bodies (and headers) of
deliveries older than ``older_than`` by their redacted form, in bounded batches. Rows are never deleted: the row
is the audit trail of what arrived (kept with the SHA-256 and size of the original bytes, so a copy of the
original can still be checked against it) and its ``dedupe_key`` is what makes a marketplace's late retry a
duplicate. The service role may not UPDATE the table; it calls this function (SECURITY DEFINER, owned by the
migrator), which can only redact, and never bodies younger than a day.

Revision ID: gateway_0004
Revises: gateway_0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from infra.db.roles import AUDITOR, SERVICE
from infra.db.steps import batched_redaction_ddl, statement_migration

revision = "gateway_0004"
down_revision = "gateway_0003"

S = "gateway"

# A JSON key is personal when, lower-cased with everything but letters and digits removed, it contains one of
# these (``buyer_name``, ``recipientAddress``, ``phone_number``, ``customer``, ``buyer_message``...). The value
# of such a key is blanked whole, object or list included. Product or shop names are blanked too: over-redacting
# a body is harmless, under-redacting is not.
PERSONAL_KEY_FRAGMENTS = (
    "name",
    "phone",
    "mobile",
    "email",
    "address",
    "recipient",
    "receiver",
    "buyer",
    "customer",
    "contact",
    "message",
    "note",
    "remark",
    "comment",
    "postcode",
    "postalcode",
    "zipcode",
    "latitude",
    "longitude",
    "geolocation",
)
REDACTED = "[redacted]"

UPGRADE = [
    f"ALTER TABLE {S}.raw_deliveries ADD COLUMN body_sha256 bytea, ADD COLUMN body_bytes integer, "
    "ADD COLUMN redacted_at timestamptz",
    f"UPDATE {S}.raw_deliveries SET body_sha256 = sha256(body), body_bytes = octet_length(body)",
    f"ALTER TABLE {S}.raw_deliveries ALTER COLUMN body_sha256 SET NOT NULL, ALTER COLUMN body_bytes SET NOT NULL",
    f"COMMENT ON COLUMN {S}.raw_deliveries.body_sha256 IS 'SHA-256 of the body as received (kept after redaction)'",
    f"COMMENT ON COLUMN {S}.raw_deliveries.redacted_at IS "
    "'When the body and headers were replaced by their redacted form (retention); NULL: as received'",
    # The digest and size of what arrived, whoever inserts.
    f"""CREATE FUNCTION {S}.raw_delivery_digest() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.body_sha256 := sha256(NEW.body);
        NEW.body_bytes := octet_length(NEW.body);
        NEW.redacted_at := NULL;
        RETURN NEW;
    END $$""",
    f"CREATE TRIGGER raw_deliveries_digest BEFORE INSERT ON {S}.raw_deliveries "
    f"FOR EACH ROW EXECUTE FUNCTION {S}.raw_delivery_digest()",
    f"CREATE INDEX raw_deliveries_unredacted_idx ON {S}.raw_deliveries (received_at) WHERE redacted_at IS NULL",
    f"""CREATE FUNCTION {S}.is_personal_key(key text) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN lower(regexp_replace(key, '[^A-Za-z0-9]+', '', 'g')) ~ '{"|".join(PERSONAL_KEY_FRAGMENTS)}'""",
    f"COMMENT ON FUNCTION {S}.is_personal_key(text) IS 'Whether a JSON key names personal data (see gateway_0004)'",
    # Recursive through objects and arrays; a personal key's value is replaced whole.
    f"""CREATE FUNCTION {S}.redact_personal(doc jsonb) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
    BEGIN
        IF jsonb_typeof(doc) = 'object' THEN
            RETURN coalesce((
                SELECT jsonb_object_agg(k, CASE WHEN {S}.is_personal_key(k) THEN to_jsonb('{REDACTED}'::text)
                                                ELSE {S}.redact_personal(v) END)
                FROM jsonb_each(doc) AS e(k, v)), '{{}}'::jsonb);
        ELSIF jsonb_typeof(doc) = 'array' THEN
            RETURN coalesce((
                SELECT jsonb_agg({S}.redact_personal(v) ORDER BY i)
                FROM jsonb_array_elements(doc) WITH ORDINALITY AS e(v, i)), '[]'::jsonb);
        END IF;
        RETURN doc;
    END $$""",
    # A body that is not a UTF-8 JSON object cannot be redacted key by key: nothing of it is shown.
    f"""CREATE FUNCTION {S}.redacted_body(body bytea) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
    DECLARE
        doc jsonb;
    BEGIN
        BEGIN
            doc := convert_from(body, 'UTF8')::jsonb;
        EXCEPTION WHEN data_exception THEN
            RETURN NULL;
        END;
        IF jsonb_typeof(doc) <> 'object' THEN
            RETURN NULL;
        END IF;
        RETURN {S}.redact_personal(doc);
    END $$""",
    # Only deliveries whose signature verified are stored (the others are answered 401), hence the constant.
    f"""CREATE VIEW {S}.raw_deliveries_redacted AS
    SELECT delivery_id, channel, webhook_type, dedupe_key, order_key, received_at,
           true AS signature_verified, body_bytes, encode(body_sha256, 'hex') AS body_sha256, redacted_at,
           {S}.redacted_body(body) AS body, {S}.redact_personal(headers) AS headers
    FROM {S}.raw_deliveries""",
    f"COMMENT ON VIEW {S}.raw_deliveries_redacted IS 'Raw deliveries without personal data: what roles other "
    "than the gateway read'",
    f"REVOKE ALL ON {S}.raw_deliveries FROM {AUDITOR}",
    f"REVOKE ALL ON {S}.raw_deliveries_redacted FROM {SERVICE}, {AUDITOR}",
    f"GRANT SELECT ON {S}.raw_deliveries_redacted TO {SERVICE}, {AUDITOR}",
    *batched_redaction_ddl(
        S,
        "redact_raw_deliveries",
        what="raw deliveries",
        table="raw_deliveries",
        key="delivery_id",
        redacted_at="redacted_at",
        age="received_at",
        alias="r",
        assignments=f"""body = coalesce(convert_to({S}.redacted_body(r.body)::text, 'UTF8'), ''::bytea),
            headers = {S}.redact_personal(r.headers),
            redacted_at = clock_timestamp()""",
    ),
]

DOWNGRADE = [
    f"DROP FUNCTION {S}.redact_raw_deliveries(interval, integer)",
    f"DROP VIEW {S}.raw_deliveries_redacted",
    f"DROP FUNCTION {S}.redacted_body(bytea)",
    f"DROP FUNCTION {S}.redact_personal(jsonb)",
    f"DROP FUNCTION {S}.is_personal_key(text)",
    f"DROP TRIGGER raw_deliveries_digest ON {S}.raw_deliveries",
    f"DROP FUNCTION {S}.raw_delivery_digest()",
    f"DROP INDEX {S}.raw_deliveries_unredacted_idx",
    f"ALTER TABLE {S}.raw_deliveries DROP COLUMN body_sha256, DROP COLUMN body_bytes, DROP COLUMN redacted_at",
    f"GRANT SELECT ON {S}.raw_deliveries TO {AUDITOR}",
]


upgrade, downgrade = statement_migration(UPGRADE, DOWNGRADE)
