"""A TCP proxy to the PostgreSQL server that the tests can cut off, as an outage would.

It runs its own event loop in a thread, so that a server process in front of it and a
test driving that server synchronously both keep going. No root is needed:

- `refuse()`: every connection is reset and the port closed, as when PostgreSQL stops;
- `black_hole()`: nothing passes either way and new connections are accepted but never
  answered, as when a network drops packets;
- `restore()`: back to passing everything (connections cut before stay cut).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable
from typing import Any


class DatabaseProxy:
    def __init__(self, host: str, port: int):
        self.upstream = (host, port)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.passing = True
        self._links: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._hole: socket.socket | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> DatabaseProxy:
        self._thread.start()
        self._call(self._listen)
        return self

    def __exit__(self, *exc: object) -> None:
        self._call(self._close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def refuse(self) -> None:
        self._call(self._refuse)

    def black_hole(self) -> None:
        self._call(self._black_hole)

    def restore(self) -> None:
        self._call(self._restore)

    def _call(self, work: Callable[[], Awaitable[Any]]) -> None:
        asyncio.run_coroutine_threadsafe(work(), self._loop).result(10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._link, "127.0.0.1", self.port, reuse_address=True)

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        self._links.update((writer, upstream_writer))

        async def pipe(source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    if self.passing:
                        target.write(data)
                        await target.drain()
            except OSError:
                pass
            finally:
                if self.passing:
                    target.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    def _cut_links(self) -> None:
        for writer in self._links:
            writer.transport.abort()
        self._links.clear()

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _refuse(self) -> None:
        await self._stop_listening()
        self._cut_links()

    async def _black_hole(self) -> None:
        self.passing = False
        await self._stop_listening()
        # The kernel completes the handshake of a listening socket nobody accepts from.
        self._hole = socket.socket()
        self._hole.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._hole.bind(("127.0.0.1", self.port))
        self._hole.listen(128)

    async def _restore(self) -> None:
        self._cut_links()
        if self._hole is not None:
            self._hole.close()
            self._hole = None
        self.passing = True
        await self._listen()

    async def _close(self) -> None:
        await self._stop_listening()
        self._cut_links()
        if self._hole is not None:
            self._hole.close()
