"""Infringement reports: the registered work and the found copy side by side, with proofs.

* :mod:`forensics.report.model` — the input value types the application fills
  (:class:`ReportInput`, :class:`CaptureSummary`, :class:`ReceiptSummary`, ...);
* :mod:`forensics.report.figures` — the figures (images with region and keypoints,
  spectrograms with aligned spans, video frame pairs, similarity over time);
* :mod:`forensics.report.build` — :func:`build_html`, one self-contained HTML document in
  Chinese or English.

The PDF is rendered from the HTML by the application (``rongxin report``), which owns
the browser. See ``docs/report.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chain.lazy import lazy_exports
from forensics.report.model import (
    CaptureEvent,
    CaptureSummary,
    CaseInfo,
    FileDigest,
    ReceiptSummary,
    ReportError,
    ReportInput,
    SignatureSummary,
    WorkInfo,
    evidence_from_json,
    file_digest,
)

if TYPE_CHECKING:
    from forensics.report.build import build_html, check_file, qr_png, verification_text

#: Public name -> the module that defines it (imported on first access: Jinja2, OpenCV, matplotlib).
_LAZY: dict[str, str] = {
    "build_html": "forensics.report.build",
    "check_file": "forensics.report.build",
    "qr_png": "forensics.report.build",
    "verification_text": "forensics.report.build",
}

__all__ = [
    "CaptureEvent",
    "CaptureSummary",
    "CaseInfo",
    "FileDigest",
    "ReceiptSummary",
    "ReportError",
    "ReportInput",
    "SignatureSummary",
    "WorkInfo",
    "build_html",
    "check_file",
    "evidence_from_json",
    "file_digest",
    "qr_png",
    "verification_text",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
