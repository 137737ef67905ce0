"""Copies of vault objects on other nodes: a durable outbox of pushes, and scrub with repair.

* :class:`Outbox` — which objects still have to reach which replica. One empty marker file
  per (target, object) under ``<vault>/outbox/<target>/``, written (fsynced) before an
  upload is acknowledged and removed once the target confirmed the copy, so a node killed
  at any moment resumes its pushes when it restarts.
* :func:`scrub` — re-hash every object a node holds or should hold; an altered object is
  quarantined and, like a missing one, fetched again from a replica (each copy checked
  against the digest as it arrives, so a bad replica cannot plant a wrong object).

Both are independent of the transport: a push or a fetch is a callable (the node passes
the HTTP client of :mod:`chain.client.vault`).

Examples
--------
>>> import io, tempfile
>>> from chain.vault.objects import seal_stream
>>> from chain.vault.store import LocalStore
>>> a, b = LocalStore(tempfile.mkdtemp()), LocalStore(tempfile.mkdtemp())
>>> blob = io.BytesIO(); h, _ = seal_stream(b"\\x01" * 32, io.BytesIO(b"x"), blob)
>>> _ = blob.seek(0); _ = a.put_stream(h.digest, blob)
>>> report = scrub(b, [h.digest], [lambda d: iter([a.open(d).read()])])
>>> report.repaired == [h.digest], b.verify(h.digest) == h
(True, True)
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from chain.crypto.atomic import fsync_directory
from chain.crypto.sm3 import sm3
from chain.errors import ChainError, VaultError
from chain.vault.store import ObjectStore

log = logging.getLogger(__name__)

Fetch = Callable[[bytes], Iterable[bytes]]
"""``fetch(digest) -> chunks`` of the object from one replica; raises :class:`ChainError` when it cannot."""

_NAME = re.compile(r"[0-9a-f]{64}")


def target_name(url: str) -> str:
    """A directory name for a replication target (a short SM3 of its URL).

    Examples
    --------
    >>> target_name("http://127.0.0.1:26667")
    't-e4e94ec42ef0390f'
    """
    return "t-" + sm3(url.rstrip("/").encode()).hex()[:16]


class Outbox:
    """Pending pushes of objects to replication targets (durable, see the module docstring).

    Parameters
    ----------
    root : path
        ``<vault>/outbox``.
    targets : iterable of str
        The targets' API URLs.
    """

    def __init__(self, root: str | os.PathLike[str], targets: Iterable[str]) -> None:
        self.root = Path(root)
        self.targets = [t.rstrip("/") for t in targets]
        for t in self.targets:
            (self.root / target_name(t)).mkdir(parents=True, exist_ok=True, mode=0o700)

    def _dir(self, target: str) -> Path:
        return self.root / target_name(target)

    def add(self, digest: bytes) -> None:
        """Queue ``digest`` for every target (durably, before the upload is acknowledged)."""
        for t in self.targets:
            d = self._dir(t)
            fd = os.open(d / digest.hex(), os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            fsync_directory(d)

    def pending(self, target: str) -> list[bytes]:
        """Digests still to push to ``target`` (oldest first, as far as the file times tell)."""
        d = self._dir(target)
        entries = [p for p in d.iterdir() if _NAME.fullmatch(p.name)] if d.is_dir() else []
        entries.sort(key=lambda p: (p.stat().st_mtime_ns, p.name))
        return [bytes.fromhex(p.name) for p in entries]

    def done(self, target: str, digest: bytes) -> None:
        """``target`` confirmed its copy of ``digest``."""
        with contextlib.suppress(FileNotFoundError):
            (self._dir(target) / digest.hex()).unlink()

    def backlog(self) -> int:
        """Pushes still pending, over all targets."""
        return sum(len(self.pending(t)) for t in self.targets)


def push_pending(outbox: Outbox, push: Callable[[str, bytes], None], limit: int = 1000) -> tuple[int, int]:
    """Push what is pending (at most ``limit`` objects per target); ``(pushed, failed)``.

    ``push(target, digest)`` uploads the object and raises :class:`ChainError` when the
    target refuses or cannot be reached; a target that fails is left for the next round.
    """
    pushed = failed = 0
    for target in outbox.targets:
        for digest in outbox.pending(target)[:limit]:
            try:
                push(target, digest)
            except ChainError as exc:
                log.warning("vault: cannot copy %s to %s yet: %s", digest.hex()[:16], target, exc)
                failed += 1
                break  # this target is down or refusing: try it again next round
            outbox.done(target, digest)
            pushed += 1
    return pushed, failed


@dataclass
class ScrubReport:
    """What a scrub found and did."""

    checked: int = 0
    intact: int = 0
    damaged: list[bytes] = field(default_factory=list)
    missing: list[bytes] = field(default_factory=list)
    repaired: list[bytes] = field(default_factory=list)
    lost: list[bytes] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        """The report with digests in hex."""
        return {
            "checked": self.checked,
            "intact": self.intact,
            "damaged": [d.hex() for d in self.damaged],
            "missing": [d.hex() for d in self.missing],
            "repaired": [d.hex() for d in self.repaired],
            "lost": [d.hex() for d in self.lost],
        }


def _fetch_into(store: ObjectStore, digest: bytes, chunks: Iterable[bytes], max_bytes: int | None) -> None:
    writer = store.writer(digest, max_bytes)
    try:
        for chunk in chunks:
            writer.feed(chunk)
    except BaseException:
        writer.abort()
        raise
    writer.commit()


def repair(store: ObjectStore, digest: bytes, sources: Iterable[Fetch], max_bytes: int | None = None) -> bool:
    """Fetch ``digest`` from the first source that has it intact; whether one did."""
    for fetch in sources:
        try:
            _fetch_into(store, digest, fetch(digest), max_bytes)
        except ChainError as exc:
            log.info("vault: a replica could not give %s: %s", digest.hex()[:16], exc)
            continue
        return True
    return False


def scrub(
    store: ObjectStore,
    expected: Iterable[bytes] = (),
    sources: Iterable[Fetch] = (),
    *,
    max_bytes: int | None = None,
) -> ScrubReport:
    """Re-hash every object in ``store`` and every ``expected`` one; repair from ``sources``.

    Parameters
    ----------
    store : ObjectStore
        The node's objects.
    expected : iterable of bytes
        Digests the node should hold even if they are gone (the chain's registry for a
        full replica, the node's own catalog).
    sources : iterable of Fetch
        Replicas to fetch damaged or missing objects from, in order of preference.
    max_bytes : int, optional
        The largest object accepted from a replica.
    """
    sources = list(sources)
    report = ScrubReport()
    for digest in sorted(set(store.digests()) | set(expected)):
        report.checked += 1
        if store.has(digest):
            try:
                store.verify(digest)
            except VaultError as exc:
                log.warning("vault: object %s is damaged: %s", digest.hex()[:16], exc)
                report.damaged.append(digest)
                store.quarantine(digest)
            else:
                report.intact += 1
                continue
        else:
            report.missing.append(digest)
        if repair(store, digest, sources, max_bytes):
            report.repaired.append(digest)
        else:
            report.lost.append(digest)
    return report


__all__ = ["Fetch", "Outbox", "ScrubReport", "push_pending", "repair", "scrub", "target_name"]
