"""The relay's loop with fakes (no database, no broker): its error path cannot kill it, nothing is sent before
in-flight rows are recovered, and a lock connection that fails ends the loop with LeadershipLost."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from structlog.testing import capture_logs

from infra.messaging.metrics import MessagingMetrics
from infra.messaging.relay import LeadershipLost, OutboxRelay


class _FlakyRecovery(OutboxRelay):
    """Recovery fails twice (the database is away), then works; the first batch after it stops the loop."""

    def __init__(self, stop: asyncio.Event, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stop = stop
        self.calls: list[str] = []

    async def recover_in_flight(self) -> int:
        self.calls.append("recover")
        if self.calls.count("recover") <= 2:
            raise ConnectionError("the database system is starting up")
        return 0

    async def publish_once(self, producer: object) -> int:
        self.calls.append("publish")
        self.stop.set()
        return 1


def _relay(cls: type[OutboxRelay], **kwargs: Any) -> Any:
    return cls(engine=cast(AsyncEngine, None), schema="s", bootstrap_servers="-", metrics=MessagingMetrics(), **kwargs)


async def test_a_failing_recovery_is_retried_and_nothing_is_sent_before_it_succeeds() -> None:
    stop = asyncio.Event()
    relay = _relay(_FlakyRecovery, stop=stop)
    with capture_logs() as logs:
        await relay._loop(cast(Any, None), stop)
    assert relay.calls == ["recover", "recover", "recover", "publish"]
    failed = [e for e in logs if e["event"] == "outbox_publish_failed"]
    assert (failed[0]["stage"], failed[0]["error"]) == ("recover", "ConnectionError")
    assert failed[1:] == [
        {"event": "outbox_publish_failed", "log_level": "error", "repeated": 1, "resolved": True}
        | {"error": "ConnectionError", "schema": "s"}
    ], "the repeat is held back, then counted once the relay publishes again"


class _DeadLockConnection:
    async def execute(self, *args: object, **kwargs: object) -> None:
        raise ConnectionResetError("connection was closed in the middle of operation")


async def test_a_lock_connection_that_fails_ends_the_loop_with_leadership_lost() -> None:
    class _Idle(OutboxRelay):
        async def recover_in_flight(self) -> int:
            return 0

        async def publish_once(self, producer: object) -> int:
            return 0

    relay = _relay(_Idle, leadership_check_s=0.0, idle_sleep_s=0.001)
    relay._lock_conn = cast(AsyncConnection, _DeadLockConnection())
    with pytest.raises(LeadershipLost) as lost:
        await relay._loop(cast(Any, None), asyncio.Event())
    assert isinstance(lost.value.__cause__, ConnectionResetError)


def test_a_relay_that_never_led_exports_leader_0_so_no_leader_is_visible() -> None:
    metrics = MessagingMetrics()
    OutboxRelay(engine=cast(AsyncEngine, None), schema="ledger", bootstrap_servers="-", metrics=metrics)
    assert metrics.registry.get_sample_value("karya_outbox_relay_leader", {"schema": "ledger"}) == 0.0
