"""The outbox survives restarts and failing targets; scrub repairs only with intact copies."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path

from chain.errors import ClientError
from chain.vault.objects import ObjectHeader, seal_stream
from chain.vault.replication import Outbox, push_pending, scrub
from chain.vault.store import LocalStore


def _stored(store: LocalStore, size: int = 5000) -> ObjectHeader:
    blob = io.BytesIO()
    header, _ = seal_stream(b"\x03" * 32, io.BytesIO(os.urandom(size)), blob)
    blob.seek(0)
    store.put_stream(header.digest, blob)
    return header


def test_outbox_is_durable_and_keeps_what_failed(tmp_path: Path) -> None:
    targets = ["http://127.0.0.1:1", "http://127.0.0.1:2"]
    box = Outbox(tmp_path / "outbox", targets)
    digests = [bytes([i]) * 32 for i in range(3)]
    for d in digests:
        box.add(d)
    box = Outbox(tmp_path / "outbox", targets)  # the node restarted
    assert box.backlog() == 6 and sorted(box.pending(targets[0])) == digests
    calls: list[tuple[str, bytes]] = []

    def push(target: str, digest: bytes) -> None:
        calls.append((target, digest))
        if target == targets[1]:
            raise ClientError("node unreachable")

    assert push_pending(box, push) == (3, 1)
    assert box.pending(targets[0]) == [] and sorted(box.pending(targets[1])) == digests
    assert sum(t == targets[1] for t, _ in calls) == 1  # a failing target is left for the next round
    assert push_pending(box, lambda t, d: None) == (3, 0) and box.backlog() == 0


def test_scrub_skips_bad_replicas_and_reports_lost(tmp_path: Path) -> None:
    good, node = LocalStore(tmp_path / "good"), LocalStore(tmp_path / "node")
    a = _stored(good)
    b = _stored(node)
    liar_calls: list[bytes] = []

    def liar(digest: bytes) -> Iterable[bytes]:
        liar_calls.append(digest)
        with good.open(a.digest) as fh:
            data = bytearray(fh.read())
        data[-1] ^= 1  # a replica serving altered bytes
        return [bytes(data)]

    def down(digest: bytes) -> Iterable[bytes]:
        raise ClientError("unreachable")

    def honest(digest: bytes) -> Iterable[bytes]:
        with good.open(digest) as fh:
            return [fh.read()]

    missing = b"\x07" * 32
    report = scrub(node, [a.digest, missing], [down, liar, honest])
    assert report.checked == 3 and report.intact == 1  # b
    assert set(report.missing) == {a.digest, missing}
    assert report.repaired == [a.digest] and report.lost == [missing]
    assert node.verify(a.digest) == a and node.verify(b.digest) == b
    assert liar_calls  # tried, refused, and nothing of it kept
    assert list((tmp_path / "node" / "tmp").iterdir()) == []
