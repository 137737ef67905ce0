"""Benchmark: page render times of the member platform with many works and transactions.

A chain of T committed anchor transactions is built on an in-process consortium (one
validator, real SM2 and SQLite; ≤ 1000 transactions per block) and served by the node's
real HTTP API (uvicorn on 127.0.0.1). The works index holds W works (the rows the works
pages read; a few real photos are registered in the forensics library and anchored for
the work and anchored-digest pages). The platform is served by uvicorn on 127.0.0.1 and
every page is fetched by a signed-in httpx client, R times each, after a first fetch
(timed apart: it fills the platform's memory of block summaries).

The chain is built through the node's real path (each transaction signed by one of 16
certified members, admitted and signature-checked by the node, ordered, executed,
committed), the signing done ahead in a second process, and kept under ``--cache``
(``~/.cache/rongxin-bench/platform-chain-T``; keys encrypted) with its progress after every
20,000 transactions: later runs reuse it, and an interrupted build goes on where it
stopped. ``--as-built`` measures the cached chain as far as it got.

(Named ``platform_pages.py``: a script called ``platform.py`` would shadow the standard
library's ``platform`` module for everything it imports.)

Target: p95 ≤ 200 ms per page with W = 100,000 works and T = 1,000,000 transactions.

Usage::

    .venv/bin/python bench/platform_pages.py --quick          # W = 100,000, T = 20,000; about a minute
    .venv/bin/python bench/platform_pages.py                  # W = 100,000, T = 1,000,000 (the first
                                                        # run builds the chain: SM2 bound)
    .venv/bin/python bench/platform_pages.py --as-built       # the 1,000,000 chain as far as built
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
# bench/privacy.py would shadow the privacy package the platform imports
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import httpx  # noqa: E402
import numpy as np  # noqa: E402

from chain import codec  # noqa: E402
from chain.api import create_app as node_app  # noqa: E402
from chain.client import NodeClient  # noqa: E402
from chain.localnet import LocalConsortium  # noqa: E402
from chain.node.service import NodeService  # noqa: E402
from chain.types import ChainParams, Role, Transaction  # noqa: E402
from forensics.types import Registration  # noqa: E402
from rongxin.platform.accounts import AccountStore  # noqa: E402
from rongxin.platform.app import close_app, create_app  # noqa: E402
from rongxin.platform.chainview import ChainView  # noqa: E402
from rongxin.platform.config import PlatformConfig  # noqa: E402

PASSWORD = "benchmark password 2026"


@contextlib.contextmanager
def served(app: Any) -> Iterator[str]:
    """``app`` on uvicorn at 127.0.0.1 (a free port), in a thread."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


KEY_PASSWORD = "benchmark chain keys 2026"  # the cache's keys are throw-away benchmark keys
MEMBERS = 16
CHUNK = 20_000


def _jobs(
    members: list[Any], chain_id: str, first: int, txs: int
) -> Iterator[tuple[bytes, bytes, str, int, int, int]]:
    """Signing work in chunks of CHUNK transactions from ``first`` anchors on, each chunk
    split evenly between the members, each member going on from its last nonce on chain
    (so an interrupted build resumes wherever each member stopped)."""
    nonces = [ident.nonce for ident in members]
    for start in range(first, txs, CHUNK):
        size = min(CHUNK, txs - start)
        for m, ident in enumerate(members):
            count = size // len(members) + (1 if m < size % len(members) else 0)
            yield ident.key.to_bytes(), ident.cert.cert_id, chain_id, m, nonces[m] + 1, count
            nonces[m] += count


def _signed_chunks(
    members: list[Any], chain_id: str, first: int, txs: int, pool: Any
) -> Iterator[list[bytes]]:
    """Chunks of signed transactions, signed ahead by ``pool`` while the node admits the
    previous chunk (SM2 signing and verification run on both cores at once)."""
    per_chunk: list[list[bytes]] = []
    for part in pool.imap(_sign_member_part, _jobs(members, chain_id, first, txs), chunksize=1):
        per_chunk.append(part)
        if len(per_chunk) == len(members):
            # interleave the members, keeping each member's nonces in order
            merged = [tx for row in zip(*per_chunk, strict=False) for tx in row]
            rest = [tx for col in per_chunk for tx in col[min(map(len, per_chunk)) :]]
            yield merged + rest
            per_chunk = []


def _sign_member_part(job: tuple[bytes, bytes, str, int, int, int]) -> list[bytes]:
    """Worker: sign ``count`` anchors of member ``m`` from nonce ``first`` (each digest
    unique: ``m + MEMBERS * (nonce - 1)``)."""
    raw_key, cert_id, chain_id, m, first, count = job
    from chain.crypto.sm2 import PrivateKey

    key = PrivateKey.from_bytes(raw_key)
    out = []
    for nonce in range(first, first + count):
        digest = (m + MEMBERS * (nonce - 1)).to_bytes(32, "big")
        tx = Transaction.create(key, cert_id, "anchor", {"digest": digest, "kind": "b"}, nonce, 1, chain_id)
        out.append(tx.to_bytes())
    return out


class _Recording:
    """A key factory that remembers the keys it made (to save them, encrypted, with the chain)."""

    def __init__(self) -> None:
        self.keys: list[Any] = []

    def __call__(self) -> Any:
        from chain.crypto.sm2 import PrivateKey

        key = PrivateKey.generate()
        self.keys.append(key)
        return key


def _save_keys(directory: Path, keys: list[Any]) -> None:
    from chain.crypto.keyfile import save_private_key

    for n, key in enumerate(keys):
        save_private_key(key, directory / f"key-{n}.key", KEY_PASSWORD, scrypt_n=1024)


def _save_progress(
    directory: Path, c: LocalConsortium, keys: int, members: list[Any], sample: list[bytes], done: int
) -> None:
    """What a later run needs to reopen (or go on building) the chain: written after each chunk."""
    doc = {
        "genesis": c.genesis.to_bytes().hex(),
        "keys": keys,
        "members": [codec.encode(m.cert.to_dict()).hex() for m in members],
        "sample": [t.hex() for t in sample],
        "done": done,
    }
    tmp = directory / "chain.json.tmp"
    tmp.write_text(json.dumps(doc))
    tmp.replace(directory / "chain.json")


def _open_cache(directory: Path) -> tuple[LocalConsortium, list[Any], list[bytes], int] | None:
    """The chain a previous run built (or began) in ``directory``: the consortium, its
    members, sample tx ids and how many anchors it holds; None when there is none."""
    from chain.crypto.keyfile import load_private_key
    from chain.localnet import Identity, LocalNet
    from chain.replica import Replica
    from chain.types import Certificate, Genesis

    meta = directory / "chain.json"
    if not meta.is_file():
        return None
    doc = json.loads(meta.read_text())
    genesis = Genesis.from_bytes(bytes.fromhex(doc["genesis"]))
    keys = [load_private_key(directory / f"key-{n}.key", KEY_PASSWORD) for n in range(doc["keys"])]
    root, sup_key, node_key = keys[0], keys[1], keys[2]
    replica = Replica(genesis, directory / "node-0.db", node_key)
    net = LocalNet([replica])
    net.start()
    supervisor = Identity(sup_key, genesis.certificates[0])
    node = Identity(node_key, genesis.certificates[1])
    c = LocalConsortium(directory, root, supervisor, [node], genesis, net)
    members = []
    for key, raw in zip(keys[3:], doc["members"], strict=True):
        ident = Identity(key, Certificate.from_dict(codec.decode(bytes.fromhex(raw))))
        ident.nonce = next_nonce_of(c, ident)
        members.append(ident)
    supervisor.nonce = next_nonce_of(c, supervisor)
    done = sum(m.nonce for m in members)  # the members' transactions on chain (anchors)
    return c, members, [bytes.fromhex(t) for t in doc["sample"]], done


def build_chain(
    directory: Path, txs: int, extend: bool = True
) -> tuple[LocalConsortium, Any, list[bytes], int]:
    """A one-validator chain holding ``txs`` committed anchors; the member, some tx ids and
    the number of anchors (``extend=False``: the cached chain as far as it was built).

    Built through the real path — each transaction SM2-signed by a certified member,
    admitted (its signature verified) by the node, ordered by consensus, executed and
    committed to the node's SQLite store — with the signing done ahead in a second
    process. The chain is kept in ``directory`` (keys encrypted) with its progress after
    every chunk of CHUNK transactions: a later run reuses it, or goes on where an
    interrupted build stopped.
    """
    import multiprocessing

    cached = _open_cache(directory)
    if cached is not None:
        c, members, sample, done = cached
        print(f"  chain: {directory} holds {done:,} anchors (head #{c.replicas[0].store.head_height():,})")
    else:
        directory.mkdir(parents=True, exist_ok=True)
        keys = _Recording()
        c = LocalConsortium.create(
            directory,
            nodes=1,
            params=ChainParams(max_block_txs=1000, round_timeout_ms=2000),
            key_factory=keys,
        )
        members = [c.add_member(f"bench-{s}", [Role.MEDIA_CENTER]) for s in range(MEMBERS)]
        _save_keys(directory, keys.keys)
        sample, done = [], 0
        _save_progress(directory, c, len(keys.keys), members, sample, done)
    if done < txs and extend:
        keys_n = 3 + len(members)
        t0, first = time.perf_counter(), done
        with multiprocessing.get_context("fork").Pool(1) as pool:
            for chunk in _signed_chunks(members, c.genesis.chain_id, done, txs, pool):
                ids = [c.net.submit(raw) for raw in chunk]
                c.net.wait(ids[-1], 3_600_000)

                def committed(ids: list[bytes] = ids) -> bool:
                    return all(c.net.committed_everywhere(t) for t in ids[:: max(1, len(ids) // 20)])

                c.net.run_until(committed)
                sample.extend(ids[:: max(1, len(ids) // 10)])
                done += len(chunk)
                _save_progress(directory, c, keys_n, members, sample, done)
                elapsed = time.perf_counter() - t0
                print(
                    f"\r  chain: {done:,}/{txs:,} transactions ({elapsed:.0f} s, "
                    f"{(done - first) / elapsed:.0f} tx/s)",
                    end="",
                    flush=True,
                )
        print()
        for m in members:
            m.nonce = next_nonce_of(c, m)
    return c, members[0], sample, done


def next_nonce_of(c: LocalConsortium, ident: Any) -> int:
    """The last nonce ``ident`` used on ``c``'s first node."""
    from chain.executor import next_nonce

    return next_nonce(c.replicas[0].app.state, ident.cert.cert_id) - 1


def fill_index(platform: Any, works: int) -> None:
    """``works`` rows in the works index (what the works pages read)."""
    rng = np.random.default_rng(7)
    words = [
        "港口",
        "晨景",
        "harbour",
        "river",
        "concert",
        "新闻",
        "documentary",
        "county",
        "archive",
        "interview",
    ]

    def rows() -> Iterator[Registration]:
        for i in range(works):
            title = " ".join(words[j] for j in rng.integers(0, len(words), 3))
            yield Registration(
                f"work-{i:07d}",
                ("image", "audio", "video")[i % 3],
                bytes(32),
                bytes(32),
                {"title": f"{title} {i}", "owner": f"center {i % 97}", "filename": f"f{i}.jpg"},
                f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T00:00:{i % 60:02d}Z",
            )

    index = platform.works.index
    index.rebuild(rows())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="about a minute: 20,000 transactions")
    ap.add_argument("--works", type=int, default=100_000)
    ap.add_argument("--txs", type=int, default=None)
    ap.add_argument("--requests", type=int, default=None, help="fetches per page")
    ap.add_argument(
        "--cache",
        type=Path,
        default=Path.home() / ".cache" / "rongxin-bench",
        help="where built chains are kept and reused (one per transaction count)",
    )
    ap.add_argument("--no-cache", action="store_true", help="build the chain in a temporary directory")
    ap.add_argument(
        "--as-built",
        action="store_true",
        help="measure the cached chain as far as an interrupted build got (build no further)",
    )
    args = ap.parse_args()
    txs = args.txs or (20_000 if args.quick else 1_000_000)
    reps = args.requests or (30 if args.quick else 100)
    import cv2
    import skimage.data

    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        print(f"building: {txs:,} transactions, {args.works:,} works")
        chain_dir = root / "chain" if args.no_cache else args.cache / f"platform-chain-{txs}"
        c, member, sample, txs = build_chain(chain_dir, txs, extend=not args.as_built)

        async def refuse(raw: bytes) -> bytes:
            return c.net.submit(raw)

        service = NodeService("node-0", c.replicas[0], submit=refuse)
        with served(node_app(service)) as node_url:
            client = NodeClient(node_url, member.key, member.cert, c.genesis)
            config = PlatformConfig(data_dir=root / "data", library=root / "library", nodes=(node_url,))
            store = AccountStore(config.data_dir / "accounts.sqlite")
            store.create_user("bench", PASSWORD, {"legal_staff", "operator"})
            app = create_app(config, chain=ChainView(client, c.genesis), store=store)
            platform = app.state.platform
            photo = root / "photo.jpg"
            cv2.imwrite(str(photo), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))  # type: ignore[no-untyped-call]
            with open(photo, "rb") as fh:
                reg = platform.works.add(fh, "photo.jpg", {"title": "bench photo"})
            # anchored through the node: drive the in-process network while the client waits
            digest = reg.fingerprint_digest
            receipt = c.anchor(member, digest, "work-fingerprint")
            platform.works.save_receipt(reg.work_id, receipt.to_bytes())
            t0 = time.perf_counter()
            fill_index(platform, args.works)
            print(f"  works index: {args.works:,} rows in {time.perf_counter() - t0:.1f} s")
            platform.works.count = lambda: args.works  # the index stands for the library's rows
            head = c.replicas[0].store.head_height()
            pages = {
                "static stylesheet (the floor: HTTP on a loaded machine)": "/static/app.css",
                "home (session, role check, template)": "/",
                "explorer (head, 20 blocks, chart of 240)": "/explorer",
                "explorer, older page": f"/explorer?before={head // 2}",
                "block (1000 txs)": f"/explorer/blocks/{max(2, head - 5)}",
                "transaction": f"/explorer/txs/{sample[len(sample) // 2].hex()}",
                "anchored digest (receipt verified)": f"/explorer/anchors/{digest.hex()}",
                "search by tx id": f"/explorer/search?q={sample[3].hex()}",
                "works, first page": "/works",
                "works, search (no match: full scan)": "/works?q=no-such-title",
                "works, search hit": "/works?q=harbour%20river",
                "works, page 1000": "/works?page=1000",
                "work page (anchor verified)": f"/works/{reg.work_id}",
                "operations": "/ops",
            }
            with served(app) as base, httpx.Client(base_url=base, timeout=300, follow_redirects=True) as http:
                page = http.get("/login").text
                token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
                r = http.post("/login", data={"username": "bench", "password": PASSWORD, "csrf": token})
                assert r.status_code == 200, r.status_code
                print(
                    f"\n{txs:,} transactions in {head:,} blocks, {args.works:,} works; {reps} fetches/page\n"
                )
                print("| page | first ms | p50 ms | p95 ms | max ms | ≤ 200 ms |")
                print("|---|---:|---:|---:|---:|:---:|")
                for name, path in pages.items():
                    t = time.perf_counter()
                    first = http.get(path)
                    first_ms = 1000 * (time.perf_counter() - t)
                    assert first.status_code in (200, 303), (path, first.status_code)
                    platform.chain.wait_filled(600)  # the chart's blocks, read in the background
                    times = []
                    for _ in range(reps):
                        t = time.perf_counter()
                        http.get(path)
                        times.append(1000 * (time.perf_counter() - t))
                    times.sort()
                    p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
                    p50 = statistics.median(times)
                    verdict = "yes" if p95 <= 200 else "NO"
                    print(
                        f"| {name} | {first_ms:.0f} | {p50:.1f} | {p95:.1f} | {times[-1]:.1f} | {verdict} |"
                    )
            close_app(app)
        c.close()


if __name__ == "__main__":
    main()
