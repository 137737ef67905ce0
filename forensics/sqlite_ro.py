"""Open a library's SQLite files: read-only without side files, or writable with a recorded format.

A WAL database opened with ``mode=ro`` still creates its ``-wal`` and ``-shm`` files when
they are missing (and cannot delete them afterwards), which fails on a read-only medium
and leaves files behind elsewhere. So:

* when a ``-wal`` file exists, a writer is active or was interrupted and its committed
  pages are there: open with ``mode=ro`` (the ``-shm`` file is shared with the writer);
* otherwise the database file is complete on its own: open it ``immutable=1`` — no locks,
  no side files. A writer starting meanwhile is not seen by this connection, which suits
  one-shot lookups (``rongxin identify``, ``rongxin works stats``).

Examples
--------
>>> import pathlib, sqlite3, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "x.db"
>>> with sqlite3.connect(path) as db:
...     _ = db.execute("CREATE TABLE t (x)")
>>> db.close()
>>> ro = connect_readonly(path)
>>> ro.execute("SELECT COUNT(*) FROM t").fetchone()
(0,)
>>> ro.execute("INSERT INTO t VALUES (1)")
Traceback (most recent call last):
...
sqlite3.OperationalError: attempt to write a readonly database
>>> ro.close()
"""

from __future__ import annotations

import sqlite3
import urllib.parse
from pathlib import Path


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection to the SQLite file ``path`` (see the module's notes).

    Raises
    ------
    sqlite3.OperationalError
        ``path`` does not exist or cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise sqlite3.OperationalError(f"unable to open database file {path}: no such file")
    uri = "file:" + urllib.parse.quote(str(path.resolve()))
    wal = path.with_name(path.name + "-wal")
    uri += "?mode=ro" if wal.exists() else "?mode=ro&immutable=1"
    return sqlite3.connect(uri, uri=True, timeout=30.0, check_same_thread=False)


def open_versioned(
    path: Path, *, schema: str, meta_table: str, fmt: str, readonly: bool
) -> tuple[sqlite3.Connection, str | None]:
    """Open a library's SQLite file that records its format in ``meta_table``.

    Read-only: :func:`connect_readonly`. Otherwise the parent directory is created, the
    file opened in WAL mode with full fsync, ``schema`` applied and ``fmt`` recorded when
    the file is new.

    Returns
    -------
    tuple
        The connection and the format the file records (``None`` when it records none);
        the caller compares it with its own and closes the connection on a mismatch.

    Raises
    ------
    sqlite3.Error, OSError
        The file is missing (read-only), not a database, or cannot be created.
    """
    if readonly:
        db = connect_readonly(path)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=30.0, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        with db:
            db.executescript(schema)
            db.execute(f"INSERT OR IGNORE INTO {meta_table} (key, value) VALUES ('format', ?)", (fmt,))
    row = db.execute(f"SELECT value FROM {meta_table} WHERE key = 'format'").fetchone()
    return db, (None if row is None else str(row[0]))
