"""Which services exist and how each process is built (the composition root)."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from fastapi import FastAPI

from infra.runtime import ServiceRuntime
from infra.settings import KafkaSettings, database_settings, gateway_database_url, kafka_settings

SERVICES: dict[str, tuple[str, int]] = {
    "orders": ("services.orders.app", 8081),
    "ledger": ("services.ledger.app", 8082),
    "gateway": ("services.gateway.app", 8083),
}


def default_port(service: str) -> int:
    """The HTTP port a service listens on by default."""
    return SERVICES[_known(service)][1]


def _known(service: str) -> str:
    if service not in SERVICES:
        raise SystemExit(f"unknown service {service!r}; choose one of {', '.join(SERVICES)}")
    return service


def runtime_builder(service: str) -> Callable[[str, KafkaSettings], ServiceRuntime]:
    """The ``build_runtime(database_url, kafka)`` function of a service."""
    module = importlib.import_module(SERVICES[_known(service)][0])
    builder: Callable[[str, KafkaSettings], ServiceRuntime] = module.build_runtime
    return builder


def database_url(service: str) -> str:
    """The database URL a service process connects with: the gateway as its own role
    (``KARYA_GATEWAY_DATABASE_URL``), orders and ledger as the service role (``DATABASE_URL``)."""
    if _known(service) == "gateway":
        return gateway_database_url()
    return database_settings().url


def build_http_app(service: str) -> FastAPI:
    """The FastAPI app of one service process, configured from the environment."""
    runtime = runtime_builder(service)(database_url(service), kafka_settings())
    return runtime.http_app()
