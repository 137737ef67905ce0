"""Black-box checks of an end-to-end run, over the nodes' APIs only.

* :func:`fetch_chain` — every block ``1..height`` of one node (signed ``GET /blocks/{h}``);
* :func:`compare_chains` — every node holds the same block hash at every height up to
  the lowest node's height (no fork, no divergent history);
* :func:`check_acknowledged` — every transaction the API acknowledged (said committed,
  or admitted and later found on some node) is on every node, at one height, and at the
  height the API gave;
* :func:`check_conflicts` — of two transactions with the same sender and nonce, exactly
  one is committed (when the sender's nonce got that far), and never both;
* :func:`check_drained` — every transaction a client sent is committed after the drain.

Each returns a list of problems (empty: the check passed), each a sentence with the
evidence (node, height, hashes).

Examples
--------
>>> a = [{"height": 1, "hash": "aa", "txs": []}, {"height": 2, "hash": "bb", "txs": []}]
>>> b = [{"height": 1, "hash": "aa", "txs": []}, {"height": 2, "hash": "cc", "txs": []}]
>>> compare_chains({"node-0": a, "node-1": b[:1]})
[]
>>> compare_chains({"node-0": a, "node-1": b})
['fork at height 2: node-0 has bb, node-1 has cc']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from chain.client import NodeClient
from rongxin.e2e.load import Acks, SignedTx

Chain = list[dict[str, Any]]
"""A node's blocks ``1..h`` as the API returns them."""


def fetch_chain(client: NodeClient, height: int, start: int = 1) -> Chain:
    """Blocks ``start..height`` of the node behind ``client`` (a node restored from a
    snapshot keeps the blocks from its snapshot height on)."""
    return [client.block(h) for h in range(start, height + 1)]


def compare_restored(reference: Chain, name: str, blocks: Chain) -> list[str]:
    """Problems with a restored node's blocks: each must be the reference's block at its
    height (no fork after the snapshot); the state before it was proven by the snapshot."""
    problems: list[str] = []
    by_height = {b.get("height"): b for b in reference}
    for block in blocks:
        ref = by_height.get(block.get("height"))
        if ref is None:
            continue
        if block.get("hash") != ref.get("hash"):
            problems.append(
                f"fork at height {block.get('height')}: {name} (restored from a snapshot) has "
                f"{block.get('hash')}, the others {ref.get('hash')}"
            )
            break
    if not blocks:
        problems.append(f"{name} (restored from a snapshot) holds no block to compare")
    return problems


def check_excluded(chain: Chain, validators: dict[str, Any], name: str, node_id: str) -> list[str]:
    """Problems with a Byzantine node's fate: no block carries evidence, or it is still in
    the validator set (``validators`` as ``GET /validators`` answers)."""
    problems: list[str] = []
    if not any(b.get("evidence") for b in chain):
        problems.append(f"no block carries evidence against {name} (it equivocated)")
    current = [v.get("id") for v in (validators.get("current") or {}).get("validators", [])]
    if node_id in current:
        problems.append(f"{name} is still a validator in epoch {validators.get('epoch')}")
    return problems


def check_votes(chain: Chain, name: str, node_id: str, after: int) -> list[str]:
    """Problems with a promoted node: none of the quorum certificates of blocks after
    height ``after`` carries its vote."""
    voted = [
        b["height"]
        for b in chain
        if b["height"] > after and node_id in ((b.get("qc") or {}).get("signers") or [])
    ]
    if voted:
        return []
    last = chain[-1]["height"] if chain else after
    return [f"{name}, promoted at height {after}, signed no quorum certificate in blocks {after + 1}..{last}"]


def compare_chains(chains: Mapping[str, Chain]) -> list[str]:
    """Problems with the nodes' histories: a height where two nodes hold different blocks,
    or a block that is not the one its API says (height, parent link)."""
    problems: list[str] = []
    for name, chain in chains.items():
        for i, block in enumerate(chain):
            if block.get("height") != i + 1:
                problems.append(f"{name}: /blocks/{i + 1} answered height {block.get('height')}")
            elif i and block.get("parent_hash") is not None and block["parent_hash"] != chain[i - 1]["hash"]:
                problems.append(f"{name}: block {i + 1} does not link to block {i} (parent hash)")
    if not chains:
        return problems
    lowest = min(len(c) for c in chains.values())
    names = sorted(chains)
    for h in range(lowest):
        hashes = {n: chains[n][h]["hash"] for n in names}
        if len(set(hashes.values())) > 1:
            first = names[0]
            other = next(n for n in names if hashes[n] != hashes[first])
            problems.append(
                f"fork at height {h + 1}: {first} has {hashes[first]}, {other} has {hashes[other]}"
            )
            break
    return problems


def tx_heights(chain: Chain) -> dict[str, int]:
    """Transaction id (hex) → height, for one node's chain."""
    return {tx["tx_id"]: block["height"] for block in chain for tx in block.get("txs", [])}


def check_acknowledged(chains: Mapping[str, Chain], acks: Acks) -> list[str]:
    """Problems with acknowledged transactions (see the module docstring)."""
    problems: list[str] = []
    where = {name: tx_heights(chain) for name, chain in chains.items()}
    lowest = min((len(c) for c in chains.values()), default=0)
    with acks.lock:
        committed = dict(acks.committed)
        accepted = set(acks.accepted)
    for tx_id, said in sorted(committed.items()):
        key = tx_id.hex()
        for name, heights in where.items():
            if said > lowest:
                continue  # beyond what every node holds; compare_chains covers the rest
            if heights.get(key) != said:
                problems.append(
                    f"transaction {key[:16]}… acknowledged committed at height {said} is at "
                    f"{heights.get(key)} on {name}"
                )
    for tx_id in sorted(accepted - set(committed)):
        key = tx_id.hex()
        found = {name: heights.get(key) for name, heights in where.items()}
        seen = [h for h in found.values() if h is not None and h <= lowest]
        if seen and any(h != min(seen) for h in found.values()):
            problems.append(
                f"transaction {key[:16]}… admitted and committed, but not alike on every node: {found}"
            )
    return problems


def check_conflicts(chains: Mapping[str, Chain], pairs: Iterable[tuple[SignedTx, SignedTx]]) -> list[str]:
    """Problems with conflicting pairs (same sender and nonce): both committed, or neither
    although a later nonce of the sender is."""
    problems: list[str] = []
    chain = min(chains.values(), key=len, default=[])
    heights = tx_heights(chain)
    pairs = list(pairs)
    top = max((a.nonce for a, b in pairs if a.tx_id.hex() in heights or b.tx_id.hex() in heights), default=0)
    for a, b in pairs:
        ha, hb = heights.get(a.tx_id.hex()), heights.get(b.tx_id.hex())
        if ha is not None and hb is not None:
            problems.append(f"both transactions with nonce {a.nonce} committed (heights {ha} and {hb})")
        elif ha is None and hb is None and a.nonce < top:
            problems.append(f"neither transaction with nonce {a.nonce} committed, yet nonce {top} is")
    return problems


def check_drained(chains: Mapping[str, Chain], sent: Sequence[SignedTx]) -> list[str]:
    """Transactions of ``sent`` (one sender's, sent to the nodes) missing from the shortest chain."""
    chain = min(chains.values(), key=len, default=[])
    heights = tx_heights(chain)
    missing = [tx for tx in sent if tx.tx_id.hex() not in heights]
    if not missing:
        return []
    nonces = [tx.nonce for tx in missing]
    more = "…" if len(nonces) > 5 else ""
    return [f"{len(missing)} sent transaction(s) never committed (nonces {nonces[:5]}{more})"]


__all__ = [
    "Chain",
    "check_acknowledged",
    "check_conflicts",
    "check_drained",
    "check_excluded",
    "check_votes",
    "compare_chains",
    "compare_restored",
    "fetch_chain",
    "tx_heights",
]
