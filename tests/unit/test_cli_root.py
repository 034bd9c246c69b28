"""The CLI's composition root (infra.cli_root): one root per invocation, from the environment or given by a test;
roles resolve to their URLs (the auditor's falls back to the service role's), topics get the deployment's prefix."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from infra.cli_root import CliRoot
from infra.settings import KafkaSettings
from services.ledger.outbound import LedgerTopics
from services.orders.outbound import OrdersTopics


def _app(seen: list[CliRoot]) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def group(ctx: typer.Context) -> None:
        seen.append(CliRoot.of(ctx))

    @app.command()
    def command(ctx: typer.Context) -> None:
        seen.append(CliRoot.of(ctx))

    return app


def test_every_command_of_an_invocation_gets_the_root_it_was_given() -> None:
    root = CliRoot(KafkaSettings(topic_prefix="t."), {"service": "postgresql+asyncpg://s@127.0.0.1:1/k"})
    seen: list[CliRoot] = []
    result = CliRunner().invoke(_app(seen), ["command"], obj=root)
    assert result.exit_code == 0, result.output
    assert seen == [root, root] and seen[0] is root


def test_without_one_the_root_is_built_from_the_environment_once_per_invocation() -> None:
    env = {
        "DATABASE_URL": "postgresql+asyncpg://svc@127.0.0.1:1/k",
        "KARYA_TOPIC_PREFIX": "env.",
        "KARYA_AUDITOR_URL": "",
    }
    first: list[CliRoot] = []
    second: list[CliRoot] = []
    assert CliRunner().invoke(_app(first), ["command"], env=env).exit_code == 0
    assert CliRunner().invoke(_app(second), ["command"], env=env).exit_code == 0
    assert first[0] is first[1] and second[0] is second[1] and first[0] is not second[0]
    assert first[0].kafka.topic_prefix == "env."
    assert first[0].url("service") == env["DATABASE_URL"]


def test_roles_resolve_to_their_urls_and_the_auditor_falls_back_to_the_service_role() -> None:
    root = CliRoot(KafkaSettings(), {"service": "postgresql+asyncpg://svc@h/k"})
    assert root.has("auditor") and root.url("auditor") == "postgresql+asyncpg://svc@h/k"
    assert not root.has("gateway")
    with pytest.raises(SystemExit, match="KARYA_GATEWAY_DATABASE_URL is not set"):
        root.url("gateway")
    with pytest.raises(SystemExit, match="DATABASE_URL is not set"):
        CliRoot(KafkaSettings()).url("auditor")
    audited = CliRoot(
        KafkaSettings(), {"service": "postgresql+asyncpg://svc@h/k", "auditor": "postgresql+asyncpg://a@h/k"}
    )
    assert audited.url("auditor") == "postgresql+asyncpg://a@h/k"


def test_topics_are_the_services_under_the_deployments_prefix() -> None:
    root = CliRoot(KafkaSettings(topic_prefix="run3."))
    assert root.topics(OrdersTopics) == OrdersTopics.with_prefix("run3.")
    assert root.topics(LedgerTopics).entries == "run3.ledger.entries"


def test_the_program_hands_a_factory_and_the_root_made_from_it_carries_the_topology() -> None:
    from karya.services import SERVICES, cli_root

    seen: list[CliRoot] = []
    env = {"DATABASE_URL": "postgresql+asyncpg://svc@127.0.0.1:1/k", "KARYA_GATEWAY_DATABASE_URL": ""}
    assert CliRunner().invoke(_app(seen), ["command"], env=env, obj=cli_root).exit_code == 0
    root = seen[0]
    assert seen == [root, root] and root.services is SERVICES
    assert (root.schema("ledger"), root.role_of("gateway")) == ("ledger", "gateway")
    with pytest.raises(SystemExit, match="known: orders, ledger, gateway"):
        root.schema("billing")
    with pytest.raises(SystemExit, match="no topology"):
        CliRoot(KafkaSettings()).schema("ledger")


def test_a_services_settings_are_read_once_per_invocation_or_given_by_the_test() -> None:
    reads: list[int] = []

    class Interval:
        def __init__(self) -> None:
            reads.append(1)

    root = CliRoot(KafkaSettings())
    assert root.settings(Interval) is root.settings(Interval) and reads == [1]
    given = Interval()
    assert CliRoot(KafkaSettings(), settings_read={Interval: given}).settings(Interval) is given and reads == [1, 1]
