"""deploy/compose: the Compose file validates against the Compose Specification's JSON Schema (a copy in
tests/fixtures/deploy, with its source), and what it tells the Karya containers agrees with the code: every
environment variable is one the code reads, every secret comes from the user's .env (an interpolation, never a
value), the gateway gets every secret it refuses to start without, each service listens, publishes, is probed and
scraped on its own port, and Prometheus's rule-file glob loads exactly the rule files (not their promtool tests).
"""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy_support import DEPLOY, ROOT, required_gateway_secrets, service_ports, settings_envs

COMPOSE = DEPLOY / "compose" / "compose.yaml"
SCHEMA = ROOT / "tests" / "fixtures" / "deploy" / "compose-spec.json"
KARYA_IMAGE = "karya:dev"
_INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}")


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())  # YAML merge keys (<<) resolved as Compose does
    return loaded


def _karya_services() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in _compose()["services"].items() if s.get("image") == KARYA_IMAGE}


def test_the_compose_file_validates_against_the_compose_specification_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(_compose()), key=lambda e: list(e.absolute_path))
    assert not errors, [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


def test_the_schema_rejects_what_compose_would_reject() -> None:
    """The validator is not vacuous: an unknown service key, an unknown dependency condition and a nested
    environment value are each an error."""
    schema = json.loads(SCHEMA.read_text())
    service = {"image": KARYA_IMAGE, "restart_policy": "always", "depends_on": {"kafka": {"condition": "ready"}}}
    bad = {"services": {"orders": {**service, "environment": {"A": {"b": 1}}}}}
    assert len(list(jsonschema.Draft7Validator(schema).iter_errors(bad))) == 3


def test_it_runs_kafka_postgres_migrations_services_prometheus_grafana_and_a_lag_exporter() -> None:
    services = _compose()["services"]
    images = " ".join(str(s.get("image", "")) for s in services.values())
    for part in ("apache/kafka:", "postgres:", "prom/prometheus:", "grafana/grafana:", "kafka-lag-exporter:"):
        assert part in images, part
    commands = {n: s.get("command", []) for n, s in _karya_services().items()}
    assert commands["migrate"] == ["db", "migrate"]
    assert {n for n, c in commands.items() if c[:1] == ["serve"]} == set(service_ports())
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller", "KRaft, no ZooKeeper"


def test_every_environment_variable_of_a_karya_container_is_read_by_the_code() -> None:
    known = settings_envs()
    for name, service in _karya_services().items():
        unknown = sorted(set(service.get("environment", {})) - known.keys())
        assert not unknown, f"{name}: {unknown} are read by no settings class or code path"


def test_secrets_come_from_the_users_env_file_never_from_the_compose_file() -> None:
    known = settings_envs()
    for name, service in _karya_services().items():
        for env, value in service.get("environment", {}).items():
            if known.get(env):
                assert _INTERPOLATION.search(str(value)), f"{name}: {env} holds a value instead of ${{...}}"
    example = [line for line in (COMPOSE.parent / ".env.example").read_text().splitlines() if "=" in line]
    listed = {line.split("=", 1)[0] for line in example}
    used = set(_INTERPOLATION.findall(COMPOSE.read_text()))
    secrets_used = {v for v in used if "PASSWORD" in v or known.get(v)}
    assert secrets_used <= listed, f".env.example lacks {sorted(secrets_used - listed)}"
    assert all(line.endswith("=") for line in example), ".env.example holds no values"


def test_the_gateway_gets_every_secret_it_refuses_to_start_without() -> None:
    gateway = _karya_services()["gateway"]["environment"]
    assert required_gateway_secrets() <= gateway.keys()
    assert "KARYA_GATEWAY_DATABASE_URL" in gateway and "DATABASE_URL" not in gateway, "the gateway's own role"


@pytest.mark.parametrize("service", sorted(service_ports()))
def test_each_service_listens_is_published_probed_and_scraped_on_its_own_port(service: str) -> None:
    port = service_ports()[service]
    spec = _karya_services()[service]
    command = spec["command"]
    assert command[:2] == ["serve", service] and command[command.index("--port") + 1] == str(port)
    assert command[command.index("--host") + 1] == "0.0.0.0", "reachable from the other containers"  # noqa: S104
    assert [p.rsplit(":", 1)[1] for p in spec["ports"]] == [str(port)]
    assert all(p.startswith("127.0.0.1:") for p in spec["ports"]), "published on the host's loopback only"
    assert f"127.0.0.1:{port}/healthz" in " ".join(spec["healthcheck"]["test"])
    prometheus = yaml.safe_load((COMPOSE.parent / "prometheus.yml").read_text())
    targets = {t for job in prometheus["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    assert f"{service}:{port}" in targets


def test_prometheus_rule_glob_loads_exactly_the_rule_files() -> None:
    prometheus = yaml.safe_load((COMPOSE.parent / "prometheus.yml").read_text())
    volumes = _compose()["services"]["prometheus"]["volumes"]
    mounted = next(v for v in volumes if v.endswith(":/etc/prometheus/rules:ro"))
    rules_dir = (COMPOSE.parent / mounted.split(":", 1)[0]).resolve()
    assert rules_dir == DEPLOY / "prometheus" / "rules"
    files = sorted(p.name for p in rules_dir.iterdir())
    (pattern,) = (Path(p).name for p in prometheus["rule_files"])
    matched = [f for f in files if fnmatch.fnmatchcase(f, pattern.replace("[^", "[!"))]  # Go's [^..] is fnmatch's [!..]
    assert matched == [f for f in files if f.endswith(".yml") and not f.endswith(".test.yml")]


def test_grafana_mounts_the_provisioning_and_dashboards_that_exist() -> None:
    for volume in _compose()["services"]["grafana"]["volumes"]:
        source = volume.split(":", 1)[0]
        if source.startswith("."):
            assert (COMPOSE.parent / source).resolve().is_dir(), volume
