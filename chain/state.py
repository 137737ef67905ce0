"""The ledger's key-value state and its root.

Keys and values are bytes.  The state root is the RFC 6962 Merkle root (SM3) over the
canonical encodings of the ``[key, value]`` pairs in key order, so any two nodes with
the same state agree on the root, and one entry can be proven with an inclusion proof.
Execution works on an :class:`Overlay` so that a block that fails validation leaves the
state untouched; :meth:`Overlay.changes` is what storage commits with the block.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from chain import codec
from chain.merkle import merkle_root

_DELETED = object()


def state_root(entries: Mapping[bytes, bytes]) -> bytes:
    """Merkle root over ``[key, value]`` pairs sorted by key.

    Examples
    --------
    >>> state_root({b"a": b"1"}) == state_root({b"a": b"1"})
    True
    >>> state_root({b"a": b"1"}) != state_root({b"a": b"2"})
    True
    """
    return merkle_root([codec.encode([k, entries[k]]) for k in sorted(entries)])


class State:
    """Committed state: a plain mapping with a cached root."""

    def __init__(self, entries: Mapping[bytes, bytes] | None = None) -> None:
        self._entries: dict[bytes, bytes] = dict(entries or {})
        self._root: bytes | None = None

    def get(self, key: bytes) -> bytes | None:
        """Value at ``key`` or ``None``."""
        return self._entries.get(key)

    def items_with_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Entries whose key starts with ``prefix``, in key order."""
        for key in sorted(k for k in self._entries if k.startswith(prefix)):
            yield key, self._entries[key]

    def apply(self, changes: Mapping[bytes, bytes | None]) -> None:
        """Apply committed changes (``None`` deletes)."""
        for key, value in changes.items():
            if value is None:
                self._entries.pop(key, None)
            else:
                self._entries[key] = value
        self._root = None

    @property
    def root(self) -> bytes:
        """The state root (recomputed after changes)."""
        if self._root is None:
            self._root = state_root(self._entries)
        return self._root

    def entries(self) -> dict[bytes, bytes]:
        """A copy of all entries."""
        return dict(self._entries)

    def overlay(self) -> Overlay:
        """A writable view whose changes are kept apart until committed."""
        return Overlay(self)


class Overlay:
    """Copy-on-write view over a :class:`State` (or another overlay)."""

    def __init__(self, base: State | Overlay) -> None:
        self._base = base
        self._changes: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        if key in self._changes:
            return self._changes[key]
        return self._base.get(key)

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

    def root(self) -> bytes:
        """State root as if the changes were committed."""
        merged = dict(self.items_with_prefix(b""))
        return state_root(merged)
