"""Fault-injecting TCP proxies between nodes: one per directed link, in one asyncio thread.

Node ``a`` reaches node ``b`` only through the proxy of the link ``a → b`` (the runner
points ``a``'s ``persistent_peers`` at it). Each proxy forwards bytes both ways, untouched
(the secure channel is end to end). :meth:`ProxyNet.partition` cuts every link between
two groups: the proxies close the connections they carry and close each new one at once;
:meth:`ProxyNet.heal` lets them through again.

Examples
--------
>>> net = ProxyNet()
>>> net.start()
>>> net.add_link("a", "b", ("127.0.0.1", 0), ("127.0.0.1", 9))  # doctest: +SKIP
>>> net.partition([["a"], ["b"]]); net.heal()                    # doctest: +SKIP
>>> net.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from rongxin.errors import RongxinError

log = logging.getLogger("rongxin.e2e")

CHUNK = 1 << 16


class ProxyError(RongxinError):
    """A proxy could not be set up (its port is taken, the loop is not running)."""


@dataclass
class Link:
    """The proxy of one directed link ``source → target``."""

    source: str
    target: str
    listen: tuple[str, int]
    upstream: tuple[str, int]
    blocked: bool = False
    connections: set[asyncio.StreamWriter] = field(default_factory=set)
    accepted: int = 0
    refused: int = 0
    server: asyncio.Server | None = None


class ProxyNet:
    """Every link's proxy, served by an event loop in a daemon thread."""

    def __init__(self) -> None:
        self.links: dict[tuple[str, str], Link] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the proxies' event loop thread."""
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            ready.set()
            self._loop.run_forever()
            self._loop.close()

        self._thread = threading.Thread(target=run, name="e2e-proxies", daemon=True)
        self._thread.start()
        ready.wait()

    def _call(self, coro: Any, timeout: float = 10.0) -> Any:
        if self._loop is None:
            raise ProxyError("the proxies are not started")
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return fut.result(timeout)

    def stop(self) -> None:
        """Close every proxy and connection and stop the thread."""
        if self._loop is None:
            return
        with contextlib.suppress(Exception):
            self._call(self._close_all())
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5.0)
        self._loop = None

    async def _close_all(self) -> None:
        for link in self.links.values():
            if link.server is not None:
                link.server.close()
            self._drop(link)

    # ------------------------------------------------------------------ links
    def add_link(self, source: str, target: str, listen: tuple[str, int], upstream: tuple[str, int]) -> Link:
        """Serve the proxy of ``source → target`` on ``listen``, forwarding to ``upstream``.

        Raises
        ------
        ProxyError
            ``listen`` cannot be bound.
        """
        link = Link(source, target, listen, upstream)
        try:
            self._call(self._serve(link))
        except OSError as exc:
            raise ProxyError(f"proxy {source}→{target} cannot listen on {listen}: {exc.strerror}") from None
        self.links[(source, target)] = link
        return link

    async def _serve(self, link: Link) -> None:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._forward(link, reader, writer)

        link.server = await asyncio.start_server(accept, link.listen[0], link.listen[1])

    async def _forward(self, link: Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if link.blocked:
            link.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*link.upstream), 5.0)
        except (OSError, TimeoutError):
            link.refused += 1
            writer.transport.abort()
            return
        if link.blocked:  # cut while connecting
            up_writer.transport.abort()
            writer.transport.abort()
            return
        link.accepted += 1
        link.connections.update((writer, up_writer))

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(CHUNK):
                    dst.write(data)
                    await dst.drain()
            except (OSError, ConnectionError):
                pass
            finally:
                dst.transport.abort()

        try:
            await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        finally:
            link.connections.discard(writer)
            link.connections.discard(up_writer)
            writer.transport.abort()
            up_writer.transport.abort()

    @staticmethod
    def _drop(link: Link) -> None:
        for w in list(link.connections):
            w.transport.abort()
        link.connections.clear()

    async def _set(self, pairs: Sequence[tuple[str, str]], blocked: bool) -> None:
        for pair in pairs:
            link = self.links.get(pair)
            if link is None:
                continue
            link.blocked = blocked
            if blocked:
                self._drop(link)

    # ------------------------------------------------------------------ faults
    def cut(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Block the directed links ``pairs`` (existing connections dropped, new ones refused)."""
        self._call(self._set(pairs, True))

    def partition(self, groups: Sequence[Sequence[str]]) -> list[tuple[str, str]]:
        """Cut every link, both ways, between nodes of different groups; the links cut."""
        group_of = {n: i for i, g in enumerate(groups) for n in g}
        pairs = [
            (a, b) for (a, b) in self.links if a in group_of and b in group_of and group_of[a] != group_of[b]
        ]
        self.cut(pairs)
        return pairs

    def heal(self) -> None:
        """Let every link through again."""
        self._call(self._set(list(self.links), False))

    def open_connections(self) -> int:
        """Connections the proxies carry now (each counted at both ends)."""
        return sum(len(link.connections) for link in self.links.values())


__all__ = ["Link", "ProxyError", "ProxyNet"]
