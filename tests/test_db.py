"""The database layer: SQLite shared by several processes."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys

import pytest
from tortoise.exceptions import TransactionManagementError
from tortoise.transactions import in_transaction

import core.db
from core.db import DatabaseUnavailable, connection, tortoise_config
from core.enums import InstallationStatus
from core.models import Installation

HOLD_THE_WRITE_LOCK = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
connection.execute("INSERT INTO installation (id, account, status, updated_at) VALUES (2, 'other', 'active', '2026-11-24 00:00:00+00:00')")
print("locked", flush=True)
time.sleep(0.5)
connection.execute("COMMIT")
"""


async def test_a_transaction_that_reads_then_writes_waits_for_another_process(db, is_postgres):
    if is_postgres:
        pytest.skip("SQLite's file lock; PostgreSQL has row locks")
    path = db.removeprefix("sqlite://")
    other = subprocess.Popen([sys.executable, "-c", HOLD_THE_WRITE_LOCK, path], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline() == "locked\n"
        # A deferred BEGIN would read an old snapshot here, then fail at once with
        # "database is locked" when writing; an immediate one waits its turn.
        async with in_transaction() as client:
            before = await Installation.all().using_db(client).count()
            await Installation.create(id=1, account="acme", status=InstallationStatus.ACTIVE, using_db=client)
    finally:
        assert other.wait(timeout=10) == 0
    assert before == 1
    assert sorted(await Installation.all().values_list("id", flat=True)) == [1, 2]


async def test_sqlite_commits_survive_the_process_without_a_disk_sync_each(db, is_postgres, tmp_path):
    if is_postgres:
        pytest.skip("SQLite's PRAGMAs")
    [[journal]] = (await connection().execute_query("PRAGMA journal_mode"))[1]
    [[synchronous]] = (await connection().execute_query("PRAGMA synchronous"))[1]
    assert (journal, synchronous) == ("wal", 1)  # NORMAL
    # A URL that asks for a sync at every commit gets it; one with a rollback journal keeps
    # SQLite's own default, NORMAL being safe only with the write-ahead log.
    asked = tortoise_config(f"sqlite://{tmp_path}/full.db?synchronous=FULL")["connections"]["default"]
    assert asked["credentials"]["synchronous"] == "FULL"
    journal = tortoise_config(f"sqlite://{tmp_path}/journal.db?journal_mode=DELETE")["connections"]["default"]
    assert "synchronous" not in journal["credentials"]


@pytest.mark.parametrize(
    ("version", "has_json", "message"),
    [
        (
            (3, 34, 1),
            True,
            "SQLite 3.35 or newer is needed, and this Python's sqlite3 module has 3.34.1: use a Python built "
            "with a newer SQLite, or PostgreSQL (DATABASE_URL=postgres://...)",
        ),
        (
            (3, 37, 2),
            False,
            "this Python's SQLite 3.37.2 lacks the JSON functions: use a Python built with SQLite 3.38 or newer, "
            "or PostgreSQL (DATABASE_URL=postgres://...)",
        ),
    ],
)
def test_a_sqlite_it_cannot_use_is_named_with_what_to_do(monkeypatch, tmp_path, version, has_json, message):
    monkeypatch.setattr(sqlite3, "sqlite_version_info", version)
    monkeypatch.setattr(sqlite3, "sqlite_version", ".".join(map(str, version)))
    monkeypatch.setattr(core.db, "_has_json", lambda: has_json)
    with pytest.raises(DatabaseUnavailable) as refused:
        tortoise_config(f"sqlite://{tmp_path}/old.db")
    assert refused.value.configuration
    assert str(refused.value) == message
    # PostgreSQL does not mind.
    assert tortoise_config("postgres://u@localhost:5432/db")["connections"]["default"]["engine"] == "core.postgres"


def test_a_sqlite_before_3_38_is_taken_when_built_with_its_json_functions(monkeypatch, tmp_path):
    # A build option until 3.38; this Python's SQLite has them.
    assert core.db._has_json()
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 37, 2))
    assert tortoise_config(f"sqlite://{tmp_path}/json.db")["connections"]["default"]["engine"] == "core.sqlite"


@pytest.fixture
async def short_busy_timeout(db, is_postgres):
    """The test database's SQLite connection, giving up on another process's write lock after 0.3 s."""
    if is_postgres:
        pytest.skip("SQLite's file lock")
    client = connection()
    await client.execute_query("PRAGMA busy_timeout = 300")
    yield db.removeprefix("sqlite://")
    await client.execute_query("PRAGMA busy_timeout = 30000")


def write_lock_is_free(path: str) -> bool:
    other = sqlite3.connect(path, isolation_level=None, timeout=0.5)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


async def test_a_transaction_that_could_not_begin_leaves_the_connection_usable(short_busy_timeout):
    holder = sqlite3.connect(short_busy_timeout, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process, writing for longer than the busy timeout

    async def begin() -> None:
        async with in_transaction():
            pass

    try:
        with pytest.raises(TransactionManagementError, match="database is locked"):
            # A task of its own, as each request is.
            await asyncio.ensure_future(begin())
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    # The process's connection is not left taken by the transaction that never began.
    async def write() -> None:
        async with in_transaction() as client:
            await Installation.create(id=1, account="acme", status=InstallationStatus.ACTIVE, using_db=client)

    await asyncio.wait_for(write(), 5)
    assert await Installation.all().count() == 1


async def test_a_transaction_cancelled_while_it_waits_to_begin_takes_no_lock_with_it(short_busy_timeout):
    holder = sqlite3.connect(short_busy_timeout, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")

    async def write() -> None:
        async with in_transaction() as client:
            await Installation.create(id=1, account="acme", status=InstallationStatus.ACTIVE, using_db=client)

    # A request given up on at its deadline while its BEGIN waits for the lock.
    waiting = asyncio.ensure_future(write())
    await asyncio.sleep(0.1)
    waiting.cancel()
    holder.execute("ROLLBACK")
    holder.close()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await asyncio.sleep(0.5)  # the BEGIN goes on in aiosqlite's thread, and takes the lock
    # ... but the file is not left write-locked by a transaction nobody would end.
    assert write_lock_is_free(short_busy_timeout)

    await asyncio.wait_for(write(), 5)
    assert await Installation.all().count() == 1


@pytest.fixture
async def pool(db, is_postgres):
    """The test database's asyncpg pool, opened."""
    if not is_postgres:
        pytest.skip("PostgreSQL's connection pool")
    client = connection()
    await client.execute_query("SELECT 1")
    return client._pool


async def test_a_connection_goes_back_to_the_pool_without_a_statement_of_its_own(pool):
    statements: list[str] = []
    async with pool.acquire() as pooled:
        pooled.add_query_logger(lambda record: statements.append(record.query))
        assert await pooled.fetchval("SELECT 1") == 1
    assert statements == ["SELECT 1"]


async def test_a_transaction_left_open_is_rolled_back_before_its_connection_is_used_again(pool):
    async with pool.acquire() as pooled:
        await pooled.execute("BEGIN")
        await pooled.execute(
            "INSERT INTO installation (id, account, status, updated_at) VALUES (1, 'acme', 'active', now())"
        )
    async with pool.acquire() as pooled:
        assert not pooled.is_in_transaction()
    assert await Installation.all().count() == 0


async def test_statements_for_a_set_of_ids_cover_every_id_once_however_many(db):
    # More ids than one SQLite IN list holds (then one JSON array): PostgreSQL takes them as one array.
    from core.db import IN_CHUNK, execute_for_ids, fetch_for_ids

    client = connection()
    await Installation.bulk_create(
        [Installation(id=number, account=f"acct{number}") for number in range(1, 2 * IN_CHUNK + 12)]
    )
    wanted = [number for number in range(1, 2 * IN_CHUNK + 12) if number % 3]
    rows = await fetch_for_ids(client, "SELECT id FROM installation WHERE account <> ? AND id {ids}", ["x"], wanted)
    assert sorted(row[0] for row in rows) == wanted
    assert await execute_for_ids(client, "DELETE FROM installation WHERE id {ids}", [], wanted) == len(wanted)
    assert sorted(row.id for row in await Installation.all()) == list(range(3, 2 * IN_CHUNK + 12, 3))
    assert await execute_for_ids(client, "DELETE FROM installation WHERE id {ids}", [], []) == 0
    assert await fetch_for_ids(client, "SELECT 1 FROM installation WHERE id {ids}", [], []) == []


async def test_bulk_rows_already_present_by_their_key_are_skipped_and_the_rest_stored_as_given(db):
    from datetime import UTC, datetime

    from core.db import db_datetime, insert_rows
    from core.models import Repository, TestCase

    repository = await Repository.create(full_name="acme/shop")
    await TestCase.create(
        repository=repository, identity_key="k1", classname="kept", name="as it was", suite="unit", file=None
    )
    created = db_datetime(datetime(2026, 12, 3, 9, 30, tzinfo=UTC))
    rows = [
        (repository.id, "k1", "other", "would replace it", "unit", None, created),
        (repository.id, "k2", 'cart "quoted" \\ back', "adds ünïcødé ✓", "unit", "src/cart.py", created),
        (repository.id, "k3", "cart", "removes", "e2e", None, created),
    ]
    columns = ("repository_id", "identity_key", "classname", "name", "suite", "file", "created_at")
    async with in_transaction() as client:
        await insert_rows(client, "test_case", columns, rows, unless_present=("repository_id", "identity_key"))
    stored = {
        case.identity_key: (case.classname, case.name, case.suite, case.file, case.created_at)
        for case in await TestCase.filter(repository=repository)
    }
    assert stored["k1"][:4] == ("kept", "as it was", "unit", None)
    assert stored["k2"] == (
        'cart "quoted" \\ back',
        "adds ünïcødé ✓",
        "unit",
        "src/cart.py",
        datetime(2026, 12, 3, 9, 30, tzinfo=UTC),
    )
    assert stored["k3"] == ("cart", "removes", "e2e", None, datetime(2026, 12, 3, 9, 30, tzinfo=UTC))
