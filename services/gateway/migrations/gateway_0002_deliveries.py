"""gateway: raw deliveries, emitted canonical events, what each order last said, poll cursors.

Revision ID: gateway_0002
Revises: gateway_0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

from infra.db.roles import mutable_table_grants
from infra.db.steps import run_statements

revision = "gateway_0002"
down_revision = "gateway_0001"

S = "gateway"

TABLES = [
    # Every verified webhook delivery, once per dedupe key, with its exact bytes (append-only: audit trail).
    f"""CREATE TABLE {S}.raw_deliveries (
        delivery_id bigserial PRIMARY KEY,
        channel text NOT NULL CHECK (channel IN ('tokopedia', 'tiktok_shop', 'shopee')),
        webhook_type text NOT NULL
            CHECK (webhook_type IN ('order_notification', 'order_status', 'order_cancellation')),
        dedupe_key text NOT NULL UNIQUE,
        order_key text,
        body bytea NOT NULL,
        headers jsonb NOT NULL,
        received_at timestamptz NOT NULL DEFAULT clock_timestamp())""",
    f"CREATE INDEX raw_deliveries_order_idx ON {S}.raw_deliveries (order_key) WHERE order_key IS NOT NULL",
    # Every canonical event put on the outbox, once per emission key (append-only): webhooks, pollers and the
    # Bukalapak import all emit through it, so the same fact is never published twice.
    f"""CREATE TABLE {S}.emitted_events (
        emission_key text PRIMARY KEY,
        order_key text NOT NULL,
        event_type text NOT NULL,
        event_id uuid NOT NULL,
        emitted_at timestamptz NOT NULL DEFAULT clock_timestamp())""",
    f"CREATE INDEX emitted_events_order_idx ON {S}.emitted_events (order_key)",
    # The latest status the gateway published per order: what the backstop poller re-checks.
    f"""CREATE TABLE {S}.order_status_seen (
        order_key text PRIMARY KEY,
        channel text NOT NULL, shop_id text NOT NULL, order_id text NOT NULL,
        raw_status text NOT NULL, state text NOT NULL, update_time timestamptz NOT NULL,
        has_lines boolean NOT NULL DEFAULT false,
        completion_reached boolean NOT NULL DEFAULT false,
        settled boolean NOT NULL DEFAULT false,
        done boolean GENERATED ALWAYS AS (
            state IN ('cancelled', 'refunded') OR (completion_reached AND settled)) STORED,
        first_seen_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        checked_at timestamptz NOT NULL DEFAULT clock_timestamp())""",
    f"CREATE INDEX order_status_seen_backstop_idx ON {S}.order_status_seen (checked_at) WHERE NOT done",
    # Poll cursors: the end of the last window read per (channel, shop).
    f"""CREATE TABLE {S}.poll_cursors (
        channel text NOT NULL, shop_id text NOT NULL, cursor timestamptz NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (channel, shop_id))""",
]

MUTABLE = ["order_status_seen", "poll_cursors"]


def upgrade() -> None:
    run_statements(TABLES)
    run_statements(grant for table in MUTABLE for grant in mutable_table_grants(S, table))


def downgrade() -> None:
    for table in ["poll_cursors", "order_status_seen", "emitted_events", "raw_deliveries"]:
        op.execute(f"DROP TABLE {S}.{table}")
