"""Our manifest inside the WACZ: SM3 and SHA-256 of every file, the case, the match
evidence and the capturing member's certificate; signed with the member's SM2 key.

``evidence/manifest.json`` is canonical JSON; ``evidence/signature.json`` holds the SM2
signature over exactly those bytes. The package digest anchored on chain is the SM3 of
the manifest bytes: the manifest names every other file by its digests, so the one
digest fixes the whole package.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from chain.crypto import PrivateKey
from chain.crypto.sm3 import SM3, sm3
from chain.types import Certificate
from crawlers.package.wacz import canonical_json

FORMAT = "rongxin-evidence-package/1"
MANIFEST = "evidence/manifest.json"
SIGNATURE = "evidence/signature.json"
RECEIPT = "evidence/receipt.cbor"
ANCHOR = "evidence/anchor.json"
TIMESTAMP = "evidence/timestamp.tsr"

#: Files added after the manifest is signed; each proves something about the manifest.
PROOF_FILES = (MANIFEST, SIGNATURE, RECEIPT, ANCHOR, TIMESTAMP)

#: The WACZ index files, rebuilt whenever a proof file is added: their bytes follow from
#: the manifest (``wacz``) and the package's files, and a verifier rebuilds them exactly.
DERIVED_FILES = ("datapackage.json", "datapackage-digest.json")

SIGNATURE_ALGORITHM = "SM2-with-SM3 (GB/T 32918, default user id)"


def file_entry(source: bytes | Path) -> dict[str, Any]:
    """``{"bytes", "sm3", "sha256"}`` of one file's bytes, or of a file on disk (streamed)."""
    if isinstance(source, bytes):
        return {"bytes": len(source), "sm3": sm3(source).hex(), "sha256": hashlib.sha256(source).hexdigest()}
    h3, h256, size = SM3(), hashlib.sha256(), 0
    with source.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h3.update(chunk)
            h256.update(chunk)
            size += len(chunk)
    return {"bytes": size, "sm3": h3.hexdigest(), "sha256": h256.hexdigest()}


def certificate_json(cert: Certificate) -> dict[str, Any]:
    """A certificate as JSON (bytes as hex)."""
    doc = cert.to_dict()
    for name in ("public_key", "signature"):
        doc[name] = doc[name].hex()
    return doc


def certificate_from(doc: Any) -> Certificate:
    """Inverse of :func:`certificate_json`; ``ValueError`` (or a chain error) when malformed."""
    if not isinstance(doc, dict):
        raise ValueError("the certificate is not an object")
    doc = dict(doc)
    for name in ("public_key", "signature"):
        if not isinstance(doc.get(name), str):
            raise ValueError(f"the certificate's {name} is not hex")
        doc[name] = bytes.fromhex(doc[name])
    return Certificate.from_dict(doc)


def build_manifest(
    files: dict[str, dict[str, Any]],
    *,
    capture: dict[str, Any],
    certificate: Certificate,
    case: dict[str, Any] | None,
    match: dict[str, Any] | None,
    created: str,
    wacz: dict[str, Any],
) -> bytes:
    """The canonical manifest bytes over ``files`` (package path -> :func:`file_entry`)."""
    doc = {
        "format": FORMAT,
        "created": created,
        "capture": capture,
        "case": case,
        "match": match,
        "signer": {"certificate": certificate_json(certificate)},
        "wacz": wacz,
        "files": dict(sorted(files.items())),
    }
    return canonical_json(doc)


def sign_manifest(manifest: bytes, key: PrivateKey) -> bytes:
    """``evidence/signature.json`` bytes: the SM2 signature of the manifest."""
    doc = {
        "algorithm": SIGNATURE_ALGORITHM,
        "signed_file": MANIFEST,
        "manifest_sm3": sm3(manifest).hex(),
        "public_key": key.public_key.to_bytes().hex(),
        "signature": key.sign(manifest).hex(),
    }
    return canonical_json(doc)


def package_digest(manifest: bytes) -> bytes:
    """The digest anchored on chain: SM3 of the manifest bytes."""
    return sm3(manifest)
