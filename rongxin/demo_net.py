"""The demo's networked consortium: node processes on loopback, reached only through the SDK.

:func:`network_stage` creates a network (``rongxin chain init``: five consensus nodes and
one observer), starts every node as its own process (``rongxin node run``), and then, as a
member application would, only talks to the nodes' APIs through
:class:`chain.client.NodeClient`:

1. anchors a batch of work digests and verifies the receipt offline;
2. keeps a stream of anchors going while one consensus node is killed with SIGKILL,
   commits without it, restarts it and waits until it has caught up;
3. checks that every node holds the same block hashes at every height and that no
   acknowledged transaction is missing anywhere;
4. stops every node (SIGTERM), leaving the network directory and the logs in the demo's
   output directory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from chain.client import NodeClient
from chain.crypto import PrivateKey
from chain.crypto.keyfile import load_private_key
from chain.errors import ChainError
from chain.node.identity import certificate_from_json
from chain.receipt import Receipt, verify_anchored_digest
from chain.types import Certificate, Genesis, Role
from rongxin.errors import RongxinError
from rongxin.ops import procs
from rongxin.ops.build import NetworkSpec, create_network
from rongxin.ops.layout import free_base_port

Step = Callable[[str, bool, str, float], None]
NET_PASSWORD = "rongxin-demo-network"


class DemoNetError(RongxinError):
    """The networked stage could not run (ports, processes, a node that never came up)."""


def _wait(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise DemoNetError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


@contextlib.contextmanager
def running_network(
    net_dir: Path, spec: NetworkSpec, password: str, *, scrypt_n: int, peers: int, what: str
) -> Iterator[dict[str, procs.NodeEntry]]:
    """Create a network in ``net_dir``, start its node processes and wait until each has
    ``peers`` peers; the nodes are stopped (and the key-password variable restored) on exit.

    Yields
    ------
    dict
        The node entries by name.
    """
    create_network(net_dir, spec, password, node_password=password, scrypt_n=scrypt_n, force=True)
    entries = {e.name: e for e in procs.discover(net_dir)}
    old = os.environ.get("RONGXIN_KEY_PASSWORD")
    os.environ["RONGXIN_KEY_PASSWORD"] = password  # the node processes read it at start
    try:
        for e in entries.values():
            procs.start_node(e)
        _wait(
            lambda: all(s.online and (s.peers or 0) >= peers for s in procs.probe(list(entries.values()))),
            60,
            what,
        )
        yield entries
    finally:
        procs.stop_nodes(list(entries.values()), timeout_s=15)
        if old is None:
            os.environ.pop("RONGXIN_KEY_PASSWORD", None)
        else:
            os.environ["RONGXIN_KEY_PASSWORD"] = old


def network_stage(out_dir: Path, step: Step, *, scrypt_n: int = 1 << 14) -> None:
    """Run the networked stage (see the module docstring), reporting through ``step``."""
    net_dir = out_dir / "net"
    t0 = time.perf_counter()
    spec = NetworkSpec(
        consensus=5,
        observers=1,
        base_port=free_base_port(6, low=30000),
        chain_id="rongxin-demo-net",
        consortium="Rongxin demo consortium (融信演示联盟)",
        block_interval_ms=200,
        round_timeout_ms=500,
    )
    with running_network(
        net_dir,
        spec,
        NET_PASSWORD,
        scrypt_n=scrypt_n,
        peers=5,
        what="six node processes to connect to each other",
    ) as entries:
        step(
            "node processes",
            True,
            f"chain init wrote {net_dir.name}/ (CA, sealed node keys, certificates, genesis, node.toml "
            "each); 5 consensus nodes + 1 observer run as processes on loopback over the SM2/SM4 "
            "secure channel",
            t0,
        )
        _member_work(net_dir, entries, step)


def _member_work(net_dir: Path, entries: dict[str, procs.NodeEntry], step: Step) -> None:
    genesis = Genesis.from_bytes((net_dir / "genesis.cbor").read_bytes())
    sup = net_dir / "supervisor"
    sup_key = load_private_key(sup / "supervisor.key", NET_PASSWORD)
    sup_cert = certificate_from_json((sup / "supervisor.cert.json").read_text())
    root = load_private_key(sup / "root.key", NET_PASSWORD)

    def url(name: str) -> str:
        return f"http://{entries[name].config.api.listen}"

    # a member organization, admitted through the node API
    t0 = time.perf_counter()
    key = PrivateKey.generate()
    subject = "County media center (县融媒体中心)"
    not_before = int(time.time() * 1000) - 3_600_000
    cert = Certificate.issue(
        root, subject, "County media center", [Role.MEDIA_CENTER], key.public_key, not_before
    )
    with NodeClient(url("node-0"), sup_key, sup_cert, genesis) as supervisor:
        added = int(supervisor.send("member.add", {"certificate": cert.to_dict()})["height"])
    # the member talks to node-1 and node-2: wait until they committed its registration too
    _wait(
        lambda: all((s.height or 0) >= added for s in procs.probe([entries["node-1"], entries["node-2"]])),
        30,
        "the member's registration on every node it uses",
    )
    media = NodeClient(url("node-1"), key, cert, genesis)
    digests = [os.urandom(32) for _ in range(1000)]
    receipt, proofs = media.anchor_batch(digests, "work-batch")
    receipt_path = net_dir.parent / "net-receipt-work-batch.cbor"
    receipt_path.write_bytes(receipt.to_bytes())
    info = verify_anchored_digest(
        Receipt.from_bytes(receipt_path.read_bytes()), genesis, digests[7], 7, proofs[7]
    )
    found = media.find_anchor(digests[500])
    step(
        "anchor through a node's API",
        found is not None and found.index == 500,
        f"a media center admitted by the supervisor through node-0's API; 1,000 work digests anchored "
        f"through node-1 as one Merkle batch at height {info.height}; {receipt_path.name} verified offline; "
        "any digest is found again through the API with its batch proof",
        t0,
    )

    # kill -9 a node under load, restart it, check it catches up
    t0 = time.perf_counter()
    acked: list[bytes] = []
    errors: list[str] = []
    stop = threading.Event()

    def load() -> None:
        with NodeClient(url("node-2"), key, cert, genesis) as c:
            while not stop.is_set():
                try:
                    done = c.send("anchor", {"digest": os.urandom(32), "kind": "work"})
                    acked.append(bytes.fromhex(done["tx_id"]))
                except ChainError as exc:
                    errors.append(str(exc))
                    time.sleep(0.2)

    media.close()
    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    _wait(lambda: len(acked) >= 5, 30, "the first anchors of the load")
    victim = entries["node-4"]
    pid = procs.running_pid(victim.config)
    if pid is None:
        raise DemoNetError("node-4 is not running")
    os.kill(pid, signal.SIGKILL)
    t_kill = time.perf_counter()
    killed_at = len(acked)
    _wait(lambda: len(acked) >= killed_at + 10, 60, "commits without node-4")
    _wait(lambda: procs.running_pid(victim.config) is None, 10, "node-4 to be gone")
    procs.start_node(victim)
    t_restart = time.perf_counter()
    target = max(s.height or 0 for s in procs.probe([entries["node-0"]]))
    _wait(
        lambda: (procs.probe([victim])[0].height or 0) >= target,
        60,
        "node-4 to catch up",
    )
    t_caught = time.perf_counter()
    stop.set()
    worker.join(30)

    # black-box checks over the API: same blocks everywhere, nothing acknowledged is lost
    clients = {n: NodeClient(url(n), sup_key, sup_cert, genesis) for n in entries}
    try:
        _wait(
            lambda: len({c.status()["height"] for c in clients.values()}) == 1, 30, "every node at one height"
        )
        top = min(c.status()["height"] for c in clients.values())
        same = all(
            len({c.request("GET", f"/blocks/{h}")["hash"] for c in clients.values()}) == 1
            for h in range(1, top + 1)
        )
        lost = [t for t in acked if any(_missing(c, t) for c in clients.values())]
    finally:
        for c in clients.values():
            c.close()
    step(
        "kill -9 under load, catch-up",
        same and not lost,
        f"node-4 killed with SIGKILL while {len(acked)} anchors were acknowledged; the other four kept "
        f"committing ({len(acked) - killed_at} anchors in {t_restart - t_kill:.1f} s), node-4 restarted and "
        f"caught up in {t_caught - t_restart:.1f} s; all 6 nodes hold the same "
        f"{top} blocks and every acknowledged transaction",
        t0,
    )


def _missing(client: NodeClient, tx_id: bytes) -> bool:
    with contextlib.suppress(ChainError):
        return client.request("GET", f"/txs/{tx_id.hex()}").get("status") != "committed"
    return True
