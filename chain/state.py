"""The ledger's key-value state and its root.

Keys and values are bytes. The state root is the bucketed SM3 commitment of
:mod:`chain.state_tree`: 65,536 buckets chosen by ``SM3(key)``, each an RFC 6962 tree of
its ``[key, value]`` entries in key order, under one RFC 6962 tree of bucket digests. Any
two nodes with the same state agree on the root, one entry is proven with
:meth:`State.prove`, and a change costs its bucket and one path, not the whole state.

A :class:`State` keeps its entries in a :class:`StateTable`: in memory by default
(:class:`MemoryTable`), or the node's SQLite store (:class:`chain.store.StoreTable`, from
:meth:`chain.store.LedgerStore.load_state`), which holds a million entries on disk.
Execution works on an :class:`Overlay` so that a block that fails validation leaves the
state untouched; :meth:`Overlay.changes` is what storage commits with the block, and
:meth:`Overlay.root` is the root the block would give, computed from the changed buckets.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, insort
from collections import OrderedDict, deque
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Protocol

from chain.errors import MerkleError
from chain.state_tree import (
    BucketProof,
    BucketTree,
    StateProof,
    bucket_digest,
    bucket_of,
    commitment_of,
    entry_leaf,
    prove_in_bucket,
)

__all__ = ["MemoryTable", "Overlay", "State", "StateTable", "state_root"]

Changes = Mapping[bytes, bytes | None]


def state_root(entries: Mapping[bytes, bytes]) -> bytes:
    """The state root of ``entries`` (see :mod:`chain.state_tree` for its definition).

    Examples
    --------
    >>> state_root({b"a": b"1"}) == state_root({b"a": b"1"})
    True
    >>> state_root({b"a": b"1"}) != state_root({b"a": b"2"})
    True
    """
    return commitment_of(sorted(entries.items()))


def prefix_end(prefix: bytes) -> bytes | None:
    """The least key above every key that starts with ``prefix`` (``None``: no bound).

    Examples
    --------
    >>> prefix_end(b"ab"), prefix_end(b"a\\xff"), prefix_end(b"\\xff")
    (b'ac', b'b', None)
    """
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes((stripped[-1] + 1,))


class StateTable(Protocol):
    """Where a :class:`State` keeps its entries.

    ``write`` is called by :meth:`State.apply` only; readers see the entries as of the last
    write.
    """

    def get(self, key: bytes) -> bytes | None:
        """Value at ``key`` or ``None``."""
        ...

    def prefetch(self, keys: Collection[bytes]) -> None:
        """Read ``keys`` ahead, in as few reads as the table can make, so that the
        :meth:`get` of each that follows is cheap. Only a hint: answers are the same with
        or without it."""
        ...

    def items_with_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Entries whose key starts with ``prefix``, in key order."""
        ...

    def bucket_leaves(self, bucket: int) -> list[tuple[bytes, bytes]]:
        """``(key, entry leaf hash)`` of every entry of ``bucket``, in key order."""
        ...

    def leaves_of(self, buckets: Collection[int]) -> dict[int, list[tuple[bytes, bytes]]]:
        """:meth:`bucket_leaves` of each of ``buckets`` at once (an empty one may be left out)."""
        ...

    def buckets(self) -> Iterator[tuple[int, list[bytes]]]:
        """Every non-empty bucket with its entries' leaf hashes in key order."""
        ...

    def write(self, changes: Changes) -> None:
        """Apply committed changes (``None`` deletes)."""
        ...

    def __len__(self) -> int: ...


class MemoryTable:
    """Entries in a dict, with the keys of each bucket and all keys kept sorted.

    Prefix scans bisect the sorted keys (no pass over the state). Meant for states that
    fit in memory comfortably (tests, genesis, tools); a node keeps its state in its store.

    Examples
    --------
    >>> t = MemoryTable({b"b": b"2", b"a": b"1"})
    >>> list(t.items_with_prefix(b"")), len(t)
    ([(b'a', b'1'), (b'b', b'2')], 2)
    """

    _BATCH = 64  # above this many inserted or removed keys, re-sort instead of bisecting

    def __init__(self, entries: Mapping[bytes, bytes] | None = None) -> None:
        self._values: dict[bytes, bytes] = dict(entries or {})
        self._keys: list[bytes] = sorted(self._values)
        self._buckets: dict[int, list[bytes]] = {}
        for key in self._keys:  # in key order, so each bucket's list is sorted
            self._buckets.setdefault(bucket_of(key), []).append(key)

    def get(self, key: bytes) -> bytes | None:
        return self._values.get(key)

    def prefetch(self, keys: Collection[bytes]) -> None:
        return None  # every entry is in memory already

    def items_with_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        keys, values = self._keys, self._values
        i = bisect_left(keys, prefix)
        end = prefix_end(prefix)
        stop = len(keys) if end is None else bisect_left(keys, end, i)
        return iter([(k, values[k]) for k in keys[i:stop]])

    def bucket_leaves(self, bucket: int) -> list[tuple[bytes, bytes]]:
        values = self._values
        return [(k, entry_leaf(k, values[k])) for k in self._buckets.get(bucket, ())]

    def leaves_of(self, buckets: Collection[int]) -> dict[int, list[tuple[bytes, bytes]]]:
        return {b: self.bucket_leaves(b) for b in buckets}

    def buckets(self) -> Iterator[tuple[int, list[bytes]]]:
        values = self._values
        for b, keys in self._buckets.items():
            if keys:
                yield b, [entry_leaf(k, values[k]) for k in keys]

    def write(self, changes: Changes) -> None:
        values = self._values
        added = [k for k, v in changes.items() if v is not None and k not in values]
        removed = [k for k, v in changes.items() if v is None and k in values]
        for key, value in changes.items():
            if value is None:
                values.pop(key, None)
            else:
                values[key] = value
        for key in added:
            insort(self._buckets.setdefault(bucket_of(key), []), key)
        for key in removed:
            keys = self._buckets[bucket_of(key)]
            del keys[bisect_left(keys, key)]
        if len(added) + len(removed) > self._BATCH:
            gone = set(removed)
            self._keys = [k for k in self._keys if k not in gone] if gone else self._keys
            self._keys.extend(added)
            self._keys.sort()  # a sorted run and a short tail: merged in linear time
            return
        for key in removed:
            del self._keys[bisect_left(self._keys, key)]
        for key in added:
            insort(self._keys, key)

    def __len__(self) -> int:
        return len(self._values)


class State:
    """Committed state: entries in a table, and the commitment kept up to date.

    A root computed for pending changes (:meth:`root_with`, which :meth:`Overlay.root`
    calls when a block executes) is remembered with the tree nodes it changed; when the
    block commits, :meth:`apply` given that root installs those nodes instead of hashing
    again — if, and only if, the changes committed since that computation plus these ones
    are exactly the changes it covered (a block executed on an uncommitted parent covers
    the parent's changes too).

    Applying, computing a pending root and proving hold one lock, so an API thread may prove
    entries while the thread that commits blocks applies them.

    Parameters
    ----------
    entries : mapping, optional
        Initial entries of an in-memory state.
    table : StateTable, optional
        Where the entries are instead (e.g. a node's store); not with ``entries``.

    Examples
    --------
    >>> s = State({b"a": b"1"})
    >>> s.apply({b"b": b"2", b"a": None})
    >>> s.get(b"b"), s.root == State({b"b": b"2"}).root
    (b'2', True)
    """

    def __init__(
        self, entries: Mapping[bytes, bytes] | None = None, *, table: StateTable | None = None
    ) -> None:
        if table is not None and entries:
            raise ValueError("give a State its entries or a table, not both")
        self._table: StateTable = table if table is not None else MemoryTable(entries)
        self._tree = BucketTree({b: bucket_digest(leaves) for b, leaves in self._table.buckets()})
        self._lock = threading.RLock()
        self._version = 0  # changes applied so far
        self._applied: deque[tuple[int, dict[bytes, bytes | None]]] = deque(maxlen=self._REMEMBERED)
        self._prepared: OrderedDict[bytes, tuple[int, dict[bytes, bytes | None], dict[int, bytes]]] = (
            OrderedDict()
        )
        self.rehashes = 0
        """How many change sets had their buckets hashed here (a commit whose root was
        prepared at execution takes the hashes made then, and does not count)."""

    _REMEMBERED = 4  # roots prepared (and applied change sets) kept for reuse

    @property
    def table(self) -> StateTable:
        """Where the entries are kept."""
        return self._table

    def get(self, key: bytes) -> bytes | None:
        """Value at ``key`` or ``None``."""
        return self._table.get(key)

    def prefetch(self, keys: Collection[bytes]) -> None:
        """Have the table read ``keys`` ahead (:meth:`StateTable.prefetch`)."""
        self._table.prefetch(keys)

    def items_with_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Entries whose key starts with ``prefix``, in key order (an index range, not a scan)."""
        return self._table.items_with_prefix(prefix)

    def apply(self, changes: Changes, *, root: bytes | None = None) -> None:
        """Apply committed changes (``None`` deletes), rehashing only the buckets they touch.

        Parameters
        ----------
        changes : mapping
            The committed changes.
        root : bytes, optional
            The root they lead to (the block's state root), to reuse the nodes hashed when
            the block executed (:meth:`root_with`) instead of hashing again.
        """
        with self._lock:
            prepared = self._prepared.pop(root, None) if root is not None else None
            nodes = self._reusable(prepared, changes) if prepared is not None else None
            if nodes is None:
                nodes = self._tree.changed_nodes(self._digests_with(changes))
            self._table.write(changes)
            self._tree.install(nodes)
            self._version += 1
            self._applied.append((self._version, dict(changes)))

    def _reusable(
        self, prepared: tuple[int, dict[bytes, bytes | None], dict[int, bytes]], changes: Changes
    ) -> dict[int, bytes] | None:
        """The prepared nodes, if the changes applied since they were hashed, then
        ``changes``, are exactly what they were hashed for."""
        version, covered, nodes = prepared
        since = [ch for v, ch in self._applied if v > version]
        if len(since) != self._version - version:
            return None  # applied more change sets since than are remembered
        merged: dict[bytes, bytes | None] = {}
        for ch in since:
            merged.update(ch)
        merged.update(changes)
        return nodes if merged == covered else None

    @property
    def root(self) -> bytes:
        """The state root."""
        return self._tree.root

    def root_with(self, changes: Changes) -> bytes:
        """The root the state would have after ``changes``; the state is not changed.

        Examples
        --------
        >>> s = State({b"a": b"1"})
        >>> s.root_with({b"b": b"2"}) == State({b"a": b"1", b"b": b"2"}).root
        True
        """
        with self._lock:
            if not changes:
                return self._tree.root
            nodes = self._tree.changed_nodes(self._digests_with(changes))
            root = nodes[1]
            self._prepared[root] = (self._version, dict(changes), nodes)
            self._prepared.move_to_end(root)
            while len(self._prepared) > self._REMEMBERED:
                self._prepared.popitem(last=False)
            return root

    def prove(self, key: bytes, changes: Changes | None = None) -> StateProof:
        """Inclusion proof of ``key``'s entry under :attr:`root` (or under :meth:`root_with`
        of ``changes``, e.g. a block's changes before it is committed).

        Raises
        ------
        MerkleError
            When there is no entry at ``key``.

        Examples
        --------
        >>> from chain.state_tree import verify_state_proof
        >>> s = State({b"a": b"1"})
        >>> verify_state_proof(s.root_with({b"b": b"2"}), b"b", b"2", s.prove(b"b", {b"b": b"2"}))
        """
        changes = changes or {}
        with self._lock:
            changed = self._tree.changed_nodes(self._digests_with(changes)) if changes else {}
            b = bucket_of(key)
            leaves = self._leaves_with(b, [k for k in changes if bucket_of(k) == b], changes)
            return prove_in_bucket(leaves, key, self._tree, changed)

    def bucket_proof(self, key: bytes) -> BucketProof:
        """Every entry of ``key``'s bucket and its path under :attr:`root`: proves the value
        at ``key`` or that there is none (:func:`chain.state_tree.verify_bucket_proof`)."""
        with self._lock:
            b = bucket_of(key)
            entries = []
            for k, _ in sorted(self._table.bucket_leaves(b)):
                value = self._table.get(k)
                if value is None:  # pragma: no cover - the table lists its own keys
                    raise MerkleError(f"the state table lists {k!r} without a value")
                entries.append((k, value))
            return BucketProof(b, tuple(entries), tuple(self._tree.path(b)))

    def entries(self) -> dict[bytes, bytes]:
        """A copy of all entries."""
        return dict(self._table.items_with_prefix(b""))

    def overlay(self) -> Overlay:
        """A writable view whose changes are kept apart until committed."""
        return Overlay(self)

    def _leaves_with(self, bucket: int, keys: Iterable[bytes], changes: Changes) -> list[tuple[bytes, bytes]]:
        """``(key, leaf)`` of ``bucket`` in key order once ``changes`` (to ``keys``) apply."""
        return _with_changes(self._table.bucket_leaves(bucket), keys, changes)

    def _digests_with(self, changes: Changes) -> dict[int, bytes]:
        """New digest of every bucket that ``changes`` touch."""
        self.rehashes += 1
        touched: dict[int, list[bytes]] = {}
        for key in changes:
            touched.setdefault(bucket_of(key), []).append(key)
        stored = self._table.leaves_of(touched)  # one read for all of them
        return {
            b: bucket_digest([leaf for _, leaf in _with_changes(stored.get(b, ()), keys, changes)])
            for b, keys in touched.items()
        }


def _with_changes(
    stored: Iterable[tuple[bytes, bytes]], keys: Iterable[bytes], changes: Changes
) -> list[tuple[bytes, bytes]]:
    """A bucket's ``(key, leaf)`` list in key order once ``changes`` (to its ``keys``) apply."""
    leaves = dict(stored)
    for key in keys:
        value = changes[key]
        if value is None:
            leaves.pop(key, None)
        else:
            leaves[key] = entry_leaf(key, value)
    return sorted(leaves.items())


class Overlay:
    """Copy-on-write view over a :class:`State` (or another overlay)."""

    def __init__(self, base: State | Overlay) -> None:
        self._base = base
        self._changes: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        if key in self._changes:
            return self._changes[key]
        return self._base.get(key)

    def prefetch(self, keys: Collection[bytes]) -> None:
        """Read ahead, through to the table, those of ``keys`` this overlay does not hold."""
        changes = self._changes
        self._base.prefetch([k for k in keys if k not in changes])

    def set(self, key: bytes, value: bytes) -> None:
        """Write ``value`` at ``key``."""
        self._changes[key] = value

    def delete(self, key: bytes) -> None:
        """Remove ``key``."""
        self._changes[key] = None

    def items_with_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        merged = dict(self._base.items_with_prefix(prefix))
        for key, value in self._changes.items():
            if key.startswith(prefix):
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
        for key in sorted(merged):
            yield key, merged[key]

    def changes(self) -> dict[bytes, bytes | None]:
        """Every write and delete since the overlay was made."""
        return dict(self._changes)

    def rebase(self, base: State | Overlay) -> None:
        """Read through ``base`` from now on (it must hold what the old base held)."""
        self._base = base

    @property
    def base(self) -> State | Overlay:
        """The view this overlay reads through to."""
        return self._base

    def child(self) -> Overlay:
        """A nested overlay (one per transaction, dropped if it fails)."""
        return Overlay(self)

    def merge_child(self, child: Overlay) -> None:
        """Fold a successful child's changes into this overlay."""
        self._changes.update(child._changes)

    def flatten(self) -> tuple[State, dict[bytes, bytes | None]]:
        """The state under every overlay, and all their changes on top of it as one map."""
        layers = []
        view: State | Overlay = self
        while isinstance(view, Overlay):
            layers.append(view._changes)
            view = view._base
        merged: dict[bytes, bytes | None] = {}
        for layer in reversed(layers):
            merged.update(layer)
        return view, merged

    def root(self) -> bytes:
        """State root as if the changes were committed (only the changed buckets are read).

        Examples
        --------
        >>> o = State({b"a": b"1"}).overlay()
        >>> o.set(b"b", b"2")
        >>> o.root() == State({b"a": b"1", b"b": b"2"}).root
        True
        """
        state, changes = self.flatten()
        return state.root_with(changes)

    def prove(self, key: bytes) -> StateProof:
        """Inclusion proof of ``key``'s entry under :meth:`root`."""
        state, changes = self.flatten()
        return state.prove(key, changes)
