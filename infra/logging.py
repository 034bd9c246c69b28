"""structlog configuration: JSON lines on stderr, with context bound per message.

Every process calls :func:`configure_logging` at start (``karya`` does, before any command runs; ``karya serve``
names the service): one JSON object per line on stderr, ``service`` on every line, the level from
``KARYA_LOG_LEVEL``. Libraries that log through the standard library (uvicorn, aiokafka, FastStream) go through
the same renderer at WARNING or above, with identical lines rate-limited (a broker outage makes aiokafka repeat
itself many times a second).

The consumer binds ``event_id``, ``subject`` (the order key), ``correlation_id``, ``topic``, ``partition`` and
``offset`` through :func:`bind_event_context` while it handles an event; nothing personal is ever logged
(inmates appear only as pseudonyms). Exceptions are logged as :func:`infra.errors.describe_error` facts, never as
their text or traceback: an ``exc_info`` that reaches a log call anyway is replaced by those facts.
:class:`LogLimiter` keeps retry loops quiet during an outage.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import structlog

LIBRARY_LEVEL = logging.WARNING
REPEAT_INTERVAL_S = 60.0
_URL_LOGGERS = ("httpx", "httpcore")
_LIBRARY_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "aiokafka", "faststream", "asyncio", "sqlalchemy")


def configure_logging(service: str, level: str | None = None) -> None:
    """Configure structlog and the stdlib root logger for one process (idempotent; the last call wins)."""
    level_name = (level or os.environ.get("KARYA_LOG_LEVEL") or "INFO").strip().upper()
    numeric = logging.getLevelNamesMapping().get(level_name)
    known = isinstance(numeric, int) and level_name != "NOTSET"
    if not known:
        numeric = logging.INFO
    assert numeric is not None
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _ServiceName(service),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _describe_exc_info,
    ]
    renderer = structlog.processors.JSONRenderer(serializer=_dumps)
    structlog.reset_defaults()
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, structlog.stdlib.ExtraAdder({"repeated"}), *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, LIBRARY_LEVEL))
    for name in _LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        library.handlers.clear()
        library.setLevel(logging.NOTSET)
        library.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # one line per /metrics scrape says nothing
    for name in _URL_LOGGERS:  # they log full request URLs, and Shopee's carry access_token: never below WARNING
        logging.getLogger(name).setLevel(logging.WARNING)
    if not known:
        get_logger(__name__).warning("log_level_unknown", variable="KARYA_LOG_LEVEL", using="INFO")


class _ServiceName:
    """Adds ``service`` to every line (a processor, not a context variable: threads and tasks all get it)."""

    def __init__(self, service: str) -> None:
        self._service = service

    def __call__(self, _: object, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event_dict.setdefault("service", self._service)
        return event_dict


def _describe_exc_info(_: object, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replace ``exc_info`` (a traceback would carry the error's text) by value-free facts about the error."""
    exc_info = event_dict.pop("exc_info", None)
    if not exc_info:
        return event_dict
    if isinstance(exc_info, BaseException):
        exc: BaseException | None = exc_info
    elif isinstance(exc_info, tuple):
        exc = exc_info[1]
    else:
        exc = sys.exc_info()[1]
    if exc is not None:
        from infra.errors import describe_error  # infra.errors imports nothing from here; kept lazy anyway

        for key, value in describe_error(exc).items():
            event_dict.setdefault(key, value)
    return event_dict


def _dumps(obj: Any, **kwargs: Any) -> str:
    return orjson.dumps(obj, default=kwargs.get("default", str)).decode()


class RepeatFilter(logging.Filter):
    """For stdlib records: the first of identical records (same logger, level and message template) passes, the
    repeats within ``interval_s`` are counted, and the next one after the interval carries ``repeated=<count>``."""

    def __init__(self, interval_s: float = REPEAT_INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._interval = interval_s
        self._clock = clock
        self._windows: dict[tuple[str, int, str], list[float]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """True when the record is to be written."""
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        window = self._windows.get(key)
        if window is not None and now - window[0] < self._interval:
            window[1] += 1
            return False
        if window is not None and window[1]:
            record.repeated = int(window[1])
        if len(self._windows) >= 4096:
            self._windows.clear()
        self._windows[key] = [now, 0]
        return True


@dataclass
class _Window:
    started: float
    method: Callable[..., Any]
    event: str
    fields: dict[str, object]
    count: int = 0


class LogLimiter:
    """Keeps a retry loop's log quiet: of identical lines (same event, ``key``, error class and SQLSTATE) the
    first is written; repeats within ``interval_s`` are only counted, and the next line after the interval carries
    ``repeated=<count>``. :meth:`resolved` (call it when the loop succeeds again) writes what is still counted and
    starts afresh, so the next failure is logged at once. One limiter per loop (not shared across processes'
    tests): its state is the loop's recent history."""

    def __init__(self, interval_s: float = REPEAT_INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval_s
        self._clock = clock
        self._windows: dict[tuple[object, ...], _Window] = {}

    def log(self, method: Callable[..., Any], event: str, *, key: object = None, **fields: Any) -> bool:
        """Call ``method(event, **fields)`` unless it is a repeat within the interval; True when written."""
        k = (event, key, fields.get("error"), fields.get("sqlstate"))
        now = self._clock()
        window = self._windows.get(k)
        if window is not None and now - window.started < self._interval:
            window.count += 1
            return False
        if window is not None and window.count:
            fields["repeated"] = window.count
        if len(self._windows) >= 1024:
            self._windows.clear()
        self._windows[k] = _Window(now, method, event, _summary_fields(fields))
        method(event, **fields)
        return True

    def resolved(self) -> None:
        """The condition is over: write one line per event still holding uncounted repeats, then forget all."""
        if not self._windows:
            return
        windows, self._windows = self._windows, {}
        for w in windows.values():
            if w.count:
                w.method(w.event, repeated=w.count, resolved=True, **w.fields)


def _summary_fields(fields: dict[str, Any]) -> dict[str, object]:
    keep = ("error", "sqlstate", "task", "schema", "poller", "store", "consumer")
    return {k: fields[k] for k in keep if k in fields}


@contextmanager
def bind_event_context(**values: Any) -> Iterator[None]:
    """Bind event_id / subject / correlation_id / topic / partition / offset (or any ids) to every log line inside
    the block."""
    tokens = structlog.contextvars.bind_contextvars(**values)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger named for its module."""
    return structlog.get_logger(name)  # type: ignore[no-any-return]
