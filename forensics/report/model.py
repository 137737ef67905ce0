"""What an infringement report is built from: small frozen value types the caller fills.

The report builder (:func:`forensics.report.build.build_html`) reads nothing but these
values and the two media files they name, so that the layers below the application
(scan store, ledger, evidence packages) stay out of ``forensics``: the application turns
a scan case, a library registration, a capture package and a ledger receipt into a
:class:`ReportInput`.

Every string here may come from a hostile page or file (titles, URLs, file names,
metadata): the builder escapes all of them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chain.crypto.sm3 import sm3_file
from forensics.errors import ForensicsError
from forensics.evidence import (
    AudioEvidence,
    Evidence,
    ImageFeatureEvidence,
    ImageHashEvidence,
    VideoEvidence,
    points,
)

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
    "evidence_from_json",
    "file_digest",
]


class ReportError(ForensicsError):
    """A report cannot be built: malformed evidence, a media file that is not the one recorded, ..."""


@dataclass(frozen=True)
class FileDigest:
    """One file's digests, as the report lists them.

    Attributes
    ----------
    name : str
        The file's name (in the evidence package, or on disk).
    sm3, sha256 : str
        Lower-case hex digests of the file's bytes.
    size : int, optional
        Bytes.
    role : str
        What the file is (``"screenshot"``, ``"warc"``, ``"work"``, ...), free text.
    """

    name: str
    sm3: str
    sha256: str
    size: int | None = None
    role: str = ""


def file_digest(path: Path, role: str = "") -> FileDigest:
    """SM3 and SHA-256 of the file at ``path``.

    Raises
    ------
    ReportError
        The file cannot be read.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> _ = p.write_bytes(b"abc")
    >>> d = file_digest(p, "work")
    >>> d.sm3[:16], d.sha256[:16], d.size
    ('66c7f0f462eeedd9', 'ba7816bf8f01cfea', 3)
    """
    try:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
        return FileDigest(path.name, sm3_file(path).hex(), h.hexdigest(), path.stat().st_size, role)
    except OSError as exc:
        raise ReportError(f"cannot read {path}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class ReceiptSummary:
    """What a checked ledger receipt proves, in the report's words.

    Attributes
    ----------
    subject : str
        What was anchored (``"evidence package"``, ``"work registration"``).
    chain_id : str
    height : int
        The block that holds the transaction.
    block_time : str
        The block's time (UTC, RFC 3339).
    block_hash, tx_id : str
        Hex.
    sender : str
        The certificate subject of the member that signed the transaction.
    validators : tuple of str
        The validators whose signatures certify the block (names or key digests).
    digest : str
        The anchored digest (hex): the package's or the work fingerprint's SM3.
    verified : bool
        Whether the caller checked the receipt against the genesis before filling this.
    file_name : str
        The receipt file's name, for the verification command.
    """

    subject: str
    chain_id: str
    height: int
    block_time: str
    block_hash: str
    tx_id: str
    sender: str
    validators: tuple[str, ...]
    digest: str
    verified: bool = False
    file_name: str = ""


@dataclass(frozen=True)
class SignatureSummary:
    """The SM2 signature over an evidence package's manifest.

    Attributes
    ----------
    algorithm : str
        ``"SM2-with-SM3"``.
    signer : str
        The signing center's certificate subject.
    public_key : str
        Hex of the signer's public key.
    signed_digest : str
        SM3 of the signed manifest (hex).
    value : str
        The signature (hex).
    verified : bool
        Whether the caller checked it before filling this.
    """

    algorithm: str
    signer: str
    public_key: str
    signed_digest: str
    value: str
    verified: bool = False


@dataclass(frozen=True)
class CaptureEvent:
    """One line of the capture log: when (UTC, RFC 3339) and what happened."""

    time: str
    event: str


@dataclass(frozen=True)
class CaptureSummary:
    """What a capture package holds, as far as the report shows it.

    Attributes
    ----------
    package_name : str
        The package's file name.
    package_sm3 : str
        SM3 of the whole package (hex): what was anchored.
    screenshot_png : bytes, optional
        The full-page screenshot (PNG or JPEG bytes).
    timeline : tuple of CaptureEvent
        The capture log.
    environment : tuple of (str, str)
        The environment record, summarized (tool and browser versions, OS, resolved
        addresses, certificate, proxy, clock offset...).
    files : tuple of FileDigest
        Every file of the package with its digests.
    signature : SignatureSummary, optional
    receipt : ReceiptSummary, optional
        The ledger receipt of the package digest.
    timestamp_token : str
        A short description of an RFC 3161 token, when there is one (empty otherwise).
    """

    package_name: str
    package_sm3: str
    screenshot_png: bytes | None = None
    timeline: tuple[CaptureEvent, ...] = ()
    environment: tuple[tuple[str, str], ...] = ()
    files: tuple[FileDigest, ...] = ()
    signature: SignatureSummary | None = None
    receipt: ReceiptSummary | None = None
    timestamp_token: str = ""


@dataclass(frozen=True)
class CaseInfo:
    """The case: where the copy was found, when, and what was fetched.

    Attributes
    ----------
    case_id : str
        The case's identifier (the scan's case number, or the caller's).
    page_url, media_url, final_url : str
        The page showing the copy, the media URL it references, where it was fetched from.
    found_at : str
        When the scan found it (UTC, RFC 3339).
    content_sm3 : str
        SM3 of the fetched copy (hex), as recorded by the scan.
    robots_obeyed : bool
        ``False`` when the scan ran with robots.txt overridden.
    score, threshold : float
        The match score and the calibrated threshold it passed.
    query_stream : str
        ``"audio"`` when the copy is a video identified by its soundtrack; empty otherwise.
    """

    case_id: str
    page_url: str
    media_url: str
    final_url: str
    found_at: str
    content_sm3: str
    robots_obeyed: bool
    score: float
    threshold: float
    query_stream: str = ""


@dataclass(frozen=True)
class WorkInfo:
    """The registered work.

    Attributes
    ----------
    work_id : str
    kind : {"image", "audio", "video"}
    registered_at : str
        When the library registered it (UTC, RFC 3339), or empty.
    content_sm3, fingerprint_sm3 : str
        Hex digests recorded at registration.
    metadata : dict
        The owner's metadata (title, owner, ...), shown as given (escaped).
    """

    work_id: str
    kind: str
    registered_at: str
    content_sm3: str
    fingerprint_sm3: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportInput:
    """Everything one report shows.

    Attributes
    ----------
    case : CaseInfo
    work : WorkInfo
    evidence : Evidence
        The match evidence (:mod:`forensics.evidence`).
    work_file : Path, optional
        The registered work's file; the side-by-side figures need it. The caller checks it
        against ``work.content_sm3`` (:func:`forensics.report.build.check_file`).
    copy_file : Path, optional
        The found copy's file (from the capture package, or kept by the scan); checked
        against ``case.content_sm3`` the same way.
    capture : CaptureSummary, optional
        ``None`` when no capture package exists for the case: the report says so.
    work_receipt : ReceiptSummary, optional
        The ledger receipt of the work's registration, when one is recorded.
    issuer : str
        The center issuing the report.
    generated_at : str
        When the report was made (UTC, RFC 3339).
    verify_url : str
        Where the verification can be looked up online (the QR code leads there); empty
        for the offline verification command instead.
    """

    case: CaseInfo
    work: WorkInfo
    evidence: Evidence
    work_file: Path | None = None
    copy_file: Path | None = None
    capture: CaptureSummary | None = None
    work_receipt: ReceiptSummary | None = None
    issuer: str = ""
    generated_at: str = ""
    verify_url: str = ""


# -- evidence from stored JSON ---------------------------------------------------------------


def _num(d: dict[str, Any], key: str) -> float:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ReportError(f"evidence field {key!r} is missing or not a number")
    return float(v)


def _int(d: dict[str, Any], key: str) -> int:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, int):
        raise ReportError(f"evidence field {key!r} is missing or not an integer")
    return v


def _pairs(d: dict[str, Any], key: str, width: int) -> list[list[float]]:
    v = d.get(key)
    if not isinstance(v, list) or len(v) > 100_000:
        raise ReportError(f"evidence field {key!r} is missing or not a list")
    out = []
    for p in v:
        if (
            not isinstance(p, list)
            or len(p) != width
            or any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in p)
        ):
            raise ReportError(f"evidence field {key!r} holds a malformed entry")
        out.append([float(x) for x in p])
    return out


def _audio(d: dict[str, Any]) -> AudioEvidence:
    layer = d.get("layer")
    if layer not in ("main", "bass", "both"):
        raise ReportError("audio evidence field 'layer' must be main, bass or both")
    q0, q1, r0, r1, speed, pitch = (
        _num(d, k) for k in ("query_start", "query_end", "ref_start", "ref_end", "speed", "pitch")
    )
    return AudioEvidence(
        q0,
        q1,
        r0,
        r1,
        speed,
        pitch,
        offset_accuracy=_num(d, "offset_accuracy"),
        votes=_int(d, "votes"),
        verified_frames=_int(d, "verified_frames"),
        reference_frames=_int(d, "reference_frames"),
        chance_frames=_num(d, "chance_frames"),
        peak_significance=_num(d, "peak_significance"),
        spectral_evidence=_num(d, "spectral_evidence"),
        verified_peaks=_int(d, "verified_peaks"),
        reference_peaks=_int(d, "reference_peaks"),
        fpr_target=_num(d, "fpr_target"),
        layer=layer,
        bass_significance=_num(d, "bass_significance") if "bass_significance" in d else None,
        main_significance=_num(d, "main_significance") if "main_significance" in d else None,
    )


def _size(d: dict[str, Any]) -> tuple[int, int]:
    v = d.get("query_size")
    if not isinstance(v, list) or len(v) != 2 or not all(type(x) is int and 0 < x < 1 << 20 for x in v):
        raise ReportError("image evidence field 'query_size' must be [width, height]")
    return (v[0], v[1])


def _frame(d: dict[str, Any]) -> int | None:
    return _int(d, "query_frame") if "query_frame" in d else None


def _box(d: dict[str, Any], key: str) -> tuple[float, float, float, float]:
    (box,) = _pairs({key: [d.get(key)]}, key, 4)
    return (box[0], box[1], box[2], box[3])


def evidence_from_json(kind: str, details: Any) -> Evidence:
    """The typed evidence of a match from its stored ``details`` (the evidence's ``to_json``).

    The JSON comes from a database a scan wrote while reading hostile pages: every field is
    checked for presence and type.

    Parameters
    ----------
    kind : {"image", "audio", "video"}
        The match's media kind.
    details : dict
        The stored evidence.

    Raises
    ------
    ReportError
        A field is missing, of the wrong type, or the kind is unknown.

    Examples
    --------
    >>> e = ImageHashEvidence(3, 24, "none", points([[0, 0], [9, 0], [9, 5], [0, 5]]), (10, 6), 0, 1e-4)
    >>> evidence_from_json("image", e.to_json()) == e
    True
    >>> try:
    ...     evidence_from_json("image", {"path": "hash"})
    ... except ReportError as exc:
    ...     print(exc)
    image evidence field 'transform' must be a short string
    """
    if not isinstance(details, dict):
        raise ReportError("the match's evidence is not a JSON object")
    d: dict[str, Any] = details
    if kind == "image":
        if d.get("path") == "hash":
            transform = d.get("transform")
            if not isinstance(transform, str) or len(transform) > 40:
                raise ReportError("image evidence field 'transform' must be a short string")
            return ImageHashEvidence(
                _int(d, "hamming"),
                _int(d, "hash_threshold"),
                transform,
                points(_pairs(d, "region", 2)),
                _size(d),
                _int(d, "item"),
                _num(d, "fpr_target"),
                _frame(d),
            )
        if d.get("path") == "features":
            return ImageFeatureEvidence(
                _int(d, "inliers"),
                _int(d, "inlier_threshold"),
                _num(d, "rotation_deg"),
                _num(d, "scale"),
                points(_pairs(d, "region", 2)),
                _size(d),
                _int(d, "item"),
                _num(d, "fpr_target"),
                _frame(d),
                d.get("mirrored") is True,
            )
        raise ReportError("image evidence 'path' must be 'hash' or 'features'")
    if kind == "audio":
        return _audio(d)
    if kind == "video":
        found_by = d.get("found_by")
        if found_by not in ("picture", "sound", "both"):
            raise ReportError("video evidence field 'found_by' must be picture, sound or both")
        per_second = d.get("per_second")
        if not isinstance(per_second, list) or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in per_second
        ):
            raise ReportError("video evidence field 'per_second' must be a list of numbers")
        sound = d.get("sound")
        view = d.get("view", "full")
        if not isinstance(view, str) or len(view) > 40:
            raise ReportError("video evidence field 'view' must be a short string")
        q0, q1, r0, r1, speed = (
            _num(d, k) for k in ("query_start", "query_end", "ref_start", "ref_end", "speed")
        )
        return VideoEvidence(
            q0,
            q1,
            r0,
            r1,
            speed,
            found_by=found_by,
            flip=d.get("flip") is True,
            crop_box=_box(d, "crop_box"),
            matched_frames=_int(d, "matched_frames"),
            compared_frames=_int(d, "compared_frames"),
            frame_bits=_int(d, "frame_bits"),
            per_second=tuple(float(x) for x in per_second),
            frame_pairs=tuple((p[0], p[1], int(p[2])) for p in _pairs(d, "frame_pairs", 3)),
            fpr_target=_num(d, "fpr_target"),
            sound=None if sound is None else _audio(sound) if isinstance(sound, dict) else _bad_sound(),
            view=view,
            pip_box=_box(d, "pip_box") if d.get("pip_box") is not None else None,
        )
    raise ReportError(f"unknown media kind {kind!r}; expected image, audio or video")


def _bad_sound() -> AudioEvidence:
    raise ReportError("video evidence field 'sound' must be an object")
