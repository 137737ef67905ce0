"""The web-archive side of a package, per WACZ 1.1.1: ``datapackage.json`` with every
file's SHA-256, ``datapackage-digest.json``, ``pages/pages.jsonl`` and a CDXJ index
(``indexes/index.cdxj``) of the WARC, so that replayweb.page and pywb open the package.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from warcio.archiveiterator import ArchiveIterator

WACZ_VERSION = "1.1.1"
DATAPACKAGE = "datapackage.json"
DATAPACKAGE_DIGEST = "datapackage-digest.json"
PAGES = "pages/pages.jsonl"
INDEX = "indexes/index.cdxj"


def canonical_json(doc: Any) -> bytes:
    """Stable JSON bytes (sorted keys, no spaces, UTF-8) for hashing and signing."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def surt(url: str) -> str:
    """The Sort-friendly URI Reordering Transform key of ``url`` (as CDX indexes use it).

    Examples
    --------
    >>> surt("https://www.Example.com:8080/a/B?x=1")
    'com,example:8080)/a/b?x=1'
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host.startswith("www."):
        host = host[4:]
    labels = host.split(".") if not host.replace(".", "").isdigit() else [host]
    key = ",".join(reversed(labels))
    if parts.port and parts.port not in (80, 443):
        key += f":{parts.port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return f"{key}){path.lower()}"


def cdxj_lines(warc: BinaryIO, filename: str) -> list[str]:
    """One sorted CDXJ line per response record of a gzipped WARC."""
    lines: list[str] = []
    it = ArchiveIterator(warc)
    for record in it:
        if record.rec_type != "response":
            record.content_stream().read()
            continue
        url = str(record.rec_headers.get_header("WARC-Target-URI"))
        date = str(record.rec_headers.get_header("WARC-Date"))
        ts = "".join(ch for ch in date if ch.isdigit())[:14]
        status = record.http_headers.get_statuscode() if record.http_headers else "-"
        mime = (record.http_headers.get_header("Content-Type") or "unk") if record.http_headers else "unk"
        digest = record.rec_headers.get_header("WARC-Payload-Digest") or ""
        record.content_stream().read()
        offset = it.get_record_offset()
        length = it.get_record_length()
        doc = {"url": url, "mime": mime.split(";")[0].strip(), "status": status, "digest": digest,
               "length": str(length), "offset": str(offset), "filename": filename}  # fmt: skip
        lines.append(f"{surt(url)} {ts} {json.dumps(doc, sort_keys=True)}")
    return sorted(lines)


def pages_jsonl(url: str, title: str, ts_iso: str) -> bytes:
    """``pages/pages.jsonl`` with its header line and the captured page."""
    head = {"format": "json-pages-1.0", "id": "pages", "title": "All Pages"}
    page = {"id": hashlib.sha256(url.encode()).hexdigest()[:32], "url": url, "ts": ts_iso, "title": title}
    return (json.dumps(head) + "\n" + json.dumps(page, ensure_ascii=False) + "\n").encode("utf-8")


def datapackage_meta(
    *, title: str, main_url: str, main_date: str, software: str, created: str
) -> dict[str, Any]:
    """The fields of ``datapackage.json`` other than ``resources`` (kept in the signed manifest)."""
    return {
        "profile": "data-package",
        "wacz_version": WACZ_VERSION,
        "title": title,
        "created": created,
        "software": software,
        "mainPageURL": main_url,
        "mainPageDate": main_date,
    }


def datapackage_bytes(meta: dict[str, Any], files: dict[str, dict[str, Any]]) -> bytes:
    """``datapackage.json``: ``meta`` and one resource per file (package path ->
    ``{"bytes", "sha256", ...}``), as canonical JSON, so that a verifier can rebuild it
    byte for byte from the manifest and the files."""
    resources = [
        {"name": path.rsplit("/", 1)[-1], "path": path, "hash": "sha256:" + e["sha256"], "bytes": e["bytes"]}
        for path, e in sorted(files.items())
        if path not in (DATAPACKAGE, DATAPACKAGE_DIGEST)
    ]
    return canonical_json({**meta, "resources": resources})


def datapackage_digest(datapackage_bytes: bytes) -> dict[str, Any]:
    """``datapackage-digest.json``: the SHA-256 of ``datapackage.json``."""
    return {"path": DATAPACKAGE, "hash": "sha256:" + hashlib.sha256(datapackage_bytes).hexdigest()}
