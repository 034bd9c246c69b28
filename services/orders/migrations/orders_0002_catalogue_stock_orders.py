"""orders: catalogue, per-batch stock counters with their movement log, orders and reservations.

Revision ID: orders_0002
Revises: orders_0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

from infra.db.roles import AUDITOR, mutable_table_grants
from infra.db.steps import run_statements

revision = "orders_0002"
down_revision = "orders_0001"

S = "orders"

TABLES = [
    f"""CREATE TABLE {S}.lapas (
        lapas_id text PRIMARY KEY, name text NOT NULL, city text NOT NULL, province text NOT NULL)""",
    f"""CREATE TABLE {S}.workshops (
        workshop_id text PRIMARY KEY, lapas_id text NOT NULL REFERENCES {S}.lapas,
        name text NOT NULL, kind text NOT NULL)""",
    f"""CREATE TABLE {S}.suppliers (supplier_id text PRIMARY KEY, name text NOT NULL)""",
    f"""CREATE TABLE {S}.products (
        sku text PRIMARY KEY, name text NOT NULL, kind text NOT NULL,
        list_price_idr bigint NOT NULL CHECK (list_price_idr >= 0),
        default_workshop_id text NOT NULL REFERENCES {S}.workshops)""",
    f"""CREATE TABLE {S}.listings (
        channel text NOT NULL, shop_id text NOT NULL, channel_product_id text NOT NULL,
        channel_sku_id text NOT NULL DEFAULT '',
        sku text NOT NULL REFERENCES {S}.products, workshop_id text NOT NULL REFERENCES {S}.workshops,
        PRIMARY KEY (channel, shop_id, channel_product_id, channel_sku_id))""",
    f"""CREATE TABLE {S}.production_batches (
        batch_id text PRIMARY KEY, workshop_id text NOT NULL REFERENCES {S}.workshops,
        sku text NOT NULL REFERENCES {S}.products, produced_qty integer NOT NULL CHECK (produced_qty > 0),
        production_date date NOT NULL,
        unit_material_cost_idr bigint NOT NULL CHECK (unit_material_cost_idr >= 0),
        supplier_id text NOT NULL REFERENCES {S}.suppliers,
        recorded_at timestamptz NOT NULL DEFAULT now())""",
    f"""CREATE TABLE {S}.batch_work_group (
        batch_id text NOT NULL REFERENCES {S}.production_batches,
        inmate_id text NOT NULL CHECK (inmate_id ~ '^WBP-[0-9A-Z]{{6}}$'),
        work_share integer NOT NULL CHECK (work_share > 0),
        PRIMARY KEY (batch_id, inmate_id))""",
    # The only table holding who an inmate is. Nobody but its owner reads it; everything else uses inmate_id.
    f"""CREATE TABLE {S}.inmate_registry (
        inmate_id text PRIMARY KEY CHECK (inmate_id ~ '^WBP-[0-9A-Z]{{6}}$'),
        lapas_id text NOT NULL REFERENCES {S}.lapas, full_name text NOT NULL, registration_no text NOT NULL,
        released_on date)""",
    # Counters per production batch (the unit FIFO allocation works on); per SKU and workshop they are sums.
    f"""CREATE TABLE {S}.batch_stock (
        batch_id text PRIMARY KEY REFERENCES {S}.production_batches,
        sku text NOT NULL, workshop_id text NOT NULL, lapas_id text NOT NULL,
        production_date date NOT NULL,
        on_hand integer NOT NULL DEFAULT 0 CHECK (on_hand >= 0),
        soft_reserved integer NOT NULL DEFAULT 0 CHECK (soft_reserved >= 0),
        allocated integer NOT NULL DEFAULT 0 CHECK (allocated >= 0),
        quarantined integer NOT NULL DEFAULT 0 CHECK (quarantined >= 0),
        CONSTRAINT reserved_within_on_hand CHECK (soft_reserved + allocated <= on_hand))""",
    f"CREATE INDEX batch_stock_sku_idx ON {S}.batch_stock (sku, lapas_id, production_date, batch_id)",
    f"""CREATE TABLE {S}.stock_movements (
        id bigserial PRIMARY KEY, batch_id text NOT NULL REFERENCES {S}.batch_stock,
        kind text NOT NULL, quantity integer NOT NULL CHECK (quantity > 0),
        d_on_hand integer NOT NULL, d_soft_reserved integer NOT NULL,
        d_allocated integer NOT NULL, d_quarantined integer NOT NULL,
        order_key text, reason text NOT NULL, event_id uuid,
        recorded_at timestamptz NOT NULL DEFAULT clock_timestamp())""",
    f"CREATE INDEX stock_movements_batch_idx ON {S}.stock_movements (batch_id)",
    f"CREATE INDEX stock_movements_order_idx ON {S}.stock_movements (order_key) WHERE order_key IS NOT NULL",
    f"""CREATE TABLE {S}.orders (
        order_key text PRIMARY KEY, channel text NOT NULL, shop_id text NOT NULL, order_id text NOT NULL,
        state text, update_time timestamptz, stock_stage smallint NOT NULL DEFAULT 0,
        lapas_id text, historical boolean NOT NULL DEFAULT false, gross_amount bigint CHECK (gross_amount >= 0),
        parked_reason text,
        created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
        -- an order is known by a state, unless its very first event was unusable (then it is parked)
        CONSTRAINT state_or_parked CHECK ((state IS NOT NULL AND update_time IS NOT NULL)
                                          OR parked_reason IS NOT NULL))""",
    f"""CREATE TABLE {S}.order_lines (
        order_key text NOT NULL REFERENCES {S}.orders, line_no integer NOT NULL,
        sku text NOT NULL, workshop_id text NOT NULL, quantity integer NOT NULL CHECK (quantity > 0),
        unit_price_idr bigint NOT NULL CHECK (unit_price_idr >= 0),
        PRIMARY KEY (order_key, line_no))""",
    f"""CREATE TABLE {S}.order_history (
        id bigserial PRIMARY KEY, order_key text NOT NULL, from_state text, to_state text NOT NULL,
        requested_state text NOT NULL, raw_status text NOT NULL, update_time timestamptz NOT NULL,
        decision text NOT NULL, event_id uuid NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT clock_timestamp())""",
    f"CREATE INDEX order_history_order_idx ON {S}.order_history (order_key, id)",
    f"""CREATE TABLE {S}.reservations (
        reservation_id bigserial PRIMARY KEY, order_key text NOT NULL REFERENCES {S}.orders,
        state text NOT NULL CHECK (state IN ('soft', 'hard', 'consumed', 'released', 'expired')),
        expires_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now())""",
    f"CREATE INDEX reservations_order_idx ON {S}.reservations (order_key)",
    f"CREATE INDEX reservations_soft_expiry_idx ON {S}.reservations (expires_at) WHERE state = 'soft'",
    f"""CREATE TABLE {S}.allocations (
        reservation_id bigint NOT NULL REFERENCES {S}.reservations, batch_id text NOT NULL,
        sku text NOT NULL, workshop_id text NOT NULL, quantity integer NOT NULL CHECK (quantity > 0),
        PRIMARY KEY (reservation_id, batch_id))""",
    f"""CREATE TABLE {S}.quarantine (
        id bigserial PRIMARY KEY, order_key text NOT NULL, batch_id text NOT NULL REFERENCES {S}.batch_stock,
        quantity integer NOT NULL CHECK (quantity > 0),
        status text NOT NULL DEFAULT 'awaiting_inspection'
            CHECK (status IN ('awaiting_inspection', 'restocked', 'written_off')),
        inspected_at timestamptz, note text)""",
]

# Rows the service legitimately changes; the movement log, history and catalogue batches are append-only.
MUTABLE = [
    "batch_stock",
    "orders",
    "reservations",
    "quarantine",
    "products",
    "listings",
    "lapas",
    "workshops",
    "suppliers",
    "order_lines",
]


def upgrade() -> None:
    run_statements(TABLES)
    run_statements(grant for table in MUTABLE for grant in mutable_table_grants(S, table))
    op.execute(f"REVOKE ALL ON {S}.inmate_registry FROM {AUDITOR}, karya_service")


def downgrade() -> None:
    for table in [
        "quarantine",
        "allocations",
        "reservations",
        "order_history",
        "order_lines",
        "orders",
        "stock_movements",
        "batch_stock",
        "inmate_registry",
        "batch_work_group",
        "production_batches",
        "listings",
        "products",
        "suppliers",
        "workshops",
        "lapas",
    ]:
        op.execute(f"DROP TABLE {S}.{table}")
