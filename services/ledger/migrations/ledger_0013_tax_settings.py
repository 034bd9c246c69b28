"""ledger: tax settings per lapas (issue 17 item 2) — versioned, effective-dated, like the split policies.

One row per version of a lapas' tax treatment (``services/ledger/domain/tax.py``): whether its sales carry PPN, and
how the PPh 22 marketplaces withhold is booked (creditable, expense, exempt). Loaded by ``karya policy load`` from
a policy file's ``tax_settings`` section; the posting path selects the version in force at an order's completion and
records its ref (``tax:<lapas>@v<version>``) on each settlement entry. A version, once loaded, never changes (the
same version with another body is refused by the loader); the service may insert and read, not update or delete.

``withholding_slips``: one row per settlement that withheld PPh 22 (or whose withholding is off): the amount, what
0.5% of its price excluding PPN comes to, the tolerance of the setting, whether it is flagged for a person's review,
and the slip reference (the marketplace's invoice number when the channel reports one, else its settlement id),
written in the transaction that posts the settlement. Append-only like the journal.

Revision ID: ledger_0013
Revises: ledger_0012
Create Date: 2026-12-03
"""

from __future__ import annotations

from infra.db.roles import SERVICE
from infra.db.steps import statement_migration

revision = "ledger_0013"
down_revision = "ledger_0012"
branch_labels = None
depends_on = None

S = "ledger"

UPGRADE = [
    f"""CREATE TABLE {S}.tax_settings (
        lapas_id text NOT NULL, version integer NOT NULL CHECK (version > 0), effective_from timestamptz NOT NULL,
        body jsonb NOT NULL, setting_hash text NOT NULL, loaded_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (lapas_id, version), UNIQUE (lapas_id, effective_from))""",
    f"""CREATE TABLE {S}.withholding_slips (
        posting_key text PRIMARY KEY, order_key text NOT NULL, lapas_id text NOT NULL,
        settled_at timestamptz NOT NULL, withheld bigint NOT NULL, expected bigint NOT NULL CHECK (expected >= 0),
        tolerance bigint NOT NULL CHECK (tolerance >= 0), flagged boolean NOT NULL, slip_ref text NOT NULL,
        tax_ref text NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now())""",
    f"CREATE INDEX withholding_slips_lapas_idx ON {S}.withholding_slips (lapas_id, settled_at)",
    # The default privileges give the service INSERT and SELECT and the auditor SELECT; nothing here changes.
    f"REVOKE UPDATE, DELETE, TRUNCATE ON {S}.tax_settings FROM {SERVICE}",
    f"REVOKE UPDATE, DELETE, TRUNCATE ON {S}.withholding_slips FROM {SERVICE}",
]
DOWNGRADE = [f"DROP TABLE {S}.withholding_slips", f"DROP TABLE {S}.tax_settings"]

upgrade, downgrade = statement_migration(UPGRADE, DOWNGRADE)
