"""The secure peer channel over real loopback TCP: good connections and hostile bytes."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from typing import Any

import pytest

from chain.crypto import PrivateKey
from chain.crypto.ecdh import EphemeralKey
from chain.net import (
    Channel,
    ConnectionClosed,
    HandshakeError,
    NetError,
    PeerRefused,
    RecordError,
    SecureConnection,
    secure_accept,
    secure_connect,
)
from chain.net import transcript as tr
from chain.net.channels import AUTH, FINISH
from chain.net.records import MAX_RECORDS
from chain.types import Certificate, Role
from tests.chain.net.netfixtures import (
    Consortium,
    Outcome,
    Proxy,
    RawPeer,
    against_client,
    against_server,
    connect_pair,
    raw_client_session,
    run,
    serve,
)

CONSORTIUM = Consortium()
A = CONSORTIUM.node("node-a")
B = CONSORTIUM.node("node-b")


def conn_of(outcome: Outcome) -> SecureConnection:
    assert isinstance(outcome, SecureConnection), f"expected a connection, got {outcome!r}"
    return outcome


async def pair(**kw: Any) -> tuple[SecureConnection, SecureConnection]:
    mine, theirs = await connect_pair(A, B, CONSORTIUM.options(), CONSORTIUM.options(), **kw)
    return conn_of(mine), conn_of(theirs)


async def close_all(*conns: SecureConnection) -> None:
    for conn in conns:
        await conn.close()


# --------------------------------------------------------------------------- good input
def test_every_channel_both_ways_with_counters() -> None:
    async def scenario() -> None:
        a, b = await pair()
        assert a.peer_cert == B.cert and b.peer_cert == A.cert
        assert a.transcript_hash == b.transcript_hash and len(a.transcript_hash) == 32
        for i, channel in enumerate(Channel):
            await a.send(channel, bytes([i]) * (i + 1))
            await b.send(int(channel), b"")
        for i, channel in enumerate(Channel):
            assert await b.recv() == (channel, bytes([i]) * (i + 1))
            got = await a.recv()
            assert got == (channel, b"") and type(got[0]) is Channel
        assert a.bytes_sent == {int(c): i + 1 for i, c in enumerate(Channel)}
        assert b.bytes_received == a.bytes_sent
        assert set(b.bytes_sent) == {int(c) for c in Channel} and not any(b.bytes_sent.values())
        await close_all(a, b)

    run(scenario())


def test_16_mib_consensus_message_fits_default_max_frame() -> None:
    payload = bytes(range(256)) * (16 * 1024 * 1024 // 256)

    async def scenario() -> None:
        a, b = await pair()
        sent = asyncio.create_task(a.send(Channel.CONSENSUS, payload))
        assert await b.recv() == (Channel.CONSENSUS, payload)
        await sent
        await close_all(a, b)

    run(scenario())


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this Python")
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("::1 is not available here")

    async def scenario() -> None:
        a, b = await pair(host="::1")
        assert a.peer_address[0] == "::1"
        await a.send(Channel.HEARTBEAT, b"ping")
        assert await b.recv() == (Channel.HEARTBEAT, b"ping")
        await close_all(a, b)

    run(scenario())


def test_concurrent_senders_keep_records_whole_and_in_order_per_sender() -> None:
    async def scenario() -> None:
        a, b = await pair()

        async def sender(tag: int) -> None:
            for i in range(50):
                await a.send(Channel.MEMPOOL, bytes([tag, i]) * (1000 + tag * 37 + i))

        async def receiver() -> list[bytes]:
            return [(await b.recv())[1] for _ in range(4 * 50)]

        receiving = asyncio.create_task(receiver())
        await asyncio.gather(*(sender(t) for t in range(4)))
        got = await receiving
        seen: dict[int, list[int]] = {t: [] for t in range(4)}
        for payload in got:
            tag, i = payload[0], payload[1]
            assert payload == bytes([tag, i]) * (1000 + tag * 37 + i)
            seen[tag].append(i)
        assert all(seq == list(range(50)) for seq in seen.values())
        await close_all(a, b)

    run(scenario())


def test_check_peer_sees_the_verified_certificate() -> None:
    seen: list[tuple[str, Certificate]] = []

    async def scenario() -> None:
        mine, theirs = await connect_pair(
            A,
            B,
            CONSORTIUM.options(check_peer=lambda c: seen.append(("client", c))),
            CONSORTIUM.options(check_peer=lambda c: seen.append(("server", c))),
        )
        await close_all(conn_of(mine), conn_of(theirs))

    run(scenario())
    assert sorted(seen, key=lambda s: s[0]) == [("client", B.cert), ("server", A.cert)]


def test_clean_close_and_use_after_close() -> None:
    async def scenario() -> None:
        a, b = await pair()
        await a.send(Channel.BLOCK_SYNC, b"last")
        await a.close()
        assert a.closed
        assert await b.recv() == (Channel.BLOCK_SYNC, b"last")
        with pytest.raises(ConnectionClosed, match="closed the connection"):
            await b.recv()
        assert b.closed
        with pytest.raises(ConnectionClosed):
            await a.send(Channel.BLOCK_SYNC, b"x")
        with pytest.raises(ConnectionClosed):
            await a.recv()
        await a.close()  # idempotent

    run(scenario())


def test_local_send_mistakes_leave_the_connection_usable() -> None:
    async def scenario() -> None:
        mine, theirs = await connect_pair(A, B, CONSORTIUM.options(max_frame=1024), CONSORTIUM.options())
        a, b = conn_of(mine), conn_of(theirs)
        with pytest.raises(RecordError, match="max_frame"):
            await a.send(Channel.CONSENSUS, bytes(1024))
        with pytest.raises(RecordError, match="unknown channel"):
            await a.send(0x50, b"x")
        with pytest.raises(RecordError, match="unknown channel"):
            await a.send(AUTH, b"x")
        await a.send(Channel.CONSENSUS, bytes(1024 - 17))
        assert await b.recv() == (Channel.CONSENSUS, bytes(1007))
        assert not a.closed
        await close_all(a, b)

    run(scenario())


def test_nonce_counter_never_wraps() -> None:
    async def scenario() -> None:
        a, b = await pair()
        a._sealer.counter = MAX_RECORDS - 1
        await a.send(Channel.HEARTBEAT, b"last nonce")  # nonce 2**64 - 1 is used once
        with pytest.raises(RecordError, match="2\\*\\*64"):
            await a.send(Channel.HEARTBEAT, b"would wrap")
        assert a.closed
        await b.close()

    run(scenario())


# --------------------------------------------------------------------------- admission
def test_refusal_by_check_peer_reaches_both_sides() -> None:
    def refuse(cert: Certificate) -> None:
        raise PeerRefused(f"{cert.subject} is revoked at epoch 7")

    async def scenario() -> tuple[Outcome, Outcome]:
        return await connect_pair(A, B, CONSORTIUM.options(), CONSORTIUM.options(check_peer=refuse))

    mine, theirs = run(scenario())
    assert isinstance(theirs, PeerRefused) and "node-a is revoked at epoch 7" in str(theirs)
    assert isinstance(mine, PeerRefused)
    assert "'node-b' refused this node: node-a is revoked at epoch 7" in str(mine)


@pytest.mark.parametrize(
    ("peer", "reason"),
    [
        (Consortium().node("node-x"), "not issued by this consortium's root"),
        (CONSORTIUM.node("media", roles=(Role.MEDIA_CENTER,)), "holds no node certificate"),
        (None, "connection to itself"),
    ],
    ids=["foreign-root", "member-not-node", "self"],
)
def test_peers_that_are_not_admitted(peer: Any, reason: str) -> None:
    client = peer or A
    calls: list[Certificate] = []

    async def scenario() -> tuple[Outcome, Outcome]:
        opts = CONSORTIUM.options(check_peer=calls.append)
        server = A if peer is None else B
        return await connect_pair(client, server, CONSORTIUM.options(), opts)

    mine, theirs = run(scenario())
    assert isinstance(theirs, PeerRefused) and reason in str(theirs)
    assert isinstance(mine, PeerRefused) and reason in str(mine)
    assert not calls  # check_peer only sees certificates that verified


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"key": "other"}, "does not match its certificate"),
        ({"chain_id": "x" * 256}, "a chain id is 1 to 255 bytes"),
        ({"chain_id": ""}, "a chain id is 1 to 255 bytes"),
        ({"genesis_hash": bytes(31)}, "genesis_hash is 32 bytes"),
        ({"timeout": 0}, "timeout must be positive"),
        ({"max_frame": 63}, "max_frame must be within"),
    ],
    ids=["key", "long-chain-id", "empty-chain-id", "genesis-hash", "timeout", "max-frame"],
)
def test_bad_local_arguments_close_the_connection(change: dict[str, Any], message: str) -> None:
    async def scenario() -> None:
        async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        server, host, port = await serve(hang_up)
        reader, writer = await asyncio.open_connection(host, port)
        key = PrivateKey.generate() if change.pop("key", None) else A.key
        with pytest.raises(NetError, match=message):
            await secure_connect(reader, writer, key, A.cert, **CONSORTIUM.options(**change))
        assert writer.is_closing()
        server.close()

    run(scenario())


# --------------------------------------------------------------------------- hostile hellos
def test_wrong_chain_id_and_wrong_genesis() -> None:
    other_chain = Consortium(root=CONSORTIUM.root, chain_id="rongxin-other")
    other_genesis = Consortium(root=CONSORTIUM.root, genesis_hash=bytes(32))

    async def scenario() -> list[tuple[Outcome, Outcome]]:
        return [
            await connect_pair(A, B, other_chain.options(), CONSORTIUM.options()),
            await connect_pair(A, B, other_genesis.options(), CONSORTIUM.options()),
        ]

    (c1, s1), (c2, s2) = run(scenario())
    assert isinstance(s1, HandshakeError) and "on chain 'rongxin-other'" in str(s1)
    assert isinstance(c1, HandshakeError) and "on chain 'rongxin-net-test'" in str(c1)
    assert isinstance(s2, HandshakeError) and "genesis hash" in str(s2)
    assert isinstance(c2, HandshakeError) and "genesis hash" in str(c2)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "does not speak the Rongxin peer protocol"),
        ("version", "peer-protocol version 9"),
        ("suite", "cipher suite 7"),
        ("role", "role 5"),
        ("empty-chain-id", "empty chain id"),
        ("responder-role", "both sides claim the responder role"),
        ("off-curve", "ephemeral key is invalid"),
        ("compressed", "ephemeral key is invalid"),
        ("truncated", "closed the connection after 111 bytes of its hello (expected 121)"),
        (b"", "closed the connection after 0 bytes of its hello (expected 8)"),
    ],
)
def test_hostile_hellos(data: Any, message: str) -> None:
    good = bytearray(tr.Hello(tr.INITIATOR, CONSORTIUM.chain_id, CONSORTIUM.genesis_hash,
                              EphemeralKey.generate().public_bytes).to_bytes())  # fmt: skip
    cid = len(CONSORTIUM.chain_id.encode())
    point_at = 8 + cid + 32
    if data == "version":
        good[4] = 9
    elif data == "suite":
        good[5] = 7
    elif data == "role":
        good[6] = 5
    elif data == "empty-chain-id":
        good[7] = 0
    elif data == "responder-role":
        good[6] = tr.RESPONDER
    elif data == "off-curve":
        good[-1] ^= 1
    elif data == "compressed":
        good[point_at] = 2
    elif data == "truncated":
        del good[-10:]
    payload = bytes(good) if isinstance(data, str) else data

    async def script(peer: RawPeer) -> None:
        await peer.write(payload)
        await peer.writer.drain()
        if data in ("truncated", b""):
            peer.writer.write_eof()
        await peer.reader.read()  # until the server hangs up

    started = time.monotonic()
    _, outcome = run(against_server(CONSORTIUM, B, script))
    assert isinstance(outcome, HandshakeError), outcome
    assert message in str(outcome)
    assert time.monotonic() - started < 4.0  # refused at once, not by the timeout


def test_reflected_hello_is_refused() -> None:
    async def script(peer: RawPeer) -> None:
        header = await peer.reader.readexactly(tr.HELLO_HEADER_SIZE)
        theirs = header + await peer.reader.readexactly(tr.Hello.rest_size(header))
        await peer.write(theirs)  # echo the client's own hello
        await peer.reader.read()

    outcome, _ = run(against_client(CONSORTIUM, A, script))
    assert isinstance(outcome, HandshakeError) and "both sides claim the initiator role" in str(outcome)


def test_handshake_timeout_against_a_silent_peer() -> None:
    async def script(peer: RawPeer) -> None:
        await peer.reader.read()  # say nothing until the client gives up

    started = time.monotonic()
    outcome, _ = run(against_client(CONSORTIUM, A, script, timeout=0.3))
    assert isinstance(outcome, HandshakeError) and "within 0.3 s" in str(outcome)
    assert time.monotonic() - started < 2.5


def test_handshake_timeout_on_a_stalled_record() -> None:
    async def script(peer: RawPeer) -> None:
        await peer.exchange_hellos()
        await peer.write(peer.seal(AUTH, peer.auth_payload())[:-5])  # never completes
        await peer.reader.read()

    started = time.monotonic()
    _, outcome = run(against_server(CONSORTIUM, B, script, timeout=0.3))
    assert isinstance(outcome, HandshakeError) and "within 0.3 s" in str(outcome)
    assert time.monotonic() - started < 2.5


# --------------------------------------------------------------------------- hostile AUTH
def _auth_case(case: str, peer: RawPeer) -> bytes:
    """The AUTH record (wire bytes) of a hostile initiator for ``case``."""
    if case == "forged-signature":
        return peer.seal(AUTH, peer.auth_payload(sign_key=PrivateKey.generate()))
    if case == "reflected-label":
        return peer.seal(AUTH, peer.auth_payload(label_role=tr.RESPONDER))
    if case == "old-transcript":
        return peer.seal(AUTH, peer.auth_payload(transcript=bytes(32)))
    if case == "stolen-certificate":
        return peer.seal(AUTH, peer.auth_payload(cert=A.cert))  # signed with another key
    if case == "malformed-certificate":
        return peer.seal(AUTH, (5).to_bytes(2, "big") + b"\xa1\x61x\x01!" + bytes(64))
    if case == "length-mismatch":
        return peer.seal(AUTH, peer.auth_payload() + b"\x00")
    if case == "oversized-certificate":
        return peer.seal(AUTH, (5000).to_bytes(2, "big") + bytes(64))
    if case == "wrong-record-type":
        return peer.seal(FINISH, tr.encode_finish(None))
    if case == "tampered":
        record = bytearray(peer.seal(AUTH, peer.auth_payload()))
        record[20] ^= 0x40
        return bytes(record)
    if case == "oversized-record":  # a certificate too big for the AUTH record limit
        return peer.seal(AUTH, (5000).to_bytes(2, "big") + bytes(5064))[:100]
    if case == "truncated":
        return peer.seal(AUTH, peer.auth_payload())[:100]
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("forged-signature", "does not verify"),
        ("reflected-label", "does not verify"),
        ("old-transcript", "does not verify"),
        ("stolen-certificate", "does not verify"),
        ("malformed-certificate", "certificate is malformed"),
        ("length-mismatch", "does not match its certificate length"),
        ("oversized-certificate", "at most 4096"),
        ("wrong-record-type", "expected the peer's authentication record"),
        ("tampered", "failed authentication"),
        ("oversized-record", "exceeds max_frame"),
        ("truncated", "mid-record"),
    ],
)
def test_hostile_authentication(case: str, message: str) -> None:
    async def script(peer: RawPeer) -> None:
        await peer.exchange_hellos()
        await peer.write(_auth_case(case, peer))
        if case == "truncated":
            peer.writer.write_eof()
        await peer.reader.read()

    calls: list[Certificate] = []
    started = time.monotonic()
    _, outcome = run(against_server(CONSORTIUM, B, script, check_peer=calls.append))
    assert isinstance(outcome, HandshakeError), outcome
    assert message in str(outcome)
    assert not calls
    assert time.monotonic() - started < 4.0


def test_responder_reflecting_the_initiator_label_is_refused() -> None:
    async def script(peer: RawPeer) -> None:
        await peer.exchange_hellos()
        await peer.write(peer.seal(AUTH, peer.auth_payload(label_role=tr.INITIATOR)))
        await peer.reader.read()

    outcome, _ = run(against_client(CONSORTIUM, A, script))
    assert isinstance(outcome, HandshakeError) and "does not verify" in str(outcome)


def test_malformed_verdict() -> None:
    async def script(peer: RawPeer) -> None:
        await peer.exchange_hellos()
        await peer.write(peer.seal(AUTH, peer.auth_payload()))
        await peer.read()
        await peer.write(peer.seal(FINISH, b"\x07"))
        await peer.reader.read()

    outcome, _ = run(against_client(CONSORTIUM, A, script))
    assert isinstance(outcome, HandshakeError) and "verdict is malformed" in str(outcome)


# --------------------------------------------------------------------------- hostile records
def _record_case(case: str, peer: RawPeer) -> list[bytes]:
    """Wire bytes a hostile peer sends after an honest handshake for ``case``."""
    if case == "tampered":
        flipped = bytearray(peer.seal(Channel.CONSENSUS, b"vote for block 7"))
        flipped[-20] ^= 1
        return [bytes(flipped)]
    if case == "tampered-length":
        record = peer.seal(Channel.CONSENSUS, b"vote for block 7")
        return [(int.from_bytes(record[:4], "big") - 1).to_bytes(4, "big") + record[4:-1]]
    if case == "replayed":
        record = peer.seal(Channel.CONSENSUS, b"vote")
        return [record, record]
    if case == "reordered":
        first = peer.seal(Channel.CONSENSUS, b"first")
        second = peer.seal(Channel.CONSENSUS, b"second")
        return [second, first]
    if case == "unknown-channel":
        return [peer.seal(0x50, b"?")]
    if case == "handshake-channel":
        return [peer.seal(AUTH, b"again")]
    if case == "oversized":
        return [(1024 + 1).to_bytes(4, "big")]
    if case == "undersized":
        return [(16).to_bytes(4, "big") + bytes(16)]
    if case == "cut-in-body":
        return [peer.seal(Channel.MEMPOOL, bytes(100))[:50]]
    if case == "cut-in-length":
        return [b"\x00\x00"]
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "good_first", "message"),
    [
        ("tampered", 0, "failed authentication"),
        ("tampered-length", 0, "failed authentication"),
        ("replayed", 1, "failed authentication"),
        ("reordered", 0, "failed authentication"),
        ("unknown-channel", 0, "unknown channel 0x50"),
        ("handshake-channel", 0, "unknown channel 0x01"),
        ("oversized", 0, "exceeds max_frame 1024"),
        ("undersized", 0, "shorter than"),
        ("cut-in-body", 0, "mid-record (46 of 117 bytes"),
        ("cut-in-length", 0, "mid-record (after 2 length bytes)"),
    ],
)
def test_hostile_records(case: str, good_first: int, message: str) -> None:
    async def scenario() -> None:
        async with raw_client_session(CONSORTIUM, B, max_frame=1024) as (peer, conn):
            for piece in _record_case(case, peer):
                await peer.write(piece)
            peer.writer.write_eof()
            for _ in range(good_first):
                await conn.recv()
            with pytest.raises(RecordError, match=re.escape(message)):
                await conn.recv()
            assert conn.closed
            with pytest.raises(ConnectionClosed):
                await conn.recv()

    run(scenario())


def test_man_in_the_middle_cannot_replay_drop_or_flip() -> None:
    """A network attacker without keys: replays, drops or flips a record in transit."""

    def replay(index: int, unit: bytes) -> list[bytes]:
        return [unit, unit] if index == 3 else [unit]  # 0 hello, 1 AUTH, 2 FINISH, 3 data

    def drop(index: int, unit: bytes) -> list[bytes]:
        return [] if index == 3 else [unit]

    def flip(index: int, unit: bytes) -> list[bytes]:
        return [unit[:-1] + bytes([unit[-1] ^ 0x80])] if index == 3 else [unit]

    async def scenario(mutate: Any, first_ok: bool) -> str:
        proxy = Proxy(mutate)
        try:
            mine, theirs = await connect_pair(A, B, CONSORTIUM.options(), CONSORTIUM.options(), via=proxy)
            a, b = conn_of(mine), conn_of(theirs)
            await a.send(Channel.CONSENSUS, b"one")
            await a.send(Channel.CONSENSUS, b"two")
            if first_ok:
                assert await b.recv() == (Channel.CONSENSUS, b"one")
            with pytest.raises(RecordError) as err:
                await b.recv()
            await close_all(a, b)
            return str(err.value)
        finally:
            proxy.close()

    assert "record 3 failed authentication" in run(scenario(replay, True))
    assert "record 2 failed authentication" in run(scenario(drop, False))
    assert "record 2 failed authentication" in run(scenario(flip, False))


def test_man_in_the_middle_cannot_swap_ephemeral_keys() -> None:
    """Replacing the client's ephemeral key (to read the traffic) breaks authentication."""
    attacker = EphemeralKey.generate()

    def swap(index: int, unit: bytes) -> list[bytes]:
        return [unit[: -tr.EPHEMERAL_SIZE] + attacker.public_bytes] if index == 0 else [unit]

    async def scenario() -> tuple[Outcome, Outcome]:
        proxy = Proxy(swap)
        try:
            return await connect_pair(A, B, CONSORTIUM.options(), CONSORTIUM.options(), via=proxy)
        finally:
            proxy.close()

    mine, theirs = run(scenario())
    assert isinstance(mine, HandshakeError) and isinstance(theirs, HandshakeError)
    assert "failed authentication" in str(mine) + str(theirs)


def test_public_entry_points_agree() -> None:
    """secure_connect / secure_accept (the public names) interoperate."""

    async def scenario() -> None:
        accepted: asyncio.Future[SecureConnection] = asyncio.get_running_loop().create_future()

        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.set_result(await secure_accept(reader, writer, B.key, B.cert, **CONSORTIUM.options()))

        server, host, port = await serve(on_client)
        reader, writer = await asyncio.open_connection(host, port)
        async with await secure_connect(reader, writer, A.key, A.cert, **CONSORTIUM.options()) as a:
            b = await accepted
            await b.send(Channel.STATE_SYNC, b"chunk")
            assert await a.recv() == (Channel.STATE_SYNC, b"chunk")
        assert a.closed
        await b.close()
        server.close()

    run(scenario())


def test_throughput_floor() -> None:
    """32 MiB in 256 KiB records well within a generous bound (catches quadratic buffering
    or per-byte work; the figures themselves are bench/net_channel.py's)."""

    async def scenario() -> float:
        a, b = await pair()
        payload = bytes(256 * 1024)
        started = time.monotonic()

        async def pump() -> None:
            for _ in range(128):
                await a.send(Channel.BLOCK_SYNC, payload)

        sending = asyncio.create_task(pump())
        for _ in range(128):
            assert (await b.recv())[1] == payload
        await sending
        elapsed = time.monotonic() - started
        await close_all(a, b)
        return elapsed

    assert run(scenario(), timeout=60) < 20.0
