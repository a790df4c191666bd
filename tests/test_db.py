"""The database layer: SQLite shared by several processes."""

from __future__ import annotations

import subprocess
import sys

import pytest
from tortoise.transactions import in_transaction

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
