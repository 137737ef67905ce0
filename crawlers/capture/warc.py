"""WARC records (ISO 28500, WARC/1.1) of a capture's requests and responses, written with warcio.

The browser hands over bodies already decoded (no ``Content-Encoding``, no chunking), so
the record keeps the original values of those headers under ``X-Archive-Orig-`` names and
states the stored body's true ``Content-Length``: what a replay tool (pywb, replayweb.page)
reads back is exactly what the browser rendered.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

#: Response headers that describe a transfer encoding the stored body no longer has.
_TRANSFER_HEADERS = frozenset({"content-encoding", "transfer-encoding", "content-length"})


@dataclass
class Exchange:
    """One HTTP request and its response as the browser (or the capture) saw them."""

    url: str
    method: str
    request_headers: list[tuple[str, str]]
    status: int
    response_headers: list[tuple[str, str]]
    body: bytes
    time: float
    request_body: bytes = b""
    ip: str | None = None
    http_version: str = "HTTP/1.1"
    note: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def _warc_date(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _clean_response_headers(headers: Iterable[tuple[str, str]], body_len: int) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name, value in headers:
        if name.lower() in _TRANSFER_HEADERS:
            out.append((f"X-Archive-Orig-{name}", value))
        elif not name.startswith(":"):  # HTTP/2 pseudo-headers are not headers of the message
            out.append((name, value))
    out.append(("Content-Length", str(body_len)))
    return out


def _protocol(version: str) -> str:
    # warcio's parsers expect an HTTP/1.x status line; HTTP/2 and 3 are stated as HTTP/1.1
    # and the real protocol goes into a WARC header
    return "HTTP/1.1" if not version.upper().startswith("HTTP/1.") else version.upper()


class WarcRecorder:
    """Writes a ``warcinfo`` record, then a response and a request record per exchange."""

    def __init__(self, stream: BinaryIO, *, filename: str, info: dict[str, str]) -> None:
        self._writer = WARCWriter(stream, gzip=True, warc_version="WARC/1.1")
        self._writer.write_record(self._writer.create_warcinfo_record(filename, info))
        self.count = 0

    def write(self, ex: Exchange) -> str:
        """Write one exchange; returns the WARC-Record-ID of its response record."""
        w = self._writer
        reason = HTTPStatus(ex.status).phrase if ex.status in HTTPStatus._value2member_map_ else "Unknown"
        http = StatusAndHeaders(
            f"{ex.status} {reason}",
            _clean_response_headers(ex.response_headers, len(ex.body)),
            protocol=_protocol(ex.http_version),
        )
        warc_headers = {"WARC-Date": _warc_date(ex.time)}
        if ex.ip:
            warc_headers["WARC-IP-Address"] = ex.ip
        if not ex.http_version.upper().startswith("HTTP/1."):
            warc_headers["WARC-Protocol"] = ex.http_version.lower()
        if ex.note:
            warc_headers["WARC-X-Capture-Note"] = ex.note
        warc_headers.update(ex.extra)
        response = w.create_warc_record(
            ex.url, "response", payload=io.BytesIO(ex.body), http_headers=http, warc_headers_dict=warc_headers
        )
        w.write_record(response)
        record_id = str(response.rec_headers.get_header("WARC-Record-ID"))
        parts = urlsplit(ex.url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        req_headers = [(k, v) for k, v in ex.request_headers if not k.startswith(":")]
        if not any(k.lower() == "host" for k, _ in req_headers):
            req_headers.insert(0, ("Host", parts.netloc))
        request = w.create_warc_record(
            ex.url,
            "request",
            payload=io.BytesIO(ex.request_body),
            http_headers=StatusAndHeaders(
                f"{ex.method} {target} HTTP/1.1", req_headers, protocol="HTTP/1.1", is_http_request=True
            ),
            warc_headers_dict={"WARC-Date": _warc_date(ex.time), "WARC-Concurrent-To": record_id},
        )
        w.write_record(request)
        self.count += 1
        return record_id


def write_warc(path: Path, exchanges: Iterable[Exchange], info: dict[str, str]) -> int:
    """Write ``exchanges`` to a new gzipped WARC at ``path``; returns how many were written."""
    with path.open("wb") as fh:
        rec = WarcRecorder(fh, filename=path.name, info=info)
        for ex in exchanges:
            rec.write(ex)
        return rec.count


def content_range(headers: Iterable[tuple[str, str]]) -> tuple[int, int] | None:
    """``(first, last)`` byte of a ``Content-Range: bytes FIRST-LAST/TOTAL`` header, if valid.

    Examples
    --------
    >>> content_range([("Content-Range", "bytes 100-199/1000")])
    (100, 199)
    >>> content_range([("content-range", "bytes */1000")]) is None
    True
    """
    value = next((v for k, v in headers if k.lower() == "content-range"), "")
    unit, _, spec = value.strip().partition(" ")
    span, _, _total = spec.partition("/")
    first, _, last = span.partition("-")
    if unit.lower() != "bytes" or not first.isdigit() or not last.isdigit() or int(last) < int(first):
        return None
    return int(first), int(last)


def split_partial(
    exchanges: Iterable[Exchange], full: dict[str, bytes]
) -> tuple[list[Exchange], list[Exchange], list[dict[str, object]]]:
    """Separate the browser's partial (206) responses of files held in full.

    Replay tools answer a media request with the record closest in time, so a partial
    response in the replayable WARC is served as if it were the whole file and the player
    breaks (pywb's own recorder skips such ranges for this reason). A partial response is
    set apart when ``full`` (URL -> the complete body the capture fetched) holds its file;
    each is checked against the complete body at its offset.

    Returns
    -------
    kept, partial : list of Exchange
        The exchanges for the replayable WARC, and the partial ones set apart.
    checks : list of dict
        Per partial response: ``url``, ``range``, ``bytes`` and ``matches_full`` (its bytes
        are the complete file's bytes at that range).
    """
    kept: list[Exchange] = []
    partial: list[Exchange] = []
    checks: list[dict[str, object]] = []
    for ex in exchanges:
        whole = full.get(ex.url)
        span = content_range(ex.response_headers) if ex.status == 206 else None
        if whole is None or ex.status != 206:
            kept.append(ex)
            continue
        partial.append(ex)
        matches = span is not None and whole[span[0] : span[0] + len(ex.body)] == ex.body
        checks.append({"url": ex.url, "range": list(span) if span else None, "bytes": len(ex.body),
                       "matches_full": matches})  # fmt: skip
    return kept, partial, checks
