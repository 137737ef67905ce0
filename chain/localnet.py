"""Several replicas in one process: a deterministic in-memory network with a virtual clock.

Used by the demo, by other packages that need a ledger before networked nodes exist
(``privacy`` audit, ``zkp`` transfers) and by the consensus benchmark. Every message goes
through its wire encoding (:func:`~chain.consensus.messages.encode_message`), every vote,
timeout and proposal is SM2-signed and verified, and every node commits to its own SQLite
store — only the transport is in memory.

Examples
--------
>>> import tempfile
>>> from chain.localnet import LocalConsortium
>>> c = LocalConsortium.create(tempfile.mkdtemp(), nodes=4)
>>> member = c.add_member("County media center", [Role.MEDIA_CENTER])
>>> receipt = c.anchor(member, b"d" * 32, "work")
>>> receipt.verify(c.genesis).height >= 1
True
>>> c.close()
"""

from __future__ import annotations

import heapq
import os
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chain.consensus.core import Action, Broadcast, Committed, EpochEnded, Send, SetTimer, quorum_size
from chain.consensus.messages import decode_message, encode_message
from chain.contracts.base import ContractRegistry
from chain.crypto import PrivateKey
from chain.errors import LocalNetError as LocalNetError  # re-exported under its historical path
from chain.receipt import Receipt, build_receipt
from chain.replica import Replica
from chain.types import Certificate, ChainParams, Genesis, Role, Transaction, ValidationError


class LocalNet:
    """Deliver messages between replicas in FIFO order; fire timers on a virtual clock.

    Replicas are named by their position (``"node-0"``, ...); messages address consensus ids,
    which change when a replica's epoch changes (an observer that joins the validator set
    gets its certificate id). :class:`~chain.consensus.core.EpochEnded` is handled here by
    starting the replica's next epoch.

    Parameters
    ----------
    replicas : sequence of Replica
        Voting and observing replicas.
    start_ms : int
        Virtual time at start.
    rng : random.Random, optional
        With it, messages are delivered in random order and dropped with probability
        :attr:`drop_rate` (seeded chaos for tests); without it, FIFO and lossless.
    """

    def __init__(
        self, replicas: Sequence[Replica], start_ms: int = 1, rng: random.Random | None = None
    ) -> None:
        self.rng = rng
        self.drop_rate = 0.0
        self.replicas: dict[str, Replica] = {f"node-{i}": r for i, r in enumerate(replicas)}
        self.now = start_ms
        self._queue: deque[tuple[str, str, str, bytes]] = deque()
        self._timers: list[tuple[int, int, str, str]] = []
        self._timer_at: dict[tuple[str, str], int] = {}
        self._seq = 0
        self.messages = 0
        self.bytes = 0
        self.down: set[str] = set()
        self.cpu: dict[str, float] = dict.fromkeys(self.replicas, 0.0)
        """Process CPU seconds spent in each node's handlers (message, timer, admission)."""
        self.on_commit: list[Callable[[str, Committed], None]] = []
        self.on_epoch: list[Callable[[str, EpochEnded], None]] = []

    def start(self) -> None:
        """Start every replica."""
        for name, r in self.replicas.items():
            self.handle(name, r.start(self.now))

    def add(self, replica: Replica) -> str:
        """Add and start a replica (e.g. a node that will join the validator set); its name."""
        name = f"node-{len(self.replicas)}"
        self.replicas[name] = replica
        self.cpu[name] = 0.0
        self.handle(name, replica.start(self.now))
        return name

    def replace(self, name: str, replica: Replica) -> None:
        """Swap in ``replica`` under ``name`` (a restart from disk) and start it."""
        self.replicas[name] = replica
        self.down.discard(name)
        self.handle(name, replica.start(self.now))

    def name_of(self, replica: Replica) -> str:
        """The name this network gives ``replica`` (what :attr:`down` holds)."""
        for name, r in self.replicas.items():
            if r is replica:
                return name
        raise LocalNetError("replica is not on this network")

    def _by_id(self, consensus_id: str) -> str | None:
        for name, r in self.replicas.items():
            if r.node_id == consensus_id:
                return name
        return None

    def handle(self, name: str, actions: Iterable[Action]) -> None:
        """Carry out the actions replica ``name`` returned (sends, broadcasts, timers, commits)."""
        pending = list(actions)
        while pending:
            a = pending.pop(0)
            sender = self.replicas[name].node_id
            if isinstance(a, Send):
                to = self._by_id(a.to)
                if to is not None:
                    self._queue.append((to, name, sender, encode_message(a.msg)))
            elif isinstance(a, Broadcast):
                wire = encode_message(a.msg)
                for other in self.replicas:
                    if other != name:
                        self._queue.append((other, name, sender, wire))
            elif isinstance(a, EpochEnded):
                for on_epoch in self.on_epoch:
                    on_epoch(name, a)
                pending.extend(self.replicas[name].next_epoch(self.now))
            elif isinstance(a, SetTimer):
                self._seq += 1
                self._timer_at[(name, a.timer_id)] = self._seq
                heapq.heappush(self._timers, (a.at_ms, self._seq, name, a.timer_id))
            elif isinstance(a, Committed):
                for cb in self.on_commit:
                    cb(name, a)

    def inject(self, to: str, from_name: str, sender: str, wire: bytes) -> None:
        """Queue raw message bytes for replica ``to`` as if ``from_name`` (consensus id
        ``sender``) had sent them: how tests deliver forged or replayed messages."""
        self._queue.append((to, from_name, sender, wire))

    def step(self) -> bool:
        """Deliver one message, or fire the next timer; ``False`` when nothing is left."""
        if self._queue:
            if self.rng is None:
                to, from_name, sender, wire = self._queue.popleft()
            else:
                self._queue.rotate(-self.rng.randrange(len(self._queue)))
                to, from_name, sender, wire = self._queue.popleft()
                if self.rng.random() < self.drop_rate:
                    return True
            if to in self.down or from_name in self.down:
                return True
            self.messages += 1
            self.bytes += len(wire)
            core = self.replicas[to].core
            t0 = time.process_time()
            actions = core.on_message(sender, decode_message(wire), self.now)
            self.cpu[to] += time.process_time() - t0
            self.handle(to, actions)
            return True
        while self._timers:
            at, seq, nid, timer_id = heapq.heappop(self._timers)
            if self._timer_at.get((nid, timer_id)) != seq:
                continue  # replaced by a later SetTimer with the same id
            del self._timer_at[(nid, timer_id)]
            self.now = max(self.now, at)
            if nid in self.down:
                continue
            core = self.replicas[nid].core
            t0 = time.process_time()
            actions = core.on_timer(timer_id, self.now)
            self.cpu[nid] += time.process_time() - t0
            self.handle(nid, actions)
            return True
        return False

    def run_until(self, done: Callable[[], bool], max_virtual_ms: int = 120_000) -> None:
        """Run until ``done()``; :class:`LocalNetError` if virtual time runs out first."""
        deadline = self.now + max_virtual_ms
        while not done():
            if self.now > deadline or not self.step():
                raise LocalNetError(f"condition not reached within {max_virtual_ms} ms of virtual time")

    def submit(self, raw: bytes) -> bytes:
        """Give a transaction to every live replica's mempool (as gossip would); return its id."""
        tx_id = b""
        errors = []
        for nid, r in self.replicas.items():
            if nid in self.down:
                continue
            t0 = time.process_time()
            try:
                tx_id = r.app.submit(raw)
            except ValidationError as exc:
                errors.append(str(exc))
            finally:
                self.cpu[nid] += time.process_time() - t0
        if errors and not tx_id:
            raise ValidationError(errors[0])
        return tx_id

    def committed_everywhere(self, tx_id: bytes) -> bool:
        """Whether every live replica has committed ``tx_id``."""
        return all(
            r.store.tx_location(tx_id) is not None for nid, r in self.replicas.items() if nid not in self.down
        )

    def wait(self, tx_id: bytes, max_virtual_ms: int = 120_000) -> None:
        """Run until ``tx_id`` is committed on every live replica."""
        self.run_until(lambda: self.committed_everywhere(tx_id), max_virtual_ms)


@dataclass
class Identity:
    """A member's SM2 key, its certificate and its next nonce."""

    key: PrivateKey
    cert: Certificate
    nonce: int = 0

    def sign(self, chain_id: str, type: str, payload: dict[str, Any], timestamp_ms: int) -> Transaction:
        """A new transaction from this member (nonces count up from 1)."""
        self.nonce += 1
        return Transaction.create(
            self.key, self.cert.cert_id, type, payload, self.nonce, timestamp_ms, chain_id
        )


@dataclass
class LocalConsortium:
    """A whole consortium in one process: supervisory root, voting nodes, members, ledger.

    Build one with :meth:`create`; nodes keep their ledgers in ``directory/node-<i>.db``.
    """

    directory: Path
    root: PrivateKey
    supervisor: Identity
    nodes: list[Identity]
    genesis: Genesis
    net: LocalNet
    members: dict[str, Identity] = field(default_factory=dict)
    key_factory: Callable[[], PrivateKey] = PrivateKey.generate

    @classmethod
    def create(
        cls,
        directory: str | os.PathLike[str],
        nodes: int = 5,
        name: str = "Rongxin demo consortium",
        chain_id: str = "rongxin-local",
        params: ChainParams | None = None,
        registry_factory: Callable[[Genesis], ContractRegistry] | None = None,
        key_factory: Callable[[], PrivateKey] = PrivateKey.generate,
    ) -> LocalConsortium:
        """Create keys, certificates, a genesis and ``nodes`` voting replicas.

        ``key_factory`` makes every key (OS randomness by default; tests may pass a
        deterministic one so that a seeded run replays exactly).
        """
        if nodes < 1:
            raise LocalNetError("a consortium needs at least one consensus node")
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        root = key_factory()

        def issue(subject: str, org: str, roles: list[Role]) -> Identity:
            key = key_factory()
            return Identity(key, Certificate.issue(root, subject, org, roles, key.public_key, 0))

        supervisor = issue("Supervisor", "Provincial supervisory center", [Role.SUPERVISOR])
        node_ids = [issue(f"node-{i}", f"Consensus org {i}", [Role.CONSENSUS_NODE]) for i in range(nodes)]
        genesis = Genesis(
            name,
            chain_id,
            root.public_key.to_bytes(),
            (supervisor.cert, *(n.cert for n in node_ids)),
            params or ChainParams(round_timeout_ms=1000),
        )
        replicas = [
            Replica(
                genesis,
                d / f"node-{i}.db",
                n.key,
                registry_factory(genesis) if registry_factory is not None else None,
            )
            for i, n in enumerate(node_ids)
        ]
        net = LocalNet(replicas)
        net.start()
        return cls(d, root, supervisor, node_ids, genesis, net, key_factory=key_factory)

    @property
    def replicas(self) -> list[Replica]:
        """The voting replicas."""
        return list(self.net.replicas.values())

    def submit(self, who: Identity, type: str, payload: dict[str, Any]) -> bytes:
        """Sign, submit and commit a transaction; return its id."""
        tx = who.sign(self.genesis.chain_id, type, payload, self.net.now)
        try:
            tx_id = self.net.submit(tx.to_bytes())
        except ValidationError:
            who.nonce -= 1  # refused: the nonce stays free for the member's next transaction
            raise
        self.net.wait(tx_id)
        return tx_id

    def add_member(self, subject: str, roles: Sequence[Role], organization: str | None = None) -> Identity:
        """Certify a new member and register it on chain through the supervisor."""
        key = self.key_factory()
        cert = Certificate.issue(self.root, subject, organization or subject, list(roles), key.public_key, 0)
        self.submit(self.supervisor, "member.add", {"certificate": cert.to_dict()})
        ident = Identity(key, cert)
        self.members[subject] = ident
        return ident

    def add_node(
        self, subject: str, organization: str | None = None, by_vote: bool = False
    ) -> tuple[Identity, Replica]:
        """Admit a new consensus node the way an operator does: certify and register it
        (it joins as an observer), let it sync, have it attest with ``node.ready`` that it
        caught up, then promote it (by the supervisor, or by the nodes' vote)."""
        key = self.key_factory()
        cert = Certificate.issue(
            self.root, subject, organization or subject, [Role.CONSENSUS_NODE], key.public_key, 0
        )
        replica = Replica(self.genesis, self.directory / f"{subject}.db", key)
        self.net.add(replica)
        self.submit(self.supervisor, "member.add", {"certificate": cert.to_dict()})
        head = self.replicas[0].store.head_height
        self.net.run_until(lambda: replica.store.head_height() >= head())
        ident = Identity(key, cert)
        height = replica.store.head_height()
        self.submit(ident, "node.ready", {"height": height, "block_hash": replica.app.head_hash})
        if by_vote:
            action = {"action": "promote", "cert_id": cert.cert_id}
            in_force = {c.cert_id for c in self.replicas[0].epoch.validators}
            voters = [n for n in self.nodes if n.cert.cert_id in in_force]
            for voter in voters[: quorum_size(len(voters))]:
                self.submit(voter, "member.vote", action)
        else:
            self.submit(self.supervisor, "member.promote", {"cert_id": cert.cert_id})
        self.nodes.append(ident)
        self.net.run_until(lambda: replica.voting)
        return ident, replica

    def receipt(self, tx_id: bytes) -> Receipt:
        """An offline-verifiable receipt of a committed transaction (from the first node)."""
        return build_receipt(self.replicas[0].store, tx_id)

    def anchor(self, who: Identity, digest: bytes, kind: str, meta: bytes | None = None) -> Receipt:
        """Anchor one digest; anchoring it again returns the original receipt."""
        payload: dict[str, Any] = {"digest": digest, "kind": kind}
        if meta is not None:
            payload["meta"] = meta
        tx_id = self.submit(who, "anchor", payload)
        return self.original_receipt(tx_id)

    def original_receipt(self, tx_id: bytes) -> Receipt:
        """The receipt of ``tx_id``, or of the original anchor when it re-anchored a digest."""
        from chain import codec

        raw = self.replicas[0].store.tx_result(tx_id)
        if raw is not None:
            result = codec.decode(raw)
            if isinstance(result, dict) and result.get("status") == "already_anchored":
                return self.receipt(result["tx_id"])
        return self.receipt(tx_id)

    def close(self) -> None:
        """Close every node's database."""
        for r in self.replicas:
            r.close()
