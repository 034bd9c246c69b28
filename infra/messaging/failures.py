"""What a consumer does about a failure: wait for the database, retry a contended batch, or isolate the culprit.

A batch that fails because the database cannot take it now (no connection, a restart in progress, too many
connections, an operator shutdown) is no fault of its events: nothing can be applied meanwhile, so the whole batch
waits and is retried for as long as that lasts. A serialisation failure or deadlock is retried a bounded number of
times. Anything else is the events' business (per-event isolation, then dead letters).

Waits back off exponentially with jitter, capped at a few seconds, and an outage logs one line when it starts, a
summary with a count at most every ``summary_every_s`` while it lasts, and one when it ends, not a line per try.
"""

from __future__ import annotations

import enum
import random
import time
from collections.abc import Callable, Iterator

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import InterfaceError as SAInterfaceError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from infra.errors import describe_error
from infra.logging import get_logger

log = get_logger(__name__)

__all__ = ["Failure", "QuietWarnings", "backoff_s", "classify"]


class Failure(enum.Enum):
    """How a batch failure is handled."""

    UNAVAILABLE = "unavailable"
    """The database cannot take the batch now: retry the whole batch until it can (unbounded)."""
    CONTENDED = "contended"
    """Serialisation failure or deadlock: retry the whole batch a bounded number of times."""


# 08: connection exception; 57P01..57P05: admin/crash shutdown, cannot connect now (starting up, shutting down,
# hot standby without connections), database dropped, idle session timeout; 53300: too many connections;
# 25006: read-only transaction (a standby that is being promoted takes no writes yet).
_UNAVAILABLE_CLASSES = ("08",)
_UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "57P04", "57P05", "53300", "25006"})
_CONTENDED_STATES = frozenset({"40001", "40P01"})
_MAX_CHAIN = 8


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then what it wraps: SQLAlchemy's ``.orig`` (the DBAPI adapter's error) and the ``__cause__``
    chain. Not ``__context__``: an error raised while another was being handled is not caused by it."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo and len(seen) < _MAX_CHAIN:
        node = todo.pop(0)
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        orig = getattr(node, "orig", None)
        for nxt in (orig, node.__cause__):
            if isinstance(nxt, BaseException):
                todo.append(nxt)


def _is_interface_error(exc: BaseException) -> bool:
    # asyncpg's InterfaceError ("connection is closed") is not a PostgresError; checked by name so this module
    # does not depend on the driver.
    return isinstance(exc, SAInterfaceError) or (
        type(exc).__name__ == "InterfaceError" and type(exc).__module__.startswith("asyncpg")
    )


def classify(exc: BaseException) -> Failure | None:
    """How to handle ``exc`` failing a batch: :class:`Failure`, or None when the events are to blame."""
    contended = False
    for node in _chain(exc):
        state = getattr(node, "sqlstate", None) or getattr(node, "pgcode", None)
        if isinstance(state, str):
            if state.startswith(_UNAVAILABLE_CLASSES) or state in _UNAVAILABLE_STATES:
                return Failure.UNAVAILABLE
            if state in _CONTENDED_STATES:
                contended = True
        if isinstance(node, OSError | ConnectionError | PoolTimeoutError) or _is_interface_error(node):
            return Failure.UNAVAILABLE  # refused, reset, timed out, pool exhausted, connection closed
        if isinstance(node, DBAPIError) and node.connection_invalidated:
            return Failure.UNAVAILABLE
    return Failure.CONTENDED if contended else None


def backoff_s(attempt: int, base_ms: int, cap_ms: int, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait before try ``attempt + 1``: exponential from ``base_ms``, capped at ``cap_ms``, with the
    upper half jittered so consumers that failed together do not retry together."""
    ceiling = min(float(base_ms) * 2.0 ** min(max(attempt - 1, 0), 30), float(cap_ms))
    return (ceiling / 2.0 + rand() * ceiling / 2.0) / 1000.0


class QuietWarnings:
    """Rate-limited warnings for one consumer: the first of a kind is logged at once, repeats are counted and
    summed up at most every ``summary_every_s``, and :meth:`resolved` logs how long it lasted.

    A kind is the event name plus the error's class and SQLSTATE, so a new failure mode is always logged.
    """

    def __init__(
        self, consumer: str, summary_every_s: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._consumer = consumer
        self._every = summary_every_s
        self._clock = clock
        self._seen: dict[tuple[str, str, str], int] = {}
        self._started: float | None = None
        self._last_line = 0.0
        self._since_line = 0

    def warn(self, event: str, exc: BaseException, **facts: object) -> bool:
        """Count one occurrence of ``event`` caused by ``exc``; returns True when a line was logged."""
        described = describe_error(exc)
        kind = (event, str(described.get("error")), str(described.get("sqlstate", "")))
        now = self._clock()
        if self._started is None:
            self._started = now
        self._since_line += 1
        first = kind not in self._seen
        self._seen[kind] = self._seen.get(kind, 0) + 1
        if not first and now - self._last_line < self._every:
            return False
        log.warning(
            event,
            consumer=self._consumer,
            repeated=self._since_line,
            for_s=round(now - self._started, 1),
            **facts,
            **described,
        )
        self._last_line, self._since_line = now, 0
        return True

    def resolved(self, event: str) -> None:
        """The condition is over: log ``event`` once with how many failures and how long, then start afresh."""
        if self._started is None:
            return
        total = sum(self._seen.values())
        log.warning(event, consumer=self._consumer, failures=total, for_s=round(self._clock() - self._started, 1))
        self._seen.clear()
        self._started, self._last_line, self._since_line = None, 0.0, 0
