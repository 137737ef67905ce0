"""State-sync snapshots: round trip, a restored node continuing the chain, refusals."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain import codec
from chain.consensus.messages import Evidence, EvidenceMsg, Vote, encode_message, vote_signing_bytes
from chain.crypto import PrivateKey
from chain.crypto.sm3 import sm3
from chain.errors import ReceiptError, SnapshotError
from chain.localnet import Identity, LocalConsortium
from chain.receipt import build_checkpoint, build_receipt, commit_headers, verify_receipt
from chain.replica import Replica, chain_genesis_block, node_id
from chain.snapshot import (
    MANIFEST_FILE,
    ChunkInfo,
    Manifest,
    chunk_name,
    export_snapshot,
    import_snapshot,
    import_snapshot_dir,
    parse_chunk,
    read_snapshot,
    write_snapshot,
)
from chain.state_tree import entry_bytes
from chain.store import LedgerStore
from chain.types import Role


@pytest.fixture(scope="module")
def chain(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LocalConsortium, Identity, list[bytes]]]:
    """A 4-node consortium with a member and a dozen anchors; a small-chunked snapshot."""
    d = tmp_path_factory.mktemp("chain")
    c = LocalConsortium.create(d, nodes=4)
    m = c.add_member("m", [Role.MEDIA_CENTER])
    ids = [c.submit(m, "anchor", {"digest": sm3(b"%d" % i), "kind": "t"}) for i in range(12)]
    write_snapshot(c.replicas[0].store, c.genesis, d / "snap", chunk_bytes=1024)
    yield c, m, ids
    c.close()


def _snap(c: LocalConsortium, tmp_path: Path) -> Path:
    out = tmp_path / "snap"
    shutil.copytree(c.directory / "snap", out)
    return out


def _refused(snap: Path, db: Path, c: LocalConsortium, reason: str, **kw: Any) -> SnapshotError:
    with pytest.raises(SnapshotError) as err:
        import_snapshot_dir(snap, db, kw.pop("genesis", c.genesis), **kw)
    assert err.value.reason == reason, err.value
    assert not db.exists()  # nothing is left behind
    return err.value


def _rewrite_manifest(snap: Path, **changes: Any) -> Manifest:
    manifest, _ = read_snapshot(snap)
    manifest = replace(manifest, **changes)
    (snap / MANIFEST_FILE).write_bytes(manifest.to_bytes())
    return manifest


# --------------------------------------------------------------------------- round trip
def test_round_trip_restores_the_state_and_kept_block(chain: Any, tmp_path: Path) -> None:
    c, _, ids = chain
    source = c.replicas[0].store
    manifest, _ = read_snapshot(c.directory / "snap")
    assert len(manifest.chunks) > 3  # 1 KiB chunks
    info = import_snapshot_dir(c.directory / "snap", tmp_path / "new.db", c.genesis)
    assert (info.height, info.block_hash, info.entries) == (
        manifest.height,
        manifest.block_hash,
        manifest.entries,
    )
    store = LedgerStore(tmp_path / "new.db", chain_genesis_block(c.genesis).hash)
    h = info.height
    assert store.head_height() == h and store.base_height() == h
    assert store.load_state().entries() == dict(source.state_items(h))
    assert store.block(h) == replace(source.block(h), commit_proof=b"")
    assert store.transactions(h) == source.transactions(h)
    assert store.pruned(1) and not store.pruned(h)
    old = ids[0]
    with pytest.raises(ReceiptError, match="restored from a snapshot at height"):
        build_receipt(store, old)
    with pytest.raises(ReceiptError) as err:
        commit_headers(store, 1)
    assert err.value.reason == "pruned"
    # a node restored a moment ago can serve the same snapshot on (its base block's proof is kept)
    again = write_snapshot(store, c.genesis, tmp_path / "again")
    assert (again.height, again.state_root, again.entries) == (h, manifest.state_root, manifest.entries)
    assert import_snapshot_dir(tmp_path / "again", tmp_path / "again.db", c.genesis).height == h
    store.close()


def test_export_of_an_older_height_rolls_the_state_back(chain: Any, tmp_path: Path) -> None:
    c, _, _ = chain
    store = c.replicas[1].store
    height = store.head_height() - 4
    manifest = write_snapshot(store, c.genesis, tmp_path / "old")
    older = write_snapshot(store, c.genesis, tmp_path / "older", height=height)
    assert older.height == height and older.state_root == store.block(height).state_root
    assert older.entries < manifest.entries
    assert import_snapshot_dir(tmp_path / "older", tmp_path / "o.db", c.genesis).height == height


def test_chunk_encoding_is_canonical_cbor() -> None:
    data = codec.encode(["state", 9, 4, [[b"a", b"1"], [b"b" * 30, b"2" * 300]]])
    assert parse_chunk(data) == ("state", 9, 4, [(b"a", b"1"), (b"b" * 30, b"2" * 300)])
    assert parse_chunk(codec.encode(["txs", 1, 0, [b"t1", b"t2"]])) == ("txs", 1, 0, [b"t1", b"t2"])
    long_head = bytes([0x84, 0x65]) + b"state" + bytes([0x18, 0x05]) + data[8:]  # 5 as a 1-byte argument
    for bad in (data[:-1], data + b"\x00", long_head, codec.encode(["blob", 1, 0, []])):
        with pytest.raises(SnapshotError):
            parse_chunk(bad)


@given(st.binary(max_size=300), st.binary(max_size=70_000))
def test_state_chunks_hold_the_commitments_entry_bytes(key: bytes, value: bytes) -> None:
    chunk = codec.encode(["state", 1, 0, [[key, value]]])
    assert chunk.endswith(entry_bytes(key, value))
    assert parse_chunk(chunk)[3] == [(key, value)]


# --------------------------------------------------------------------------- continuing the chain
def test_restored_observer_block_syncs_and_serves_receipts(tmp_path: Path) -> None:
    c = LocalConsortium.create(tmp_path, nodes=4)
    m = c.add_member("m", [Role.MEDIA_CENTER])
    for i in range(3):
        c.anchor(m, sm3(b"a%d" % i), "t")
    c.add_node("node-new")  # an epoch change: the snapshot's block is inside epoch 1
    for i in range(3):
        c.anchor(m, sm3(b"b%d" % i), "t")
    source = c.replicas[0].store
    manifest = write_snapshot(source, c.genesis, tmp_path / "snap")
    assert len(manifest.epochs) == 1 and manifest.base is not None  # epoch 1 began below the snapshot
    import_snapshot_dir(tmp_path / "snap", tmp_path / "restored.db", c.genesis)
    restored = Replica(c.genesis, tmp_path / "restored.db", PrivateKey.generate())
    assert restored.store.head_height() == manifest.height and restored.epoch.epoch == 1
    c.net.add(restored)
    receipt = c.anchor(m, sm3(b"after"), "t")
    tx_id = verify_receipt(receipt, c.genesis).tx_id
    c.net.run_until(lambda: restored.store.tx_location(tx_id) is not None)
    assert restored.store.load_state().root == c.replicas[0].store.load_state().root
    mine = build_receipt(restored.store, tx_id)  # epoch proofs kept from the snapshot
    assert verify_receipt(mine, c.genesis, build_checkpoint(source, c.genesis)).height >= manifest.height
    # a restored store exports snapshots too (its base block's proof is kept)
    again = write_snapshot(restored.store, c.genesis, tmp_path / "again")
    assert import_snapshot_dir(tmp_path / "again", tmp_path / "again.db", c.genesis).height == again.height
    c.close()


def test_export_reads_one_consistent_view_while_the_node_commits(tmp_path: Path) -> None:
    c = LocalConsortium.create(tmp_path, nodes=4)
    m = c.add_member("m", [Role.MEDIA_CENTER])
    c.anchor(m, b"1" * 32, "t")
    export = export_snapshot(c.replicas[0].store, c.genesis, chunk_bytes=1024)
    chunks = export.chunks()
    first = [next(chunks)]
    c.anchor(m, b"2" * 32, "t")  # commits while the export is under way
    data = first + list(chunks)
    store = LedgerStore(tmp_path / "x.db", chain_genesis_block(c.genesis).hash)
    info = import_snapshot(export.manifest, data, store, c.genesis)
    assert info.height < c.replicas[0].store.head_height()
    c.close()


# --------------------------------------------------------------------------- refusals
def test_tampered_entry_is_refused(chain: Any, tmp_path: Path) -> None:
    c, _, _ = chain
    snap = _snap(c, tmp_path)
    manifest, _ = read_snapshot(snap)
    i = next(i for i, info in enumerate(manifest.chunks) if info.kind == "state")
    path = snap / chunk_name(i)
    data = bytearray(path.read_bytes())
    data[-1] ^= 1  # last byte of the chunk's last value
    path.write_bytes(bytes(data))
    _refused(snap, tmp_path / "a.db", c, "chunk")  # its digest no longer matches
    chunks = list(manifest.chunks)
    chunks[i] = ChunkInfo("state", chunks[i].count, len(data), sm3(bytes(data)))
    _rewrite_manifest(snap, chunks=tuple(chunks))
    _refused(snap, tmp_path / "b.db", c, "state")  # the state root catches it


def test_missing_truncated_extra_and_reordered_chunks_are_refused(chain: Any, tmp_path: Path) -> None:
    c, _, _ = chain
    snap = _snap(c, tmp_path)
    manifest, _ = read_snapshot(snap)
    last = len(manifest.chunks) - 1
    (snap / chunk_name(last)).rename(tmp_path / "kept")
    assert "missing" in str(_refused(snap, tmp_path / "a.db", c, "chunk"))
    data = (tmp_path / "kept").read_bytes()
    (snap / chunk_name(last)).write_bytes(data[: len(data) // 2])
    assert "truncated" in str(_refused(snap, tmp_path / "b.db", c, "chunk"))
    (snap / chunk_name(last)).write_bytes(data)
    store = LedgerStore(tmp_path / "c.db", chain_genesis_block(c.genesis).hash)
    _, chunks = read_snapshot(snap)
    with pytest.raises(SnapshotError, match="more chunks"):
        import_snapshot(manifest, [*chunks, data], store, c.genesis)
    assert store.head_height() == 0 and store.base_height() == 0  # nothing kept
    _, chunks = read_snapshot(snap)
    listed = list(chunks)
    states = [i for i, info in enumerate(manifest.chunks) if info.kind == "state"]
    a, b = states[0], states[1]
    listed[a], listed[b] = listed[b], listed[a]
    infos = list(manifest.chunks)
    infos[a], infos[b] = infos[b], infos[a]
    with pytest.raises(SnapshotError, match="missing or out of order") as err:
        import_snapshot(replace(manifest, chunks=tuple(infos)), listed, store, c.genesis)
    assert err.value.reason == "chunk"
    store.close()


def test_truncated_or_garbled_manifest_is_refused(chain: Any, tmp_path: Path) -> None:
    c, _, _ = chain
    snap = _snap(c, tmp_path)
    raw = (snap / MANIFEST_FILE).read_bytes()
    (snap / MANIFEST_FILE).write_bytes(raw[:-10])
    _refused(snap, tmp_path / "a.db", c, "malformed")
    (snap / MANIFEST_FILE).write_bytes(codec.encode({"format": "rongxin-snapshot/1"}))
    _refused(snap, tmp_path / "b.db", c, "malformed")


def test_wrong_height_is_refused(chain: Any, tmp_path: Path) -> None:
    c, _, _ = chain
    snap = _snap(c, tmp_path)
    manifest, _ = read_snapshot(snap)
    _rewrite_manifest(snap, height=manifest.height - 1)
    _refused(snap, tmp_path / "a.db", c, "height")
    store = c.replicas[0].store
    for height in (0, store.head_height() + 1):
        with pytest.raises(SnapshotError) as err:
            write_snapshot(store, c.genesis, tmp_path / f"h{height}", height=height)
        assert err.value.reason == "height" and not (tmp_path / f"h{height}").exists()


def test_forged_commit_proof_is_refused(chain: Any, tmp_path: Path) -> None:
    c, _, _ = chain
    snap = _snap(c, tmp_path)
    manifest, _ = read_snapshot(snap)
    qc = codec.decode(codec.encode(manifest.commit["qc"]))
    author, sig = qc[2][0]
    qc[2][0] = [author, bytes([sig[0] ^ 1]) + sig[1:]]
    _rewrite_manifest(snap, commit={"headers": manifest.commit["headers"], "qc": qc})
    assert "signature" in str(_refused(snap, tmp_path / "a.db", c, "commit-proof"))
    # a header claiming another state root no longer hashes to what the quorum signed
    headers = codec.decode(codec.encode(manifest.commit["headers"]))
    headers[0][5] = sm3(b"forged state")
    _rewrite_manifest(
        snap, commit={"headers": headers, "qc": manifest.commit["qc"]}, state_root=headers[0][5]
    )
    _refused(snap, tmp_path / "b.db", c, "commit-proof")


def test_snapshot_of_another_chain_is_refused(chain: Any, tmp_path: Path) -> None:
    c, _, _ = chain
    other = LocalConsortium.create(tmp_path / "other", nodes=4, chain_id=c.genesis.chain_id)
    _refused(c.directory / "snap", tmp_path / "a.db", c, "wrong-chain", genesis=other.genesis)
    other.close()


def test_import_needs_an_empty_store_and_a_checkpoint_bounds_age(chain: Any, tmp_path: Path) -> None:
    c, m, _ = chain
    manifest, chunks = read_snapshot(c.directory / "snap")
    with pytest.raises(SnapshotError) as err:
        import_snapshot(manifest, chunks, c.replicas[2].store, c.genesis)
    assert err.value.reason == "store"
    with pytest.raises(SnapshotError) as err:  # an existing file is never touched
        import_snapshot_dir(c.directory / "snap", c.directory / "node-2.db", c.genesis)
    assert err.value.reason == "io" and c.replicas[2].store.head_height() > 0
    early = build_checkpoint(c.replicas[0].store, c.genesis)
    assert import_snapshot_dir(c.directory / "snap", tmp_path / "ok.db", c.genesis, checkpoint=early)
    c.submit(m, "anchor", {"digest": sm3(b"later"), "kind": "t"})
    later = build_checkpoint(c.replicas[0].store, c.genesis)
    assert "older than the pinned checkpoint" in str(
        _refused(c.directory / "snap", tmp_path / "no.db", c, "checkpoint", checkpoint=later)
    )


def test_restored_node_knows_the_evidence_recorded_before_its_snapshot(tmp_path: Path) -> None:
    c = LocalConsortium.create(tmp_path, nodes=5)
    m = c.add_member("m", [Role.MEDIA_CENTER])
    liar = c.nodes[3]
    liar_id = node_id(liar.cert.cert_id)
    votes = sorted(
        encode_message(
            Vote(
                liar_id,
                10_000,
                h,
                liar.key.sign(vote_signing_bytes(c.genesis.chain_id, c.genesis.hash, 10_000, h)),
            )
        )
        for h in (b"a" * 32, b"b" * 32)
    )
    ev = Evidence("vote", liar_id, 10_000, votes[0], votes[1])
    for name in c.net.replicas:
        c.net.inject(name, "node-0", c.replicas[0].node_id, encode_message(EvidenceMsg((ev,))))
    c.anchor(m, b"x" * 32, "t")
    c.net.run_until(lambda: c.replicas[0].epoch.epoch == 1, 60_000)
    for i in range(3):
        c.anchor(m, sm3(b"%d" % i), "t")
    write_snapshot(c.replicas[0].store, c.genesis, tmp_path / "snap")
    import_snapshot_dir(tmp_path / "snap", tmp_path / "r.db", c.genesis)
    restored = Replica(c.genesis, tmp_path / "r.db")
    assert ev.key in restored.core.onchain_evidence
    c.net.add(restored)
    tx_id = verify_receipt(c.anchor(m, b"y" * 32, "t"), c.genesis).tx_id
    c.net.run_until(lambda: restored.store.tx_location(tx_id) is not None)
    c.close()
