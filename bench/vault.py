"""Benchmark: the off-chain vault's throughput, in process and through a node's API.

For each file size:

* ``seal`` — :func:`chain.vault.objects.seal_file` (SM3 of the plaintext, SM4-GCM under a
  fresh key, SM3 of the ciphertext, header);
* ``verify`` — :meth:`chain.vault.store.LocalStore.verify` (what a scrub does per object:
  re-hash header and body, no key);
* ``open`` — :func:`chain.vault.objects.open_file` (check, decrypt, check the content SM3);
* ``PUT`` — :meth:`chain.client.vault.HttpObjects.put_file` to a node's API on loopback
  (the client's SM3 of the body, the signed streamed upload, the node's checks, fsync and
  rename);
* ``GET`` — :meth:`~chain.client.vault.HttpObjects.download` (streamed, checked against
  the digest as it arrives, written atomically).

The node is a real API (uvicorn, FastAPI, the vault routes and the signed-request checks)
over an in-process consortium; client and server share the machine's cores. Figures are
MB/s (10^6 bytes per second) of plaintext.

Usage::

    .venv/bin/python bench/vault.py [--sizes 16,256,1024] [--quick] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chain.api import create_app
from chain.client.vault import HttpObjects
from chain.localnet import LocalConsortium
from chain.node.service import NodeService
from chain.types import Role
from chain.vault.objects import open_file, seal_file
from chain.vault.service import VaultService
from chain.vault.store import LocalStore

MB = 1_000_000


@contextmanager
def _served(app: Any) -> Iterator[str]:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _random_file(path: Path, size: int) -> None:
    with open(path, "wb") as fh:
        left = size
        while left:
            n = min(left, 8 << 20)
            fh.write(os.urandom(n))
            left -= n


def run(sizes_mib: list[int], directory: Path) -> list[dict[str, float]]:
    """Measure every size; one row each."""
    consortium = LocalConsortium.create(directory / "chain", nodes=1)
    member = consortium.add_member("Legal center", [Role.LEGAL_CENTER])
    store = LocalStore(directory / "vault")
    replica = consortium.replicas[0]
    vault = VaultService(store, lambda: replica.app.state, max_object_bytes=1 << 40)

    async def submit(raw: bytes) -> bytes:  # the benchmark sends no transaction
        raise AssertionError("unused")

    service = NodeService("node-0", replica, submit=submit, vault=vault)
    rows = []
    try:
        with _served(create_app(service)) as url:
            objects = HttpObjects(url, member.key, member.cert, consortium.genesis, timeout_s=600)
            for mib in sizes_mib:
                size = mib << 20
                plain, sealed = directory / f"plain-{mib}", directory / f"sealed-{mib}"
                _random_file(plain, size)
                t0 = time.perf_counter()
                header, key = seal_file(member.cert.cert_id, plain, sealed)
                t_seal = time.perf_counter() - t0
                t0 = time.perf_counter()
                objects.put_file(header.digest, sealed)
                t_put = time.perf_counter() - t0
                t0 = time.perf_counter()
                store.verify(header.digest)
                t_verify = time.perf_counter() - t0
                got, back = directory / f"got-{mib}", directory / f"back-{mib}"
                t0 = time.perf_counter()
                objects.download(header.digest, got)
                t_get = time.perf_counter() - t0
                t0 = time.perf_counter()
                open_file(key, header.digest, got, back)
                t_open = time.perf_counter() - t0
                assert back.stat().st_size == size
                rows.append(
                    {
                        "MiB": mib,
                        "seal": size / MB / t_seal,
                        "verify": size / MB / t_verify,
                        "open": size / MB / t_open,
                        "PUT": size / MB / t_put,
                        "GET": size / MB / t_get,
                    }
                )
                for p in (plain, sealed, got, back):
                    p.unlink()
            objects.close()
    finally:
        consortium.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="16,256,1024", help="file sizes in MiB, comma-separated")
    parser.add_argument("--quick", action="store_true", help="16 and 64 MiB only (about half a minute)")
    parser.add_argument(
        "--dir", type=Path, default=None, help="working directory (a temporary one by default)"
    )
    args = parser.parse_args()
    sizes = [16, 64] if args.quick else [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="rx-bench-vault-", dir=args.dir) as d:
        rows = run(sizes, Path(d))
    print(f"{'size':>9} | {'seal':>8} | {'verify':>8} | {'open':>8} | {'PUT':>8} | {'GET':>8}   (MB/s)")
    print("-" * 70)
    for r in rows:
        print(
            f"{r['MiB']:>5} MiB | {r['seal']:>8.1f} | {r['verify']:>8.1f} | {r['open']:>8.1f} | "
            f"{r['PUT']:>8.1f} | {r['GET']:>8.1f}"
        )


if __name__ == "__main__":
    main()
