"""How a Prometheus metric of this project is declared: one call with its kind, name, help text and label names,
on the registry of the process (each :class:`infra.runtime.ServiceRuntime` has its own; ``None`` in tests that
only read the values back)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge

_Metric = TypeVar("_Metric", Counter, Gauge)


def labelled(
    kind: type[_Metric], name: str, documentation: str, labels: Sequence[str], registry: CollectorRegistry | None
) -> _Metric:
    """A ``kind`` (``Counter`` or ``Gauge``) called ``name``, documented by ``documentation``, with ``labels``."""
    return kind(name, documentation, list(labels), registry=registry)
