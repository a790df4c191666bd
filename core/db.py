"""Opening the database and migrating it, for every process and for the tests; noticing when it is away."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from tortoise import Tortoise, connections, fields
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.context import TortoiseContext
from tortoise.exceptions import BaseORMException, DBConnectionError, IntegrityError
from tortoise.queryset import QuerySet

APP = "milestones"
# Seconds to establish a PostgreSQL connection: a server that does not answer by then is away.
CONNECT_TIMEOUT = 5


def tortoise_config(database_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": _connection_config(database_url)},
        "apps": {
            APP: {
                "models": ["core.models"],
                "default_connection": "default",
                "migrations": "core.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def _connection_config(database_url: str) -> dict[str, Any]:
    config = expand_db_url(database_url)
    if config["engine"] == "tortoise.backends.sqlite":
        _check_sqlite_version()
        config["engine"] = "core.sqlite"
        # Extra credentials become PRAGMAs: how long (ms) a writer waits for another
        # process's transaction before giving up.
        config["credentials"].setdefault("busy_timeout", 30000)
        # In WAL mode (Tortoise's default), NORMAL keeps every commit through a crash of the process
        # and syncs the disk at checkpoints rather than at every commit, which took a
        # millisecond or more each (a power loss may undo the last commits; `?synchronous=FULL`
        # in DATABASE_URL syncs every one).
        if str(config["credentials"].get("journal_mode", "WAL")).upper() == "WAL":
            config["credentials"].setdefault("synchronous", "NORMAL")
    elif config["engine"] == "tortoise.backends.asyncpg":
        config["engine"] = "core.postgres"
        config["credentials"].setdefault("timeout", CONNECT_TIMEOUT)
        # No connection floor: asyncpg would keep reconnecting to restore it while the server
        # is away, logging a traceback each time; connections are opened as they are needed.
        config["credentials"].setdefault("minsize", 0)
    return config


# The inbox claims and stores deliveries with UPDATE/INSERT ... RETURNING (SQLite 3.35).
SQLITE_NEEDED = (3, 35, 0)


def _check_sqlite_version() -> None:
    if sqlite3.sqlite_version_info < SQLITE_NEEDED:
        raise DatabaseUnavailable(
            f"SQLite {'.'.join(map(str, SQLITE_NEEDED[:2]))} or newer is needed, and this Python's sqlite3 "
            f"module has {sqlite3.sqlite_version}: use a Python built with a newer SQLite, or PostgreSQL "
            "(DATABASE_URL=postgres://...)",
            configuration=True,
        )
    if sqlite3.sqlite_version_info < (3, 38, 0) and not _has_json():
        # Built in since 3.38, a build option before: many ids go to SQLite as one JSON array (`among`, `_for_ids`).
        raise DatabaseUnavailable(
            f"this Python's SQLite {sqlite3.sqlite_version} lacks the JSON functions: use a Python built "
            "with SQLite 3.38 or newer, or PostgreSQL (DATABASE_URL=postgres://...)",
            configuration=True,
        )


def _has_json() -> bool:
    probe = sqlite3.connect(":memory:")
    try:
        probe.execute("SELECT value FROM json_each('[1]')")
    except sqlite3.OperationalError:
        return False
    finally:
        probe.close()
    return True


def __getattr__(name: str) -> Any:
    # `tortoise makemigrations` reads core.db.TORTOISE_ORM (pyproject [tool.tortoise]);
    # resolved lazily so that importing this module reads no environment.
    if name == "TORTOISE_ORM":
        from core.settings import get_settings

        return tortoise_config(get_settings().database_url)
    raise AttributeError(name)


async def open_database(database_url: str) -> None:
    # The global fallback lets tasks other than the opening one (ASGI lifespan,
    # scheduler jobs, test fixtures) share the connections.
    await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)


async def close_database() -> None:
    await Tortoise.close_connections()


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached or opened now (refused, no answer in time, locked): try
    again later; `configuration` when DATABASE_URL is what is wrong."""

    def __init__(self, message: str, *, configuration: bool = False):
        super().__init__(message)
        self.configuration = configuration


@asynccontextmanager
async def database(database_url: str) -> AsyncIterator[None]:
    """The database for one command, connected before it starts (DatabaseUnavailable if it cannot be).

    Its connections belong to the calling task and the tasks it starts, not to the
    process, so a command can run beside another user of the database in one process.
    """
    config = tortoise_config(database_url)
    file = config["connections"]["default"]["credentials"].get("file_path")
    if config["connections"]["default"]["engine"] == "core.sqlite" and not Path(file).parent.is_dir():
        # Said before aiosqlite is asked: when it fails to open a file, its worker thread
        # later reports to the event loop the command has closed by then.
        message = f"cannot open the database: the folder {Path(file).parent} does not exist; check DATABASE_URL"
        raise DatabaseUnavailable(message, configuration=True)
    async with TortoiseContext() as context:
        try:
            await context.init(config=config)
            await context.db().execute_query("SELECT 1")
        except Exception as error:
            raise _unavailable(error) from error
        yield


def _unavailable(error: Exception) -> DatabaseUnavailable:
    # Tortoise wraps the driver's error (asyncpg, sqlite3); the driver's says what happened.
    cause = error.__cause__ if isinstance(error.__cause__, Exception) else error
    sqlstate = str(getattr(cause, "sqlstate", None) or "")
    if sqlstate[:2] in ("28", "3D"):
        # 28: the role or its password refused; 3D: no such database.
        return DatabaseUnavailable(
            f"the database refused the connection: {cause}; check DATABASE_URL", configuration=True
        )
    if isinstance(cause, OSError):
        reason = cause.strerror or str(cause) or type(cause).__name__
        return DatabaseUnavailable(f"cannot reach the database ({reason}); check DATABASE_URL", configuration=False)
    return DatabaseUnavailable(f"cannot open the database: {cause}; check DATABASE_URL", configuration=True)


async def migrate(database_url: str) -> None:
    """Apply every committed migration not applied yet; a no-op when up to date."""
    # In a context of its own, opened (and so checked) first; the caller's is left as it was.
    from tortoise.migrations.api import migrate as run_migrations

    async with database(database_url):
        await run_migrations(config=tortoise_config(database_url))


def connection() -> BaseDBAsyncClient:
    client: BaseDBAsyncClient = connections.get("default")
    return client


async def column(query: QuerySet[Any], field: str) -> list[Any]:
    """One field of every row, as `values_list(field, flat=True)` gives it; Tortoise's types say
    tuples, so the type is set here, once."""
    return cast(list[Any], await query.values_list(field, flat=True))


def dialect() -> str:
    return connection().capabilities.dialect


# Reachability ------------------------------------------------------------------------

log = logging.getLogger("milestones.database")
T = TypeVar("T")

# How long a request waits for the database before it is answered 503. A healthy PostgreSQL
# stores a delivery in milliseconds, so a second without an answer means it is away (a
# black-holed network never refuses). SQLite has one writer at a time: another process's
# transaction (a CLI ingest) is waited for, within GitHub's ten seconds.
REQUEST_DEADLINE = {"postgres": 1.0, "sqlite": 5.0}
# While the database is away, one caller a second gets through to try it.
PROBE_SECONDS = 1.0

_AWAY_SQLITE = (
    "database is locked",
    "unable to open database file",
    "disk i/o error",
    "attempt to write a readonly database",
    "database or disk is full",
)


# The PostgreSQL driver is loaded by the first PostgreSQL connection, not by a command on
# SQLite; what it raises is named once it is there.
@functools.cache
def _server_away() -> tuple[type[BaseException], ...]:
    """What says the PostgreSQL server cannot be reached now."""
    import asyncpg

    return (
        asyncpg.PostgresConnectionError,
        asyncpg.CannotConnectNowError,  # starting up, shutting down
        asyncpg.AdminShutdownError,
        asyncpg.CrashShutdownError,
        asyncpg.InsufficientResourcesError,  # too many connections, disk full
        asyncpg.InvalidAuthorizationSpecificationError,  # a rotated password
        asyncpg.InvalidCatalogNameError,  # the database was dropped
    )


@functools.cache
def _conflicts() -> tuple[type[BaseException], ...]:
    """Conflicts that another attempt gets past: a concurrent writer, a lock, a cancelled statement."""
    import asyncpg

    return (
        asyncpg.TransactionRollbackError,  # serialization failure, deadlock
        asyncpg.LockNotAvailableError,
        asyncpg.QueryCanceledError,
        IntegrityError,  # a row another transaction inserted first
    )


def database_errors() -> tuple[type[BaseException], ...]:
    """What a database operation may raise, the drivers' own errors included."""
    import asyncpg

    return (
        DatabaseUnavailable,
        OSError,
        BaseORMException,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        sqlite3.Error,
    )


def _causes(error: BaseException) -> list[BaseException]:
    """The error and what it was raised from or while handling (Tortoise wraps the driver's errors)."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def unreachable(error: BaseException) -> bool:
    """Whether `error` says the database cannot be reached now, rather than that a query is wrong."""
    return any(
        # OSError: refused, reset, timed out, no route, name not resolved.
        isinstance(cause, (DatabaseUnavailable, DBConnectionError, OSError, *_server_away()))
        or (isinstance(cause, sqlite3.OperationalError) and str(cause).lower().startswith(_AWAY_SQLITE))
        for cause in _causes(error)
    )


def transient(error: BaseException) -> bool:
    """Whether trying again later may succeed: the database is away, or a concurrent writer was in the way."""
    return unreachable(error) or any(isinstance(cause, _conflicts()) for cause in _causes(error))


def describe(error: BaseException) -> str:
    """The root cause in one line, for the log and for answers."""
    root = _causes(error)[-1]
    return f"{type(root).__name__}: {root}" if str(root) else type(root).__name__


class Reachability:
    """Whether the database answered lately, as every task of the process found it.

    An outage is logged once when it begins and once when it ends, however many requests
    and polls run into it. While it lasts, one caller a second gets through to try (a
    probe); the others are refused at once instead of waiting on a database that is away.
    """

    def __init__(self) -> None:
        self.down_since: float | None = None
        self.reason = ""
        self.refused = 0
        self._next_probe = 0.0

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def admit(self) -> bool:
        if self.down_since is None:
            return True
        now = time.monotonic()
        if now < self._next_probe:
            self.refused += 1
            return False
        self._next_probe = now + PROBE_SECONDS
        return True

    def failed(self, reason: str) -> None:
        if self.down_since is not None:
            return
        self.down_since = time.monotonic()
        self._next_probe = self.down_since + PROBE_SECONDS
        self.reason = reason
        self.refused = 0
        log.error("database unreachable (%s): answering 503 until it is back", reason)

    def recovered(self) -> None:
        if self.down_since is None:
            return
        away = time.monotonic() - self.down_since
        self.down_since = None
        log.warning("database reachable again after %.1f s; %d requests were refused meanwhile", away, self.refused)


reachability = Reachability()
# Operations given up on but still running (a cancel request waiting on a black-holed network).
_abandoned: set[asyncio.Future[Any]] = set()


def note_failure(error: BaseException) -> bool:
    """Count `error` towards an outage if it is one (logged once per outage); False for any other error."""
    if not unreachable(error):
        return False
    reachability.failed(describe(error))
    return True


def _abandon(task: asyncio.Future[Any]) -> None:
    _abandoned.add(task)
    task.add_done_callback(_forget)


def _forget(done: asyncio.Future[Any]) -> None:
    _abandoned.discard(done)
    if not done.cancelled():
        done.exception()  # retrieved, so that asyncio does not log it as never retrieved


async def within_deadline(operation: Callable[[], Awaitable[T]], deadline: float | None = None) -> T:
    """Run a request's database work, or raise DatabaseUnavailable: at once while an outage lasts,
    when the database refuses, or when it has not answered within `deadline` (the engine's by
    default, and always while probing a database that was away).
    """
    probe = reachability.down
    if not reachability.admit():
        raise DatabaseUnavailable(reachability.reason)
    seconds = REQUEST_DEADLINE.get(dialect(), 1.0)
    if deadline is not None and not probe:  # trying a database that was away: not for long
        seconds = deadline
    task = asyncio.ensure_future(operation())
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        _abandon(task)  # the client went away; what was started finishes
        raise
    if not done:
        # Cancelled but not awaited: asyncpg's cancel request would wait on the same dead network.
        task.cancel()
        _abandon(task)
        reason = f"no answer within {seconds:g} s"
        if dialect() == "postgres":
            reachability.failed(reason)
        raise DatabaseUnavailable(reason)
    try:
        result = task.result()
    except Exception as error:
        if note_failure(error):
            raise DatabaseUnavailable(describe(error)) from error
        raise
    reachability.recovered()
    return result


# Raw SQL, for the set-based work the ORM cannot express (bulk ingest, state upserts).
# Queries are written once with `?` placeholders; PostgreSQL numbers them.


def placeholders(count: int) -> str:
    """`?, ?, ?` for an IN list or a VALUES row of `count` parameters."""
    return ", ".join("?" * count)


def _numbered(query: str) -> str:
    parts = query.split("?")
    return "".join(part + (f"${index}" if index < len(parts) else "") for index, part in enumerate(parts, 1))


def _for(client: BaseDBAsyncClient, query: str) -> str:
    return _numbered(query) if client.capabilities.dialect == "postgres" else query


async def fetch(client: BaseDBAsyncClient, query: str, params: Sequence[Any] = ()) -> list[Any]:
    _, rows = await client.execute_query(_for(client, query), list(params))
    return list(rows)


async def fetch_dicts(client: BaseDBAsyncClient, query: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    return await client.execute_query_dict(_for(client, query), list(params))


async def fetch_mapping(
    client: BaseDBAsyncClient, query: str, params: Sequence[Any] = (), chunk: int = 5000
) -> dict[Any, Any]:
    """A two-column query as a dict, read `chunk` rows at a time: its rows are never all in memory."""
    mapping: dict[Any, Any] = {}
    async with client.acquire_connection() as raw:
        if client.capabilities.dialect == "postgres":
            async for key, value in raw.cursor(_numbered(query), *params, prefetch=chunk):
                mapping[key] = value
        else:
            cursor = await raw.execute(query, list(params))
            try:
                while rows := await cursor.fetchmany(chunk):
                    for key, value in rows:
                        mapping[key] = value
            finally:
                await cursor.close()
    return mapping


async def execute(client: BaseDBAsyncClient, query: str, params: Sequence[Any] = ()) -> int:
    affected, _ = await client.execute_query(_for(client, query), list(params))
    return affected


# The longest IN list written out for SQLite (a statement takes at most 32,766 parameters).
IN_CHUNK = 500


def _for_ids(client: BaseDBAsyncClient, query: str, params: Sequence[Any], ids: Sequence[int]) -> tuple[str, list[Any]]:
    """`query` and its parameters for the ids in `ids`, which go where the query says `{ids}`
    (`WHERE id {ids}`), after `params`: PostgreSQL takes them as one array; SQLite as an IN
    list, or beyond IN_CHUNK as one JSON array (a statement per IN_CHUNK ids cost SQLite more
    than the work: 100 of them read 50,000 test names in 400 ms, one in 170 ms)."""
    if client.capabilities.dialect == "postgres":
        return query.format(ids="= ANY(?)"), [*params, list(ids)]
    if len(ids) > IN_CHUNK:
        test, argument = among(client, ids)
        return query.format(ids=test), [*params, argument]
    return query.format(ids=f"IN ({placeholders(len(ids))})"), [*params, *ids]


def among(client: BaseDBAsyncClient, ids: Sequence[int]) -> tuple[str, Any]:
    """A test that a value is one of `ids`, however many, and its one parameter: for a single
    statement that cannot be split into IN lists (`SELECT ... WHERE x {test}`)."""
    # A subquery, which both engines hash once (PostgreSQL compared `= ANY(array)` in a
    # CASE with each element in turn).
    if client.capabilities.dialect == "postgres":
        return "IN (SELECT unnest(CAST(? AS BIGINT[])))", list(ids)
    return "IN (SELECT value FROM json_each(?))", json.dumps(list(ids))


async def execute_for_ids(client: BaseDBAsyncClient, query: str, params: Sequence[Any], ids: Sequence[int]) -> int:
    """Run `query` (see `_for_ids`) for all of `ids`; the number of rows it changed."""
    if not ids:
        return 0
    return await execute(client, *_for_ids(client, query, params, ids))


async def fetch_for_ids(client: BaseDBAsyncClient, query: str, params: Sequence[Any], ids: Sequence[int]) -> list[Any]:
    """The rows of `query` (see `_for_ids`) for all of `ids`."""
    if not ids:
        return []
    return await fetch(client, *_for_ids(client, query, params, ids))


async def execute_many(client: BaseDBAsyncClient, query: str, rows: list[tuple[Any, ...]]) -> None:
    if rows:
        await client.execute_many(_for(client, query), rows)  # type: ignore[arg-type]


async def insert_rows(
    client: BaseDBAsyncClient,
    table: str,
    columns: Sequence[str],
    rows: list[tuple[Any, ...]],
    *,
    unless_present: Sequence[str] = (),
) -> None:
    """Bulk insert; `unless_present` names unique columns: a row whose key is already there is skipped.

    PostgreSQL takes rows through COPY, many times faster than INSERTs, where none may be
    skipped (COPY cannot skip)."""
    if not rows:
        return
    if client.capabilities.dialect == "postgres" and not unless_present:
        async with client.acquire_connection() as raw:
            await raw.copy_records_to_table(table, records=rows, columns=list(columns))
        return
    skip = f" ON CONFLICT ({', '.join(unless_present)}) DO NOTHING" if unless_present else ""
    query = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders(len(columns))}){skip}"
    await client.execute_many(_for(client, query), rows)  # type: ignore[arg-type]


_DATETIME = fields.DatetimeField()


def db_datetime(value: datetime) -> Any:
    """A datetime as a raw query's parameter, passed as Tortoise passes the ones it stores,
    so that raw and ORM rows compare alike."""
    return _DATETIME.to_db_value(value, None)  # type: ignore[arg-type]


def as_datetime(value: Any) -> datetime | None:
    """SQLite hands raw-query datetimes back as ISO text; PostgreSQL as datetimes."""
    if value is None or isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def as_moment(value: Any) -> datetime:
    """`as_datetime` of a column that is never NULL."""
    moment = as_datetime(value)
    if moment is None:
        raise ValueError("a NOT NULL datetime column read NULL")
    return moment


def as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(value)
