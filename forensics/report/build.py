"""Build an infringement report as one self-contained HTML document.

:func:`build_html` turns a :class:`~forensics.report.model.ReportInput` into HTML: the
figures (:mod:`forensics.report.figures`), the screenshot and the QR code are embedded
as ``data:`` URIs, the styles are inline, and a Content-Security-Policy forbids anything
else, so the file opens offline and leaks nothing when viewed. Every value that came from
a page, a file name or metadata is escaped by Jinja2's autoescaping; shell commands in the
"how to verify" section quote file names with :func:`shlex.quote` first.

The application renders the same HTML to PDF with the headless browser.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import math
import shlex
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from forensics.errors import ForensicsError
from forensics.evidence import AudioEvidence, ImageFeatureEvidence, ImageHashEvidence, VideoEvidence
from forensics.report import figures
from forensics.report.i18n import field_name, words
from forensics.report.model import FileDigest, ReceiptSummary, ReportError, ReportInput, file_digest

__all__ = ["build_html", "check_file", "qr_png", "verification_text"]

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=False,
)

#: Longest metadata value shown (characters); longer values are cut with an ellipsis.
MAX_METADATA_CHARS = 500


@dataclass(frozen=True)
class _Figure:
    src: str
    alt: str
    caption: str


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _image_mime(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    return None


#: Width in pixels the page screenshot is shown at, and the most height (a full-page
#: screenshot of a long page shows its top; the whole file is in the package).
SCREENSHOT_WIDTH = 1200
SCREENSHOT_MAX_HEIGHT = 1800


def _screenshot_uri(data: bytes) -> str | None:
    """The screenshot scaled to :data:`SCREENSHOT_WIDTH` (its top :data:`SCREENSHOT_MAX_HEIGHT`
    pixels at most) as a JPEG data URI; ``None`` when it is not a PNG or JPEG that decodes."""
    import cv2
    import numpy as np

    if _image_mime(data) is None:
        return None
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        return None
    h, w = img.shape[:2]
    if w > SCREENSHOT_WIDTH:
        h = max(1, round(h * SCREENSHOT_WIDTH / w))
        img = cv2.resize(img, (SCREENSHOT_WIDTH, h), interpolation=cv2.INTER_AREA)
    img = img[:SCREENSHOT_MAX_HEIGHT]
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return _data_uri(buf.tobytes(), "image/jpeg") if ok else None


def check_file(path: Path, expected_sm3: str, role: str) -> FileDigest:
    """The digests of ``path``, refused unless its SM3 is ``expected_sm3``.

    Parameters
    ----------
    path : Path
        The work's or the copy's file.
    expected_sm3 : str
        The SM3 the library or the scan recorded (hex).
    role : str
        What the file is, for the message and the digest table.

    Raises
    ------
    ReportError
        The file cannot be read or is not the recorded one.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> _ = p.write_bytes(b"abc")
    >>> check_file(p, "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0", "copy").size
    3
    """
    digest = file_digest(path, role)
    if digest.sm3 != expected_sm3.lower():
        raise ReportError(
            f"{path.name} is not the recorded {role}: its SM3 is {digest.sm3}, the record says "
            f"{expected_sm3}; give the file that was registered or fetched"
        )
    return digest


def verification_text(inp: ReportInput) -> str:
    """What the QR code holds: the verification URL when one is given, otherwise the
    digests and the offline commands that check them (short enough for one QR code).

    Examples
    --------
    >>> from forensics.report.model import CaseInfo, WorkInfo
    >>> from forensics.evidence import ImageHashEvidence
    >>> case = CaseInfo("7", "http://a/", "http://a/i.jpg", "http://a/i.jpg", "", "ab" * 32, True, 1.0, 0.5)
    >>> work = WorkInfo("w", "image", "", "cd" * 32, "ef" * 32)
    >>> e = ImageHashEvidence(1, 24, "none", ((0, 0),), (1, 1), 0, 1e-4)
    >>> print(verification_text(ReportInput(case, work, e)).splitlines()[0])
    rongxin-report case=7
    """
    if inp.verify_url:
        return inp.verify_url
    lines = [
        f"rongxin-report case={inp.case.case_id}",
        f"copy-sm3={inp.case.content_sm3}",
        f"work-fingerprint-sm3={inp.work.fingerprint_sm3}",
    ]
    if inp.capture is not None:
        lines.append(f"package-sm3={inp.capture.package_sm3}")
        lines.append(
            f"rongxin evidence verify {shlex.quote(inp.capture.package_name)} --genesis genesis.cbor"
        )
    for receipt in _receipts(inp):
        lines.append(f"height={receipt.height} tx={receipt.tx_id}")
    return "\n".join(lines)


def qr_png(text: str) -> bytes:
    """A QR code of ``text`` as PNG bytes (error correction M).

    Examples
    --------
    >>> qr_png("rongxin")[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    """
    import qrcode
    import qrcode.constants

    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=6, border=2)
    qr.add_data(text)
    qr.make(fit=True)
    buf = io.BytesIO()
    qr.make_image().save(buf, format="PNG")
    return buf.getvalue()


def _receipts(inp: ReportInput) -> list[ReceiptSummary]:
    out = []
    if inp.capture is not None and inp.capture.receipt is not None:
        out.append(inp.capture.receipt)
    if inp.work_receipt is not None:
        out.append(inp.work_receipt)
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _evidence_rows(evidence: Any, lang: str) -> list[tuple[str, str]]:
    rows = []
    for key, value in evidence.to_json().items():
        if key in ("per_second", "frame_pairs"):
            continue
        if key == "sound" and isinstance(value, dict):
            rows += [(f"♪ {field_name(k, lang)}", _fmt(v)) for k, v in value.items()]
            continue
        rows.append((field_name(key, lang), _fmt(value)))
    return rows


def _metadata(metadata: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for key, value in sorted(metadata.items(), key=lambda kv: str(kv[0])):
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
        if len(text) > MAX_METADATA_CHARS:
            text = text[:MAX_METADATA_CHARS] + "…"
        rows.append((str(key)[:100], text))
    return rows


def _audio_figures(work: Path, copy: Path, ev: AudioEvidence, t: dict[str, str]) -> list[_Figure]:
    labels = {"work": t["work"], "copy": t["copy"], "seconds": t["seconds"], "hz": t["hz"], "span": t["span"]}
    spectro = figures.audio_spectrograms(work, copy, ev, labels)
    times, values = figures.audio_similarity_series(work, copy, ev)
    plot = figures.similarity_plot(
        times,
        values,
        (ev.query_start, ev.query_end),
        {
            "title": t["similarity_title"],
            "seconds": t["seconds"],
            "similarity": t["similarity"],
            "span": t["span"],
        },
    )
    return [
        _Figure(_data_uri(spectro, "image/png"), t["comparison"], t["spectro_caption"]),
        _Figure(_data_uri(plot, "image/png"), t["similarity_title"], t["audio_sim_caption"]),
    ]


def _figures(inp: ReportInput, t: dict[str, str]) -> tuple[list[_Figure], list[str]]:
    """The comparison figures, and notices for what could not be drawn."""
    if inp.work_file is None:
        return [], [t["no_work_file"]]
    if inp.copy_file is None:
        return [], [t["no_copy_file"]]
    ev = inp.evidence
    work, copy = inp.work_file, inp.copy_file
    out: list[_Figure] = []
    try:
        if isinstance(ev, (ImageHashEvidence, ImageFeatureEvidence)):
            pair = figures.image_pair(work, copy, ev)
            caption = (
                t["image_caption"].format(n=pair.correspondences)
                if pair.correspondences
                else t["image_caption_none"]
            )
            out.append(_Figure(_data_uri(pair.png, "image/png"), t["comparison"], caption))
        elif isinstance(ev, AudioEvidence):
            out += _audio_figures(work, copy, ev, t)
        elif isinstance(ev, VideoEvidence):
            if ev.frame_pairs:
                png, _ = figures.video_frame_pairs(
                    work, copy, ev, {"work": t["work"], "copy": t["copy"], "bits": t["bits"]}
                )
                out.append(_Figure(_data_uri(png, "image/png"), t["comparison"], t["frames_caption"]))
            if ev.per_second:
                plot = figures.similarity_plot(
                    [ev.query_start + i for i in range(len(ev.per_second))],
                    ev.per_second,
                    (ev.query_start, ev.query_end),
                    {
                        "title": t["similarity_title"],
                        "seconds": t["seconds"],
                        "similarity": t["similarity"],
                        "span": t["span"],
                        "threshold": t["threshold"],
                    },
                    threshold=max(0.0, 1 - ev.frame_bits / 128),
                )
                out.append(
                    _Figure(_data_uri(plot, "image/png"), t["similarity_title"], t["video_sim_caption"])
                )
            if ev.sound is not None:
                out += _audio_figures(work, copy, ev.sound, t)
    except ForensicsError as exc:  # ReportError included: a figure that cannot be drawn is said so
        return out, [t["figure_failed"].format(error=str(exc))]
    return out, []


def build_html(inp: ReportInput, lang: str = "zh") -> str:
    """The report as one self-contained HTML document.

    Parameters
    ----------
    inp : ReportInput
        The case, the work, the evidence and what the capture package holds. The files
        ``inp.work_file`` and ``inp.copy_file`` are drawn from as given: check them first
        with :func:`check_file`.
    lang : {"zh", "en"}
        Chinese (the default) or English.

    Returns
    -------
    str
        HTML with every image embedded (``data:`` URIs) and no external reference.

    Raises
    ------
    ReportError
        An unknown language, or a file that cannot be read for its digests.
    """
    t = words(lang)
    kind = inp.evidence.kind
    fpr = getattr(inp.evidence, "fpr_target", None)
    summary = t["summary_text"].format(
        work=inp.work.work_id,
        score=f"{inp.case.score:.4g}",
        threshold=f"{inp.case.threshold:.4g}",
        fpr=f"{fpr:g}" if isinstance(fpr, float) else "—",
    )
    figs, notes = _figures(inp, t)
    digests: list[FileDigest] = []
    if inp.capture is not None:
        digests += inp.capture.files
    if inp.work_file is not None:
        digests.append(_with_role(file_digest(inp.work_file), t["role_work"]))
    if inp.copy_file is not None:
        digests.append(_with_role(file_digest(inp.copy_file), t["role_copy"]))
    receipts = _receipts(inp)
    if inp.capture is not None and inp.capture.receipt is not None:
        receipts[0] = dataclasses.replace(receipts[0], subject=t["subject_package"])
    hash_commands = []
    for f in digests[:3]:
        name = shlex.quote(f.name)
        hash_commands += [f"rongxin crypto hash {name}", f"sha256sum {name}"]
    receipt_commands = [
        f"rongxin verify {shlex.quote(r.file_name or 'receipt.cbor')} --genesis genesis.cbor"
        for r in receipts
    ]
    package_command = (
        ""
        if inp.capture is None
        else f"rongxin evidence verify {shlex.quote(inp.capture.package_name)} --genesis genesis.cbor"
    )
    copy_name = shlex.quote(inp.copy_file.name if inp.copy_file is not None else "COPY")
    identify_command = f"rongxin identify {copy_name} --library LIBRARY --json"
    screenshot = None
    if inp.capture is not None and inp.capture.screenshot_png:
        screenshot = _screenshot_uri(inp.capture.screenshot_png)
    qr_text = verification_text(inp)
    return _ENV.get_template("report.html.j2").render(
        t=types.SimpleNamespace(**t),
        lang=lang,
        inp=inp,
        summary=summary,
        kind_name=t.get(f"kind_{kind}", kind),
        metadata=_metadata(inp.work.metadata),
        figures=figs,
        figure_notes=notes,
        evidence_rows=_evidence_rows(inp.evidence, lang),
        capture=inp.capture,
        screenshot=screenshot,
        digests=digests,
        receipts=receipts,
        hash_commands=hash_commands,
        receipt_commands=receipt_commands,
        package_command=package_command,
        identify_command=identify_command,
        qr_png=_data_uri(qr_png(qr_text), "image/png"),
        qr_text=qr_text,
    )


def _with_role(d: FileDigest, role: str) -> FileDigest:
    return FileDigest(d.name, d.sm3, d.sha256, d.size, role)
