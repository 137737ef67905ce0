"""A node's vault: who may store and read what, replication and scrub, over one store.

The node API (:mod:`chain.api.vault`) asks a :class:`VaultService`:

* :meth:`~VaultService.upload` — a member stores its own objects only (the header must
  name it as owner); a node certificate may store any object (a replica's copy). The
  object is checked against its digest as it arrives and capped at ``max_object_bytes``.
* :meth:`~VaultService.check_read` — the ciphertext goes to the object's owner, to
  members holding a grant on chain (:mod:`chain.vault.contract`), and to node
  certificates (replication and repair); everyone else is refused (403). Nobody reads the
  content without a wrapped key for their own SM2 key.
* :meth:`~VaultService.accepted` — a member's upload is recorded in the node's catalog and
  queued (durably) for every replication target, before the upload is acknowledged.
* :meth:`~VaultService.scrub` — re-hash everything held or expected (the catalog, and with
  ``hold_all`` — the supervisory organization's node — every object registered on
  chain), repairing from the replicas.

Examples
--------
>>> import io, tempfile
>>> from chain.state import State
>>> from chain.types import Certificate, Role
>>> from chain.crypto import PrivateKey
>>> from chain.vault.objects import seal_stream
>>> from chain.vault.store import LocalStore
>>> root, key = PrivateKey.generate(), PrivateKey.generate()
>>> cert = Certificate.issue(root, "Center", "c", [Role.MEDIA_CENTER], key.public_key, 0)
>>> vault = VaultService(LocalStore(tempfile.mkdtemp()), lambda: State())
>>> blob = io.BytesIO(); h, _ = seal_stream(cert.cert_id, io.BytesIO(b"x"), blob)
>>> up = vault.upload(h.digest, cert); up.feed(blob.getvalue()); header = up.commit()
>>> vault.accepted(header, cert); vault.check_read(h.digest, cert)
>>> vault.expected() == {h.digest}
True
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from chain.errors import AuthError, VaultError
from chain.types import NODE_ROLES, Certificate
from chain.vault.contract import may_read, registered_objects
from chain.vault.objects import HEADER_SIZE, ObjectHeader
from chain.vault.replication import Fetch, Outbox, ScrubReport, push_pending, scrub
from chain.vault.store import LocalStore, ObjectStore, ObjectWriter

DEFAULT_MAX_OBJECT_BYTES = 4 * 1024**3
"""Largest object a node stores by default (4 GiB)."""


class Upload:
    """One upload into the node's store, refused as soon as its header names another owner."""

    def __init__(self, writer: ObjectWriter, owner: bytes | None) -> None:
        self.writer = writer
        self.owner = owner
        self._head = bytearray()

    def feed(self, data: bytes) -> None:
        """The next bytes of the object."""
        if self.owner is not None and len(self._head) < HEADER_SIZE:
            self._head += data[: HEADER_SIZE - len(self._head)]
            if len(self._head) == HEADER_SIZE:
                try:
                    header = ObjectHeader.parse(bytes(self._head))
                except VaultError:
                    self.writer.abort()
                    raise
                if header.owner != self.owner:
                    self.writer.abort()
                    raise VaultError(
                        "a member stores only its own objects: the header names another owner", 403
                    )
        self.writer.feed(data)

    def commit(self) -> ObjectHeader:
        """Check the last bytes and make the object visible (fsynced); its header."""
        return self.writer.commit()

    def abort(self) -> None:
        """Drop the upload: nothing of it remains."""
        self.writer.abort()


class _Catalog:
    """The digests a node accepted, one per line, appended and fsynced."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def add(self, digest: bytes) -> None:
        with self._lock, open(self.path, "a", encoding="ascii") as fh:
            fh.write(digest.hex() + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def digests(self) -> set[bytes]:
        out: set[bytes] = set()
        with (
            contextlib.suppress(FileNotFoundError),
            open(self.path, encoding="ascii", errors="replace") as fh,
        ):
            for line in fh:
                line = line.strip()
                if len(line) == 64:
                    with contextlib.suppress(ValueError):
                        out.add(bytes.fromhex(line))
        return out


class VaultService:
    """The vault of one node (see the module docstring).

    Parameters
    ----------
    store : ObjectStore
        Where objects live (a :class:`~chain.vault.store.LocalStore` by default).
    state : callable
        ``() -> state`` of the node's committed chain (anything with ``get`` and
        ``items_with_prefix``), read for grants and the registry.
    max_object_bytes : int
        Largest object accepted (413 beyond).
    outbox : Outbox, optional
        Replication targets' pending pushes.
    sources : iterable of Fetch
        Replicas a scrub repairs from.
    hold_all : bool
        This node keeps a copy of every object registered on chain (the supervisory
        organization's node).
    operators : iterable of bytes
        Certificate ids allowed to start a scrub through the API (empty: any member).
    """

    def __init__(
        self,
        store: ObjectStore,
        state: Callable[[], Any],
        *,
        max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES,
        outbox: Outbox | None = None,
        sources: Iterable[Fetch] = (),
        hold_all: bool = False,
        operators: Iterable[bytes] = (),
        catalog: str | os.PathLike[str] | None = None,
    ) -> None:
        self.store = store
        self.state = state
        self.max_object_bytes = max_object_bytes
        self.outbox = outbox
        self.sources = list(sources)
        self.hold_all = hold_all
        self.operators = frozenset(operators)
        if catalog is None and isinstance(store, LocalStore):
            catalog = store.root / "catalog"
        self._catalog = _Catalog(Path(catalog)) if catalog is not None else None
        self._scrub_lock = threading.Lock()
        self.last_scrub: dict[str, Any] | None = None

    # ---------------------------------------------------------------- access
    def upload(self, digest: bytes, cert: Certificate) -> Upload:
        """Start storing ``digest`` for ``cert`` (a member's own object, or a node's copy)."""
        is_node = bool(set(cert.roles) & NODE_ROLES)
        return Upload(self.store.writer(digest, self.max_object_bytes), None if is_node else cert.cert_id)

    def accepted(self, header: ObjectHeader, cert: Certificate) -> None:
        """Record a stored object; a member's upload is queued for every replica."""
        if self._catalog is not None:
            self._catalog.add(header.digest)
        if self.outbox is not None and not set(cert.roles) & NODE_ROLES:
            self.outbox.add(header.digest)

    def check_read(self, digest: bytes, cert: Certificate) -> None:
        """Allow or refuse serving the object's ciphertext to ``cert``.

        Raises
        ------
        AuthError
            403: neither its owner, nor granted on chain, nor a node.
        VaultError
            404: this node does not hold it.
        """
        allowed = may_read(self.state(), digest, cert.cert_id, set(cert.roles))
        if not allowed and self.store.has(digest):
            allowed = self._stored_owner(digest) == cert.cert_id  # registered on chain or not yet
        if not allowed:
            raise AuthError(
                "this member may not read this object: only its owner and members it granted "
                "access on chain (vault.grant) may",
                403,
            )
        if not self.store.has(digest):
            raise VaultError(f"this node holds no object {digest.hex()[:16]}…", 404)

    def _stored_owner(self, digest: bytes) -> bytes | None:
        try:
            with self.store.open(digest) as fh:
                return ObjectHeader.parse(fh.read(HEADER_SIZE)).owner
        except VaultError:
            return None

    def may_scrub(self, cert: Certificate) -> bool:
        """Whether ``cert`` may start a scrub through the API."""
        return not self.operators or cert.cert_id in self.operators

    # ---------------------------------------------------------------- upkeep
    def expected(self) -> set[bytes]:
        """Digests this node should hold: its catalog, and the chain's registry with ``hold_all``."""
        out = self._catalog.digests() if self._catalog is not None else set()
        if self.hold_all:
            out.update(registered_objects(self.state()))
        return out

    def scrub(self, expected: set[bytes] | None = None) -> ScrubReport:
        """Re-hash everything held or expected and repair from the replicas (one at a time).

        ``expected`` is :meth:`expected` by default. A node reads its chain state on its
        event loop only: it passes ``expected`` read there and runs the scrub in a thread.

        Raises
        ------
        VaultError
            409 when a scrub is already running.
        """
        if not self._scrub_lock.acquire(blocking=False):
            raise VaultError("a scrub is already running on this node", 409)
        try:
            started = time.time()
            wanted = self.expected() if expected is None else expected
            report = scrub(self.store, wanted, self.sources, max_bytes=self.max_object_bytes)
            self.last_scrub = {
                **report.to_json(),
                "started": started,
                "seconds": round(time.time() - started, 3),
            }
            return report
        finally:
            self._scrub_lock.release()

    def replicate(self, push: Callable[[str, bytes], None]) -> tuple[int, int]:
        """Push what is pending to the replication targets; ``(pushed, failed)``."""
        if self.outbox is None:
            return 0, 0
        return push_pending(self.outbox, push)

    def status(self) -> dict[str, Any]:
        """Objects held, bytes, replication backlog, the last scrub."""
        count = size = 0
        for digest in self.store.digests():
            count += 1
            size += self.store.size(digest) or 0
        return {
            "objects": count,
            "bytes": size,
            "max_object_bytes": self.max_object_bytes,
            "hold_all": self.hold_all,
            "replication": {}
            if self.outbox is None
            else {t: len(self.outbox.pending(t)) for t in self.outbox.targets},
            "last_scrub": self.last_scrub,
        }


__all__ = ["DEFAULT_MAX_OBJECT_BYTES", "Upload", "VaultService"]
