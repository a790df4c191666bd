"""A throw-away database for the test session, built by the real migrations.

SQLite (a file in a temporary folder) by default. With TEST_DATABASE_URL pointing at a
PostgreSQL server (postgres://USER@HOST:PORT/DBNAME, any existing database to connect
through), a fresh database is created there for the session and dropped afterwards.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest

from core import db as database
from core.db import Reachability, close_database, connection, migrate, open_database
from tests.cli import succeeds

FIXTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures"
JUNIT = FIXTURES / "junit"
WEBHOOKS = FIXTURES / "github-webhooks"

# Children first, so that deleting never trips a foreign key.
TABLES = [
    "shared_answer",
    "upload_token",
    "digest_run",
    "subscription",
    "signoff_request",
    "approver",
    "user_group",
    "channel_link",
    "outbox",
    "gate_check",
    "delivery",
    "installation",
    "pull_request",
    "signoff",
    "snapshot",
    "defect",
    "milestone_test",
    "test_result",
    "launch",
    "milestone_plan",
    "milestone",
    "test_case",
    "test_plan",
    "repository",
]


@asynccontextmanager
async def throwaway_database(folder: Path, template: str | None = None) -> AsyncIterator[str]:
    """A new database: a SQLite file in `folder`, or one on the TEST_DATABASE_URL server;
    empty, or a copy of the database at `template` (a URL this function gave)."""
    server_url = os.environ.get("TEST_DATABASE_URL")
    if not server_url:
        path = folder / f"milestones-{uuid.uuid4().hex[:8]}.db"
        if template is not None:
            shutil.copyfile(template.removeprefix("sqlite://"), path)
        yield f"sqlite://{path}"
        return
    server, _, maintenance_db = server_url.replace("postgresql://", "postgres://", 1).rpartition("/")
    name = f"milestones_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(f"{server.replace('postgres://', 'postgresql://', 1)}/{maintenance_db}")
    try:
        copy = f' TEMPLATE "{template.rpartition("/")[2]}"' if template is not None else ""
        await admin.execute(f'CREATE DATABASE "{name}"{copy}')
        try:
            yield f"{server}/{name}"
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(autouse=True)
def reachable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with the database reachable, whatever an earlier one made of it."""
    monkeypatch.setattr(database, "reachability", Reachability())


@pytest.fixture(scope="session")
async def database_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with throwaway_database(tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture
async def scratch_database_url(tmp_path: Path) -> AsyncIterator[str]:
    """An empty, unmigrated database of its own, for another process (the CLI) to use."""
    async with throwaway_database(tmp_path) as url:
        yield url


@pytest.fixture(scope="session")
async def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A database migrated once, that `migrated_database_url` copies."""
    async with throwaway_database(tmp_path_factory.mktemp("template")) as url:
        await migrate(url)
        yield url


@pytest.fixture
async def migrated_database_url(migrated_template: str, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated database of its own, for another process or thread (the CLI) to use:
    a copy of one `milestones migrate` ran on, as migrating each would take a second."""
    async with throwaway_database(tmp_path, template=migrated_template) as url:
        yield url


@pytest.fixture(scope="session")
async def migrated(database_url: str) -> AsyncIterator[str]:
    await migrate(database_url)
    await open_database(database_url)
    yield database_url
    await close_database()


@pytest.fixture
async def db(migrated: str) -> AsyncIterator[str]:
    """A migrated, empty database for one test."""
    yield migrated
    client = connection()
    if client.capabilities.dialect == "postgres":
        await client.execute_script(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    else:
        await client.execute_script("".join(f"DELETE FROM {table};" for table in TABLES))


@pytest.fixture
def is_postgres(migrated: str) -> bool:
    return migrated.startswith("postgres://")


@pytest.fixture(scope="module")
async def demo_database(
    tmp_path_factory: pytest.TempPathFactory, migrated_template: str
) -> AsyncIterator[tuple[str, Path]]:
    """A migrated database with the demo loaded once, shared by the read-only demo tests."""
    async with throwaway_database(tmp_path_factory.mktemp("demo-db"), template=migrated_template) as database_url:
        cwd = tmp_path_factory.mktemp("demo-cwd")
        assert succeeds("demo", database_url=database_url, cwd=cwd) == (
            "demo loaded: v2.0, Sprint 24. Try `milestones status v2.0` and `milestones list`.\n"
        )
        yield database_url, cwd
