"""An authenticated, encrypted connection to one peer node, carrying several channels.

:class:`SecureConnection` is what :func:`chain.net.secure_connect` and
:func:`chain.net.secure_accept` return once the handshake has succeeded.  Each
:meth:`~SecureConnection.send` is one record (:mod:`chain.net.records`) whose plaintext
is the channel id byte followed by the payload; :meth:`~SecureConnection.recv` returns
the next record's ``(channel, payload)``.  Any bad byte from the peer — an oversized,
tampered, replayed or reordered record, a record cut short, an unknown channel —
raises a :class:`~chain.errors.NetError` and closes the connection: a node reconnects
rather than trusting a damaged stream.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

from chain.errors import ConnectionClosed, NetError, RecordError
from chain.net.channels import Channel, is_channel
from chain.net.records import MAX_RECORDS, RecordReader, RecordSealer
from chain.types import Certificate

CLOSE_TIMEOUT = 5.0
"""Seconds :meth:`SecureConnection.close` waits for unsent bytes to drain."""


async def close_writer(writer: asyncio.StreamWriter, timeout: float = CLOSE_TIMEOUT) -> None:
    """Close ``writer`` gracefully, dropping the socket if it does not drain in ``timeout`` s."""
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), timeout)
    except TimeoutError:
        writer.transport.abort()
    except (ConnectionError, OSError):
        pass


class SecureConnection:
    """A peer connection after a successful handshake.

    Attributes
    ----------
    peer_cert : Certificate
        The peer's certificate: verified against the consortium root, its key proved by a
        signature over this connection's transcript, and admitted by ``check_peer``.
    transcript_hash : bytes
        SM3 of the handshake transcript; identical on both ends and unique to this
        connection (use it to correlate logs, never as a key).
    bytes_sent, bytes_received : dict[int, int]
        Payload bytes per application channel (for metrics).
    max_frame : int
        Largest record accepted or produced (``length`` field, see ``docs/protocol.md``).

    Notes
    -----
    :meth:`send` and :meth:`recv` may run concurrently (one task reading, others
    writing); concurrent sends are serialised, one record per call.  Cancelling
    :meth:`recv` is safe: a partly received record is finished by the next call.
    """

    def __init__(
        self,
        writer: asyncio.StreamWriter,
        sealer: RecordSealer,
        records: RecordReader,
        peer_cert: Certificate,
        transcript_hash: bytes,
    ) -> None:
        self._writer = writer
        self._sealer = sealer
        self._records = records
        self._send_lock = asyncio.Lock()
        self._recv_lock = asyncio.Lock()
        self._closed = False
        self.peer_cert = peer_cert
        self.transcript_hash = transcript_hash
        self.max_frame = sealer.max_frame
        self.bytes_sent: dict[int, int] = dict.fromkeys(map(int, Channel), 0)
        self.bytes_received: dict[int, int] = dict.fromkeys(map(int, Channel), 0)

    @property
    def closed(self) -> bool:
        """Whether the connection has been closed (locally, by an error, or by the peer)."""
        return self._closed

    @property
    def peer_address(self) -> Any:
        """The peer's socket address as asyncio reports it (``(host, port, ...)``)."""
        return self._writer.get_extra_info("peername")

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"SecureConnection(peer={self.peer_cert.subject!r}, {state})"

    async def send(self, channel: int, payload: bytes) -> None:
        """Send ``payload`` on ``channel`` as one record.

        Raises
        ------
        RecordError
            ``channel`` is not a :class:`~chain.net.Channel`, or the payload does not fit
            in ``max_frame`` (nothing is sent; the connection stays open).
        ConnectionClosed
            The connection is closed, or it broke while sending (it is then closed).

        Examples
        --------
        See :mod:`chain.net`.
        """
        if not is_channel(channel):
            raise RecordError(f"unknown channel id {channel!r}; channels are {[c.name for c in Channel]}")
        async with self._send_lock:
            if self._closed:
                raise ConnectionClosed(f"the connection to {self.peer_cert.subject!r} is closed")
            if self._sealer.counter >= MAX_RECORDS:
                self._abort()
                raise RecordError("this connection has sent 2**64 records; reconnect for fresh keys")
            record = self._sealer.seal(channel, payload)
            try:
                self._writer.write(record)
                self.bytes_sent[channel] += len(payload)
                await self._writer.drain()
            except (ConnectionError, OSError) as exc:
                self._abort()
                raise ConnectionClosed(f"the connection to {self.peer_cert.subject!r} broke: {exc}") from None

    async def recv(self) -> tuple[int, bytes]:
        """Wait for the next record; return ``(channel, payload)`` (channel a :class:`Channel`).

        Raises
        ------
        ConnectionClosed
            The peer closed the connection at a record boundary, or it is closed here.
        RecordError
            An oversized, tampered, replayed, reordered or truncated record, or an
            unknown channel id (the connection is then closed).

        Examples
        --------
        See :mod:`chain.net`.
        """
        async with self._recv_lock:
            if self._closed:
                raise ConnectionClosed(f"the connection to {self.peer_cert.subject!r} is closed")
            try:
                channel, payload = await self._records.read()
            except NetError:
                self._abort()
                raise
            except (ConnectionError, OSError) as exc:
                self._abort()
                raise ConnectionClosed(f"the connection to {self.peer_cert.subject!r} broke: {exc}") from None
            if not is_channel(channel):
                self._abort()
                raise RecordError(f"the peer sent a record on unknown channel {channel:#04x}")
            self.bytes_received[channel] += len(payload)
            return Channel(channel), payload

    async def close(self) -> None:
        """Close the connection (idempotent).

        Records already sent are flushed for up to :data:`CLOSE_TIMEOUT` seconds, then the
        socket is dropped.
        """
        if self._closed:
            return
        self._closed = True
        await close_writer(self._writer)

    def _abort(self) -> None:
        self._closed = True
        self._writer.transport.abort()

    async def __aenter__(self) -> SecureConnection:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
