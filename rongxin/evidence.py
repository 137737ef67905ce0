"""Evidence of one page, start to finish: capture, package, sign, anchor, time-stamp.

:func:`collect_evidence` is what ``rongxin evidence capture`` and the demo run. The
member's SM2 key signs the package; ``anchor`` (a ledger client's ``anchor``) puts the
package digest on chain and the receipt goes into the package; a TSA URL adds an RFC 3161
token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain.crypto import PrivateKey
from chain.receipt import Receipt
from chain.types import Certificate
from crawlers.capture import Capture, CaptureOptions, capture
from crawlers.package import add_receipt, build_package, timestamp_package

#: The ``kind`` of the anchor transaction of a package digest.
ANCHOR_KIND = "evidence-package"


@dataclass
class Evidence:
    """What :func:`collect_evidence` made."""

    package: Path
    digest: bytes
    capture: Capture
    receipt: Receipt | None
    timestamped: bool


def play_span(match: dict[str, Any] | None) -> tuple[float, float] | None:
    """The matched span of the copy (seconds) from a case's match evidence, if it has one.

    Examples
    --------
    >>> play_span({"details": {"query_start": 12.0, "query_end": 20.5}})
    (12.0, 20.5)
    >>> play_span({"details": {"regions": []}}) is None
    True
    """
    if not isinstance(match, dict):
        return None
    details = match.get("details", match)
    if not isinstance(details, dict):
        return None
    start, end = details.get("query_start"), details.get("query_end")
    if isinstance(start, int | float) and isinstance(end, int | float) and end > start >= 0:
        return float(start), float(end)
    return None


def collect_evidence(
    url: str,
    out: Path,
    *,
    key: PrivateKey,
    certificate: Certificate,
    anchor: Callable[[bytes], Receipt] | None,
    options: CaptureOptions | None = None,
    case: dict[str, Any] | None = None,
    tsa_url: str | None = None,
) -> Evidence:
    """Capture ``url`` into ``out/capture/`` and write the package ``out/evidence.wacz``.

    Raises
    ------
    crawlers.CrawlError
        The capture or the package failed (the TSA's :class:`TimestampError` included).
    chain.errors.ChainError
        Anchoring failed (the package stays on disk, signed but without a receipt).
    """
    opts = options or CaptureOptions()
    match = case.get("evidence") if case else None
    span = play_span(match)
    if span is not None and opts.play_span is None:
        opts.play_span = span
    copy = case.get("media_url") if case else None
    if isinstance(copy, str) and copy not in opts.case_media:
        opts.case_media = (*opts.case_media, copy)
    cap = capture(url, out / "capture", opts)
    package = out / "evidence.wacz"
    digest = build_package(cap, package, key=key, certificate=certificate, case=case, match=match)
    receipt = None
    if anchor is not None:
        receipt = anchor(digest)
        add_receipt(package, receipt)
    if tsa_url:
        timestamp_package(package, tsa_url)
    return Evidence(package, digest, cap, receipt, bool(tsa_url))
