"""Benchmark: the secure peer channel (chain.net) on loopback TCP, and the choice of key
agreement behind it.

Prints two Markdown tables:

1. key agreement per connection — SM2-curve ECDH through OpenSSL's ``EC_POINT_mul`` (what
   the channel uses: key generation, and the exchange with point validation), whether
   OpenSSL 3's ``EVP_PKEY_derive`` accepts SM2 keys, and X25519 from ``cryptography``
   for comparison;
2. the channel — handshakes per second (both ends in one process, so each handshake
   costs two of everything), and one-way throughput for payloads of 1 KiB to 16 MiB.

Usage::

    .venv/bin/python bench/net_channel.py [--seconds S]

Both ends run in one Python process on one event loop, so the figures are a floor for
two nodes on two machines (each would use its own core).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import platform
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from chain.crypto import PrivateKey, _openssl, sm4
from chain.crypto.ecdh import EphemeralKey
from chain.net import Channel, SecureConnection, secure_accept, secure_connect
from chain.types import Certificate, Role


def rate(fn: Callable[[], object], seconds: float) -> float:
    fn()
    runs, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or runs < 3:
        fn()
        runs += 1
    return runs / elapsed


def evp_derive_supported() -> str:
    """Try ``EVP_PKEY_derive_init`` on an SM2 key (OpenSSL 3.0 refuses it)."""
    lib = _openssl._lib
    lib.EVP_PKEY_derive_init.restype = ctypes.c_int
    lib.EVP_PKEY_derive_init.argtypes = [ctypes.c_void_p]
    key = PrivateKey.generate()
    ctx = key._pkey._ctx()
    try:
        if lib.EVP_PKEY_derive_init(ctx) == 1:
            return "yes"
        return "no: " + _openssl.openssl_error()
    finally:
        lib.EVP_PKEY_CTX_free(ctx)


def key_agreement(seconds: float) -> list[tuple[str, str]]:
    a, b = EphemeralKey.generate(), EphemeralKey.generate()
    x_priv = X25519PrivateKey.generate()
    x_pub = X25519PrivateKey.generate().public_key().public_bytes_raw()
    return [
        (
            "SM2 ECDH key generation (EC_POINT_mul, base point) /s",
            f"{rate(EphemeralKey.generate, seconds):,.0f}",
        ),
        (
            "SM2 ECDH exchange incl. point validation /s",
            f"{rate(lambda: a.exchange(b.public_bytes), seconds):,.0f}",
        ),
        ("OpenSSL 3 EVP_PKEY_derive on SM2 keys", evp_derive_supported()),
        ("X25519 key generation /s (cryptography)", f"{rate(X25519PrivateKey.generate, seconds):,.0f}"),
        (
            "X25519 exchange /s (cryptography)",
            f"{rate(lambda: x_priv.exchange(X25519PublicKey.from_public_bytes(x_pub)), seconds):,.0f}",
        ),
    ]


class Pair:
    """Two certified nodes; ``b`` listens on loopback, ``a`` dials it."""

    def __init__(self) -> None:
        root = PrivateKey.generate()
        self.nodes = []
        for name in ("a", "b"):
            key = PrivateKey.generate()
            self.nodes.append(
                (key, Certificate.issue(root, name, "org", [Role.CONSENSUS_NODE], key.public_key, 0))
            )
        self.opts: dict[str, Any] = {
            "chain_id": "bench",
            "genesis_hash": bytes(32),
            "root": root.public_key,
            "check_peer": lambda cert: None,
        }
        self.accepted: asyncio.Queue[SecureConnection] = asyncio.Queue()
        self.server: asyncio.Server | None = None

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        key, cert = self.nodes[1]
        await self.accepted.put(await secure_accept(reader, writer, key, cert, **self.opts))

    async def connect(self) -> tuple[SecureConnection, SecureConnection]:
        if self.server is None:
            self.server = await asyncio.start_server(self._on_client, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(*self.server.sockets[0].getsockname()[:2])
        key, cert = self.nodes[0]
        return await secure_connect(reader, writer, key, cert, **self.opts), await self.accepted.get()


async def channel(seconds: float) -> list[tuple[str, str]]:
    pair = Pair()
    rows = []
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or count < 10:
        a, b = await pair.connect()
        await a.close()
        await b.close()
        count += 1
    rows.append(
        (
            "handshakes /s (both ends in one process, TCP connect and close included)",
            f"{count / elapsed:,.0f}",
        )
    )
    a, b = await pair.connect()
    for size in (1 << 10, 64 << 10, 1 << 20, 16 << 20):
        payload = os.urandom(size)
        n = max(3, min(5000, int(200e6 * seconds / 4 / size)))

        async def pump(n: int = n, payload: bytes = payload) -> None:
            for _ in range(n):
                await a.send(Channel.MEMPOOL, payload)

        start = time.perf_counter()
        sending = asyncio.create_task(pump())
        for _ in range(n):
            await b.recv()
        await sending
        elapsed = time.perf_counter() - start
        label = f"{size >> 10} KiB" if size < 1 << 20 else f"{size >> 20} MiB"
        rows.append(
            (
                f"one-way, {label} payloads",
                f"{n * size / elapsed / 1e6:,.1f} MB/s ({n / elapsed:,.0f} records/s)",
            )
        )
    await a.close()
    await b.close()
    assert pair.server is not None
    pair.server.close()
    return rows


def sm4_gcm(seconds: float) -> list[tuple[str, str]]:
    data = os.urandom(1 << 20)
    mb_s = rate(lambda: sm4.gcm_encrypt(bytes(16), bytes(12), data), seconds) * len(data) / 1e6
    return [("SM4-GCM seal, 1 MiB (the bound on channel throughput)", f"{mb_s:,.1f} MB/s")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args()
    machine = platform.processor() or platform.machine()
    print(f"{machine}, {os.cpu_count()} cores, Python {platform.python_version()}\n")
    for title, rows in (
        ("key agreement", key_agreement(args.seconds)),
        ("record cipher", sm4_gcm(args.seconds)),
        ("secure channel on loopback", asyncio.run(channel(args.seconds))),
    ):
        print(f"| {title} | measured |\n|---|---|")
        for name, value in rows:
            print(f"| {name} | {value} |")
        print()


if __name__ == "__main__":
    main()
