import os
import sqlite3
import threading
import time

from chain.checkpointer import WalCheckpointer
from chain.store import WAL_LIMIT_PAGES, LedgerStore

GENESIS = b"g" * 32
PAGE = 4096


def wal_db(path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute("CREATE TABLE t (x BLOB)")
    return db


def fill(db: sqlite3.Connection, pages: int) -> None:
    db.executemany("INSERT INTO t VALUES (?)", [(os.urandom(PAGE),) for _ in range(pages)])


def commit_blocks(store: LedgerStore, start: int, count: int, tx_bytes: int) -> None:
    parent = store.head_hash()
    for h in range(start, start + count):
        block_hash = h.to_bytes(32, "big")
        txs = [(os.urandom(32), os.urandom(tx_bytes)) for _ in range(8)]
        store.commit_block(h, block_hash, parent, b"r" * 32, b"block", b"qc", txs, {b"k%d" % h: b"v"})
        parent = block_hash


def wait_until(predicate, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_a_checkpoint_copies_the_log_into_the_database(tmp_path) -> None:
    path = str(tmp_path / "x.db")
    db = wal_db(path)
    fill(db, 300)
    size_before = os.path.getsize(path)
    cp = WalCheckpointer(path)
    busy, log, copied = cp.checkpoint()
    assert busy == 0 and log >= 300 and copied == log
    assert os.path.getsize(path) >= size_before + 300 * PAGE
    assert cp.runs == 1 and cp.log_pages == log
    cp.close()
    db.close()


def test_a_reader_holds_back_what_it_may_still_read(tmp_path) -> None:
    path = str(tmp_path / "x.db")
    db = wal_db(path)
    fill(db, 10)
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT COUNT(*) FROM t").fetchone() == (10,)
    fill(db, 50)
    cp = WalCheckpointer(path)
    _, log, copied = cp.checkpoint()
    assert copied < log  # the pages after the reader's snapshot stay in the log
    reader.execute("COMMIT")
    _, log, copied = cp.checkpoint()
    assert copied == log
    reader.close()
    cp.close()
    db.close()


def checkpoint_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "wal-checkpoint" and t.is_alive())


def test_the_thread_starts_on_the_first_poke_and_stops_on_close(tmp_path) -> None:
    path = str(tmp_path / "x.db")
    db = wal_db(path)
    before = checkpoint_threads()
    cp = WalCheckpointer(path, min_interval_s=0.01)
    assert checkpoint_threads() == before  # none until there is something to copy
    fill(db, 100)
    size_before = os.path.getsize(path)
    cp.poke()
    assert checkpoint_threads() == before + 1
    assert wait_until(lambda: cp.runs >= 1 and os.path.getsize(path) > size_before)
    assert cp.error is None
    cp.close()
    assert checkpoint_threads() == before
    runs = cp.runs
    fill(db, 10)
    cp.poke()  # after close: ignored, no new thread
    time.sleep(0.1)
    assert cp.runs == runs and checkpoint_threads() == before
    db.close()


def test_a_failed_checkpoint_is_reported_and_retried(tmp_path) -> None:
    path = str(tmp_path / "missing" / "x.db")  # a directory that does not exist yet
    cp = WalCheckpointer(path, min_interval_s=0.01)
    cp.poke()
    assert wait_until(lambda: cp.error is not None)
    os.mkdir(tmp_path / "missing")
    db = wal_db(path)
    fill(db, 5)
    cp.poke()
    assert wait_until(lambda: cp.error is None and cp.log_pages >= 5)
    cp.close()
    db.close()


def test_store_commits_leave_copying_to_the_checkpointer(tmp_path) -> None:
    path = tmp_path / "ledger.db"
    store = LedgerStore(path, GENESIS)
    assert store.checkpointer is not None
    store.checkpointer.close()  # no thread: what stays in the log shows who copies it
    size = os.path.getsize(path)
    commit_blocks(store, 1, 10, 60_000)  # about 1,200 pages, past SQLite's automatic 1,000
    assert os.path.getsize(path) == size  # no commit copied the log back itself
    assert os.path.getsize(f"{path}-wal") > 1_000 * PAGE
    _, log, copied = store.checkpointer.checkpoint()
    assert copied == log > 1_000
    assert os.path.getsize(path) > size + 1_000 * PAGE
    store.close()
    again = LedgerStore(path, GENESIS)
    assert again.head_height() == 10
    again.close()


def test_store_log_stays_bounded_when_commits_follow_each_other(tmp_path) -> None:
    path = tmp_path / "ledger.db"
    store = LedgerStore(path, GENESIS)
    assert store.checkpointer is not None
    commit_blocks(store, 1, 120, 60_000)  # about 14,000 pages back to back
    wal = os.path.getsize(f"{path}-wal")
    assert wal < (WAL_LIMIT_PAGES + 1_000) * PAGE  # restarted from its beginning
    assert os.path.getsize(path) > 8_000 * PAGE
    store.close()
    again = LedgerStore(path, GENESIS)
    assert again.head_height() == 120
    assert again.block(120) is not None and len(again.transactions(77)) == 8
    again.close()


def test_memory_store_has_no_checkpointer() -> None:
    store = LedgerStore(":memory:", GENESIS)
    assert store.checkpointer is None
    commit_blocks(store, 1, 2, 100)
    assert store.head_height() == 2
    store.close()
