"""Contract tests: the marketplaces' PUBLISHED webhook bodies → the expected canonical status events.

The bodies in ``tests/contract/published/<channel>/*.json`` are written from the channels' documentation (each
file names its source; uncertain shapes say so), never from the simulator's output. For each one: the gateway
admits it (no replay: ``now`` is just after the push's own time), computes the documented dedupe key, and
produces the expected canonical event; its signature, computed here from the published rule with ``hmac``
directly, verifies.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.gateway.canonical import classify, status_event
from services.gateway.dedupe import delivery_keys
from services.gateway.normalise.admission import admit
from services.gateway.settings import GatewaySettings
from services.gateway.webhooks import webhook_routes

FIXTURES = Path(__file__).parents[2] / "contract" / "published"
API_ANSWERS = ("returns_", "statement_")  # recorded seller-API answers, not webhook bodies
CASES = sorted(p for p in FIXTURES.glob("*/*.json") if not p.name.startswith(API_ANSWERS))
ARRIVAL = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
SECRET, APP_KEY, PUBLIC_URL = "contract-secret-0001", "contract-app-key", "https://karya.example/gw"


def _load(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(path.read_text())
    return case


def _now(body: dict[str, Any]) -> datetime:
    """Just after the push's own time where the channel sends one, else the arrival."""
    sent = body.get("timestamp")
    return datetime.fromtimestamp(sent, UTC) + timedelta(seconds=2) if isinstance(sent, int) else ARRIVAL


def test_every_channel_with_webhooks_has_published_bodies_for_every_route() -> None:
    covered = {(c["channel"], c["webhook_type"]) for c in map(_load, CASES)}
    routes = {(r.channel, r.webhook_type) for r in webhook_routes(_settings())}
    assert routes <= covered
    # Both TikTok Shop types, and every cancel_status family of type 11.
    tiktok = [c["body"] for c in map(_load, CASES) if c["channel"] == "tiktok_shop"]
    assert {b["type"] for b in tiktok} == {1, 11}
    assert {c["expect"]["state"] for c in map(_load, CASES) if c["body"].get("type") == 11} == {
        "cancel_requested",
        "cancelled",
        "awaiting_fulfilment",
    }


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_published_body_gives_the_expected_canonical_event(path: Path) -> None:
    case = _load(path)
    expect = case["expect"]
    raw = json.dumps(case["body"]).encode()
    now = _now(case["body"])
    admission = admit(case["channel"], case["webhook_type"], raw, now, window_s=86_400, skew_s=300)
    assert admission.notice is not None, admission.problem
    event = status_event(admission.notice)
    wanted_time = now if expect["update_time"] == "arrival" else datetime.fromisoformat(expect["update_time"])
    assert (event.order_key, event.raw_status, event.update_time) == (
        expect["order_key"],
        expect["raw_status"],
        wanted_time,
    )
    assert [line.model_dump(include={"channel_product_id", "quantity", "unit_price"}) for line in event.lines] == (
        expect["lines"]
    )
    assert event.gross_amount == expect.get("gross_amount")
    assert classify(event.channel, event.raw_status).state.value == expect["state"]
    keys = delivery_keys(case["channel"], case["webhook_type"], raw)
    assert keys.order_key == expect["order_key"]
    if expect["dedupe_key"].endswith("*"):
        assert keys.dedupe_key.startswith(expect["dedupe_key"][:-1]) and ":body:" not in keys.dedupe_key
    else:
        assert keys.dedupe_key == expect["dedupe_key"]


def _settings() -> GatewaySettings:
    return GatewaySettings(
        tokopedia_webhook_secret=SECRET,
        tiktok_app_key=APP_KEY,
        tiktok_app_secret=SECRET,
        shopee_partner_id="2001",
        shopee_partner_key=SECRET,
        blibli_api_key="blibli-key",
        blibli_api_secret=SECRET,
        gateway_public_url=PUBLIC_URL,
    )


def _published_signature(channel: str, path: str, body: bytes) -> str:
    """Each channel's published rule, written out independently of services.gateway.signatures."""
    if channel == "tokopedia":  # Authorization-Hmac: hex HMAC-SHA256(webhook secret, body)
        message = body
    elif channel == "tiktok_shop":  # Authorization: hex HMAC-SHA256(app secret, app key + body)
        message = APP_KEY.encode() + body
    else:  # Authorization: hex HMAC-SHA256(partner key, callback URL + "|" + body)
        message = f"{PUBLIC_URL}{path}|".encode() + body
    return hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest()


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_published_signature_verifies(path: Path) -> None:
    case = _load(path)
    raw = json.dumps(case["body"]).encode()
    (route,) = [r for r in webhook_routes(_settings()) if r.path == f"/webhooks/{case['route']}"]
    assert route.scheme.verify(raw, _published_signature(case["channel"], route.path, raw))
    assert not route.scheme.verify(raw + b" ", _published_signature(case["channel"], route.path, raw))
