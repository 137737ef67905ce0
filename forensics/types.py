"""Value types shared by every media kind of the work library.

A :class:`forensics.library.Library` keeps one index per media kind. Each index implements
:class:`MediaIndex`; the library routes a file to the index of its kind (see
:func:`detect_kind`) and merges what the indexes return into :class:`Match` and
:class:`Registration` values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

from forensics.evidence import Evidence

MediaKind = Literal["image", "audio", "video"]

QueryStream = Literal["audio"]
"""Which stream of a query file a match was found in, when not the file's own kind.

``"audio"``: the soundtrack of a video file, identified against the audio works (the
library has no video index; see :meth:`forensics.library.Library.identify`).
"""

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".wma"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".webm", ".avi", ".mov", ".mpg", ".mpeg", ".m4v", ".ts", ".flv"})


@dataclass(frozen=True)
class Registration:
    """What registering a work produced.

    Attributes
    ----------
    work_id : str
        The caller's identifier of the work.
    kind : {"image", "audio", "video"}
        The media kind the work was registered as.
    content_digest : bytes
        SM3 digest of the file's bytes (32 bytes).
    fingerprint_digest : bytes
        SM3 digest of the canonical encoding of the fingerprint (32 bytes); anchoring it
        on chain proves when this fingerprint was registered.
    metadata : dict
        The caller's metadata, stored with the work.
    registered_at : str or None
        When the library registered the work (UTC, RFC 3339), where recorded.
    """

    work_id: str
    kind: MediaKind
    content_digest: bytes
    fingerprint_digest: bytes
    metadata: dict[str, Any] = field(default_factory=dict)
    registered_at: str | None = None


@dataclass(frozen=True)
class Match:
    """One registered work found in a query.

    Attributes
    ----------
    work_id : str
        The matched work.
    score : float
        Kind-specific similarity; higher is more similar. A match is only returned when
        ``score`` is at or above the calibrated ``threshold``.
    kind : {"image", "audio", "video"}
        Media kind of the match.
    threshold : float
        The decision threshold in force, calibrated for the false-positive rate stated in
        ``details["fpr_target"]`` where the index records one.
    details : dict
        Kind-specific evidence, JSON-serializable: e.g. the matched region and transform
        for images; query span, reference span (seconds) and speed factor for audio/video.
        When ``evidence`` is given this is its :meth:`to_json` (filled in when omitted).
    evidence : Evidence, optional
        The same evidence, typed (:mod:`forensics.evidence`); the indexes of this package
        always give it. Read it rather than ``details`` in code.
    query_stream : {"audio"}, optional
        Set by the library when the match was found in one stream of a query of another
        kind: ``"audio"`` for a video file identified by its soundtrack (``kind`` and
        ``evidence`` are then the audio match's, spans in seconds of the video). ``None``
        (the default) when the query was matched as the kind it is. :meth:`to_json` writes
        it as a top-level ``"query_stream"`` key only when set.

    Raises
    ------
    ValueError
        ``details`` and ``evidence`` are both given and disagree, or ``evidence`` is of
        another kind than ``kind``.

    Examples
    --------
    >>> from forensics.evidence import ImageHashEvidence, points
    >>> e = ImageHashEvidence(2, 24, "identity", points([[0, 0], [8, 0], [8, 8], [0, 8]]), (8, 8), 0, 1e-4)
    >>> m = Match.of("poster", 0.9, 0.5, e)
    >>> m.kind, m.details["hamming"], m.to_json()["details"] == e.to_json()
    ('image', 2, True)
    """

    work_id: str
    score: float
    kind: MediaKind
    threshold: float
    details: dict[str, Any] = field(default_factory=dict)
    evidence: Evidence | None = field(default=None, compare=False)
    query_stream: QueryStream | None = None

    def __post_init__(self) -> None:
        if self.evidence is None:
            return
        if self.evidence.kind != self.kind:
            raise ValueError(f"a {self.kind} match cannot carry {self.evidence.kind} evidence")
        expected = self.evidence.to_json()
        if not self.details:
            object.__setattr__(self, "details", expected)
        elif self.details != expected:
            raise ValueError("a match's details must be its evidence's to_json(); give one of them")

    @classmethod
    def of(cls, work_id: str, score: float, threshold: float, evidence: Evidence) -> Match:
        """A match of ``evidence``'s kind, its ``details`` from ``evidence.to_json()``.

        Examples
        --------
        >>> from forensics.evidence import AudioEvidence
        >>> e = AudioEvidence(0.0, 5.0, 12.0, 17.0, 1.0, 1.0, 0.016, 9, 30, 40, 2.5, 14.0, 3.0,
        ...                   20, 60, 0.001, "main")
        >>> Match.of("song", 17.0, 13.4, e).details["ref_start"]
        12.0
        """
        return cls(work_id, score, evidence.kind, threshold, evidence.to_json(), evidence)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serializable dict of this match (``details`` is the evidence's JSON).

        ``"query_stream"`` is added after the other keys when the match was found in one
        stream of the query (a video's soundtrack).

        Examples
        --------
        >>> import dataclasses
        >>> m = Match("song", 20.0, "audio", 13.4)
        >>> list(m.to_json())
        ['work_id', 'score', 'kind', 'threshold', 'details']
        >>> dataclasses.replace(m, query_stream="audio").to_json()["query_stream"]
        'audio'
        """
        out: dict[str, Any] = {
            "work_id": self.work_id,
            "score": self.score,
            "kind": self.kind,
            "threshold": self.threshold,
            "details": self.details,
        }
        if self.query_stream is not None:
            out["query_stream"] = self.query_stream
        return out


class MediaIndex(Protocol):
    """One media kind's persistent index inside a library directory.

    Implementations keep their files under the ``directory`` they are opened on, persist
    every completed ``add``/``remove`` before returning (a crash never loses a returned
    registration), and allow concurrent readers.
    """

    kind: ClassVar[MediaKind]

    def add(self, work_id: str, path: Path) -> bytes:
        """Fingerprint ``path`` and index it under ``work_id``; return the fingerprint digest."""
        ...

    def identify(self, path: Path, top_k: int) -> list[Match]:
        """Registered works found in ``path``, best first, at most ``top_k``."""
        ...

    def remove(self, work_id: str) -> bool:
        """Forget ``work_id``; ``False`` when it was not registered."""
        ...

    def stats(self) -> dict[str, Any]:
        """Counts and sizes for ``rongxin works stats``."""
        ...

    def close(self) -> None:
        """Release files and handles."""
        ...


def detect_kind(path: Path) -> MediaKind:
    """The media kind of ``path``, by its first bytes and then by its suffix.

    Parameters
    ----------
    path : Path
        A file.

    Returns
    -------
    {"image", "audio", "video"}

    Raises
    ------
    UnsupportedMediaError
        When neither the content nor the suffix says what the file is.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.bin"
    >>> _ = p.write_bytes(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(16))
    >>> detect_kind(p)
    'image'
    """
    from forensics.errors import MediaError, UnsupportedMediaError

    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError as exc:
        raise MediaError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not head:
        raise MediaError(f"{path} is empty (0 bytes); give a media file")
    sniffed = _sniff(head)
    if sniffed is not None:
        return sniffed
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in AUDIO_SUFFIXES:
        return "audio"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    raise UnsupportedMediaError(
        f"{path}: not a recognized image, audio or video file (suffix {suffix or 'none'!r})"
    )


def _sniff(head: bytes) -> MediaKind | None:
    if head.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")):
        return "image"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video"
    if head.startswith((b"fLaC", b"ID3")) or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return "audio" if brand in (b"M4A ", b"M4B ") else "video"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video"
    return None
