"""Tortoise's asyncpg engine, with transactions that always let go of their connection, and
connections given back to the pool without a round trip.

Tortoise's pooled transaction marks the task as inside a transaction when it begins, and
unmarks it after giving the connection back to the pool. When the server goes away, the
`BEGIN` itself can fail, or giving the connection back can: the mark then stays on the
task, and every later transaction of that task (a worker's poll, forever) is taken for a
nested one on a connection it no longer holds. Here the mark is removed whatever fails.

Every query outside a transaction takes a connection from the pool and gives it back, and
asyncpg then resets the connection's session with a statement of its own (release advisory
locks, close cursors, stop listening, reset settings): one more round trip per query, a
third of what storing a webhook costs. Nothing here changes a pooled session's state (the
listening for owed work has a connection of its own), and asyncpg still rolls back a
transaction left open before the connection goes back, so the pool skips that statement.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import TransactionalDBClient, TransactionContext, TransactionContextPooled
from tortoise.connection import get_connections
from tortoise.exceptions import TransactionManagementError


class _ReleasingTransactionContext(TransactionContextPooled):
    async def __aenter__(self) -> TransactionalDBClient:
        await self.ensure_connection()
        self.client._connection = await self.client._parent._pool.acquire()
        self.token = get_connections().set(self.connection_name, self.client)
        try:
            await self.client.begin()
        except BaseException:
            await self._leave()
            raise
        return self.client

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        try:
            if not self.client._finalized:
                if exc_type is None:
                    await self.client.commit()
                elif exc_type is not TransactionManagementError:  # a failed one cannot be rolled back
                    await self.client.rollback()
        finally:
            await self._leave()

    async def _leave(self) -> None:
        try:
            if self.client._parent._pool:
                await self.client._parent._pool.release(self.client._connection)
        finally:
            get_connections().reset(self.token)


async def _session_untouched(connection: asyncpg.Connection) -> None:
    return None


class ReleasingAsyncpgClient(AsyncpgDBClient):
    async def create_pool(self, **kwargs: Any) -> asyncpg.Pool:
        return await super().create_pool(reset=_session_untouched, **kwargs)

    def _in_transaction(self) -> TransactionContext:
        return _ReleasingTransactionContext(TransactionWrapper(self), self._pool_init_lock)


client_class = ReleasingAsyncpgClient
