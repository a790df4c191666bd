"""Opening the database and migrating it, for every process and for the tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, cast

from tortoise import Tortoise, connections, fields
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.context import TortoiseContext
from tortoise.migrations.api import migrate as run_migrations
from tortoise.queryset import QuerySet

APP = "milestones"


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
        config["engine"] = "core.sqlite"
        # Extra credentials become PRAGMAs: how long (ms) a writer waits for another
        # process's transaction before giving up.
        config["credentials"].setdefault("busy_timeout", 30000)
    return config


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


class DatabaseUnavailable(Exception):
    """The database could not be opened; `configuration` when DATABASE_URL is what is wrong."""

    def __init__(self, message: str, *, configuration: bool):
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


async def execute(client: BaseDBAsyncClient, query: str, params: Sequence[Any] = ()) -> int:
    affected, _ = await client.execute_query(_for(client, query), list(params))
    return affected


async def execute_many(client: BaseDBAsyncClient, query: str, rows: list[tuple[Any, ...]]) -> None:
    if rows:
        await client.execute_many(_for(client, query), rows)  # type: ignore[arg-type]


async def insert_rows(
    client: BaseDBAsyncClient, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """Bulk insert; PostgreSQL takes the rows through COPY, many times faster than INSERTs."""
    if not rows:
        return
    if client.capabilities.dialect == "postgres":
        async with client.acquire_connection() as raw:
            await raw.copy_records_to_table(table, records=rows, columns=list(columns))
        return
    await client.execute_many(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders(len(columns))})", rows)  # type: ignore[arg-type]


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
