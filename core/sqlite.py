"""Tortoise's SQLite engine, with transactions that take the write lock when they begin.

Tortoise opens SQLite transactions with a plain (deferred) BEGIN. When two processes
share the file (the web process and a CLI command), a transaction that read first and
then writes fails at once with "database is locked" instead of waiting: SQLite cannot
upgrade a read snapshot another process has since written past. BEGIN IMMEDIATE takes
the write lock up front, so the second writer waits its turn (the busy timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3

from tortoise.backends.base.client import TransactionalDBClient, TransactionContext
from tortoise.backends.sqlite.client import SqliteClient, SqliteTransactionContext, SqliteTransactionWrapper
from tortoise.connection import get_connections
from tortoise.exceptions import TransactionManagementError


class _ImmediateTransactionWrapper(SqliteTransactionWrapper):
    async def begin(self) -> None:
        try:
            await self._connection.commit()
            await self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise TransactionManagementError(exc) from exc


class _ReleasingTransactionContext(SqliteTransactionContext):
    """Tortoise's context, but one whose transaction fails to begin gives the connection back.

    Tortoise takes the process's one connection (its lock) and sets the task's connection
    before BEGIN, and gives them back only on leaving the block. A BEGIN that fails (another
    process wrote past the busy timeout) or is cancelled (a request given up on at its
    deadline) never enters the block: the lock was never released, and every later
    transaction of the process waited for it forever.
    """

    async def __aenter__(self) -> TransactionalDBClient:
        await self._trxlock.acquire()
        try:
            await self.ensure_connection()
            self.token = get_connections().set(self.connection_name, self.connection)
            try:
                await self.connection.begin()
            except BaseException:
                # A cancelled BEGIN IMMEDIATE still runs in aiosqlite's thread and may take the
                # write lock once the other process lets go; rolled back after it, in turn, so
                # that the file is not left locked by a transaction nobody will end.
                try:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(self.connection._connection.rollback())
                finally:
                    get_connections().reset(self.token)
                raise
        except BaseException:
            self._trxlock.release()
            raise
        client: TransactionalDBClient = self.connection
        return client


class ImmediateSqliteClient(SqliteClient):
    def _in_transaction(self) -> TransactionContext:
        return _ReleasingTransactionContext(_ImmediateTransactionWrapper(self), self._lock)


client_class = ImmediateSqliteClient
