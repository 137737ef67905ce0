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
from collections.abc import Mapping
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
    datapackage_bytes,
    datapackage_digest,
    datapackage_meta,
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
    wacz = datapackage_meta(
        title=cap.title or cap.url, main_url=cap.url, main_date=started, software=SOFTWARE, created=_now()
    )
    capture_doc = {
        "url": cap.url,
        "final_url": cap.final_url,
        "title": cap.title,
        "status": cap.status,
        "started_ms": cap.started_ms,
        "finished_ms": cap.finished_ms,
    }
    manifest = build_manifest(
        entries,
        capture=capture_doc,
        certificate=certificate,
        case=case,
        match=match,
        created=_now(),
        wacz=wacz,
    )
    sources[MANIFEST] = manifest
    sources[SIGNATURE] = sign_manifest(manifest, key)
    for rel in (MANIFEST, SIGNATURE):
        entries[rel] = file_entry(sources[rel])
    _write(out, sources, entries, wacz)
    return package_digest(manifest)


Source = bytes | Path | tuple[zipfile.ZipFile, str]


def _write(out: Path, sources: Mapping[str, Source], entries: dict[str, Any], wacz: Any) -> None:
    """Write ``sources`` and the WACZ index over them to ``out`` (atomically)."""
    dp = datapackage_bytes(wacz, entries)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        zf.writestr(_info(DATAPACKAGE), dp)
        zf.writestr(_info(DATAPACKAGE_DIGEST), canonical_json(datapackage_digest(dp)))
        for rel in sorted(sources):
            src = sources[rel]
            if isinstance(src, bytes):
                zf.writestr(_info(rel), src)
                continue
            opener = src.open("rb") if isinstance(src, Path) else src[0].open(src[1])
            with opener as fin, zf.open(_info(rel), "w", force_zip64=True) as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
    tmp.replace(out)


def _info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def _add_files(path: Path, added: dict[str, bytes]) -> None:
    """Rewrite the package with ``added`` proof files and the WACZ index over all files."""
    from crawlers.package.read import read_package

    with read_package(path) as pkg:
        clash = [n for n in added if n in pkg.names]
        if clash:
            raise PackageError(f"{path} already holds {', '.join(clash)}")
        wacz = pkg.manifest.get("wacz")
        if not isinstance(wacz, dict):
            raise PackageError(f"{path}: the manifest has no WACZ description")
        kept = [n for n in pkg.names if n not in (DATAPACKAGE, DATAPACKAGE_DIGEST)]
        entries: dict[str, Any] = {}
        for name in kept:
            listed = pkg.files.get(name)
            entries[name] = listed if isinstance(listed, dict) else file_entry(pkg.read(name))
        entries.update({n: file_entry(d) for n, d in added.items()})
        sources: dict[str, Source] = {n: (pkg.zip, n) for n in kept}
        sources.update(added)
        _write(path, sources, entries, wacz)


def add_receipt(path: Path, receipt: Receipt, *, index: int = 0, proof: list[bytes] | None = None) -> None:
    """Add the chain receipt of the package digest (and its batch position) to the package.

    ``evidence/anchor.json`` holds ``{"merkle_proof": {"digest", "index", "path"}}``: the
    inner object is the proof file ``rongxin verify --proof`` reads (nested, because
    data-package validators read a top-level ``path`` as a resource's).
    """
    from crawlers.package.read import read_package

    with read_package(path) as pkg:
        digest = package_digest(pkg.manifest_bytes)
    doc = {"merkle_proof": {"digest": digest.hex(), "index": index, "path": [p.hex() for p in (proof or [])]}}
    _add_files(path, {RECEIPT: receipt.to_bytes(), ANCHOR: (json.dumps(doc, sort_keys=True) + "\n").encode()})


def add_timestamp(path: Path, token: bytes) -> None:
    """Add an RFC 3161 time-stamp response (DER) over the manifest's SHA-256."""
    _add_files(path, {TIMESTAMP: token})


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
