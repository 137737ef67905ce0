"""Write an evidence package: a WACZ zip of a capture plus the signed manifest, then add the
chain receipt and an optional RFC 3161 timestamp.

Every file is stored uncompressed (as WACZ asks for the WARCs, so that replay tools can
seek into them); the zip's order is fixed, so that two packages of the same capture and
signature differ only in their ``created`` times.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chain.crypto import PrivateKey
from chain.receipt import Receipt
from chain.types import Certificate
from crawlers.capture.browse import WARC_PATH, Capture
from crawlers.errors import PackageError
from crawlers.package.manifest import (
    ANCHOR,
    MANIFEST,
    RECEIPT,
    SIGNATURE,
    TIMESTAMP,
    build_manifest,
    file_entry,
    package_digest,
    sign_manifest,
)
from crawlers.package.wacz import (
    DATAPACKAGE,
    DATAPACKAGE_DIGEST,
    INDEX,
    PAGES,
    canonical_json,
    cdxj_lines,
    datapackage,
    datapackage_digest,
    pages_jsonl,
)

SOFTWARE = "rongxin evidence"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_package(
    cap: Capture,
    out: Path,
    *,
    key: PrivateKey,
    certificate: Certificate,
    case: dict[str, Any] | None = None,
    match: dict[str, Any] | None = None,
) -> bytes:
    """Write the signed package of ``cap`` to ``out`` (a ``.wacz`` file).

    Parameters
    ----------
    cap : Capture
        From :func:`crawlers.capture.capture`.
    out : Path
        The zip to write (replaced when it exists).
    key, certificate
        The capturing member's SM2 key and its certificate (the key must be the
        certificate's).
    case, match
        The case (``Case.to_json()``) and its match evidence, when the capture is of a case.

    Returns
    -------
    bytes
        The package digest (SM3 of the manifest) to anchor on chain.

    Raises
    ------
    PackageError
        The key is not the certificate's, or a capture file is missing.
    """
    if key.public_key.to_bytes() != certificate.public_key:
        raise PackageError("the signing key does not belong to the certificate")
    sources: dict[str, bytes | Path] = dict(cap.files)
    missing = [rel for rel, path in cap.files.items() if not path.is_file()]
    if missing:
        raise PackageError(f"capture files missing: {missing}")
    with (cap.directory / WARC_PATH).open("rb") as fh:
        sources[INDEX] = ("\n".join(cdxj_lines(fh, WARC_PATH.rsplit("/", 1)[-1])) + "\n").encode()
    started = (
        datetime.fromtimestamp(cap.started_ms / 1000, UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )
    sources[PAGES] = pages_jsonl(cap.url, cap.title, started)
    entries = {rel: file_entry(src) for rel, src in sources.items()}
    dp = canonical_json(
        datapackage(
            entries, title=cap.title or cap.url, main_url=cap.url, main_date=started, software=SOFTWARE
        )
    )
    dp_digest = canonical_json(datapackage_digest(dp))
    for rel, data in ((DATAPACKAGE, dp), (DATAPACKAGE_DIGEST, dp_digest)):
        sources[rel] = data
        entries[rel] = file_entry(data)
    capture_doc = {
        "url": cap.url,
        "final_url": cap.final_url,
        "title": cap.title,
        "status": cap.status,
        "started_ms": cap.started_ms,
        "finished_ms": cap.finished_ms,
    }
    manifest = build_manifest(
        entries, capture=capture_doc, certificate=certificate, case=case, match=match, created=_now()
    )
    signature = sign_manifest(manifest, key)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for rel in sorted(sources):
            src = sources[rel]
            if isinstance(src, bytes):
                zf.writestr(_info(rel), src)
            else:
                with src.open("rb") as fin, zf.open(_info(rel), "w", force_zip64=True) as fout:
                    shutil.copyfileobj(fin, fout, 1 << 20)
        zf.writestr(_info(MANIFEST), manifest)
        zf.writestr(_info(SIGNATURE), signature)
    tmp.replace(out)
    return package_digest(manifest)


def _info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def _append(path: Path, name: str, data: bytes) -> None:
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_STORED) as zf:
        if name in zf.namelist():
            raise PackageError(f"{path} already holds {name}")
        zf.writestr(_info(name), data)


def add_receipt(path: Path, receipt: Receipt, *, index: int = 0, proof: list[bytes] | None = None) -> None:
    """Add the chain receipt of the package digest (and its batch position) to the package."""
    _append(path, RECEIPT, receipt.to_bytes())
    doc = {"index": index, "path": [p.hex() for p in (proof or [])]}
    _append(path, ANCHOR, (json.dumps(doc, sort_keys=True) + "\n").encode())


def add_timestamp(path: Path, token: bytes) -> None:
    """Add an RFC 3161 time-stamp response (DER) over the manifest's SHA-256."""
    _append(path, TIMESTAMP, token)


def timestamp_package(path: Path, tsa_url: str, *, timeout_s: float = 30.0) -> bytes:
    """Ask the TSA at ``tsa_url`` to time-stamp the package's manifest and add the token.

    Returns
    -------
    bytes
        The DER time-stamp response that was added.

    Raises
    ------
    crawlers.package.tsa.TimestampError
        The TSA did not answer with a token over this manifest.
    """
    from crawlers.package.read import read_package
    from crawlers.package.tsa import request_timestamp

    with read_package(path) as pkg:
        manifest = pkg.manifest_bytes
    token = request_timestamp(tsa_url, manifest, timeout_s=timeout_s)
    add_timestamp(path, token)
    return token
