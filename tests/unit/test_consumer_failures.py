"""How the consumer core classifies a batch failure, built the way SQLAlchemy wraps asyncpg's errors, plus its
backoff and its rate-limited outage warnings."""

from __future__ import annotations

import asyncpg
import pytest
from asyncpg import exceptions as pg
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection, AsyncAdapt_asyncpg_dbapi
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from structlog.testing import capture_logs

from infra.messaging.failures import Failure, QuietWarnings, backoff_s, classify

_DBAPI = AsyncAdapt_asyncpg_dbapi(asyncpg)  # type: ignore[no-untyped-call]


def _wrapped(error: Exception) -> DBAPIError:
    """``error`` as SQLAlchemy raises it from the asyncpg dialect: DBAPIError → adapter error → asyncpg error."""
    try:
        AsyncAdapt_asyncpg_connection._handle_exception_no_connection(_DBAPI, error)
    except _DBAPI.Error as translated:
        wrapped = DBAPIError.instance("SELECT 1", {}, translated, _DBAPI.Error)
        assert isinstance(wrapped, DBAPIError)
        return wrapped
    raise AssertionError("not translated")


def _state(sqlstate: str) -> pg.PostgresError:
    """An asyncpg error of the class asyncpg picks for ``sqlstate``."""
    cls = pg.PostgresError.get_message_class_for_sqlstate(sqlstate)
    return cls(f"server said {sqlstate}")


@pytest.mark.parametrize(
    "sqlstate",
    ["57P03", "57P01", "57P02", "57P04", "53300", "08000", "08001", "08003", "08004", "08006", "08P01", "25006"],
)
def test_database_unavailable_states_wait_for_the_database(sqlstate: str) -> None:
    assert classify(_wrapped(_state(sqlstate))) is Failure.UNAVAILABLE
    assert classify(_state(sqlstate)) is Failure.UNAVAILABLE  # unwrapped, as on connect


def test_starting_up_is_asyncpgs_cannot_connect_now_and_waits() -> None:
    error = pg.CannotConnectNowError("the database system is starting up")
    wrapped = _wrapped(error)
    assert wrapped.orig is not None and wrapped.orig.__cause__ is error  # the chain the classifier follows
    assert classify(wrapped) is Failure.UNAVAILABLE


@pytest.mark.parametrize("sqlstate", ["40001", "40P01"])
def test_serialisation_failure_and_deadlock_are_contended(sqlstate: str) -> None:
    assert classify(_wrapped(_state(sqlstate))) is Failure.CONTENDED


@pytest.mark.parametrize("sqlstate", ["22P02", "23505", "42P01", "57014", "P0001"])
def test_errors_of_the_data_or_the_code_are_the_events_business(sqlstate: str) -> None:
    assert classify(_wrapped(_state(sqlstate))) is None


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        ConnectionResetError(104, "reset"),
        TimeoutError(),
        OSError(113, "no route"),
        pg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.InterfaceError("connection is closed"),
        PoolTimeoutError("QueuePool limit reached"),
    ],
)
def test_lost_refused_or_closed_connections_wait(error: Exception) -> None:
    assert classify(error) is Failure.UNAVAILABLE


def test_asyncpg_interface_error_wrapped_by_sqlalchemy_waits() -> None:
    assert classify(_wrapped(asyncpg.InterfaceError("connection is closed"))) is Failure.UNAVAILABLE


def test_a_cause_chain_is_followed_to_the_database_error() -> None:
    try:
        try:
            raise _wrapped(pg.CannotConnectNowError("the database system is starting up"))
        except DBAPIError as inner:
            raise RuntimeError("handler gave up") from inner
    except RuntimeError as outer:
        assert classify(outer) is Failure.UNAVAILABLE


def test_an_error_raised_while_handling_another_is_judged_on_its_own() -> None:
    try:
        try:
            raise ConnectionResetError()
        except ConnectionResetError:
            raise ValueError("bad amount")  # noqa: B904 - the implicit __context__ is the point
    except ValueError as exc:
        assert classify(exc) is None


def test_plain_errors_are_the_events_business() -> None:
    assert classify(ValueError("bad")) is None
    assert classify(KeyError("x")) is None


def test_backoff_grows_is_capped_and_jittered_within_the_upper_half() -> None:
    assert backoff_s(1, 100, 5000, rand=lambda: 0.0) == pytest.approx(0.05)
    assert backoff_s(1, 100, 5000, rand=lambda: 1.0) == pytest.approx(0.1)
    assert backoff_s(4, 100, 5000, rand=lambda: 1.0) == pytest.approx(0.8)
    assert backoff_s(10_000, 100, 5000, rand=lambda: 1.0) == pytest.approx(5.0)
    assert backoff_s(10_000, 100, 5000, rand=lambda: 0.0) == pytest.approx(2.5)
    assert backoff_s(1, 0, 5000) == 0.0


def test_outage_warnings_log_the_first_then_a_counted_summary_then_the_end() -> None:
    now = [0.0]
    quiet = QuietWarnings("ledger", summary_every_s=30.0, clock=lambda: now[0])
    refused = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 54329)")
    starting = _wrapped(pg.CannotConnectNowError("the database system is starting up"))
    with capture_logs() as logs:
        for _ in range(10_000):  # ~10k tries in the first 10 s of an outage
            now[0] += 0.001
            quiet.warn("database_unavailable", refused)
        now[0] = 12.0
        quiet.warn("database_unavailable", starting)  # a new failure mode is logged at once
        for _ in range(130):
            now[0] += 0.5  # up to 77 s: summaries at 42 s and 72 s
            quiet.warn("database_unavailable", starting)
        quiet.resolved("database_available")
    lines = [(e["event"], e.get("error"), e.get("sqlstate"), e.get("repeated"), e.get("failures")) for e in logs]
    assert lines == [
        ("database_unavailable", "ConnectionRefusedError", None, 1, None),
        ("database_unavailable", "DBAPIError", "57P03", 10_000, None),
        ("database_unavailable", "DBAPIError", "57P03", 60, None),
        ("database_unavailable", "DBAPIError", "57P03", 60, None),
        ("database_available", None, None, None, 10_131),
    ]
    assert all("54329" not in str(e) and "starting up" not in str(e) for e in logs)  # facts, not texts
