"""deploy/k8s: the base and every overlay render (tests/kustomize.py, the subset of kustomize they use), every
built-in kind validates against the Kubernetes OpenAPI schemas offline (``kubernetes-validate``, strict: unknown
fields are errors), and the operators' kinds (KEDA ScaledObject, Strimzi KafkaTopic, CloudNativePG Cluster) validate
against their CRDs' schemas (tests/fixtures/deploy/crds, copied from the operators' repositories at a release, with
unknown fields refused as `kubectl apply --validate=strict` does).

What the manifests tell the processes agrees with the code: each Deployment runs `karya serve NAME` on that
service's port and probes /healthz (liveness) and /readyz (readiness) there, with resources, a non-root user and a
PodDisruptionBudget; every environment variable is one the code reads; every secret is a secretKeyRef (no Secret and
no secret value in the manifests) and every variable bound to a secret is one the services read as a secret; the
gateway gets every secret it refuses to start without; the migrations run as a Job; each consumer group has a KEDA
ScaledObject on its own group and topics, up to the partition count; the Strimzi overlay creates exactly the topics
the services use, with that partition count, and the CloudNativePG cluster has Karya's roles.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from infra.db.roles import MIGRATOR, ROLES
from infra.messaging.topics import dead_letter_topic
from infra.settings import KafkaSettings
from karya.services import SERVICES, wired_consumers, wiring_of
from tests.deploy_support import DEPLOY, ROOT, required_gateway_secrets, service_ports, settings_envs
from tests.kustomize import Resource, build, containers, pod_spec, resource_id

K8S = DEPLOY / "k8s"
KUSTOMIZATIONS = sorted(p.parent for p in K8S.rglob("kustomization.yaml"))
CRDS = ROOT / "tests" / "fixtures" / "deploy" / "crds"
KUBERNETES_VERSION = "1.33.0"


def _name(path: Path) -> str:
    return str(path.relative_to(K8S))


@cache
def rendered(directory: Path) -> tuple[Resource, ...]:
    return tuple(build(directory))


def _of(directory: Path, kind: str) -> list[Resource]:
    return [r for r in rendered(directory) if r["kind"] == kind]


@cache
def _crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) → the CRD's schema, every object closed to unknown fields unless it preserves them."""
    out = {}
    for path in CRDS.glob("*.json"):
        crd = json.loads(path.read_text())
        for version in crd["versions"]:
            if version["served"]:
                out[(f"{crd['group']}/{version['name']}", crd["kind"])] = _strict(copy.deepcopy(version["schema"]))
    return out


def _strict(node: Any) -> Any:
    if isinstance(node, dict):
        for value in node.values():
            _strict(value)
        if (
            "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
    elif isinstance(node, list):
        for value in node:
            _strict(value)
    return node


def _topics_used() -> set[str]:
    """Every topic a service reads or writes (what ``ensure_topics`` creates at its start, with the .dlq twins)."""
    kafka = KafkaSettings(bootstrap_servers="127.0.0.1:1", completeness_audit_interval_s=0)
    used: set[str] = set()
    for service in SERVICES:
        used |= wiring_of(service, kafka)._topics
    return used | {dead_letter_topic(t) for t in used}


def _config(directory: Path) -> dict[str, str]:
    data: dict[str, str] = next(r for r in _of(directory, "ConfigMap") if r["metadata"]["name"] == "karya-config")[
        "data"
    ]
    return data


def _env_of(directory: Path, container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Env name → its source ({"value": ...}, {"valueFrom": ...} or {"configMap": name}) for one container."""
    maps = {r["metadata"]["name"]: r.get("data", {}) for r in _of(directory, "ConfigMap")}
    out: dict[str, dict[str, Any]] = {}
    for source in container.get("envFrom", []):
        name = source["configMapRef"]["name"]
        out.update({key: {"configMap": name} for key in maps[name]})
    for env in container.get("env", []):
        out[env["name"]] = {k: v for k, v in env.items() if k != "name"}
    return out


def test_the_renderer_applies_patches_labels_images_and_the_namespace_as_kustomize_does() -> None:
    base, overlay = rendered(K8S / "base"), rendered(K8S / "overlays" / "operators")
    assert {r["metadata"].get("namespace") for r in base} == {None}
    assert {r["metadata"]["namespace"] for r in overlay} == {"karya"}
    config = _config(K8S / "overlays" / "operators")
    assert config["KAFKA_BOOTSTRAP_SERVERS"] == "karya-kafka-bootstrap:9092", "patched"
    assert config["KARYA_KAFKA_PARTITIONS"] == _config(K8S / "base")["KARYA_KAFKA_PARTITIONS"], "the rest kept"
    egress = next(r for r in overlay if r["metadata"]["name"] == "karya-egress")["spec"]["egress"]
    assert "namespaceSelector" not in str(egress), "a list in a patch replaces the base's"
    images = {c["image"] for r in overlay for c in containers(r)}
    assert images == {"registry.example.com/karya:0.1.0"}
    for r in base:
        assert r["metadata"]["labels"]["app.kubernetes.io/part-of"] == "karya"
        if pod_spec(r) is not None:
            assert r["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/part-of"] == "karya"
            assert "app.kubernetes.io/part-of" not in r["spec"].get("selector", {}).get("matchLabels", {})
    kafka_topic = next(r for r in overlay if r["kind"] == "KafkaTopic")
    assert "app.kubernetes.io/part-of" not in kafka_topic["metadata"]["labels"], "base labels stay in the base"


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=_name)
def test_it_renders_and_built_in_kinds_validate_against_the_kubernetes_schemas(directory: Path) -> None:
    resources = rendered(directory)
    assert resources
    custom = _crd_schemas().keys()
    problems = []
    for r in resources:
        if (r["apiVersion"], r["kind"]) in custom:
            continue  # validated against its CRD below
        try:
            kubernetes_validate.validate(r, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{resource_id(r)}: {exc.message} at {'/'.join(map(str, exc.path))}")
    assert not problems, problems


def test_the_kubernetes_validation_refuses_unknown_fields_and_wrong_types() -> None:
    deployment = copy.deepcopy(_of(K8S / "base", "Deployment")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["paht"] = "/healthz"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    deployment = copy.deepcopy(_of(K8S / "base", "Deployment")[0])
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=_name)
def test_operator_kinds_validate_against_their_crd_schemas(directory: Path) -> None:
    schemas = _crd_schemas()
    problems = []
    for r in rendered(directory):
        schema = schemas.get((r["apiVersion"], r["kind"]))
        if schema is None:
            continue
        for error in jsonschema.Draft7Validator(schema).iter_errors(r):
            problems.append(f"{resource_id(r)}: {error.message} at {'/'.join(map(str, error.absolute_path))}")
    assert not problems, problems
    kinds = {r["kind"] for r in rendered(directory)}
    custom = {k for (_, k) in schemas}
    assert kinds & custom, "the base has ScaledObjects, the operators overlay KafkaTopics and a Cluster"


def test_the_crd_validation_refuses_unknown_fields_and_wrong_types() -> None:
    scaled = copy.deepcopy(_of(K8S / "base", "ScaledObject")[0])
    scaled["spec"]["maxReplicas"] = 6  # the field is maxReplicaCount
    scaled["spec"]["minReplicaCount"] = "one"
    schema = _crd_schemas()[("keda.sh/v1alpha1", "ScaledObject")]
    assert len(list(jsonschema.Draft7Validator(schema).iter_errors(scaled))) == 2


def test_every_kind_is_validated_by_one_or_the_other() -> None:
    custom = {(v, k) for (v, k) in _crd_schemas()}
    for directory in KUSTOMIZATIONS:
        for r in rendered(directory):
            if (r["apiVersion"], r["kind"]) in custom:
                continue
            kubernetes_validate.validate(r, KUBERNETES_VERSION, strict=True)  # raises for an unknown kind


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=_name)
def test_each_service_runs_probes_and_listens_on_its_own_port(directory: Path) -> None:
    deployments = {r["metadata"]["name"]: r for r in _of(directory, "Deployment")}
    assert set(deployments) == set(SERVICES)
    budgets = [r["spec"]["selector"]["matchLabels"] for r in _of(directory, "PodDisruptionBudget")]
    services = [r for r in _of(directory, "Service")]
    for name, port in service_ports().items():
        deployment = deployments[name]
        (container,) = pod_spec(deployment)["containers"]  # type: ignore[index]
        args = container["args"]
        assert args[:2] == ["serve", name] and args[args.index("--port") + 1] == str(port)
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"http": port}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
        assert "memory" in container["resources"]["limits"]
        security = pod_spec(deployment)["securityContext"]  # type: ignore[index]
        assert security["runAsNonRoot"] is True and security["runAsUser"] != 0
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert any(b.items() <= labels.items() for b in budgets), f"{name}: no PodDisruptionBudget selects it"
        assert any(s["spec"]["selector"].items() <= labels.items() for s in services), f"{name}: no Service"


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=_name)
def test_environment_and_secrets_are_the_ones_the_code_reads(directory: Path) -> None:
    known = settings_envs()
    credentials = required_gateway_secrets()
    assert not _of(directory, "Secret"), "secrets are referenced, never defined here"
    for workload in [*_of(directory, "Deployment"), *_of(directory, "Job")]:
        for container in containers(workload):
            env = _env_of(directory, container)
            unknown = sorted(env.keys() - known.keys())
            assert not unknown, f"{workload['metadata']['name']}: {unknown} are read by nothing"
            for name, source in env.items():
                from_secret = "secretKeyRef" in source.get("valueFrom", {})
                if known[name]:
                    assert from_secret, f"{name} is a secret: a secretKeyRef, not {source}"
                elif from_secret:  # the gateway's credentials include identifiers (app key, partner id)
                    assert name in credentials, f"{name} is no secret or credential the services read"


def test_the_gateway_gets_every_secret_it_refuses_to_start_without() -> None:
    for directory in KUSTOMIZATIONS:
        gateway = next(r for r in _of(directory, "Deployment") if r["metadata"]["name"] == "gateway")
        env = _env_of(directory, containers(gateway)[0])
        for name in required_gateway_secrets():
            assert not env[name]["valueFrom"]["secretKeyRef"].get("optional"), name
        assert "KARYA_GATEWAY_DATABASE_URL" in env and "DATABASE_URL" not in env, "the gateway's own role"


def test_migrations_run_as_a_job_bootstrap_then_migrate() -> None:
    for directory in KUSTOMIZATIONS:
        (job,) = _of(directory, "Job")
        spec = pod_spec(job)
        assert spec is not None and spec["restartPolicy"] == "Never"
        assert [c["args"][:2] for c in spec["initContainers"]] == [["db", "bootstrap"]]
        assert [c["args"] for c in spec["containers"]] == [["db", "migrate"]]
        for deployment in _of(directory, "Deployment"):
            assert all(c["args"][0] == "serve" for c in containers(deployment)), "services never migrate"


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=_name)
def test_one_scaled_object_per_consumer_group_up_to_the_partition_count(directory: Path) -> None:
    config = _config(directory)
    partitions = int(config.get("KARYA_KAFKA_PARTITIONS", KafkaSettings.model_fields["partitions"].default))
    prefix = config.get("KARYA_TOPIC_PREFIX", "")
    deployments = {r["metadata"]["name"]: r for r in _of(directory, "Deployment")}
    scaled = {r["spec"]["scaleTargetRef"]["name"]: r for r in _of(directory, "ScaledObject")}
    consumers = {c.schema: c for c in wired_consumers(prefix)}  # one consumer group per service, its schema's name
    assert set(scaled) == set(consumers) == set(SERVICES)
    for service, consumer in consumers.items():
        spec = scaled[service]["spec"]
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] == partitions
        env = _env_of(directory, containers(deployments[service])[0])
        triggers = spec["triggers"]
        assert {t["metadata"]["consumerGroup"] for t in triggers} == {consumer.group_id}
        assert sorted(t["metadata"]["topic"] for t in triggers) == sorted(consumer.topics), "one trigger a topic"
        for trigger in triggers:
            assert trigger["type"] == "kafka"
            assert trigger["metadata"]["bootstrapServersFromEnv"] in env, "read from the Deployment's own env"


def test_the_strimzi_overlay_creates_every_topic_the_services_use_with_the_partition_count() -> None:
    directory = K8S / "overlays" / "operators"
    topics = {r["spec"]["topicName"]: r["spec"] for r in _of(directory, "KafkaTopic")}
    assert set(topics) == _topics_used()
    partitions = int(_config(directory)["KARYA_KAFKA_PARTITIONS"])
    assert {s["partitions"] for s in topics.values()} == {partitions}
    assert all(s["replicas"] >= 3 and int(s["config"]["min.insync.replicas"]) >= 2 for s in topics.values())
    assert _config(directory)["KAFKA_BOOTSTRAP_SERVERS"] == "karya-kafka-bootstrap:9092"


def test_the_cloudnative_pg_cluster_has_karyas_roles_with_passwords_by_reference() -> None:
    (cluster,) = _of(K8S / "overlays" / "operators", "Cluster")
    spec = cluster["spec"]
    assert spec["bootstrap"]["initdb"]["owner"] == MIGRATOR
    managed = {r["name"]: r for r in spec["managed"]["roles"]}
    assert set(managed) == set(ROLES) - {MIGRATOR}
    assert all(set(r["passwordSecret"]) == {"name"} for r in managed.values())


def test_network_policies_let_prometheus_scrape_and_the_webhooks_in() -> None:
    for directory in KUSTOMIZATIONS:
        policies = _of(directory, "NetworkPolicy")
        for name, port in service_ports().items():
            labels = next(r for r in _of(directory, "Deployment") if r["metadata"]["name"] == name)["spec"]["template"][
                "metadata"
            ]["labels"]
            ingress_ports = {
                p["port"]
                for r in policies
                if r["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items()
                for rule in r["spec"].get("ingress", [])
                for p in rule.get("ports", [])
            }
            assert port in ingress_ports, f"{name}: nothing admits :{port}"
            denied = any(
                r["spec"]["podSelector"]["matchLabels"].items() <= labels.items() and "ingress" not in r["spec"]
                for r in policies
                if "Ingress" in r["spec"]["policyTypes"]
            )
            assert denied, f"{name}: no default deny"
