"""Tests of :mod:`chain.state`: the state, its overlays and their incremental roots, in
memory and over a node's store."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.crypto.sm3 import sm3
from chain.errors import StoreError
from chain.state import MemoryTable, Overlay, State, prefix_end, state_root
from chain.state_tree import verify_state_proof
from chain.store import LedgerStore

from .ledger_fixtures import RecordingTable

G = b"\x00" * 32


def _apply(entries: dict[bytes, bytes], changes: dict[bytes, bytes | None]) -> dict[bytes, bytes]:
    out = dict(entries)
    for k, v in changes.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def _changes(rnd: random.Random, entries: dict[bytes, bytes], n: int) -> dict[bytes, bytes | None]:
    """``n`` changes: new keys, updates and deletes of existing keys, and deletes of absent keys."""
    keys = list(entries)
    changes: dict[bytes, bytes | None] = {}
    for _ in range(n):
        kind = rnd.random()
        if kind < 0.5 or not keys:
            changes[b"k/" + rnd.randbytes(rnd.randrange(1, 6))] = rnd.randbytes(rnd.randrange(0, 40))
        elif kind < 0.75:
            changes[rnd.choice(keys)] = rnd.randbytes(8)
        elif kind < 0.95:
            changes[rnd.choice(keys)] = None
        else:
            changes[b"absent/" + rnd.randbytes(4)] = None
    return changes


class _Committer:
    """Commits changes to a store as blocks (what the replica does), then applies them."""

    def __init__(self, path: Path, initial: dict[bytes, bytes]) -> None:
        self.store = LedgerStore(path, G, initial)
        self.parent = G

    def commit(self, changes: dict[bytes, bytes | None]) -> None:
        h = self.store.head_height() + 1
        block_hash = sm3(b"block%d" % h)
        self.store.commit_block(h, block_hash, self.parent, b"r" * 32, b"b", b"", [], changes)
        self.parent = block_hash


# --------------------------------------------------------------------------- behaviour


def test_get_set_delete_and_prefix_scans() -> None:
    s = State({b"a/1": b"x", b"a/2": b"y", b"b/1": b"z"})
    o = s.overlay()
    o.set(b"a/3", b"w")
    o.delete(b"a/1")
    assert o.get(b"a/1") is None and o.get(b"a/3") == b"w" and o.get(b"b/1") == b"z"
    assert list(o.items_with_prefix(b"a/")) == [(b"a/2", b"y"), (b"a/3", b"w")]
    assert list(s.items_with_prefix(b"a/")) == [(b"a/1", b"x"), (b"a/2", b"y")]
    assert o.changes() == {b"a/3": b"w", b"a/1": None}
    child = o.child()
    child.set(b"c", b"1")
    assert o.get(b"c") is None
    o.merge_child(child)
    assert o.get(b"c") == b"1" and o.base is s
    s2 = State(s.entries())
    o.rebase(s2)
    assert o.base is s2 and o.get(b"b/1") == b"z"


def test_prefix_end() -> None:
    assert prefix_end(b"") is None
    assert prefix_end(b"a") == b"b"
    assert prefix_end(b"a\xff\xff") == b"b"
    assert prefix_end(b"\xff\xff") is None


def test_prefix_scans_at_byte_edges() -> None:
    keys = [b"", b"\x00", b"a", b"a\x00", b"a\xff", b"a\xff\xff", b"b", b"\xff", b"\xff\x00", b"\xff\xff"]
    s = State({k: k for k in keys})
    for prefix in [b"", b"a", b"a\xff", b"\xff", b"\xff\xff", b"c", b"\x00"]:
        assert list(s.items_with_prefix(prefix)) == [(k, k) for k in sorted(keys) if k.startswith(prefix)]


def test_state_and_table_refuse_both_entries_and_a_table() -> None:
    with pytest.raises(ValueError):
        State({b"a": b"1"}, table=MemoryTable())


# --------------------------------------------------------------------------- roots


def test_overlay_root_leaves_the_base_alone() -> None:
    rnd = random.Random(5)
    entries = {b"k/" + rnd.randbytes(4): rnd.randbytes(10) for _ in range(500)}
    s = State(entries)
    before = s.root
    o = s.overlay()
    changes = _changes(rnd, entries, 100)
    for k, v in changes.items():
        if v is None:
            o.delete(k)
        else:
            o.set(k, v)
    assert o.root() == state_root(_apply(entries, changes))
    assert s.root == before and s.entries() == entries
    # a speculative child of the overlay sees both layers
    o2 = Overlay(o)
    more = _changes(rnd, _apply(entries, changes), 30)
    for k, v in more.items():
        if v is None:
            o2.delete(k)
        else:
            o2.set(k, v)
    assert o2.root() == state_root(_apply(_apply(entries, changes), more))
    proof = o2.prove(next(k for k, v in more.items() if v is not None))
    key = next(k for k, v in more.items() if v is not None)
    verify_state_proof(o2.root(), key, more[key] or b"", proof)


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=2**32), st.integers(min_value=1, max_value=6))
def test_incremental_roots_match_a_full_recomputation(seed: int, blocks: int) -> None:
    rnd = random.Random(seed)
    entries = {b"k/" + rnd.randbytes(3): rnd.randbytes(5) for _ in range(rnd.randrange(0, 200))}
    s = State(entries)
    for _ in range(blocks):
        changes = _changes(rnd, entries, rnd.choice([1, 5, 100]))  # both MemoryTable paths
        assert s.root_with(changes) == state_root(_apply(entries, changes))
        s.apply(changes)
        entries = _apply(entries, changes)
        assert s.root == state_root(entries)
        assert s.entries() == entries
        assert list(s.items_with_prefix(b"k/")) == sorted(entries.items())


# --------------------------------------------------------------------------- over a store


def test_store_state_follows_committed_blocks(tmp_path: Path) -> None:
    rnd = random.Random(7)
    entries = {b"k/" + rnd.randbytes(3): rnd.randbytes(5) for _ in range(300)}
    c = _Committer(tmp_path / "s.db", entries)
    state = c.store.load_state()
    assert state.root == state_root(entries) and state.entries() == entries
    for n in (1, 10, 200):
        changes = _changes(rnd, entries, n)
        expected = state.root_with(changes)
        assert all(state.get(k) == entries.get(k) for k in changes)  # now cached, some absent
        c.commit(changes)
        state.apply(changes)  # what LedgerApp.on_commit does after the store commits
        entries = _apply(entries, changes)
        assert state.root == expected == state_root(entries)
        assert all(state.get(k) == entries.get(k) for k in changes)
        assert c.store.load_state() is state
    assert list(state.items_with_prefix(b"k/")) == sorted(entries.items())
    assert state.get(b"absent") is None and len(state.table) == len(entries)
    key = next(iter(entries))
    verify_state_proof(state.root, key, entries[key], state.prove(key))
    # reopening rebuilds the same commitment from the stored leaf hashes
    c.store.close()
    again = LedgerStore(tmp_path / "s.db", G)
    assert again.load_state().root == state_root(entries)
    assert dict(again.iter_state()) == entries


def test_store_state_catches_up_and_refuses_foreign_changes(tmp_path: Path) -> None:
    rnd = random.Random(8)
    c = _Committer(tmp_path / "s.db", {b"g": b"0"})
    state = c.store.load_state()
    entries = {b"g": b"0"}
    for _ in range(3):  # committed without applying: load_state catches up from the log
        changes = _changes(rnd, entries, 20)
        c.commit(changes)
        entries = _apply(entries, changes)
    assert c.store.load_state() is state and state.root == state_root(entries)
    last = c.store.state_changes(c.store.head_height())
    state.apply(last)  # the last block's changes, already taken: nothing happens
    assert state.root == state_root(entries)
    with pytest.raises(StoreError, match="commit the block"):
        state.apply({b"never": b"committed"})
    assert state.root == state_root(entries) and state.get(b"never") is None


def test_store_of_an_earlier_layout_is_refused(tmp_path: Path) -> None:
    import sqlite3

    db = sqlite3.connect(tmp_path / "old.db")
    db.execute("CREATE TABLE state (key BLOB PRIMARY KEY, value BLOB NOT NULL)")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="earlier layout"):
        LedgerStore(tmp_path / "old.db", G)


def test_iter_state_order_streams_into_commitment_of(tmp_path: Path) -> None:
    from chain.state_tree import commitment_of

    rnd = random.Random(9)
    entries = {rnd.randbytes(8): rnd.randbytes(4) for _ in range(2000)}
    store = LedgerStore(tmp_path / "s.db", G, entries)
    assert commitment_of(store.iter_state()) == store.load_state().root == state_root(entries)


@pytest.mark.parametrize("make", [lambda p: State(), lambda p: LedgerStore(p / "e.db", G).load_state()])
def test_empty_states(tmp_path: Path, make: Callable[[Path], State]) -> None:
    s = make(tmp_path)
    assert s.root == State().root and s.entries() == {} and list(s.items_with_prefix(b"")) == []


# --------------------------------------------------------------------------- prepared roots


class _Rehashes:
    """Counts how many change sets ``state`` hashes buckets for, from now on."""

    def __init__(self, state: State) -> None:
        self.state, self.start = state, state.rehashes

    def __len__(self) -> int:
        return self.state.rehashes - self.start


@pytest.mark.parametrize("on_store", [False, True])
def test_committing_a_pipelined_block_reuses_its_execution_hashes(tmp_path: Path, on_store: bool) -> None:
    rnd = random.Random(11)
    entries = {b"k/" + rnd.randbytes(3): rnd.randbytes(5) for _ in range(300)}
    c = _Committer(tmp_path / "s.db", entries) if on_store else None
    state = c.store.load_state() if c is not None else State(entries)
    ch1 = _changes(rnd, entries, 40)
    ch2 = _changes(rnd, _apply(entries, ch1), 40)
    o1 = overlay_with(state, ch1)
    o2 = overlay_with(o1, ch2)  # block 2 executes on uncommitted block 1
    r1, r2 = o1.root(), o2.root()
    calls = _Rehashes(state)
    for changes, root in ((ch1, r1), (ch2, r2)):
        if c is not None:
            c.commit(changes)
        state.apply(changes, root=root)
        assert state.root == root
    assert len(calls) == 0  # both commits installed the nodes hashed at execution
    assert state.root == state_root(_apply(_apply(entries, ch1), ch2))


def test_prepared_hashes_are_not_reused_for_other_changes() -> None:
    rnd = random.Random(12)
    entries = {b"k/" + rnd.randbytes(3): rnd.randbytes(5) for _ in range(300)}
    state = State(entries)
    ch1 = _changes(rnd, entries, 40)
    other = _changes(rnd, entries, 40)  # a competing block at the same height
    r_other = overlay_with(state, other).root()
    ch2 = _changes(rnd, _apply(entries, ch1), 40)
    r2 = overlay_with(overlay_with(state, other), ch2).root()  # built on the competitor
    calls = _Rehashes(state)
    state.apply(ch1, root=r_other)  # a root whose hashes covered other changes
    state.apply(ch2, root=r2)
    assert len(calls) == 2  # both recomputed
    assert state.root == state_root(_apply(_apply(entries, ch1), ch2))
    state.apply({b"x": b"1"}, root=b"\x00" * 32)  # unknown root: recomputed
    assert state.get(b"x") == b"1" and len(calls) == 3


def overlay_with(base: State | Overlay, changes: dict[bytes, bytes | None]) -> Overlay:
    o = Overlay(base)
    for k, v in changes.items():
        if v is None:
            o.delete(k)
        else:
            o.set(k, v)
    return o


def test_proofs_made_in_another_thread_while_blocks_commit(tmp_path: Path) -> None:
    import threading

    rnd = random.Random(13)
    entries = {b"k/" + rnd.randbytes(3): rnd.randbytes(5) for _ in range(500)}
    entries[b"fixed"] = b"value"
    c = _Committer(tmp_path / "s.db", entries)
    state = c.store.load_state()
    roots = {state.root}
    proofs = []
    done = threading.Event()

    def prove() -> None:
        while not done.is_set():
            proofs.append(c.store.load_state().prove(b"fixed"))

    worker = threading.Thread(target=prove)
    worker.start()
    try:
        for _ in range(20):
            changes = _changes(rnd, entries, 50)
            changes.pop(b"fixed", None)
            root = overlay_with(state, changes).root()
            c.commit(changes)
            state.apply(changes, root=root)
            entries = _apply(entries, changes)
            roots.add(state.root)
    finally:
        done.set()
        worker.join()
    assert proofs and state.root == state_root(entries)
    for proof in proofs:  # each proof is whole: it verifies under a root the state went through
        assert any(_verifies(root, proof) for root in roots)


def _verifies(root: bytes, proof: object) -> bool:
    from chain.errors import MerkleError
    from chain.state_tree import StateProof

    assert isinstance(proof, StateProof)
    try:
        verify_state_proof(root, b"fixed", b"value", proof)
    except MerkleError:
        return False
    return True


def test_prefetch_goes_through_overlays_to_the_table_without_the_keys_they_hold() -> None:
    table = RecordingTable({b"a": b"1", b"b": b"2"})
    state = State(table=table)
    outer = Overlay(state)
    outer.set(b"a", b"changed")
    inner = outer.child()
    inner.delete(b"c")
    inner.prefetch([b"a", b"b", b"c", b"d"])
    assert table.asked == [[b"b", b"d"]]
    assert (inner.get(b"a"), inner.get(b"b"), inner.get(b"c"), inner.get(b"d")) == (
        b"changed",
        b"2",
        None,
        None,
    )
    MemoryTable({b"a": b"1"}).prefetch([b"a", b"z"])  # in memory already: nothing to do
