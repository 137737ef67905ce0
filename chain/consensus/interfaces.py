"""The consensus core's interfaces to its host: the actions it returns and the stores it
writes (safety data before any vote leaves; committed blocks), with in-memory stores for
the simulator. :mod:`chain.consensus.core` re-exports every name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from chain.consensus.messages import (
    Block,
    CommitProof,
    ConsensusError,
    Message,
    QuorumCertificate,
    Timeout,
    TimeoutCertificate,
    Vote,
)


# --------------------------------------------------------------------------- actions
@dataclass(frozen=True)
class Send:
    """Send ``msg`` to validator ``to``."""

    to: str
    msg: Message


@dataclass(frozen=True)
class Broadcast:
    """Send ``msg`` to every other validator."""

    msg: Message


@dataclass(frozen=True)
class SetTimer:
    """Call :meth:`ConsensusCore.on_timer` with ``timer_id`` at ``at_ms`` (replaces the same id)."""

    timer_id: str
    at_ms: int


@dataclass(frozen=True)
class EpochEnded:
    """``block`` changed the validator set and is committed: this core's epoch is over.

    The host starts a core for the next epoch on ``block`` (its base) with the new set.
    """

    block: Block


@dataclass(frozen=True)
class Committed:
    """``block`` is final; ``proof`` is its commit proof (or that of a descendant committed with it)."""

    block: Block
    proof: CommitProof | None


Action = Send | Broadcast | SetTimer | Committed | EpochEnded


# --------------------------------------------------------------------------- storage
@dataclass(frozen=True)
class SafetyData:
    """Everything a validator must remember across crashes to stay safe."""

    highest_voted_round: int = 0
    highest_qc_round: int = 0
    highest_proposed_round: int = 0
    high_qc: QuorumCertificate | None = None
    last_tc: TimeoutCertificate | None = None
    last_vote: Vote | None = None
    last_timeout: Timeout | None = None
    pending_blocks: tuple[Block, ...] = ()
    """The uncommitted blocks up to the one ``high_qc`` certifies (oldest first): after
    every node restarted they exist nowhere else, and the next leader must extend them."""


class SafetyStore(Protocol):
    """Durable storage of :class:`SafetyData` (``save`` must be durable when it returns)."""

    def load(self) -> SafetyData | None: ...

    def save(self, data: SafetyData) -> None: ...


class MemorySafetyStore:
    """In-memory :class:`SafetyStore`; the simulator keeps it across simulated crashes."""

    def __init__(self) -> None:
        self._data: SafetyData | None = None
        self.saves = 0

    def load(self) -> SafetyData | None:
        return self._data

    def save(self, data: SafetyData) -> None:
        self._data = data
        self.saves += 1


class BlockStore(Protocol):
    """Durable store of committed blocks, indexed by height and hash."""

    def tip_height(self) -> int: ...

    def base_height(self) -> int:
        """Every committed block above this height is stored (0 unless the store was restored
        from a state snapshot, which keeps no block below it but its epoch's base block)."""
        ...

    def get_by_height(self, height: int) -> Block | None: ...

    def get(self, block_hash: bytes) -> Block | None: ...

    def proof(self, height: int) -> CommitProof | None: ...

    def append(self, block: Block, proof: CommitProof | None) -> None: ...


class MemoryBlockStore:
    """In-memory :class:`BlockStore` (survives simulated crashes)."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self._by_hash: dict[bytes, Block] = {}
        self._proofs: dict[int, CommitProof] = {}

    def tip_height(self) -> int:
        return len(self.blocks) - 1

    def base_height(self) -> int:
        return 0

    def get_by_height(self, height: int) -> Block | None:
        return self.blocks[height] if 0 <= height < len(self.blocks) else None

    def get(self, block_hash: bytes) -> Block | None:
        return self._by_hash.get(block_hash)

    def proof(self, height: int) -> CommitProof | None:
        return self._proofs.get(height)

    def append(self, block: Block, proof: CommitProof | None) -> None:
        if block.height != len(self.blocks):
            raise ConsensusError(f"block store expects height {len(self.blocks)}, got {block.height}")
        if self.blocks and block.parent_hash != self.blocks[-1].hash:
            raise ConsensusError("committed block does not extend the committed tip")
        self.blocks.append(block)
        self._by_hash[block.hash] = block
        if proof is not None:
            self._proofs[block.height] = proof
