"""Tortoise's SQLite engine, with transactions that take the write lock when they begin.

Tortoise opens SQLite transactions with a plain (deferred) BEGIN. When two processes
share the file (the web process and a CLI command), a transaction that read first and
then writes fails at once with "database is locked" instead of waiting: SQLite cannot
upgrade a read snapshot another process has since written past. BEGIN IMMEDIATE takes
the write lock up front, so the second writer waits its turn (the busy timeout).
"""

from __future__ import annotations

import sqlite3

from tortoise.backends.base.client import TransactionContext
from tortoise.backends.sqlite.client import SqliteClient, SqliteTransactionContext, SqliteTransactionWrapper
from tortoise.exceptions import TransactionManagementError


class _ImmediateTransactionWrapper(SqliteTransactionWrapper):
    async def begin(self) -> None:
        try:
            await self._connection.commit()
            await self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise TransactionManagementError(exc) from exc


class ImmediateSqliteClient(SqliteClient):
    def _in_transaction(self) -> TransactionContext:
        return SqliteTransactionContext(_ImmediateTransactionWrapper(self), self._lock)


client_class = ImmediateSqliteClient
