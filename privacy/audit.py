"""Audit trail: every query's record is anchored on the ledger.

An :class:`AuditRecord` holds the spec digest, the requester and role, the participating
agencies, each agency's policy decision and the result digest; its canonical encoding
(:mod:`chain.codec`) is hashed with SM3 and the digest is anchored through any
:class:`AuditAnchor`: :class:`LedgerAnchor` over any :class:`chain.client.Ledger` (a
member's node through :class:`chain.client.NodeClient`, or the in-process consortium, see
:class:`ConsortiumAnchor`), keeping each offline-verifiable receipt; or
:class:`ExecutorAnchor`, which executes the ``anchor`` transaction in-process with
:class:`chain.executor.Executor` (tests: no consortium, no receipt).

Examples
--------
>>> anchor = ExecutorAnchor.ephemeral()
>>> rec = AuditRecord("q1", b"s" * 32, "reg-1", "regulator", ("a", "b"),
...                   (("a", True, "ok", "0.0"), ("b", True, "ok", "0.0")), b"r" * 32, "paillier",
...                   "2026-01-01T00:00:00Z")
>>> receipt = anchor.anchor(rec.digest(), "privacy-query", rec.result_digest)
>>> receipt.status, receipt.height
('anchored', 1)
>>> anchor.lookup(rec.digest())["kind"]
'privacy-query'
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from chain import codec
from chain.client import Ledger
from chain.contracts.anchor import anchor_key
from chain.crypto import PrivateKey, sm3
from chain.errors import ChainError
from chain.executor import Executor, genesis_state
from chain.localnet import Identity, LocalConsortium
from chain.receipt import Receipt
from chain.state import State
from chain.types import Certificate, ChainParams, Genesis, Role, Transaction, ValidationError
from privacy.errors import AuditError

ANCHOR_KIND = "privacy-query"


@dataclass(frozen=True)
class AnchorReceipt:
    """Where a digest was anchored (an opaque reference for callers)."""

    tx_id: bytes
    height: int
    status: str


class AuditAnchor(Protocol):
    """Anything that can anchor a 32-byte digest on the ledger."""

    def anchor(self, digest: bytes, kind: str, meta: bytes) -> AnchorReceipt: ...


@dataclass(frozen=True)
class AuditRecord:
    """What is recorded for one query (no values, only digests and decisions).

    ``requester`` is the requester's certificate id (hex) and ``requester_subject`` its
    certified subject; ``query_digest`` is SM3 of the signed query as the agencies received
    it, and ``answers`` pairs each agency with SM3 of its signed answer (contribution,
    acceptance or refusal) — the digest each agency keeps in its own decision log, so that
    an agency can find its decision in the anchored record.
    """

    query_id: str
    spec_digest: bytes
    requester: str
    role: str
    agencies: tuple[str, ...]
    decisions: tuple[tuple[str, bool, str, str], ...]
    result_digest: bytes
    path: str
    time: str
    requester_subject: str = ""
    query_digest: bytes = b""
    answers: tuple[tuple[str, bytes], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain form (bytes stay bytes for the canonical encoding)."""
        return {
            "query_id": self.query_id,
            "spec_digest": self.spec_digest,
            "requester": self.requester,
            "role": self.role,
            "agencies": list(self.agencies),
            "decisions": [
                {"agency": a, "accepted": ok, "reason": r, "epsilon": e} for a, ok, r, e in self.decisions
            ],
            "result_digest": self.result_digest,
            "path": self.path,
            "time": self.time,
            "requester_subject": self.requester_subject,
            "query_digest": self.query_digest,
            "answers": [{"agency": a, "digest": d} for a, d in self.answers],
        }

    @classmethod
    def from_json(cls, doc: Any) -> AuditRecord:
        """Inverse of :meth:`to_json` (a line of ``audit.jsonl``); :class:`AuditError` if malformed."""
        try:
            return cls(
                str(doc["query_id"]),
                bytes.fromhex(doc["spec_digest"]),
                str(doc["requester"]),
                str(doc["role"]),
                tuple(str(a) for a in doc["agencies"]),
                tuple(
                    (str(d["agency"]), bool(d["accepted"]), str(d["reason"]), str(d["epsilon"]))
                    for d in doc["decisions"]
                ),
                bytes.fromhex(doc["result_digest"]),
                str(doc["path"]),
                str(doc["time"]),
                str(doc.get("requester_subject", "")),
                bytes.fromhex(doc.get("query_digest", "")),
                tuple((str(a["agency"]), bytes.fromhex(a["digest"])) for a in doc.get("answers", [])),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise AuditError(f"malformed audit record: {exc!r}") from None

    def encode(self) -> bytes:
        """Canonical CBOR encoding."""
        try:
            return codec.encode(self.to_dict())
        except codec.CodecError as exc:
            raise AuditError(f"audit record cannot be encoded canonically: {exc}") from None

    def digest(self) -> bytes:
        """SM3 of :meth:`encode`: the digest anchored on chain."""
        return sm3(self.encode())

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly form (bytes as hex)."""
        doc = self.to_dict()
        doc["spec_digest"] = self.spec_digest.hex()
        doc["result_digest"] = self.result_digest.hex()
        doc["query_digest"] = self.query_digest.hex()
        doc["answers"] = [{"agency": a, "digest": d.hex()} for a, d in self.answers]
        doc["record_digest"] = self.digest().hex()
        return doc


def result_digest(result: Any) -> bytes:
    """SM3 of a result's canonical JSON (floats rendered with ``repr``)."""
    return sm3(json.dumps(result, sort_keys=True, separators=(",", ":"), default=repr).encode())


def utc_now() -> str:
    """RFC 3339 UTC timestamp."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def check_record(
    doc: Any,
    receipt: Receipt,
    genesis: Genesis,
    agency: str | None = None,
    answer_digest: bytes | None = None,
) -> AuditRecord:
    """Check an audit record (a line of ``audit.jsonl``) against its ledger receipt.

    The record's digest is recomputed from its fields and must be what the receipt's
    anchor transaction anchored, on ``genesis``'s chain. An agency passes its name and the
    digest of its signed answer from its own decision log: the record must list exactly
    that answer for it.

    Raises
    ------
    AuditError
        Malformed record, a receipt that does not verify or anchors another digest, or an
        agency's answer that the record does not carry.
    """
    from chain.receipt import verify_anchored_digest

    rec = AuditRecord.from_json(doc)
    try:
        verify_anchored_digest(receipt, genesis, rec.digest(), 0, [])
    except ChainError as exc:
        raise AuditError(f"the audit record is not anchored by this receipt: {exc}") from None
    if agency is not None and (agency, answer_digest) not in rec.answers:
        raise AuditError(f"the audit record does not carry agency {agency!r}'s signed answer")
    return rec


class ExecutorAnchor:
    """Anchors through the deterministic executor, in-process (one block per anchor).

    Parameters
    ----------
    genesis : Genesis
        The consortium's genesis.
    signer : PrivateKey
        The anchoring member's key.
    cert : Certificate
        Its certificate (registered in the genesis).
    state : State or None
        The starting state (genesis state by default).
    """

    def __init__(
        self, genesis: Genesis, signer: PrivateKey, cert: Certificate, state: State | None = None
    ) -> None:
        self.genesis = genesis
        self.executor = Executor(genesis)
        self.state = state if state is not None else genesis_state(genesis)
        self.signer = signer
        self.cert = cert
        self.height = 0
        self.nonce = 0
        self._lock = threading.Lock()

    @classmethod
    def ephemeral(cls, name: str = "Provincial regulator") -> ExecutorAnchor:
        """A one-member demo consortium whose regulator anchors (keys live in memory only)."""
        root, key = PrivateKey.generate(), PrivateKey.generate()
        cert = Certificate.issue(root, name, "regulator", [Role.REGULATOR], key.public_key, 0)
        genesis = Genesis(
            "Rongxin privacy audit", "rongxin-audit", root.public_key.to_bytes(), (cert,), ChainParams()
        )
        return cls(genesis, key, cert)

    def anchor(self, digest: bytes, kind: str, meta: bytes) -> AnchorReceipt:
        """Sign an ``anchor`` transaction for ``digest`` and execute it as the next block."""
        with self._lock:
            now = int(time.time() * 1000)
            tx = Transaction.create(
                self.signer,
                self.cert.cert_id,
                "anchor",
                {"digest": digest, "kind": kind, "meta": meta},
                self.nonce + 1,
                now,
                self.genesis.chain_id,
            )
            try:
                result = self.executor.execute(self.state, [tx.to_bytes()], self.height + 1, now)
            except ValidationError as exc:
                raise AuditError(f"the ledger refused the audit anchor: {exc}") from None
            self.state.apply(result.changes)
            self.height += 1
            self.nonce += 1
            r = result.results[0]
            return AnchorReceipt(bytes(r["tx_id"]), int(r["height"]), str(r["status"]))

    def lookup(self, digest: bytes) -> dict[str, Any] | None:
        """The anchor entry for ``digest`` in the current state, if any."""
        raw = self.state.get(anchor_key(digest))
        return None if raw is None else dict(codec.decode(raw))


class LedgerAnchor:
    """Anchors through any :class:`chain.client.Ledger` — the SDK's client of a member's
    node (:class:`chain.client.NodeClient`) or the in-process consortium — and keeps each
    receipt, verified offline against the genesis.

    Parameters
    ----------
    ledger : chain.client.Ledger
        Where to anchor, as the regulator (its member identity is the ledger client's).
    genesis : Genesis
        The consortium's genesis (receipts are checked against it).
    """

    def __init__(self, ledger: Ledger, genesis: Genesis) -> None:
        self.ledger = ledger
        self.genesis = genesis
        self.receipts: dict[bytes, Receipt] = {}

    def anchor(self, digest: bytes, kind: str, meta: bytes) -> AnchorReceipt:
        """Anchor ``digest``, wait for its commit, verify its receipt offline."""
        try:
            receipt = self.ledger.anchor(digest, kind, meta)
            info = receipt.verify(self.genesis)
        except ChainError as exc:
            raise AuditError(f"the ledger refused the audit anchor: {exc}") from None
        self.receipts[digest] = receipt
        return AnchorReceipt(info.tx_id, info.height, "anchored")


class ConsortiumAnchor(LedgerAnchor):
    """:class:`LedgerAnchor` over an in-process consortium (tests and the embedded demo).

    Parameters
    ----------
    consortium : chain.localnet.LocalConsortium
        The running consortium (its nodes order and commit the anchor).
    member : chain.localnet.Identity
        The anchoring member (the regulator), certified on that chain.
    """

    def __init__(self, consortium: LocalConsortium, member: Identity) -> None:
        from chain.client import InProcessLedger

        super().__init__(InProcessLedger(consortium, member), consortium.genesis)
        self.consortium = consortium
        self.member = member


class AuditLog:
    """Anchors records and appends them (with their receipts) to a JSON-lines file.

    With ``anchor=None`` (no ledger node configured) records are only appended to the file,
    with ``"anchor": null``, and :meth:`record` returns ``None``: nothing claims an anchor
    that no consortium member could check.
    """

    def __init__(self, anchor: AuditAnchor | None, path: str | os.PathLike[str] | None = None) -> None:
        self.anchor_service = anchor
        self.path = path

    @property
    def anchored(self) -> bool:
        """Whether records are anchored on a ledger (else only written to the file)."""
        return self.anchor_service is not None

    def record(self, rec: AuditRecord) -> AnchorReceipt | None:
        """Anchor ``rec``'s digest (meta = result digest), if there is a ledger, and log it."""
        receipt = (
            None
            if self.anchor_service is None
            else self.anchor_service.anchor(rec.digest(), ANCHOR_KIND, rec.result_digest)
        )
        if self.path is not None:
            anchor = None if receipt is None else {"tx_id": receipt.tx_id.hex(), "height": receipt.height}
            line = dict(rec.to_json(), anchor=anchor)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(line, ensure_ascii=False) + "\n")
        return receipt
