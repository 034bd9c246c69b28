"""The gateway's HTTP edge: what uvicorn is told so slow or too many clients cannot hold the listener.

uvicorn bounds idle keep-alive connections (``timeout_keep_alive``), the size of a request's line and headers
(``h11_max_incomplete_event_size``) and the connections it serves at once (``limit_concurrency``: above it a
new request gets 503), but nothing bounds how long a client may take to send its headers: a socket that sends
one header byte a minute is held forever. :class:`HeaderDeadlineProtocol` adds that deadline to uvicorn's h11
protocol. The body's deadline is the webhook route's (:mod:`services.gateway.webhooks`, 408).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from services.gateway.settings import EdgeSettings

__all__ = ["HeaderDeadlineProtocol", "header_deadline_protocol", "serve_options", "uvicorn_options"]

_TIMEOUT_RESPONSE = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's line and headers.

    The clock starts when the connection opens and again when a response completes (keep-alive); when it runs
    out while the request's headers are still incomplete, the client gets 408 and the connection is closed. A
    request whose headers arrived is never touched here.
    """

    header_timeout_s: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Serve the connection; its first request's headers are due within the deadline."""
        super().connection_made(transport)
        self._arm_header_deadline()

    def data_received(self, data: bytes) -> None:
        """Feed h11; once the headers are complete the deadline no longer applies."""
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm_header_deadline()

    def on_response_complete(self) -> None:
        """After a response the next request's headers are due within the deadline (keep-alive)."""
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the deadline with the connection."""
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_overdue)

    def _disarm_header_deadline(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_overdue(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        # h11 cannot send a response before it has a request, so the 408 is written as bytes.
        self.transport.write(_TIMEOUT_RESPONSE)
        self.transport.close()


def header_deadline_protocol(header_timeout_s: float) -> type[HeaderDeadlineProtocol]:
    """A :class:`HeaderDeadlineProtocol` subclass with this deadline (uvicorn takes a class, not an instance)."""
    return type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout_s": header_timeout_s})


def uvicorn_options(edge: EdgeSettings | None = None) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config`` that apply the edge limits."""
    edge = edge or EdgeSettings()
    return {
        "http": header_deadline_protocol(edge.header_timeout_s),
        "limit_concurrency": edge.max_concurrency,
        "timeout_keep_alive": edge.keep_alive_timeout_s,
        "h11_max_incomplete_event_size": edge.max_header_bytes,
        "timeout_graceful_shutdown": edge.graceful_shutdown_s,
    }


def serve_options(service: str) -> dict[str, Any]:
    """The edge options for ``karya serve <service>``: the gateway's limits; other services keep uvicorn's."""
    return uvicorn_options() if service == "gateway" else {}
