"""structlog configuration: JSON lines on stderr, with context bound per message.

Handlers bind ``event_id``, ``subject`` (the order key) and ``correlation_id`` through
:func:`bind_event_context`; nothing personal is ever logged (inmates appear only as pseudonyms). Exceptions are
logged as :func:`infra.errors.describe_error` facts, never as their text or traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog


def configure_logging(service: str, level: str | None = None) -> None:
    """Configure structlog and the stdlib root logger for one service process."""
    level_name = (level or os.environ.get("KARYA_LOG_LEVEL", "INFO")).upper()
    logging.basicConfig(stream=sys.stderr, level=level_name, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level_name)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)


@contextmanager
def bind_event_context(**values: Any) -> Iterator[None]:
    """Bind event_id / subject / correlation_id (or any ids) to every log line inside the block."""
    tokens = structlog.contextvars.bind_contextvars(**values)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger named for its module."""
    return structlog.get_logger(name)  # type: ignore[no-any-return]
