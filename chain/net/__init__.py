"""Secure peer connections between consortium nodes.

Python's :mod:`ssl` cannot speak TLCP or the RFC 8998 SM cipher suites on OpenSSL 3.0, so
nodes talk over their own station-to-station protocol (modelled on CometBFT's
SecretConnection) built from national cryptography: SM2-curve ECDH for fresh keys, SM2
signatures by each node's certified identity key over an SM3 transcript bound to the
chain id and genesis hash, HKDF-SM3 traffic keys, and SM4-GCM records with counter
nonces.  ``docs/protocol.md`` specifies it byte by byte.

=====================  ==========================================================
:func:`secure_connect`  handshake as the dialling side; returns a connection
:func:`secure_accept`   handshake as the listening side
:class:`SecureConnection`  ``send(channel, payload)``, ``recv()``, ``close()``,
                        ``peer_cert``, per-channel ``bytes_sent`` / ``bytes_received``
:class:`Channel`        HEARTBEAT, CONSENSUS, MEMPOOL, BLOCK_SYNC, STATE_SYNC
errors                  :class:`NetError` and its subclasses :class:`HandshakeError`,
                        :class:`PeerRefused`, :class:`RecordError`,
                        :class:`ConnectionClosed`
=====================  ==========================================================

Examples
--------
>>> import asyncio
>>> from chain.crypto import PrivateKey
>>> from chain.types import Certificate, Role
>>> root = PrivateKey.generate()
>>> keys = [PrivateKey.generate() for _ in range(2)]
>>> certs = [Certificate.issue(root, f"node-{i}", "org", [Role.CONSENSUS_NODE], k.public_key, 0)
...          for i, k in enumerate(keys)]
>>> opts = dict(chain_id="demo", genesis_hash=bytes(32), root=root.public_key,
...             check_peer=lambda cert: None)
>>> async def demo():
...     accepted = asyncio.get_running_loop().create_future()
...     async def on_client(reader, writer):
...         accepted.set_result(await secure_accept(reader, writer, keys[1], certs[1], **opts))
...     server = await asyncio.start_server(on_client, "127.0.0.1", 0)
...     reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
...     conn = await secure_connect(reader, writer, keys[0], certs[0], **opts)
...     peer = await accepted
...     await conn.send(Channel.CONSENSUS, b"proposal")
...     got = await peer.recv()
...     await conn.close(); await peer.close(); server.close()
...     return conn.peer_cert.subject, got, peer.bytes_received[Channel.CONSENSUS]
>>> asyncio.run(demo())
('node-1', (<Channel.CONSENSUS: 32>, b'proposal'), 8)
"""

from chain.errors import ConnectionClosed, HandshakeError, NetError, PeerRefused, RecordError
from chain.net.channel import SecureConnection
from chain.net.channels import Channel
from chain.net.handshake import CheckPeer, secure_accept, secure_connect
from chain.net.records import DEFAULT_MAX_FRAME

__all__ = [
    "DEFAULT_MAX_FRAME",
    "Channel",
    "CheckPeer",
    "ConnectionClosed",
    "HandshakeError",
    "NetError",
    "PeerRefused",
    "RecordError",
    "SecureConnection",
    "secure_accept",
    "secure_connect",
]
