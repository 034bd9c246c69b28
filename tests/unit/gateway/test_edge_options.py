"""``karya serve gateway`` hands uvicorn the edge limits from ``KARYA_GATEWAY_*``; other services keep uvicorn's."""

from __future__ import annotations

import pytest
import uvicorn

from services.gateway.edge import HeaderDeadlineProtocol, serve_options


def test_gateway_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KARYA_GATEWAY_MAX_CONCURRENCY", "7")
    monkeypatch.setenv("KARYA_GATEWAY_HEADER_TIMEOUT_S", "2.5")
    monkeypatch.setenv("KARYA_GATEWAY_KEEP_ALIVE_TIMEOUT_S", "3")
    monkeypatch.setenv("KARYA_GATEWAY_MAX_HEADER_BYTES", "4096")
    monkeypatch.setenv("KARYA_GATEWAY_GRACEFUL_SHUTDOWN_S", "9")
    options = serve_options("gateway")
    protocol = options.pop("http")
    assert issubclass(protocol, HeaderDeadlineProtocol) and protocol.header_timeout_s == 2.5
    assert options == {
        "limit_concurrency": 7,
        "timeout_keep_alive": 3,
        "h11_max_incomplete_event_size": 4096,
        "timeout_graceful_shutdown": 9,
    }


def test_uvicorn_accepts_the_options() -> None:
    config = uvicorn.Config(lambda *_: None, **serve_options("gateway"))
    config.load()
    assert issubclass(config.http_protocol_class, HeaderDeadlineProtocol)
    assert config.limit_concurrency == 256


def test_other_services_keep_uvicorns_defaults() -> None:
    assert serve_options("orders") == {} and serve_options("ledger") == {}
