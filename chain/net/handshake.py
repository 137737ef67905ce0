"""The station-to-station handshake that opens a :class:`~chain.net.SecureConnection`.

Modelled on CometBFT's SecretConnection, with national cryptography and certified
identities (the byte-level specification is ``docs/protocol.md``):

1. Both sides send a clear :class:`~chain.net.transcript.Hello` (chain id, genesis hash,
   a fresh ephemeral SM2-curve point) and check the peer's: same protocol, chain and
   genesis, opposite role.
2. Both compute the ECDH secret, the transcript hash ``T`` over both hellos, and one SM4
   key per direction (HKDF-SM3 salted with ``T``).
3. Both send an encrypted AUTH record (record 0): their certificate and an SM2 signature
   over ``label(role) || T || certificate``.  Each verifies the peer's signature with the
   certified key, then the certificate against the consortium root, then that it is a
   node certificate other than its own, then asks ``check_peer``.
4. Both send an encrypted FINISH record (record 1): accepted, or refused with a reason.
   A side that refuses (or is refused) raises :class:`~chain.errors.PeerRefused`.

Every step is bounded: hello and handshake records have fixed maximum sizes checked
before reading, and the whole handshake has a deadline.  On any failure the connection
is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from chain.crypto import CryptoError, InvalidSignature, PrivateKey, PublicKey
from chain.crypto.ecdh import EphemeralKey
from chain.errors import ConnectionClosed, HandshakeError, NetError, PeerRefused, RecordError, ValidationError
from chain.net import transcript as tr
from chain.net.channel import SecureConnection, close_writer
from chain.net.channels import AUTH, FINISH
from chain.net.records import DEFAULT_MAX_FRAME, RecordOpener, RecordReader, RecordSealer, check_max_frame
from chain.types import NODE_ROLES, Certificate

DEFAULT_TIMEOUT = 10.0
"""Seconds a handshake may take before the connection is dropped."""
REFUSAL_LINGER = 1.0
"""Seconds a refusing side waits to exchange verdicts before it closes."""

CheckPeer = Callable[[Certificate], None]
"""Admission callback: returns to admit the peer, raises :class:`PeerRefused` to refuse."""


@dataclass(frozen=True)
class _Identity:
    key: PrivateKey
    cert: Certificate
    cert_bytes: bytes
    chain_id: str
    genesis_hash: bytes
    root: PublicKey
    check_peer: CheckPeer


@dataclass(frozen=True)
class _Refusal:
    """This side refused the peer (and has sent its verdict)."""

    reason: str
    records: RecordReader


async def secure_connect(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    key: PrivateKey,
    cert: Certificate,
    *,
    chain_id: str,
    genesis_hash: bytes,
    root: PublicKey,
    check_peer: CheckPeer,
    timeout: float = DEFAULT_TIMEOUT,
    max_frame: int = DEFAULT_MAX_FRAME,
) -> SecureConnection:
    """Run the handshake as the side that opened the TCP connection.

    Parameters
    ----------
    reader, writer : asyncio.StreamReader, asyncio.StreamWriter
        A fresh TCP connection (from :func:`asyncio.open_connection`).
    key : PrivateKey
        This node's SM2 identity key.
    cert : Certificate
        This node's certificate (for ``key``), sent to the peer.
    chain_id : str
        The chain both sides must be on (1 to 255 bytes of UTF-8).
    genesis_hash : bytes
        SM3 of the genesis both sides must share (32 bytes).
    root : PublicKey
        The consortium's supervisory root key (``genesis.root_key()``): the peer's
        certificate must be signed by it.
    check_peer : Callable[[Certificate], None]
        Called with the peer's certificate once its signature over the transcript and the
        root's signature over the certificate have verified; raise
        :class:`~chain.errors.PeerRefused` to refuse (e.g. a revoked node or one outside
        the current epoch).  Validity windows are its business too.
    timeout : float
        Seconds the whole handshake may take.
    max_frame : int
        Largest record accepted or sent afterwards (the ``length`` field).

    Returns
    -------
    SecureConnection

    Raises
    ------
    HandshakeError
        Malformed, truncated or forged handshake data, another chain or genesis, an
        invalid ephemeral key, a timeout, or the peer hung up.
    PeerRefused
        The peer's certificate is not admitted here, or the peer did not admit us.
    NetError
        Bad arguments (a key that does not match ``cert``, a chain id too long).

    Examples
    --------
    See :mod:`chain.net`.
    """
    return await handshake(
        tr.INITIATOR, reader, writer, key, cert, chain_id=chain_id, genesis_hash=genesis_hash,
        root=root, check_peer=check_peer, timeout=timeout, max_frame=max_frame,
    )  # fmt: skip


async def secure_accept(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    key: PrivateKey,
    cert: Certificate,
    *,
    chain_id: str,
    genesis_hash: bytes,
    root: PublicKey,
    check_peer: CheckPeer,
    timeout: float = DEFAULT_TIMEOUT,
    max_frame: int = DEFAULT_MAX_FRAME,
) -> SecureConnection:
    """Run the handshake as the side that accepted the TCP connection.

    Same parameters, result and errors as :func:`secure_connect`.

    Examples
    --------
    See :mod:`chain.net`.
    """
    return await handshake(
        tr.RESPONDER, reader, writer, key, cert, chain_id=chain_id, genesis_hash=genesis_hash,
        root=root, check_peer=check_peer, timeout=timeout, max_frame=max_frame,
    )  # fmt: skip


async def handshake(
    role: int,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    key: PrivateKey,
    cert: Certificate,
    *,
    chain_id: str,
    genesis_hash: bytes,
    root: PublicKey,
    check_peer: CheckPeer,
    timeout: float = DEFAULT_TIMEOUT,
    max_frame: int = DEFAULT_MAX_FRAME,
    ephemeral: EphemeralKey | None = None,
) -> SecureConnection:
    """:func:`secure_connect` (``role=INITIATOR``) or :func:`secure_accept` (``RESPONDER``).

    ``ephemeral`` fixes the ephemeral key: a deterministic hook for test vectors only —
    a reused ephemeral key gives up forward secrecy.
    """
    try:
        me, hello, eph = _prepare(role, key, cert, chain_id, genesis_hash, root, check_peer, ephemeral)
        if not timeout > 0:
            raise NetError(f"the handshake timeout must be positive, got {timeout}")
        check_max_frame(max_frame)
    except BaseException:
        writer.transport.abort()
        raise
    try:
        async with asyncio.timeout(timeout):
            outcome = await _run(me, hello, eph, reader, writer, max_frame)
        if isinstance(outcome, SecureConnection):
            return outcome
        # We refused the peer and told it so.  Read its verdict too (briefly, after the
        # deadline is over): closing with unread input would reset the connection and
        # could destroy our verdict before the peer reads it.
        with contextlib.suppress(NetError, OSError, TimeoutError):
            await asyncio.wait_for(outcome.records.read(), REFUSAL_LINGER)
        raise PeerRefused(outcome.reason)
    except TimeoutError:
        writer.transport.abort()
        raise HandshakeError(f"the handshake did not complete within {timeout} s") from None
    except PeerRefused:
        await close_writer(writer, REFUSAL_LINGER)
        raise
    except (ConnectionError, OSError) as exc:
        writer.transport.abort()
        raise HandshakeError(f"the connection broke during the handshake: {exc}") from None
    except BaseException:
        writer.transport.abort()
        raise


def _prepare(
    role: int,
    key: PrivateKey,
    cert: Certificate,
    chain_id: str,
    genesis_hash: bytes,
    root: PublicKey,
    check_peer: CheckPeer,
    ephemeral: EphemeralKey | None,
) -> tuple[_Identity, tr.Hello, EphemeralKey]:
    """Check the local arguments and build this side's identity and hello."""
    if key.public_key.to_bytes() != cert.public_key:
        raise NetError(f"the node key does not match its certificate for {cert.subject!r}")
    if not isinstance(genesis_hash, bytes) or len(genesis_hash) != tr.GENESIS_HASH_SIZE:
        raise NetError(f"genesis_hash is {tr.GENESIS_HASH_SIZE} bytes")
    if not 1 <= len(chain_id.encode("utf-8")) <= tr.MAX_CHAIN_ID_BYTES:
        raise NetError(f"a chain id is 1 to {tr.MAX_CHAIN_ID_BYTES} bytes of UTF-8, got {chain_id!r}")
    me = _Identity(key, cert, tr.encode_certificate(cert), chain_id, genesis_hash, root, check_peer)
    eph = ephemeral if ephemeral is not None else EphemeralKey.generate()
    return me, tr.Hello(role, chain_id, genesis_hash, eph.public_bytes), eph


async def _run(
    me: _Identity,
    hello: tr.Hello,
    eph: EphemeralKey,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    max_frame: int,
) -> SecureConnection | _Refusal:
    hello_bytes = hello.to_bytes()
    writer.write(hello_bytes)
    await writer.drain()
    peer_hello_bytes = await _read_hello(reader)
    peer_hello = tr.Hello.from_bytes(peer_hello_bytes)
    hello.check_peer_hello(peer_hello)
    initiator = hello.role == tr.INITIATOR
    transcript = tr.transcript_hash(
        *((hello_bytes, peer_hello_bytes) if initiator else (peer_hello_bytes, hello_bytes))
    )
    try:
        shared = eph.exchange(peer_hello.ephemeral)
    except CryptoError as exc:
        raise HandshakeError(f"the peer's ephemeral key is invalid: {exc}") from None
    i2r, r2i = tr.traffic_keys(shared, transcript)
    sealer = RecordSealer(i2r if initiator else r2i, tr.AUTH_MAX_RECORD)
    records = RecordReader(reader, RecordOpener(r2i if initiator else i2r, tr.AUTH_MAX_RECORD))

    signature = me.key.sign(tr.auth_message(hello.role, transcript, me.cert_bytes))
    writer.write(sealer.seal(AUTH, tr.encode_auth(me.cert_bytes, signature)))
    await writer.drain()
    auth = await _read_handshake_record(records, AUTH, "authentication")
    peer_cert = _authenticate(auth, tr.other_role(hello.role), transcript)

    refusal = _admission(me, peer_cert)
    writer.write(sealer.seal(FINISH, tr.encode_finish(refusal)))
    await writer.drain()
    records.opener.max_frame = tr.FINISH_MAX_RECORD
    if refusal is not None:
        return _Refusal(refusal, records)
    verdict = tr.decode_finish(await _read_handshake_record(records, FINISH, "verdict"))
    if verdict is not None:
        raise PeerRefused(f"the peer {peer_cert.subject!r} refused this node: {verdict}")
    sealer.max_frame = max_frame
    records.opener.max_frame = max_frame
    return SecureConnection(writer, sealer, records, peer_cert, transcript)


async def _read_hello(reader: asyncio.StreamReader) -> bytes:
    size = tr.HELLO_HEADER_SIZE
    try:
        header = await reader.readexactly(size)
        size += tr.Hello.rest_size(header)
        return header + await reader.readexactly(size - len(header))
    except asyncio.IncompleteReadError as exc:
        got = len(exc.partial) + (0 if size == tr.HELLO_HEADER_SIZE else tr.HELLO_HEADER_SIZE)
        raise HandshakeError(
            f"the peer closed the connection after {got} bytes of its hello (expected {size})"
        ) from None


async def _read_handshake_record(records: RecordReader, expected: int, what: str) -> bytes:
    try:
        channel, payload = await records.read()
    except ConnectionClosed:
        raise HandshakeError(f"the peer closed the connection before sending its {what} record") from None
    except RecordError as exc:
        raise HandshakeError(f"the peer's {what} record is invalid: {exc}") from None
    if channel != expected:
        raise HandshakeError(
            f"expected the peer's {what} record (channel {expected:#04x}), got channel {channel:#04x}"
        )
    return payload


def _authenticate(payload: bytes, peer_role: int, transcript: bytes) -> Certificate:
    """Decode the peer's AUTH payload and verify its signature over the transcript."""
    cert, cert_bytes, signature = tr.decode_auth(payload)
    try:
        cert.key().verify(tr.auth_message(peer_role, transcript, cert_bytes), signature)
    except InvalidSignature:
        raise HandshakeError(
            f"the signature of {cert.subject!r} over the handshake transcript does not verify "
            "(forged, reflected, or a man in the middle)"
        ) from None
    except CryptoError as exc:
        raise HandshakeError(f"the key in the peer's certificate is invalid: {exc}") from None
    return cert


def _admission(me: _Identity, cert: Certificate) -> str | None:
    """``None`` to admit the authenticated peer ``cert``, else the reason to refuse it."""
    try:
        try:
            cert.verify(me.root)
        except ValidationError:
            raise PeerRefused(
                f"the certificate of {cert.subject!r} is not issued by this consortium's root"
            ) from None
        if not NODE_ROLES.intersection(cert.roles):
            roles = ", ".join(r.value for r in cert.roles)
            raise PeerRefused(f"{cert.subject!r} holds no node certificate (roles: {roles})")
        if cert.public_key == me.cert.public_key:
            raise PeerRefused("the peer presents this node's own key: a connection to itself")
        me.check_peer(cert)
    except PeerRefused as exc:
        return str(exc) or "refused"
    return None
