"""gateway: seller-API tokens per shop (Shopee, TikTok Shop), encrypted at rest, readable by the gateway role only.

Shopee Open Platform v2 and TikTok Shop hand out an access token (hours) and a refresh token (days) per shop when
the seller authorises the app (``karya shops connect CHANNEL``). The gateway stores both here, encrypted with
AES-256-GCM under ``KARYA_TOKEN_KEY`` (``services.gateway.shops.crypto``): the columns ``access_token`` and
``refresh_token`` hold ``nonce || ciphertext || tag``, and ``key_id`` names the key that sealed them (the first
8 bytes of its SHA-256 as hex), so a wrong key is reported as such instead of as a corrupt row. The refresh
task (``services.gateway.shops.refresher``) replaces the pair before ``access_expires_at`` and records a failed
refresh in ``refresh_error`` / ``refresh_failed_at`` / ``refresh_failures`` (text written by Karya, never a
token).

Only ``karya_gateway`` touches the table: the migrator's database-wide default privileges would give
``karya_service`` SELECT and INSERT and ``karya_auditor`` SELECT on it (see ``gateway_0006``); both are revoked
here, so neither orders, ledger nor the auditor read even the ciphertext.

Revision ID: gateway_0007
Revises: gateway_0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from infra.db.roles import AUDITOR, GATEWAY, SERVICE
from infra.db.steps import statement_migration

revision = "gateway_0007"
down_revision = "gateway_0006"

S = "gateway"

UPGRADE = [
    f"""CREATE TABLE {S}.shop_tokens (
        channel text NOT NULL CHECK (channel IN ('shopee', 'tiktok_shop')),
        shop_id text NOT NULL CHECK (shop_id <> ''),
        shop_cipher text,
        shop_name text,
        key_id text NOT NULL CHECK (key_id ~ '^[0-9a-f]{{16}}$'),
        access_token bytea NOT NULL CHECK (octet_length(access_token) > 28),
        refresh_token bytea NOT NULL CHECK (octet_length(refresh_token) > 28),
        access_expires_at timestamptz NOT NULL,
        refresh_expires_at timestamptz,
        connected_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        refreshed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        refresh_failures integer NOT NULL DEFAULT 0 CHECK (refresh_failures >= 0),
        refresh_error text,
        refresh_failed_at timestamptz,
        PRIMARY KEY (channel, shop_id),
        CHECK (channel <> 'tiktok_shop' OR shop_cipher IS NOT NULL))""",
    f"CREATE INDEX shop_tokens_due_idx ON {S}.shop_tokens (access_expires_at)",
    f"REVOKE ALL ON {S}.shop_tokens FROM PUBLIC, {SERVICE}, {AUDITOR}",
    f"GRANT SELECT, INSERT, UPDATE, DELETE ON {S}.shop_tokens TO {GATEWAY}",
]

DOWNGRADE = [f"DROP TABLE {S}.shop_tokens"]

upgrade, downgrade = statement_migration(UPGRADE, DOWNGRADE)
