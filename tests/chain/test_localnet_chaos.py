"""Seeded chaos over full replicas: random delivery order, drops, a crash and restart from
disk, a revoked validator and an admitted one — agreement, durability and liveness hold."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from chain.crypto import PrivateKey
from chain.crypto.sm3 import sm3
from chain.epochs import current_epoch
from chain.localnet import Identity, LocalConsortium
from chain.receipt import verify_receipt
from chain.replica import Replica
from chain.types import Certificate, ChainParams, Role


def run_chaos(seed: int, directory: Path) -> None:
    rng = random.Random(seed)
    counter = iter(range(1_000_000))

    def test_key() -> PrivateKey:  # deterministic keys for replay: test-only, never for real keys
        return PrivateKey.from_bytes(sm3(b"chaos-test-key/%d/%d" % (seed, next(counter))))

    c = LocalConsortium.create(
        directory, nodes=5, params=ChainParams(round_timeout_ms=400), key_factory=test_key
    )
    m = c.add_member("m", [Role.MEDIA_CENTER])
    net = c.net
    net.rng = rng
    net.drop_rate = rng.choice([0.0, 0.02, 0.05, 0.1])
    chain_id = c.genesis.chain_id
    submitted: list[bytes] = []
    committed_before_crash: dict[int, bytes] = {}

    def anchor(i: int) -> None:
        tx = m.sign(chain_id, "anchor", {"digest": i.to_bytes(32, "big"), "kind": "chaos"}, net.now)
        submitted.append(net.submit(tx.to_bytes()))

    def settle(ms: int) -> None:
        deadline = net.now + ms
        while net.now < deadline and net.step():
            pass

    plan = ["tx", "tx", "crash", "tx", "revoke", "tx", "restart", "tx", "admit", "tx", "promote", "tx"]
    crashed: str | None = None
    crashed_key: PrivateKey | None = None
    newcomer_key = test_key()
    revoked: list[bytes] = []
    newcomer_cert: list[Certificate] = []
    newcomer: list[Replica] = []
    for step_no, action in enumerate(plan):
        if action == "tx":
            anchor(step_no)
        elif action == "crash":
            victim = rng.randrange(1, 5)  # node-0 keeps the supervisor's view simple
            crashed = f"node-{victim}"
            crashed_key = c.nodes[victim].key
            r = net.replicas[crashed]
            committed_before_crash = {h: r.store.block(h).hash for h in range(1, r.store.head_height() + 1)}  # type: ignore[union-attr]
            net.down.add(crashed)
        elif action == "revoke":
            target = c.nodes[rng.choice([i for i in range(1, 5) if f"node-{i}" != crashed])].cert.cert_id
            revoked.append(target)
            tx = c.supervisor.sign(chain_id, "member.revoke", {"cert_id": target, "reason": "chaos"}, net.now)
            net.submit(tx.to_bytes())
        elif action == "restart":
            assert crashed is not None and crashed_key is not None
            net.replicas[crashed].close()
            restarted = Replica(c.genesis, directory / f"{crashed}.db", crashed_key)
            for h, block_hash in committed_before_crash.items():  # durability
                assert restarted.store.block(h).hash == block_hash  # type: ignore[union-attr]
            net.replace(crashed, restarted)
        elif action == "admit":
            cert = Certificate.issue(c.root, "new", "new", [Role.CONSENSUS_NODE], newcomer_key.public_key, 0)
            newcomer_cert.append(cert)
            newcomer.append(Replica(c.genesis, directory / "newcomer.db", newcomer_key))
            net.add(newcomer[0])
            tx = c.supervisor.sign(chain_id, "member.add", {"certificate": cert.to_dict()}, net.now)
            net.submit(tx.to_bytes())
        elif action == "promote":  # the observer caught up, attests it, and is promoted
            node, cert = newcomer[0], newcomer_cert[0]
            net.wait(submitted[-1], 300_000)
            net.run_until(
                lambda node=node: node.store.head_height() >= net.replicas["node-0"].store.head_height()
            )
            ready = Identity(newcomer_key, cert).sign(
                chain_id,
                "node.ready",
                {"height": node.store.head_height(), "block_hash": node.app.head_hash},
                net.now,
            )
            net.wait(net.submit(ready.to_bytes()), 300_000)
            tx = c.supervisor.sign(chain_id, "member.promote", {"cert_id": cert.cert_id}, net.now)
            net.submit(tx.to_bytes())
        settle(rng.randrange(200, 3000))
    net.drop_rate = 0.0  # GST: the network heals
    for tx_id in submitted:
        net.wait(tx_id, 300_000)
    net.run_until(
        lambda: len({current_epoch(r.app.state, c.genesis).epoch for r in net.replicas.values()}) == 1
    )
    # agreement: one block per height on every node
    top = min(r.store.head_height() for r in net.replicas.values())
    for h in range(1, top + 1):
        hashes = {r.store.block(h).hash for r in net.replicas.values()}  # type: ignore[union-attr]
        assert len(hashes) == 1, f"seed {seed}: two blocks at height {h}"
    epoch = current_epoch(net.replicas["node-0"].app.state, c.genesis)
    expected = {n.cert.cert_id for n in c.nodes} - {revoked[0]} | {newcomer_cert[0].cert_id}
    assert {v.cert_id for v in epoch.validators} == expected, f"seed {seed}"
    assert epoch.epoch == 2  # one change per epoch: the revocation, then the promotion
    info = verify_receipt(c.receipt(submitted[-1]), c.genesis)
    assert info.height >= 1
    for r in net.replicas.values():
        r.close()


@pytest.mark.parametrize("seed", range(12))
def test_chaos(seed: int, tmp_path: Path) -> None:
    run_chaos(seed, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(12, 100))
def test_chaos_many_seeds(seed: int, tmp_path: Path) -> None:
    run_chaos(seed, tmp_path)
