"""Test helpers for chain.net: a consortium of node identities, loopback pairs, a
protocol-aware man-in-the-middle proxy and a scripted (possibly hostile) peer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from chain.crypto import PrivateKey
from chain.crypto.ecdh import EphemeralKey
from chain.crypto.sm3 import sm3
from chain.net import SecureConnection
from chain.net import transcript as tr
from chain.net.channels import AUTH, FINISH
from chain.net.handshake import handshake
from chain.net.records import LENGTH_SIZE, RecordOpener, RecordReader, RecordSealer
from chain.types import Certificate, Role

T = TypeVar("T")
CHAIN_ID = "rongxin-net-test"
GENESIS_HASH = sm3(b"genesis of " + CHAIN_ID.encode())


def run(coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
    """Run ``coro`` in a fresh event loop, failing after ``timeout`` seconds."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


@dataclass
class Node:
    key: PrivateKey
    cert: Certificate


@dataclass
class Consortium:
    root: PrivateKey = field(default_factory=PrivateKey.generate)
    chain_id: str = CHAIN_ID
    genesis_hash: bytes = GENESIS_HASH

    def node(
        self,
        name: str,
        roles: tuple[Role, ...] = (Role.CONSENSUS_NODE,),
        issuer: PrivateKey | None = None,
        key: PrivateKey | None = None,
    ) -> Node:
        key = key or PrivateKey.generate()
        cert = Certificate.issue(issuer or self.root, name, "test-org", roles, key.public_key, 0)
        return Node(key, cert)

    def options(self, **overrides: Any) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "chain_id": self.chain_id,
            "genesis_hash": self.genesis_hash,
            "root": self.root.public_key,
            "check_peer": lambda cert: None,
            "timeout": 5.0,
        }
        opts.update(overrides)
        return opts


Outcome = SecureConnection | BaseException


async def serve(
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]], host: str = "127.0.0.1"
) -> tuple[asyncio.Server, str, int]:
    server = await asyncio.start_server(handler, host, 0)
    addr = server.sockets[0].getsockname()
    return server, addr[0], addr[1]


async def connect_pair(
    client: Node,
    server: Node,
    client_opts: dict[str, Any],
    server_opts: dict[str, Any],
    host: str = "127.0.0.1",
    client_ephemeral: EphemeralKey | None = None,
    server_ephemeral: EphemeralKey | None = None,
    via: Proxy | None = None,
) -> tuple[Outcome, Outcome]:
    """Handshake ``client`` with ``server`` over real TCP; each side's connection or error."""
    accepted: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            conn = await handshake(
                tr.RESPONDER,
                reader,
                writer,
                server.key,
                server.cert,
                ephemeral=server_ephemeral,
                **server_opts,
            )
            accepted.set_result(conn)
        except Exception as exc:
            accepted.set_result(exc)

    listener, h, port = await serve(on_client, host)
    try:
        if via is not None:
            h, port = await via.start(h, port)
        reader, writer = await asyncio.open_connection(h, port)
        try:
            mine: Outcome = await handshake(
                tr.INITIATOR,
                reader,
                writer,
                client.key,
                client.cert,
                ephemeral=client_ephemeral,
                **client_opts,
            )
        except Exception as exc:
            mine = exc
        return mine, await accepted
    finally:
        listener.close()


def units(buffer: bytearray, hello_done: bool) -> tuple[list[bytes], bool]:
    """Cut complete protocol units (a hello, then records) off the front of ``buffer``."""
    out = []
    while True:
        if not hello_done:
            if len(buffer) < tr.HELLO_HEADER_SIZE:
                break
            size = tr.HELLO_HEADER_SIZE + buffer[7] + tr.GENESIS_HASH_SIZE + tr.EPHEMERAL_SIZE
        else:
            if len(buffer) < LENGTH_SIZE:
                break
            size = LENGTH_SIZE + int.from_bytes(buffer[:LENGTH_SIZE], "big")
        if len(buffer) < size:
            break
        out.append(bytes(buffer[:size]))
        del buffer[:size]
        hello_done = True
    return out, hello_done


Mutator = Callable[[int, bytes], list[bytes]]


class Proxy:
    """A man in the middle that forwards whole protocol units, recording them, and lets a
    ``mutate(index, unit) -> [units to send]`` callback rewrite the client's stream."""

    def __init__(self, mutate: Mutator | None = None) -> None:
        self.mutate = mutate
        self.sent: dict[str, list[bytes]] = {"c2s": [], "s2c": []}
        self._tasks: list[asyncio.Task[None]] = []
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        async def on_client(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
            sr, sw = await asyncio.open_connection(host, port)
            self._tasks.append(asyncio.create_task(self._pump(cr, sw, "c2s")))
            self._tasks.append(asyncio.create_task(self._pump(sr, cw, "s2c")))

        self._server, h, p = await serve(on_client, host)
        return h, p

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str) -> None:
        buffer = bytearray()
        hello_done = False
        try:
            while chunk := await reader.read(65536):
                buffer += chunk
                found, hello_done = units(buffer, hello_done)
                for unit in found:
                    index = len(self.sent[name])
                    self.sent[name].append(unit)
                    out = self.mutate(index, unit) if self.mutate and name == "c2s" else [unit]
                    for piece in out:
                        writer.write(piece)
                    await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()


class RawPeer:
    """A peer scripted step by step with the protocol's pure functions, so tests can
    send anything: bad hellos, forged signatures, replayed or tampered records."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        node: Node,
        role: int,
        chain_id: str = CHAIN_ID,
        genesis_hash: bytes = GENESIS_HASH,
    ) -> None:
        self.reader, self.writer, self.node, self.role = reader, writer, node, role
        self.eph = EphemeralKey.generate()
        self.hello = tr.Hello(role, chain_id, genesis_hash, self.eph.public_bytes)
        self.transcript = b""
        self.sealer: RecordSealer | None = None
        self.records: RecordReader | None = None

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def exchange_hellos(self, hello_bytes: bytes | None = None) -> bytes:
        mine = hello_bytes if hello_bytes is not None else self.hello.to_bytes()
        await self.write(mine)
        header = await self.reader.readexactly(tr.HELLO_HEADER_SIZE)
        theirs = header + await self.reader.readexactly(tr.Hello.rest_size(header))
        pair = (mine, theirs) if self.role == tr.INITIATOR else (theirs, mine)
        self.transcript = tr.transcript_hash(*pair)
        i2r, r2i = tr.traffic_keys(self.eph.exchange(tr.Hello.from_bytes(theirs).ephemeral), self.transcript)
        send, recv = (i2r, r2i) if self.role == tr.INITIATOR else (r2i, i2r)
        self.sealer = RecordSealer(send, 1 << 31)
        self.records = RecordReader(self.reader, RecordOpener(recv, 1 << 31))
        return theirs

    def auth_payload(
        self,
        sign_key: PrivateKey | None = None,
        label_role: int | None = None,
        transcript: bytes | None = None,
        cert: Certificate | None = None,
    ) -> bytes:
        cert_bytes = tr.encode_certificate(cert or self.node.cert)
        message = tr.auth_message(label_role or self.role, transcript or self.transcript, cert_bytes)
        signature = (sign_key or self.node.key).sign(message)
        return tr.encode_auth(cert_bytes, signature)

    def seal(self, channel: int, payload: bytes) -> bytes:
        assert self.sealer is not None
        return self.sealer.seal(channel, payload)

    async def read(self) -> tuple[int, bytes]:
        assert self.records is not None
        return await self.records.read()

    async def complete(self) -> None:
        """Finish an honest handshake (hellos, AUTH, FINISH in both directions)."""
        await self.exchange_hellos()
        await self.write(self.seal(AUTH, self.auth_payload()))
        channel, _ = await self.read()
        assert channel == AUTH
        await self.write(self.seal(FINISH, tr.encode_finish(None)))
        channel, payload = await self.read()
        assert channel == FINISH and tr.decode_finish(payload) is None

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


async def against_server(
    consortium: Consortium,
    server: Node,
    script: Callable[[RawPeer], Awaitable[T]],
    client: Node | None = None,
    **server_overrides: Any,
) -> tuple[T | BaseException, Outcome]:
    """Run ``script`` as a raw initiator against a real :func:`secure_accept` server."""
    accepted: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            opts = consortium.options(**server_overrides)
            conn = await handshake(tr.RESPONDER, reader, writer, server.key, server.cert, **opts)
            accepted.set_result(conn)
        except Exception as exc:
            accepted.set_result(exc)

    listener, host, port = await serve(on_client)
    try:
        reader, writer = await asyncio.open_connection(host, port)
        peer = RawPeer(reader, writer, client or consortium.node("raw-client"), tr.INITIATOR)
        try:
            result: T | BaseException = await script(peer)
        except Exception as exc:
            result = exc
        outcome = await accepted
        await peer.close()
        return result, outcome
    finally:
        listener.close()


async def against_client(
    consortium: Consortium,
    client: Node,
    script: Callable[[RawPeer], Awaitable[T]],
    server: Node | None = None,
    **client_overrides: Any,
) -> tuple[Outcome, T | BaseException]:
    """Run ``script`` as a raw responder against a real :func:`secure_connect` client."""
    done: asyncio.Future[T | BaseException] = asyncio.get_running_loop().create_future()
    raw_node = server or consortium.node("raw-server")

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = RawPeer(reader, writer, raw_node, tr.RESPONDER)
        try:
            done.set_result(await script(peer))
        except Exception as exc:
            done.set_result(exc)
        finally:
            await peer.close()

    listener, host, port = await serve(on_client)
    try:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            opts = consortium.options(**client_overrides)
            outcome: Outcome = await handshake(tr.INITIATOR, reader, writer, client.key, client.cert, **opts)
        except Exception as exc:
            outcome = exc
        return outcome, await done
    finally:
        listener.close()


@contextlib.asynccontextmanager
async def raw_client_session(consortium: Consortium, server: Node, **server_overrides: Any) -> Any:
    """Yield ``(raw initiator, real server connection)`` after an honest handshake, so a
    test can send arbitrary records to a real :class:`SecureConnection`."""
    accepted: asyncio.Future[SecureConnection] = asyncio.get_running_loop().create_future()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        opts = consortium.options(**server_overrides)
        try:
            accepted.set_result(
                await handshake(tr.RESPONDER, reader, writer, server.key, server.cert, **opts)
            )
        except Exception as exc:
            accepted.set_exception(exc)

    listener, host, port = await serve(on_client)
    reader, writer = await asyncio.open_connection(host, port)
    peer = RawPeer(reader, writer, consortium.node("raw-client"), tr.INITIATOR)
    try:
        await peer.complete()
        conn = await accepted
        try:
            yield peer, conn
        finally:
            await conn.close()
    finally:
        await peer.close()
        listener.close()
