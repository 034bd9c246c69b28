"""``karya dlq`` as an operator runs it, against the real database: the thin commands list, show (redacted), dry-run,
discard with a reason and refuse what they must, with exit codes a script can rely on. Dead letters are written as
rows here (the broker path is ``test_dlq_replay.py``); nothing is enqueued, so no relay of a later test inherits a
record of this one.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError
from typer.testing import CliRunner, Result

from infra.cli_root import CliRoot
from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.messaging.envelope import make_envelope
from infra.messaging.outbox import encode_headers
from infra.settings import KafkaSettings
from karya.dlq_cli import dlq_app
from karya.services import SERVICES
from tests.integration.orders_support import ROOT, uid
from tests.naming import topic_prefix

pytestmark = pytest.mark.integration

NAME, ADDRESS = "Siti Rahayu", "Jl. Melati No. 5"


async def _insert(url: str, schema: str, topic: str, key: str, payload: bytes) -> int:
    engine = make_engine(url, pool_size=1)
    try:
        async with engine.begin() as conn:
            found = await conn.execute(
                text(
                    f'INSERT INTO {schema}.dead_letters (consumer, topic, "partition", "offset", event_id, key, '
                    "payload, headers, error, attempts) VALUES ('cli-test', :t, 0, 7, gen_random_uuid(), :k, :p, "
                    "CAST(:h AS jsonb), 'rejected: unknown listing tokopedia/s/p on line 1', 1) RETURNING id"
                ),
                {"t": topic, "k": key.encode(), "p": payload, "h": encode_headers([("karya-event-type", b"x")])},
            )
            return int(found.scalar_one())
    finally:
        await engine.dispose()


async def _karya_dlq(database: RoleUrls, *args: str) -> Result:
    root = CliRoot(KafkaSettings(), {"service": database.service, "gateway": database.gateway}, SERVICES)
    # In a thread: the commands run their own event loop (asyncio.run), as they do from a shell.
    return await asyncio.to_thread(
        lambda: CliRunner().invoke(dlq_app, list(args), env={"KARYA_OPERATOR": ""}, obj=root)
    )


async def test_an_operator_lists_shows_dry_runs_and_discards_an_orders_dead_letter(database: RoleUrls) -> None:
    u = uid()
    topic, key = f"{topic_prefix()}marketplace.order-events", f"tokopedia:s-{u}:o1"
    event = make_envelope(
        type="karya.marketplace.order_status_changed.v1",
        source="karya/gateway",
        subject=key,
        data={"order_key": key, "buyer_name": NAME, "shipping": {"address": ADDRESS, "city": "Kota"}},
    )
    number = await _insert(database.service, "orders", topic, key, event.to_bytes())
    ref = f"orders:{number}"

    listed = await _karya_dlq(database, "list", "--schema", "orders", "--key", key)
    assert listed.exit_code == 0, listed.output
    assert (
        listed.output.startswith(f"{ref} ") and "open" in listed.output and listed.output.endswith("1 dead letter(s)\n")
    )
    as_json = await _karya_dlq(database, "list", "--schema", "orders", "--key", key, "--json", "--error", "rejected")
    [row] = [json.loads(line) for line in as_json.output.splitlines()]
    assert (row["ref"], row["event_type"], row["topic"], row["state"]) == (ref, "x", topic, "open")

    shown = await _karya_dlq(database, "show", ref, "--json")
    assert shown.exit_code == 0, shown.output
    doc = json.loads(shown.output)
    payload = json.loads(doc["payload (redacted)"])
    assert payload["event_id"] == str(event.event_id) and payload["data"]["shipping"]["city"] == "Kota"
    assert NAME not in shown.output and ADDRESS not in shown.output, "personal keys blanked as the gateway does"

    dry = await _karya_dlq(database, "replay", ref, "--dry-run", "--as", "alice")
    assert dry.exit_code == 0 and dry.output == f"{ref}: would replay -> {topic} (replay 1)\n"
    no_reason = await _karya_dlq(database, "discard", ref, "--as", "alice")
    assert no_reason.exit_code == 2, "a discard needs --reason"
    discarded = await _karya_dlq(database, "discard", ref, "--as", "alice", "--reason", "order cancelled by hand")
    assert discarded.exit_code == 0 and discarded.output == f"{ref}: discarded -> {topic}\n"
    refused = await _karya_dlq(database, "replay", ref, "--as", "bob")
    assert refused.exit_code == 1 and f"{ref}: replay refused: already discarded by alice" in refused.output
    assert (await _karya_dlq(database, "show", "nowhere:1")).exit_code == 2

    engine = make_engine(database.service, pool_size=1)
    try:
        async with engine.connect() as conn:
            actions = (
                await conn.execute(
                    text("SELECT action, actor, reason FROM orders.dead_letter_actions WHERE dead_letter_id = :i"),
                    {"i": number},
                )
            ).all()
            queued = await conn.execute(text("SELECT count(*) FROM orders.outbox WHERE topic = :t"), {"t": topic})
            assert queued.scalar_one() == 0, "neither the dry run nor the refusal enqueued anything"
    finally:
        await engine.dispose()
    assert [tuple(a) for a in actions] == [("discarded", "alice", "order cancelled by hand")]


async def test_a_gateway_dead_letter_is_shown_without_the_buyer(database: RoleUrls) -> None:
    u = uid()
    topic, key = f"{topic_prefix()}gateway.raw-deliveries", f"shopee:s-{u}:o1"
    body = json.dumps({"order_sn": "o1", "recipient_address": {"name": NAME, "full_address": ADDRESS}})
    event = make_envelope(
        type="karya.gateway.delivery_received.v1",
        source="karya/gateway",
        subject=key,
        data={"delivery_id": 1, "channel": "shopee", "order_key": key, "body": body},
    )
    number = await _insert(database.gateway, "gateway", topic, key, event.to_bytes())
    listed = await _karya_dlq(database, "list", "--schema", "gateway", "--key", key)
    assert listed.output.startswith(f"gateway:{number} "), listed.output
    shown = await _karya_dlq(database, "show", f"gateway:{number}")
    assert shown.exit_code == 0, shown.output
    assert NAME not in shown.output and ADDRESS not in shown.output and "order_sn" in shown.output
    ref = f"gateway:{number}"
    dry = await _karya_dlq(database, "replay", ref, "--dry-run", "--as", "alice")
    assert dry.exit_code == 0 and dry.output == f"{ref}: would replay -> {topic} (replay 1)\n"
    done = await _karya_dlq(database, "discard", ref, "--as", "alice", "--reason", "test delivery")
    assert done.exit_code == 0, done.output
    # The audit of the gateway's dead letters is the gateway role's to write: the service role only reads it.
    engine = make_engine(database.service, pool_size=1)
    try:
        async with engine.connect() as conn:
            read = await conn.execute(
                text("SELECT actor FROM gateway.dead_letter_actions WHERE dead_letter_id = :i"), {"i": number}
            )
            assert read.scalar_one() == "alice"
            with pytest.raises(ProgrammingError, match="permission denied"):
                await conn.execute(
                    text(
                        "INSERT INTO gateway.dead_letter_actions (dead_letter_id, action, actor, reason) "
                        "VALUES (:i, 'discarded', 'mallory', 'x')"
                    ),
                    {"i": number},
                )
    finally:
        await engine.dispose()


async def test_a_gateway_dead_letter_whose_payload_the_retention_redacted_is_not_replayed(database: RoleUrls) -> None:
    """The schema that redacts its dead letters is found by its ``payload_redacted_at`` column, not by its name;
    an orders dead letter (no such column) is replayable as before."""
    u = uid()
    topic, key = f"{topic_prefix()}gateway.raw-deliveries", f"shopee:s-{u}:o1"
    payload = make_envelope(type="karya.x.y.v1", source="karya/gateway", subject=key, data={}).to_bytes()
    number = await _insert(database.gateway, "gateway", topic, key, payload)
    engine = make_engine(database.migrator, pool_size=1)  # the owner: stands in for the retention's redaction
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE gateway.dead_letters SET payload_redacted_at = now() WHERE id = :i"), {"i": number}
            )
    finally:
        await engine.dispose()
    refused = await _karya_dlq(database, "replay", f"gateway:{number}", "--dry-run", "--as", "alice")
    assert refused.exit_code == 1 and "redacted by the retention" in refused.output, refused.output
    orders = await _insert(database.service, "orders", f"{topic_prefix()}x", key, payload)
    dry = await _karya_dlq(database, "replay", f"orders:{orders}", "--dry-run", "--as", "alice")
    assert dry.exit_code == 0 and "would replay" in dry.output, dry.output


async def test_a_ledger_dead_letter_is_discarded_with_its_reason(database: RoleUrls) -> None:
    u = uid()
    topic, key = f"{topic_prefix()}marketplace.settlements", f"shopee:s-{u}:o1"
    payload = make_envelope(type="karya.x.y.v1", source="karya/gateway", subject=key, data={}).to_bytes()
    number = await _insert(database.service, "ledger", topic, key, payload)
    done = await _karya_dlq(database, "discard", f"ledger:{number}", "--as", "carol", "--reason", "test settlement")
    assert done.exit_code == 0 and done.output == f"ledger:{number}: discarded -> {topic}\n"
    listed = await _karya_dlq(database, "list", "--schema", "ledger", "--key", key, "--state", "discarded", "--json")
    [row] = [json.loads(line) for line in listed.output.splitlines()]
    assert (row["ref"], row["actor"], row["reason"]) == (f"ledger:{number}", "carol", "test settlement")


def test_karya_registers_dlq() -> None:
    found = subprocess.run(
        [sys.executable, "-m", "karya.cli", "dlq", "--help"], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert all(command in found.stdout for command in ("list", "show", "replay", "discard"))
