"""orders: an append-only audit of what operators did with dead letters (``karya dlq replay|discard``).

Who (the acting user), what (replayed, discarded), when, why (the reason, required to discard) and, for a replay,
the replay count sent. The service role gets SELECT and INSERT from the migrator's default privileges and nothing
else, so rows are never changed or removed; one action per dead letter (unique index). See
``infra.messaging.replay``.

Revision ID: orders_0005
Revises: orders_0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from infra.db.steps import statement_migration
from infra.messaging.replay import dead_letter_actions_ddl, drop_dead_letter_actions_ddl

revision = "orders_0005"
down_revision = "orders_0004"

upgrade, downgrade = statement_migration(dead_letter_actions_ddl("orders"), drop_dead_letter_actions_ddl("orders"))
