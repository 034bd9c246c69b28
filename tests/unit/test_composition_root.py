"""The composition root (karya.services): a process's settings come from the environment once, and every topic
and consumer group of every service is built under the deployment's prefix, none read from a global."""

from __future__ import annotations

import os
from typing import Any

import pytest
from faststream.specification import AsyncAPI

from infra.messaging.topics import BASE_NAMES
from infra.settings import KafkaSettings
from karya.services import SERVICES, process_settings, service_topics, wiring_of


@pytest.mark.parametrize("service", list(SERVICES))
def test_every_topic_and_group_of_a_service_is_under_the_prefix(service: str) -> None:
    kafka = KafkaSettings(bootstrap_servers="127.0.0.1:1", topic_prefix="run7.", completeness_audit_interval_s=0)
    runtime = wiring_of(service, kafka)
    channels: dict[str, Any] = AsyncAPI(runtime.broker).to_specification().to_jsonable()["channels"]
    addresses = {channel["address"] for channel in channels.values()}
    assert addresses, "a service reads or writes some topic"
    assert {a.removeprefix("run7.") for a in addresses} <= set(BASE_NAMES)
    assert all(a.startswith("run7.") for a in addresses)
    for consumer in runtime.audited:
        assert consumer.group_id.startswith("run7.karya-")
        assert all(topic.startswith("run7.") for topic in consumer.topics)


@pytest.mark.parametrize("service", list(SERVICES))
def test_a_services_topics_are_its_base_names_under_the_prefix(service: str) -> None:
    base, prefixed = vars_of(service_topics(service, "")), vars_of(service_topics(service, "x."))
    assert set(base.values()) <= set(BASE_NAMES)
    assert prefixed == {field: f"x.{name}" for field, name in base.items()}


def vars_of(topics: Any) -> dict[str, str]:
    """A topics dataclass's fields (slots or not)."""
    return {name: getattr(topics, name) for name in topics.__dataclass_fields__}


def test_process_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://svc@127.0.0.1:1/k")
    monkeypatch.setenv("KARYA_GATEWAY_DATABASE_URL", "postgresql+asyncpg://gw@127.0.0.1:1/k")
    monkeypatch.setenv("KARYA_TOPIC_PREFIX", "env.")
    orders, gateway = process_settings("orders"), process_settings("gateway")
    assert orders.database_url.startswith("postgresql+asyncpg://svc@")
    assert gateway.database_url.startswith("postgresql+asyncpg://gw@")
    assert orders.kafka.topic_prefix == gateway.kafka.topic_prefix == "env."


def test_an_unknown_service_is_refused_with_the_known_ones() -> None:
    with pytest.raises(SystemExit, match="orders, ledger, gateway"):
        process_settings("billing")


def test_service_settings_are_read_by_the_root_and_passed_down(monkeypatch: pytest.MonkeyPatch) -> None:
    from infra.db.engine import make_engine
    from karya.services import build_service, service_settings

    monkeypatch.setenv("KARYA_LEDGER_VERIFY_INTERVAL_S", "17")
    read = service_settings("ledger")
    assert read.verify_interval_s == 17
    monkeypatch.setenv("KARYA_LEDGER_VERIFY_INTERVAL_S", "99")  # read once: the runtime gets what the root read
    kafka = KafkaSettings(bootstrap_servers="127.0.0.1:1", completeness_audit_interval_s=0)
    runtime = build_service("ledger", make_engine("postgresql+asyncpg://w@127.0.0.1:1/w", pool_size=1), kafka, read)
    interval = runtime.metrics.registry.get_sample_value(
        "karya_ledger_chain_verify_interval_seconds", {"schema": "ledger"}
    )
    assert interval == 17
    assert {"chain-watch", "chain-anchor", "parked-redrive"} <= set(runtime.supervisor.names)
    assert runtime.metrics.registry.get_sample_value("karya_ledger_parked_redriven_total") == 0
    monkeypatch.setenv("KARYA_LEDGER_ANCHOR_INTERVAL_S", "5")
    assert service_settings("ledger").anchor_interval_s == 5
    assert service_settings("orders") is None  # orders has no settings of its own


def test_describing_the_gateway_needs_no_secret_but_serving_it_does(monkeypatch: pytest.MonkeyPatch) -> None:
    from karya.services import service_settings

    for name in [n for n in os.environ if n.startswith("KARYA_")]:
        monkeypatch.delenv(name)
    kafka = KafkaSettings(bootstrap_servers="127.0.0.1:1", completeness_audit_interval_s=0)
    described = wiring_of("gateway", kafka)  # as `karya schemas gen` builds it: no settings read
    with pytest.raises(SystemExit, match="without its settings"):
        described.http_app()
    with pytest.raises(SystemExit, match="KARYA_TOKOPEDIA_WEBHOOK_SECRET"):
        service_settings("gateway")


def test_the_topology_names_each_services_schema_and_role() -> None:
    assert {s: (SERVICES[s].schema, SERVICES[s].role) for s in SERVICES} == {
        "orders": ("orders", "service"),
        "ledger": ("ledger", "service"),
        "gateway": ("gateway", "gateway"),
    }
