"""Offline verification of an evidence package: every hash, the signature and its
certificate, the chain receipt, the RFC 3161 timestamp and that the WARC parses.

Each check names the file it is about and what was checked; a package is accepted only
when no check failed and the signature, certificate and receipt were all checked.
Nothing here touches the network: the verifier brings the consortium's genesis (and,
optionally, a checkpoint it pinned) and the TSA certificates it trusts.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass, field
from typing import Any

from chain.crypto import PublicKey
from chain.crypto.sm3 import SM3
from chain.errors import ChainError
from chain.receipt import Checkpoint, Receipt, verify_anchored_digest
from chain.types import Genesis
from crawlers.capture.browse import PARTIAL_WARC_PATH
from crawlers.errors import PackageError
from crawlers.package.manifest import (
    ANCHOR,
    DERIVED_FILES,
    MANIFEST,
    PROOF_FILES,
    RECEIPT,
    SIGNATURE,
    TIMESTAMP,
    certificate_from,
    package_digest,
)
from crawlers.package.read import EvidencePackage, read_package
from crawlers.package.wacz import (
    DATAPACKAGE,
    DATAPACKAGE_DIGEST,
    canonical_json,
    datapackage_bytes,
    datapackage_digest,
)

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Check:
    """One check: the file it is about, what was checked, ``ok``/``failed``/``skipped``."""

    file: str
    check: str
    status: str
    detail: str = ""


@dataclass
class Verification:
    """The outcome of :func:`verify_package`."""

    package: str
    checks: list[Check] = field(default_factory=list)
    digest: str = ""
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def failures(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.checks if c.status == "failed"]

    @property
    def ok(self) -> bool:
        """No check failed, and the signature, certificate and receipt were checked."""
        done = {c.check for c in self.checks if c.status == "ok"}
        return not self.failures and {"signature", "certificate", "receipt"} <= done

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (what ``rongxin evidence verify --json`` prints)."""
        return {
            "package": self.package,
            "ok": self.ok,
            "package_digest_sm3": self.digest,
            "facts": self.facts,
            "checks": [c.__dict__ for c in self.checks],
        }

    def add(self, file: str, check: str, ok: bool | None, detail: str = "") -> bool:
        status = "skipped" if ok is None else ("ok" if ok else "failed")
        self.checks.append(Check(file, check, status, detail))
        return bool(ok)


def _hash_entry(pkg: EvidencePackage, name: str) -> tuple[int, str, str]:
    sm3, sha = SM3(), hashlib.sha256()
    size = 0
    with pkg.open(name) as fh:
        while chunk := fh.read(_CHUNK):
            sm3.update(chunk)
            sha.update(chunk)
            size += len(chunk)
    return size, sm3.hexdigest(), sha.hexdigest()


def verify_package(
    path: str,
    genesis: Genesis | None,
    *,
    checkpoint: Checkpoint | None = None,
    tsa_roots: list[bytes] | None = None,
    check_warc: bool = True,
) -> Verification:
    """Verify the package at ``path`` offline.

    Parameters
    ----------
    path : str
        The ``.wacz`` file.
    genesis : Genesis or None
        The consortium's genesis: the root of trust of the signer's certificate and of
        the receipt. Without it those checks are skipped (and the package not accepted).
    checkpoint : Checkpoint, optional
        A checkpoint the verifier pinned (see :func:`chain.receipt.verify_receipt`).
    tsa_roots : list of bytes, optional
        PEM or DER certificates of the TSAs the verifier trusts, for the RFC 3161 token.
    check_warc : bool
        Parse every WARC record (the slowest check).

    Returns
    -------
    Verification
        Never raises for a bad package: every problem is a failed check.
    """
    result = Verification(str(path))
    try:
        pkg = read_package(path)
    except PackageError as exc:
        result.add(str(path), "package", False, str(exc))
        return result
    with pkg:
        result.add(str(path), "package", True, f"{len(pkg.names)} files")
        actual = _check_files(pkg, result)
        _check_datapackage(pkg, actual, result)
        manifest_digest = package_digest(pkg.manifest_bytes)
        result.digest = manifest_digest.hex()
        cert = _check_signature(pkg, genesis, result)
        _check_receipt(pkg, genesis, checkpoint, cert, manifest_digest, result)
        _check_timestamp(pkg, tsa_roots, result)
        if check_warc:
            _check_warcs(pkg, result)
        capture = pkg.manifest.get("capture")
        if isinstance(capture, dict):
            result.facts.update({k: capture.get(k) for k in ("url", "title", "started_ms", "finished_ms")})
    return result


def _check_files(pkg: EvidencePackage, result: Verification) -> dict[str, dict[str, Any]]:
    """Hash every file against the manifest; returns the actual ``{"bytes", "sm3", "sha256"}``
    of each file that could be read."""
    actual: dict[str, dict[str, Any]] = {}
    files = pkg.files
    if not files:
        result.add(MANIFEST, "manifest", False, "the manifest lists no file")
    for name, entry in sorted(files.items()):
        if name in PROOF_FILES or name in DERIVED_FILES:
            result.add(name, "listed", False, "a proof or index file cannot be listed in the manifest")
            continue
        if name not in pkg.names:
            result.add(name, "present", False, "listed in the manifest, missing from the package")
            continue
        if not isinstance(entry, dict):
            result.add(name, "manifest-entry", False, "malformed entry")
            continue
        got = _actual(pkg, name, result)
        if got is None:
            continue
        actual[name] = got
        if got["bytes"] != entry.get("bytes"):
            result.add(name, "size", False, f"{got['bytes']} bytes, the manifest says {entry.get('bytes')}")
        elif got["sm3"] != entry.get("sm3"):
            result.add(name, "sm3", False, f"SM3 {got['sm3']} differs from the manifest's {entry.get('sm3')}")
        elif got["sha256"] != entry.get("sha256"):
            result.add(name, "sha256", False, "SHA-256 differs from the manifest's")
        else:
            result.add(name, "sm3+sha256", True)
    for name in pkg.names:
        if name in PROOF_FILES:
            got = _actual(pkg, name, result)
            if got is not None:
                actual[name] = got
        elif name not in files and name not in DERIVED_FILES:
            result.add(name, "listed", False, "in the package but not in the signed manifest")
    return actual


def _actual(pkg: EvidencePackage, name: str, result: Verification) -> dict[str, Any] | None:
    try:
        size, sm3_hex, sha_hex = _hash_entry(pkg, name)
    except (PackageError, zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        result.add(name, "zip-crc", False, f"the stored bytes are damaged: {exc}")
        return None
    return {"bytes": size, "sm3": sm3_hex, "sha256": sha_hex}


def _check_datapackage(pkg: EvidencePackage, actual: dict[str, dict[str, Any]], result: Verification) -> None:
    """``datapackage.json`` and its digest must be exactly what the manifest's WACZ
    description and the package's files make (so that no byte of them can change)."""
    wacz = pkg.manifest.get("wacz")
    if not isinstance(wacz, dict):
        result.add(MANIFEST, "wacz", False, "the manifest has no WACZ description")
        return
    # files the manifest lists are indexed as it states them (each is checked against the
    # manifest on its own); the proof files as they are
    listed = pkg.files
    others = [n for n in pkg.names if n not in DERIVED_FILES]
    entries = {n: listed[n] if isinstance(listed.get(n), dict) else actual.get(n) for n in others}
    if any(not isinstance(e, dict) or not {"bytes", "sha256"} <= set(e) for e in entries.values()):
        result.add(DATAPACKAGE, "wacz", None, "not checked: some files are unreadable or malformed")
        return
    expected = datapackage_bytes(wacz, entries)  # type: ignore[arg-type]
    try:
        stored = pkg.read(DATAPACKAGE, limit=64 << 20)
        stored_digest = pkg.read(DATAPACKAGE_DIGEST, limit=1 << 20)
    except PackageError as exc:
        result.add(DATAPACKAGE, "wacz", False, str(exc))
        return
    if stored != expected:
        result.add(DATAPACKAGE, "wacz", False, "differs from the index of the package's files and manifest")
    else:
        result.add(DATAPACKAGE, "wacz", True, f"{len(others)} resources")
    if stored_digest != canonical_json(datapackage_digest(stored)):
        result.add(DATAPACKAGE_DIGEST, "wacz", False, "is not the SHA-256 of datapackage.json")


def _check_signature(pkg: EvidencePackage, genesis: Genesis | None, result: Verification) -> Any:
    try:
        sig = pkg.signature
        cert = certificate_from(pkg.manifest.get("signer", {}).get("certificate"))
    except (PackageError, ValueError, ChainError, AttributeError, TypeError) as exc:
        result.add(SIGNATURE, "signature", False, f"no usable signature or certificate: {exc}")
        return None
    result.facts["signer"] = {"subject": cert.subject, "organization": cert.organization}
    try:
        public = PublicKey.from_bytes(bytes.fromhex(str(sig.get("public_key"))))
        if public.to_bytes() != cert.key().to_bytes():
            result.add(SIGNATURE, "signature", False, "the signing key is not the certificate's key")
            return None
        public.verify(pkg.manifest_bytes, bytes.fromhex(str(sig.get("signature"))))
        result.add(SIGNATURE, "signature", True, f"SM2 by {cert.subject}")
    except Exception as exc:  # crypto errors of every kind
        # the signature file states the SM3 of the manifest it signed: which of the two changed
        changed = (
            MANIFEST if sig.get("manifest_sm3") != package_digest(pkg.manifest_bytes).hex() else SIGNATURE
        )
        result.add(changed, "signature", False, f"the SM2 signature over {MANIFEST} does not verify: {exc}")
        return None
    if genesis is None:
        result.add(MANIFEST, "certificate", None, "no genesis given")
        return cert
    try:
        cert.verify(genesis.root_key())
    except ChainError as exc:
        result.add(MANIFEST, "certificate", False, f"not issued by the consortium's root: {exc}")
        return None
    started = pkg.manifest.get("capture", {}).get("started_ms")
    if isinstance(started, int) and not cert.valid_at(started):
        result.add(MANIFEST, "certificate", False, "the certificate was not valid at capture time")
        return None
    result.add(MANIFEST, "certificate", True, f"{cert.subject} ({cert.organization}), issued by the root")
    return cert


def _check_receipt(
    pkg: EvidencePackage,
    genesis: Genesis | None,
    checkpoint: Checkpoint | None,
    cert: Any,
    digest: bytes,
    result: Verification,
) -> None:
    try:
        raw = pkg.receipt_bytes
    except PackageError as exc:
        result.add(RECEIPT, "receipt", False, str(exc))
        return
    try:
        anchor = pkg.anchor
    except PackageError as exc:
        result.add(ANCHOR, "receipt", False, str(exc))
        return
    where = RECEIPT if anchor is None else f"{RECEIPT} + {ANCHOR}"
    if raw is None:
        result.add(RECEIPT, "receipt", False, "the package holds no chain receipt")
        return
    if genesis is None:
        result.add(RECEIPT, "receipt", None, "no genesis given")
        return
    try:
        proof = anchor.get("merkle_proof", {}) if anchor else {}
        if anchor is not None and proof.get("digest") != digest.hex():
            result.add(ANCHOR, "receipt", False, "the proof is for another digest than this package's")
            return
        index = int(proof.get("index", 0))
        path = [bytes.fromhex(p) for p in proof.get("path", [])]
        info = verify_anchored_digest(Receipt.from_bytes(raw), genesis, digest, index, path, checkpoint)
    except (ChainError, ValueError, TypeError, AttributeError) as exc:
        result.add(where, "receipt", False, f"does not prove the package digest: {exc}")
        return
    result.facts["anchored"] = {"height": info.height, "block_time_ms": info.block_timestamp_ms,
                                "tx_id": info.tx_id.hex()}  # fmt: skip
    if cert is not None and info.sender.cert_id != cert.cert_id:
        result.add(RECEIPT, "anchored-by-signer", False, "anchored by another member than the signer")
    started = pkg.manifest.get("capture", {}).get("started_ms")
    if isinstance(started, int) and info.block_timestamp_ms < started:
        result.add(RECEIPT, "receipt", False, "the block is older than the capture")
        return
    result.add(
        RECEIPT, "receipt", True, f"anchored at height {info.height}" + (f" ({ANCHOR})" if anchor else "")
    )


def _check_timestamp(pkg: EvidencePackage, roots: list[bytes] | None, result: Verification) -> None:
    try:
        token = pkg.timestamp_token
    except PackageError as exc:
        result.add(TIMESTAMP, "timestamp", False, str(exc))
        return
    if token is None:
        return
    from crawlers.package.tsa import TimestampError, verify_timestamp

    try:
        when = verify_timestamp(token, pkg.manifest_bytes, roots)
    except TimestampError as exc:
        result.add(TIMESTAMP, "timestamp", False, str(exc))
        return
    result.facts["timestamp"] = when
    result.add(
        TIMESTAMP, "timestamp", True, f"RFC 3161 time {when['time']}" + ("" if roots else " (TSA not pinned)")
    )


def _check_warcs(pkg: EvidencePackage, result: Verification) -> None:
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    warcs = [n for n in pkg.names if n.startswith("archive/") and n.endswith((".warc.gz", ".warc"))]
    if not warcs:
        result.add("archive/", "warc", False, "the package holds no WARC")
    if PARTIAL_WARC_PATH in pkg.names:
        warcs.append(PARTIAL_WARC_PATH)
    for name in warcs:
        count = 0
        try:
            with pkg.open(name) as fh:
                for record in ArchiveIterator(fh, check_digests=True):
                    record.content_stream().read()
                    if record.digest_checker.problems:
                        raise ValueError("; ".join(map(str, record.digest_checker.problems)))
                    count += 1
        except (ArchiveLoadFailed, zipfile.BadZipFile, ValueError, OSError, EOFError, PackageError) as exc:
            result.add(name, "warc", False, f"does not parse as WARC: {exc}")
            continue
        result.add(name, "warc", count > 0, f"{count} records")
