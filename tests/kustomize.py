"""A small kustomize for tests: renders the subset of a kustomization that deploy/k8s uses, with no binary and no
network (the `kustomize` binary is not installable from the Go proxy here).

Supported, with kustomize's meaning: ``resources`` (YAML files, or directories holding a kustomization),
``namespace`` (set on every resource), ``labels`` (``pairs``, added to metadata.labels, and with
``includeTemplates`` to pod templates; never to selectors), ``images`` (``name`` → ``newName``/``newTag`` on
containers and init containers), ``patches`` (``path`` of a strategic-merge patch naming its target by kind and
name: maps merge, lists of maps with a ``name`` merge by name, other lists are replaced). Anything else in a
kustomization is refused, so a file using more than this fails the test instead of rendering wrongly.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]
SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "patches"}
_POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
_CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "StorageClass"}


def load_documents(path: Path) -> list[Resource]:
    """The non-empty YAML documents of one file."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def build(directory: Path) -> list[Resource]:
    """Render the kustomization in ``directory``."""
    spec: dict[str, Any] = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(spec) - SUPPORTED
    if unsupported:
        raise ValueError(f"{directory}: kustomization fields this renderer does not support: {sorted(unsupported)}")
    resources: list[Resource] = []
    for entry in spec.get("resources", []):
        target = (directory / entry).resolve()
        resources += build(target) if target.is_dir() else load_documents(target)
    for patch in spec.get("patches", []):
        if set(patch) != {"path"}:
            raise ValueError(f"{directory}: only `patches: - path: FILE` is supported, not {patch}")
        for doc in load_documents(directory / patch["path"]):
            _apply_patch(resources, doc, directory / patch["path"])
    for label in spec.get("labels", []):
        _add_labels(resources, label["pairs"], bool(label.get("includeTemplates")))
        if label.get("includeSelectors"):
            raise ValueError("labels.includeSelectors is not supported")
    for image in spec.get("images", []):
        _set_image(resources, image)
    if "namespace" in spec:
        for r in resources:
            if r["kind"] not in _CLUSTER_SCOPED:
                r.setdefault("metadata", {})["namespace"] = spec["namespace"]
    ids = [resource_id(r) for r in resources]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"{directory}: resources defined twice: {duplicates}")
    return resources


def resource_id(r: Resource) -> tuple[str, str, str]:
    """(kind, namespace, name): what kustomize calls a resource id."""
    return r["kind"], r["metadata"].get("namespace", ""), r["metadata"]["name"]


def pod_spec(r: Resource) -> dict[str, Any] | None:
    """The pod spec of a workload, if it has one."""
    if r["kind"] not in _POD_TEMPLATE_KINDS:
        return None
    spec: dict[str, Any] = r["spec"]["template"]["spec"]
    return spec


def containers(r: Resource) -> list[dict[str, Any]]:
    """The containers and init containers of a workload."""
    spec = pod_spec(r)
    return [] if spec is None else [*spec.get("initContainers", []), *spec.get("containers", [])]


def _apply_patch(resources: list[Resource], patch: Resource, source: Path) -> None:
    matches = [
        r for r in resources if r["kind"] == patch["kind"] and r["metadata"]["name"] == patch["metadata"]["name"]
    ]
    if len(matches) != 1:
        raise ValueError(f"{source}: patch target {patch['kind']}/{patch['metadata']['name']} found {len(matches)}×")
    merged = _merge(matches[0], patch)
    matches[0].clear()
    matches[0].update(merged)


def _merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(patch, list) and all(isinstance(x, dict) and "name" in x for x in base):
        by_name = {x["name"]: x for x in base}
        merged = [_merge(by_name[x["name"]], x) if x.get("name") in by_name else copy.deepcopy(x) for x in patch]
        patched = {x["name"] for x in patch if isinstance(x, dict)}
        return [x for x in base if x["name"] not in patched] + merged
    return copy.deepcopy(patch)


def _add_labels(resources: list[Resource], pairs: dict[str, str], templates: bool) -> None:
    for r in resources:
        r.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
        if templates and r["kind"] in _POD_TEMPLATE_KINDS:
            r["spec"]["template"].setdefault("metadata", {}).setdefault("labels", {}).update(pairs)


def _set_image(resources: list[Resource], image: dict[str, str]) -> None:
    for r in resources:
        for container in containers(r):
            name, _, tag = container["image"].partition(":")
            if name == image["name"]:
                container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag or 'latest')}"
