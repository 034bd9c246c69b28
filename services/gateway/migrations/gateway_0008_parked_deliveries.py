"""gateway: raw deliveries parked while their marketplace API is unreachable (issue 18, two-phase normaliser).

The normaliser fetches what a batch needs from the seller APIs before its transaction. A delivery whose API did
not answer (refused connection, timeout, 5xx, 429, 401/403) is not dead-lettered: it is stored here whole — the
consumed record's topic, partition, offset, key, bytes and headers — in the same transaction that marks its inbox
row applied, and a gateway task (``services.gateway.parking``) retries it with backoff until the API answers,
then applies it and deletes the row in one transaction. A parked delivery holds back later deliveries of the same
order (they are parked behind it), never other orders or channels. ``headers`` is a JSON list of
``[name, hex bytes]``. The record carries the webhook body (personal data): only ``karya_gateway`` reads it.

Revision ID: gateway_0008
Revises: gateway_0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from infra.db.roles import AUDITOR, GATEWAY, SERVICE
from infra.db.steps import statement_migration

revision = "gateway_0008"
down_revision = "gateway_0007"

S = "gateway"

UPGRADE = [
    f"""CREATE TABLE {S}.parked_deliveries (
        event_id uuid PRIMARY KEY,
        channel text NOT NULL CHECK (channel <> ''),
        order_key text NOT NULL CHECK (order_key <> ''),
        topic text NOT NULL,
        "partition" integer NOT NULL,
        "offset" bigint NOT NULL,
        key bytea,
        value bytea NOT NULL,
        headers jsonb NOT NULL DEFAULT '[]',
        reason text NOT NULL,
        attempts integer NOT NULL DEFAULT 1 CHECK (attempts >= 1),
        parked_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        next_attempt_at timestamptz NOT NULL)""",
    f"CREATE INDEX parked_deliveries_due_idx ON {S}.parked_deliveries (next_attempt_at)",
    f"CREATE INDEX parked_deliveries_order_idx ON {S}.parked_deliveries (order_key, parked_at)",
    f"REVOKE ALL ON {S}.parked_deliveries FROM PUBLIC, {SERVICE}, {AUDITOR}",
    f"GRANT SELECT, INSERT, UPDATE, DELETE ON {S}.parked_deliveries TO {GATEWAY}",
]

DOWNGRADE = [f"DROP TABLE {S}.parked_deliveries"]

upgrade, downgrade = statement_migration(UPGRADE, DOWNGRADE)
