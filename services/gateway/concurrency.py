"""Bounded concurrent calls whose first failure propagates as itself (not wrapped in an ExceptionGroup).

The consumer core classifies errors by type (lost connection, transient, permanent) and dead-letters with the
error's text; an ``ExceptionGroup`` would hide both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable


def _first_leaf(error: BaseExceptionGroup[BaseException]) -> BaseException:
    first = error.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


async def run_bounded(calls: Iterable[Callable[[], Awaitable[None]]], limit: int) -> None:
    """Run ``calls``, at most ``limit`` at once; the first failure cancels the rest and is raised."""
    semaphore = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[None]]) -> None:
        async with semaphore:
            await call()

    try:
        async with asyncio.TaskGroup() as group:
            for call in calls:
                group.create_task(one(call))
    except BaseExceptionGroup as error:
        raise _first_leaf(error) from None
