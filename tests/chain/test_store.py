import os
import signal
import subprocess
import sys
import textwrap

import pytest

from chain.crypto.sm3 import sm3
from chain.state import state_root
from chain.state_tree import bucket_of
from chain.store import LedgerStore, StoreError

G = b"\x00" * 32


def _block(h: int, parent: bytes) -> dict:
    changes = {f"k{h % 7}".encode(): f"v{h}".encode(), f"n{h}".encode(): b"x"}
    return {
        "height": h,
        "block_hash": sm3(b"block%d" % h),
        "parent_hash": parent,
        "state_root": b"r" * 32,
        "block": b"block-bytes-%d" % h,
        "commit_proof": b"qc-%d" % h,
        "txs": [(sm3(b"tx%d-%d" % (h, i)), b"tx-%d-%d" % (h, i)) for i in range(3)],
        "changes": changes,
    }


def _fill(store: LedgerStore, n: int) -> None:
    parent = store.head_hash()
    for h in range(store.head_height() + 1, store.head_height() + n + 1):
        b = _block(h, parent)
        store.commit_block(**b)
        parent = b["block_hash"]


def test_reopen_yields_exactly_the_committed_chain(tmp_path) -> None:
    path = tmp_path / "ledger.db"
    s = LedgerStore(path, G)
    _fill(s, 20)
    state = s.load_state().entries()
    blocks = list(s.blocks())
    s.close()
    s2 = LedgerStore(path, G)
    assert s2.head_height() == 20
    assert list(s2.blocks()) == blocks
    assert s2.load_state().entries() == state
    assert s2.transactions(5) == [b"tx-5-0", b"tx-5-1", b"tx-5-2"]
    assert s2.tx_location(sm3(b"tx5-2")) == (5, 2)
    assert s2.block(21) is None


def test_rules_are_enforced(tmp_path) -> None:
    s = LedgerStore(tmp_path / "l.db", G)
    _fill(s, 2)
    with pytest.raises(StoreError, match="does not follow"):
        s.commit_block(**_block(5, s.head_hash()))
    with pytest.raises(StoreError, match="does not extend"):
        s.commit_block(**_block(3, b"\x01" * 32))
    dup_tx = _block(3, s.head_hash())
    dup_tx["txs"] = [(sm3(b"tx1-0"), b"again")]
    with pytest.raises(StoreError, match="conflicts"):
        s.commit_block(**dup_tx)
    # Nothing of the refused block was written.
    assert s.head_height() == 2 and s.transactions(3) == []
    s.close()
    with pytest.raises(StoreError, match="another chain"):
        LedgerStore(tmp_path / "l.db", b"\x09" * 32)


def test_corrupt_file_is_refused(tmp_path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open"):
        LedgerStore(bad, G)


def test_kill_9_leaves_a_complete_prefix(tmp_path) -> None:
    path = tmp_path / "crash.db"
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {os.getcwd()!r})
        from tests.chain.test_store import _block
        from chain.store import LedgerStore
        s = LedgerStore({str(path)!r}, {G!r})
        parent = s.head_hash()
        for h in range(1, 100000):
            b = _block(h, parent)
            s.commit_block(**b)
            parent = b["block_hash"]
            print(h, flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    last = 0
    for line in proc.stdout:
        last = int(line)
        if last >= 150:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    s = LedgerStore(path, G)
    head = s.head_height()
    assert head >= last  # every block reported committed survived
    parent = G
    expected_state: dict[bytes, bytes] = {}
    for b in s.blocks():
        assert b.parent_hash == parent
        assert len(s.transactions(b.height)) == 3  # complete blocks only
        expected_state.update(_block(b.height, parent)["changes"])
        parent = b.hash
    assert s.load_state().entries() == expected_state
    assert state_root(s.load_state().entries()) == state_root(expected_state)


def test_initial_state_is_written_once(tmp_path) -> None:
    path = tmp_path / "g.db"
    s = LedgerStore(path, G, initial_state={b"cert/a": b"A"})
    _fill(s, 1)
    s.close()
    s2 = LedgerStore(path, G, initial_state={b"cert/other": b"B"})
    entries = s2.load_state().entries()
    assert entries[b"cert/a"] == b"A" and b"cert/other" not in entries


def test_state_items_roll_back_to_an_older_height(tmp_path) -> None:
    s = LedgerStore(tmp_path / "l.db", G, initial_state={b"k0": b"genesis", b"a": b"A"})
    states = {0: dict(s.state_items())}
    for h in range(1, 16):
        _fill(s, 1)
        if h == 9:
            s.commit_block(**{**_block(h + 1, s.head_hash()), "changes": {b"a": None}})
        states[s.head_height()] = dict(s.state_items())
    for h, expected in states.items():
        if h:
            got = list(s.state_items(h, initial={b"k0": b"genesis", b"a": b"A"}))
            assert got == sorted(expected.items(), key=lambda kv: (bucket_of(kv[0]), kv[0])), h
    with pytest.raises(StoreError, match="outside"):
        list(s.state_items(s.head_height() + 1))


def test_restoring_is_all_or_nothing_and_needs_an_empty_store(tmp_path) -> None:
    from chain.store import StoredBlock, state_row

    s = LedgerStore(tmp_path / "l.db", G, initial_state={b"g": b"1"})
    with pytest.raises(RuntimeError), s.restoring(5) as w:
        w.put_state([state_row(b"x", b"1")])
        raise RuntimeError("verification failed")
    assert s.load_state().entries() == {b"g": b"1"} and s.base_height() == 0
    block = StoredBlock(5, b"h" * 32, b"p" * 32, b"r" * 32, b"blk", b"")
    with s.restoring(5) as w:
        w.put_state([state_row(b"x", b"1"), state_row(b"y", b"2")])
        w.put_block(block, [(b"t" * 32, b"tx")])
        assert w.get_state(b"x") == b"1" and w.entries == 2
    assert s.load_state().entries() == {b"x": b"1", b"y": b"2"}
    assert (s.head_height(), s.base_height(), s.block(5)) == (5, 5, block)
    index = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'state_scan'"
    assert s._db.execute(index).fetchone()[0] == 1  # rebuilt after the rows
    assert s.pruned(3) and not s.pruned(5) and not s.pruned(6)
    with pytest.raises(StoreError, match="new database"), s.restoring(7):
        pass
    s.commit_block(**_block(6, b"h" * 32))  # the chain continues from the base
    with s.reader() as view:
        s.commit_block(**_block(7, _block(6, b"")["block_hash"]))
        assert view.head_height() == 6  # a reader sees the store as it was
        with pytest.raises(StoreError, match="read view"):
            view.set_meta("x", b"1")
    assert s.head_height() == 7


def test_deferred_sync_tracks_writes_and_flushes_the_log(tmp_path, monkeypatch) -> None:
    path = tmp_path / "ledger.db"
    store = LedgerStore(path, G)
    _fill(store, 1)
    assert not store.unsynced  # each commit fsynced by SQLite: nothing to track
    store.defer_sync()
    assert not store.unsynced
    _fill(store, 2)
    assert store.unsynced
    assert store.take_unsynced() and not store.take_unsynced()
    store.set_meta("safety/0", b"s")
    assert store.take_unsynced()
    flushed: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (flushed.append(os.fstat(fd).st_ino), real_fsync(fd)))
    store.sync()
    wal, directory = os.stat(f"{path}-wal").st_ino, os.stat(tmp_path).st_ino
    assert flushed == [wal, directory]  # the log, and its directory the first time
    store.sync()
    assert flushed == [wal, directory, wal]
    store.close()
    again = LedgerStore(path, G)
    assert again.head_height() == 3 and again.get_meta("safety/0") == b"s"
    again.close()


def test_deferred_sync_of_a_memory_store_is_a_no_op() -> None:
    store = LedgerStore(":memory:", G)
    store.defer_sync()
    _fill(store, 2)
    assert not store.unsynced and not store.take_unsynced()
    store.sync()
    assert store.head_height() == 2


def test_prefix_scans_see_every_key_with_anchors_left_out_of_the_scan_index(tmp_path) -> None:
    s = LedgerStore(tmp_path / "n.db", G)
    keys = [b"anchor/" + bytes([i]) * 32 for i in range(40)] + [b"vote/%d" % i for i in range(30)]
    keys += [b"anchoq", b"anchor", b"anchor0", b"ancho", b"z"]
    changes = {k: b"v" + k for k in keys}
    s.commit_block(1, sm3(b"b1"), G, b"r" * 32, b"b", b"q", [], changes)
    state = s.load_state()
    prefixes = (b"", b"a", b"anc", b"anchor", b"anchor/", b"anchor/\x05", b"vote/", b"vote/1", b"z", b"\xff")
    for prefix in prefixes:
        got = list(state.items_with_prefix(prefix))
        assert got == sorted((k, v) for k, v in changes.items() if k.startswith(prefix)), prefix
    indexed = [
        bytes(r[0])
        for r in s._db.execute(
            "SELECT key FROM state INDEXED BY state_scan WHERE substr(key, 1, 7) <> X'616e63686f722f'"
        )
    ]
    assert len(indexed) == 35 and not any(k.startswith(b"anchor/") for k in indexed)
    plan = s._db.execute(
        "EXPLAIN QUERY PLAN SELECT key, value FROM state WHERE key >= ? AND key < ? "
        "AND substr(key, 1, 7) <> X'616e63686f722f' ORDER BY key",
        (b"vote/", b"vote0"),
    ).fetchall()
    assert "state_scan" in str(plan)
    for k in keys:  # a read by key goes to its bucket
        assert state.get(k) == b"v" + k and s.get_state(k) == b"v" + k
    assert state.get(b"anchor/missing") is None and s.get_state(b"nothing") is None


def test_a_store_with_the_earlier_full_key_index_is_opened_and_its_index_replaced(tmp_path) -> None:
    path = tmp_path / "n.db"
    s = LedgerStore(path, G)
    s.commit_block(**_block(1, G))
    s._db.execute("DROP INDEX state_scan")
    s._db.execute("CREATE UNIQUE INDEX state_key ON state (key)")  # as stores of 2026-12-05 had it
    s.close()
    s = LedgerStore(path, G)
    names = {r[0] for r in s._db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "state_scan" in names and "state_key" not in names
    state = s.load_state()
    assert state.get(b"k1") == b"v1" and list(state.items_with_prefix(b"n")) == [(b"n1", b"x")]


def test_the_changes_of_the_last_block_are_those_logged(tmp_path) -> None:
    path = tmp_path / "n.db"
    s = LedgerStore(path, G)
    parent = G
    for h in (1, 2):
        block = _block(h, parent)
        s.commit_block(**block)
        parent = block["block_hash"]
    fresh = LedgerStore(path, G)  # reads the log: it committed nothing itself
    assert s.state_changes(2) == fresh.state_changes(2) == _block(2, b"")["changes"]
    assert s.state_changes(1) == fresh.state_changes(1) == _block(1, b"")["changes"]
    mine = s.state_changes(2)
    mine[b"k2"] = b"changed by the caller"
    assert s.state_changes(2) == _block(2, b"")["changes"]  # a copy is handed out


def test_leaves_of_many_buckets_in_one_read_match_bucket_by_bucket(tmp_path) -> None:
    from chain.state import MemoryTable

    s = LedgerStore(tmp_path / "n.db", G)
    changes = {b"anchor/%d" % i: b"v%d" % i for i in range(3000)}
    s.commit_block(1, sm3(b"b1"), G, b"r" * 32, b"b", b"q", [], changes)
    table, memory = s.load_state().table, MemoryTable(changes)
    wanted = [*sorted({bucket_of(k) for k in changes})[:1200], 65535]  # over two chunks
    got = table.leaves_of(wanted)
    assert got == {b: memory.bucket_leaves(b) for b in wanted if memory.bucket_leaves(b)}
    assert all(got[b] == table.bucket_leaves(b) for b in got)
    assert memory.leaves_of(wanted) == {b: memory.bucket_leaves(b) for b in wanted}


def test_prefetch_reads_many_keys_in_few_statements_and_answers_as_get_does(tmp_path) -> None:
    s = LedgerStore(tmp_path / "n.db", G)
    present = {b"anchor/%d" % i: b"v%d" % i for i in range(150)}
    s.commit_block(1, sm3(b"b1"), G, b"r" * 32, b"b", b"q", [], present)
    absent = [b"anchor/missing-%d" % i for i in range(60)]
    wanted = [*present, *absent, b"anchor/3", b"anchor/missing-1"]  # repeats, over 3 chunks
    table = s.load_state().table
    statements: list[str] = []
    s._db.set_trace_callback(statements.append)
    table.prefetch(wanted)
    reads = [q for q in statements if q.lstrip().upper().startswith("SELECT")]
    assert 1 <= len(reads) <= 4  # 210 distinct keys, 64 per statement
    statements.clear()
    got = {k: table.get(k) for k in wanted}
    assert not statements  # every answer came from what prefetch read
    s._db.set_trace_callback(None)
    assert got == {k: present.get(k) for k in wanted}
    fresh = LedgerStore(tmp_path / "n.db", G).load_state().table
    assert {k: fresh.get(k) for k in wanted} == got  # the same answers without prefetch


def test_prefetch_of_cached_or_no_keys_reads_nothing(tmp_path) -> None:
    s = LedgerStore(tmp_path / "n.db", G)
    s.commit_block(1, sm3(b"b1"), G, b"r" * 32, b"b", b"q", [], {b"a": b"1"})
    table = s.load_state().table
    assert table.get(b"a") == b"1" and table.get(b"b") is None
    statements: list[str] = []
    s._db.set_trace_callback(statements.append)
    table.prefetch([b"a", b"b"])
    table.prefetch([])
    s._db.set_trace_callback(None)
    assert statements == []
