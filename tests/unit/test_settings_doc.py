"""docs/settings.md is generated from the settings classes and drifts from them only with a failing test, like
schemas/asyncapi.json; the service HTTP ports are settings too (issue 18, item 7)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra.settings import HttpSettings, http_port
from karya.services import SERVICES
from karya.settings_doc import DOC, render, sections
from services.contracts.channels import KARYA_STATUSES

ROOT = Path(__file__).resolve().parents[2]
_VARIABLE = re.compile(r"\b(?:KARYA|KAFKA)_[A-Z0-9_]*[A-Z0-9]\b|\bDATABASE_URL\b")


def test_the_committed_table_is_the_generated_one() -> None:
    assert DOC.read_text() == render(), "docs/settings.md drifted: run `karya docs settings` (or `make schemas`)"


def test_every_variable_is_explained() -> None:
    seen: set[str] = set()
    for title, _, rows in sections():
        for name, _, meaning in rows:
            if name not in seen:  # a later class reading the same variable refers to the first
                assert meaning.strip(" ()≥>≤<0123456789.,length"), f"{name} ({title}) has no description"
            seen.add(name)


def test_the_variables_the_operator_docs_name_exist() -> None:
    documented = {name for _, _, rows in sections() for name, _, _ in rows}
    for doc in ("README.md", "docs/operations.md", "docs/architecture.md", "docs/gateway.md"):
        named = set(_VARIABLE.findall((ROOT / doc).read_text())) - set(KARYA_STATUSES)  # order statuses, not settings
        assert named - documented == set(), doc


def test_the_check_command_fails_on_drift(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from karya import cli, settings_doc

    stale = tmp_path / "settings.md"
    stale.write_text(render().replace("KARYA_ORDERS_PORT", "KARYA_ORDER_PORT"))
    monkeypatch.setattr(settings_doc, "DOC", stale)
    assert CliRunner().invoke(cli.app, ["docs", "settings", "--check"]).exit_code == 1
    assert CliRunner().invoke(cli.app, ["docs", "settings"]).exit_code == 0
    assert CliRunner().invoke(cli.app, ["docs", "settings", "--check"]).exit_code == 0
    assert stale.read_text() == render()


def test_service_ports_default_to_the_services_and_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in SERVICES:
        monkeypatch.delenv(f"KARYA_{name.upper()}_PORT", raising=False)
    assert {name: HttpSettings().port(name) for name in SERVICES} == {"orders": 8081, "ledger": 8082, "gateway": 8083}
    monkeypatch.setenv("KARYA_LEDGER_PORT", "18082")
    assert http_port("ledger") == 18082 and http_port("orders") == 8081
    monkeypatch.setenv("KARYA_GATEWAY_PORT", "70000")
    with pytest.raises(SystemExit, match="KARYA_GATEWAY_PORT"):
        http_port("gateway")
