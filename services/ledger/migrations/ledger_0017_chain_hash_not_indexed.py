"""ledger: the journal's ``chain_hash`` loses its UNIQUE index.

Nothing reads the journal by ``chain_hash`` (verification walks each segment by sequence and recomputes every
link; the anchors keep the heads they commit to), and the constraint cannot fail for any row the ledger writes:
two entries share a hash only if they share the previous hash and the canonical entry (sequence included) — one
entry — or SHA-256 collides. It protects nothing that ``karya ledger verify`` does not: a row forged with a copied
hash breaks its own link and its successor's. What it cost is a B-tree over 64-character random keys, a random
leaf written per entry: the largest index of ``journal_entries``, ~3.5% of all WAL over a 100k-order run, and at
a million orders ~300 MB of leaves touched at random, past ``shared_buffers``.

Revision ID: ledger_0017
Revises: ledger_0016
Create Date: 2026-12-04
"""

from __future__ import annotations

from infra.db.steps import statement_migration

revision = "ledger_0017"
down_revision = "ledger_0016"
branch_labels = None
depends_on = None

upgrade, downgrade = statement_migration(
    ["ALTER TABLE ledger.journal_entries DROP CONSTRAINT journal_entries_chain_hash_key"],
    ["ALTER TABLE ledger.journal_entries ADD CONSTRAINT journal_entries_chain_hash_key UNIQUE (chain_hash)"],
)
