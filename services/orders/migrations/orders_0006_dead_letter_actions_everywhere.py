"""ledger, gateway: the dead-letter audit (``<schema>.dead_letter_actions``, see ``orders_0005``) in the other two
service schemas, so ``karya dlq replay|discard`` works on every service's dead letters.

It lives in the orders branch, depending on the ledger's and the gateway's revisions that made what it needs
(their ``dead_letters`` tables; the gateway role and its default privileges), so no revision of theirs is
renumbered while other work adds to those branches. Grants as for every table: the ledger's service role and the
gateway role get SELECT and INSERT only (append-only). The service role keeps reading the gateway's actions but
loses the INSERT its database-wide default gave it: nothing outside the gateway writes its schema (``gateway_0006``).

Revision ID: orders_0006
Revises: orders_0005
Depends on: ledger_0001, gateway_0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from infra.db.roles import SERVICE
from infra.db.steps import statement_migration
from infra.messaging.replay import dead_letter_actions_ddl, drop_dead_letter_actions_ddl

revision = "orders_0006"
down_revision = "orders_0005"
depends_on = ("ledger_0001", "gateway_0006")

upgrade, downgrade = statement_migration(
    [
        *dead_letter_actions_ddl("ledger"),
        *dead_letter_actions_ddl("gateway"),
        f"REVOKE INSERT ON gateway.dead_letter_actions FROM {SERVICE}",
        f"REVOKE USAGE ON SEQUENCE gateway.dead_letter_actions_id_seq FROM {SERVICE}",
    ],
    [*drop_dead_letter_actions_ddl("gateway"), *drop_dead_letter_actions_ddl("ledger")],
)
