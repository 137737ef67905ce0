"""A small consortium for ledger tests: a root, a media center, a regulator, 4 nodes."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from chain.crypto import PrivateKey
from chain.state import MemoryTable
from chain.types import Certificate, ChainParams, Genesis, Role, Transaction


@dataclass
class Member:
    key: PrivateKey
    cert: Certificate
    nonce: int = 0

    def tx(
        self, type: str, payload: dict, chain_id: str = "test-chain", timestamp_ms: int = 1000
    ) -> Transaction:
        self.nonce += 1
        return Transaction.create(
            self.key, self.cert.cert_id, type, payload, self.nonce, timestamp_ms, chain_id
        )


@dataclass
class Consortium:
    root: PrivateKey
    supervisor: Member
    media: Member
    regulator: Member
    nodes: list[Member]
    genesis: Genesis
    extra: dict[str, Member] = field(default_factory=dict)

    def new_member(self, name: str, roles: list[Role]) -> Member:
        key = PrivateKey.generate()
        return Member(key, Certificate.issue(self.root, name, name, roles, key.public_key, 0))


def consortium(n_nodes: int = 4) -> Consortium:
    root = PrivateKey.generate()

    def member(name: str, roles: list[Role]) -> Member:
        key = PrivateKey.generate()
        return Member(key, Certificate.issue(root, name, name, roles, key.public_key, 0))

    supervisor = member("Provincial supervisor", [Role.SUPERVISOR])
    media = member("County media center", [Role.MEDIA_CENTER])
    regulator = member("Regulator", [Role.REGULATOR])
    nodes = [member(f"node-{i}", [Role.CONSENSUS_NODE]) for i in range(n_nodes)]
    certs = (supervisor.cert, media.cert, regulator.cert, *(n.cert for n in nodes))
    genesis = Genesis("Test consortium", "test-chain", root.public_key.to_bytes(), certs, ChainParams())
    return Consortium(root, supervisor, media, regulator, nodes, genesis)


class RecordingTable:
    """A memory table that records the keys it is asked to read ahead (``prefetch``); the
    compiled :class:`MemoryTable` cannot be subclassed, so this one wraps it."""

    def __init__(self, entries: dict[bytes, bytes]) -> None:
        self.table = MemoryTable(entries)
        self.asked: list[list[bytes]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.table, name)

    def __len__(self) -> int:
        return len(self.table)

    def prefetch(self, keys: Collection[bytes]) -> None:
        self.asked.append(list(keys))
