"""The gateway's HTTP edge against a real uvicorn on a free loopback port: slow clients are cut off, not held.

Small limits (1 s deadlines, 4 connections) keep the tests short; every wait below is a bound so a regression
fails instead of hanging, never a timing assertion.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from services.gateway.app import build_runtime
from services.gateway.edge import uvicorn_options
from services.gateway.emit import GatewayTopics
from services.gateway.settings import EdgeSettings
from tests.integration.gateway_support import body_for, gateway_settings, kafka, signature, uid
from tests.naming import topic_prefix

pytestmark = pytest.mark.integration
TOPICS = GatewayTopics.with_prefix(topic_prefix("gwedge"))
ROUTE = "tokopedia/order-status"
PATH = f"/webhooks/{ROUTE}"
LIMIT = 4
HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 4.0
BOUND_S = 30.0  # generous ceiling for anything the server must do by itself; tests finish far sooner


@dataclass
class Edge:
    """A running gateway: its base URL and port."""

    url: str
    port: int


@pytest.fixture
async def edge(database: RoleUrls, kafka_bootstrap: str) -> AsyncIterator[Edge]:
    runtime = build_runtime(
        make_engine(database.gateway),
        kafka(kafka_bootstrap),
        settings=gateway_settings(gateway_body_timeout_s=BODY_TIMEOUT_S),
        clients={},
        topics=TOPICS,
        pollers=False,
    )
    limits = EdgeSettings(
        max_concurrency=LIMIT,
        header_timeout_s=HEADER_TIMEOUT_S,
        keep_alive_timeout_s=1,
        max_header_bytes=2048,
        graceful_shutdown_s=2,
    )
    config = uvicorn.Config(runtime.http_app(), log_level="warning", lifespan="off", **uvicorn_options(limits))
    server = uvicorn.Server(config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # the OS picks a free port
    port = int(sock.getsockname()[1])
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(200):
            if server.started or task.done():
                break
            await asyncio.sleep(0.05)
        assert server.started, "uvicorn did not start"
        yield Edge(f"http://127.0.0.1:{port}", port)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, BOUND_S)
        sock.close()
        await runtime.engine.dispose()


def _delivery() -> tuple[bytes, dict[str, str]]:
    body = body_for(ROUTE, str(700_000_000 + int(uid(), 16) % 100_000_000), 220)
    return body, {"Content-Type": "application/json", **signature(ROUTE, body)}


async def _deliver(edge: Edge) -> httpx.Response:
    body, headers = _delivery()
    async with httpx.AsyncClient(base_url=edge.url, timeout=BOUND_S) as client:
        return await client.post(PATH, content=body, headers=headers)


async def _open(edge: Edge, first_bytes: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    writer.write(first_bytes)
    await writer.drain()
    return reader, writer


async def _answer(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (bounded)."""
    return await asyncio.wait_for(reader.read(), BOUND_S)


async def test_a_slow_body_gets_408_and_is_closed_while_a_normal_delivery_is_accepted(edge: Edge) -> None:
    body, headers = _delivery()
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = f"POST {PATH} HTTP/1.1\r\nHost: gw\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode()
    reader, writer = await _open(edge, request + body[:10])  # the rest of the body never comes
    try:
        normal = await _deliver(edge)
        assert normal.status_code == 200, normal.text
        assert normal.json()["duplicate"] is False
        answer = await _answer(reader)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
    assert b"connection: close" in answer.lower()
    assert b"body not received within 4 s" in answer


async def test_slow_headers_beyond_the_limit_are_refused_then_cut_off_and_deliveries_resume(edge: Edge) -> None:
    slow = [await _open(edge, f"POST {PATH} HTTP/1.1\r\nHost: gw\r\nX-Slow: ".encode()) for _ in range(2 * LIMIT)]
    try:
        while_held = await _deliver(edge)  # answered at once, never queued behind the slow sockets
        assert while_held.status_code in (200, 503), while_held.text
        answers = [await _answer(reader) for reader, _ in slow]
        assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers), [a[:40] for a in answers]
        statuses = []
        for _ in range(50):  # the server closed them; its connection count drains as they are forgotten
            statuses.append((await _deliver(edge)).status_code)
            if statuses[-1] == 200:
                break
            await asyncio.sleep(0.2)
        assert statuses[-1] == 200, statuses
    finally:
        for _, writer in slow:
            writer.close()


async def test_unfinished_headers_over_the_size_limit_get_400_and_close(edge: Edge) -> None:
    # h11 bounds what it buffers of an unfinished header block; a finished block read at once is parsed
    reader, writer = await _open(edge, f"POST {PATH} HTTP/1.1\r\nHost: gw\r\nX-Big: {'a' * 4096}".encode())
    try:
        answer = await _answer(reader)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:80]
    assert (await _deliver(edge)).status_code == 200


async def test_a_request_with_complete_headers_is_not_cut_off_by_the_header_deadline(edge: Edge) -> None:
    body, headers = _delivery()
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = f"POST {PATH} HTTP/1.1\r\nHost: gw\r\n{head}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    reader, writer = await _open(edge, request.encode())
    try:
        # past the header deadline, well inside the body's: the headers are complete, so only the body's counts
        await asyncio.sleep(HEADER_TIMEOUT_S + 0.5)
        writer.write(body)
        await writer.drain()
        answer = await _answer(reader)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:80]
