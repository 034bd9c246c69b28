"""The Prometheus rule files in deploy/prometheus/rules: valid (`promtool check rules`), their unit tests pass
(`promtool test rules`), every metric and label matcher they use is one the services really export, and every alert
has a severity, a summary, a description and a runbook section in docs/operations.md.

The metric names come from the registries of the three service runtimes as the composition root
(``karya.services.build_service``) wires them (nothing connects), not from a list kept by hand. `make test` installs
promtool (Debian's ``prometheus`` package) when it is missing; this test fails rather than skips without it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from infra.settings import KafkaSettings
from karya.services import SERVICES, wiring_of

ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ROOT / "deploy" / "prometheus" / "rules"
OPERATIONS = ROOT / "docs" / "operations.md"
RULE_FILES = sorted(p for p in RULES_DIR.glob("*.yml") if not p.name.endswith(".test.yml"))
TEST_FILES = sorted(RULES_DIR.glob("*.test.yml"))

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}
# Labels Prometheus adds to every scraped series (the scrape config's target labels).
_TARGET_LABELS = {"instance", "job"}
# The one rule allowed without a karya metric: Prometheus's own `up` of the karya scrape jobs (a process down).
_SCRAPE_UP = re.compile(r'up\{job=~"karya\.\*"\} == 0')


def _promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is not on PATH: `make test` installs it (Debian package `prometheus`)"
    return path


def _exported() -> dict[str, set[str]]:
    """Every sample name the services can export → its label names."""
    kafka = KafkaSettings(bootstrap_servers="127.0.0.1:1")  # completeness audit on: its gauge is registered
    registries: list[CollectorRegistry] = [wiring_of(service, kafka).metrics.registry for service in SERVICES]
    out: dict[str, set[str]] = {}
    for registry in registries:
        collectors: dict[str, Any] = registry._names_to_collectors  # private: label names live only there
        for collector in set(collectors.values()):
            labels = set(getattr(collector, "_labelnames", ()))
            for family in collector.describe() or collector.collect():
                for suffix in _SUFFIXES.get(family.type, ("",)):
                    extra = {"le"} if suffix == "_bucket" else {"quantile"} if family.type == "summary" else set()
                    out.setdefault(family.name + suffix, set()).update(labels | extra)
    return out


def _rules() -> list[tuple[Path, dict[str, Any]]]:
    return [
        (path, rule)
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def test_there_are_rule_files_and_each_has_its_promtool_test() -> None:
    assert RULE_FILES, f"no rule files in {RULES_DIR}"
    tested = {rule_file for test in TEST_FILES for rule_file in yaml.safe_load(test.read_text()).get("rule_files", [])}
    assert {p.name for p in RULE_FILES} <= tested, "every rule file is loaded by a *.test.yml"


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules(path: Path) -> None:
    done = subprocess.run([_promtool(), "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_promtool_test_rules(path: Path) -> None:
    done = subprocess.run(
        [_promtool(), "test", "rules", path.name], cwd=RULES_DIR, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_metric_and_label_used_in_an_expression_is_exported_by_a_service() -> None:
    exported = _exported()
    assert "karya_task_up" in exported and "karya_ledger_parked_oldest_age_seconds" in exported, "registries read"
    problems: list[str] = []
    for path, rule in _rules():
        expr: str = rule["expr"]
        name = rule.get("alert") or rule.get("record")
        used = set(re.findall(r"\bkarya_[a-zA-Z0-9_:]*", expr))
        assert used or _SCRAPE_UP.fullmatch(expr.strip()), f"{name} uses no karya metric"
        problems += [f"{path.name} {name}: {m} is not exported" for m in sorted(used - exported.keys())]
        known = _TARGET_LABELS.union(*(exported.get(m, set()) for m in used))
        for metric, matchers in re.findall(r"\b(karya_[a-zA-Z0-9_:]*)\{([^}]*)\}", expr):
            for label in re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", matchers):
                if label not in exported.get(metric, set()) | _TARGET_LABELS:
                    problems.append(f"{path.name} {name}: {metric} has no label {label}")
        for clause in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
            for label in filter(None, (x.strip() for x in clause.split(","))):
                if label not in known:
                    problems.append(f"{path.name} {name}: no metric it uses has label {label}")
    assert not problems, problems


def test_every_alert_has_severity_summary_description_and_a_runbook_section() -> None:
    headings = set(re.findall(r"^###\s+(\S+)\s*$", OPERATIONS.read_text(), flags=re.MULTILINE))
    alerts = [(path, rule) for path, rule in _rules() if "alert" in rule]
    assert alerts
    for path, rule in alerts:
        name = rule["alert"]
        assert rule.get("labels", {}).get("severity") in {"warning", "critical"}, f"{path.name} {name}: severity"
        annotations = rule.get("annotations", {})
        assert annotations.get("summary") and annotations.get("description"), f"{path.name} {name}: annotations"
        assert name in headings, f"{name}: no `### {name}` runbook section in docs/operations.md"
