"""Other members' works, known by their fingerprints only: the library's foreign namespace.

Imported hash lists live apart from the member's own works, under ``<library>/foreign/``::

    foreign.db   SQLite (WAL): imported lists, foreign works (member, reference, kind,
                 fingerprint digest, list), PDQ hashes
    image/       an image index of the foreign image works
    audio/       an audio index of the foreign audio works (main and bass layers) and of
                 the foreign video works' soundtracks
    video/       a video index of the foreign video works' pictures

A foreign work is indexed under an internal id (``f<n>``) and reported as a
:class:`ForeignMatch` — the member and the member's opaque reference — never as one of the
library's works. The same decision rules and calibrated thresholds as for the library's
own works apply; PDQ hashes are matched with ThreatExchange's rule
(:mod:`forensics.exchange.pdq`). A foreign video work is found in a suspect video by its
picture, its soundtrack or both, with the query span, the work span and the speed, as the
library's own video works are.

Importing is idempotent: a list already imported (same SM3) changes nothing; a work the
member exported before with the same fingerprint is kept; a work whose fingerprint changed
replaces the earlier one. Every entry is checked before anything is written, so a list
with one bad entry adds nothing.

Examples
--------
>>> import tempfile, pathlib, numpy as np, cv2
>>> from forensics.library import Library
>>> from forensics.exchange.export import export_entries
>>> from forensics.exchange.hashlist import decode_hash_list, encode_hash_list
>>> rng = np.random.default_rng(7)
>>> img = cv2.GaussianBlur((rng.random((240, 320, 3)) * 255).astype(np.uint8), (0, 0), 2)
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> with Library(d / "a") as a:
...     _ = a.register(img, "poster-1")
...     data = encode_hash_list("county-a", export_entries(a))
>>> with ForeignLibrary(d / "b" / "foreign") as f:
...     report = f.import_list(decode_hash_list(data))
...     [(m.member, m.signal) for m in f.identify(img[:, ::-1])]
[('county-a', 'rongxin-image')]
>>> report.added, report.already_imported
(1, False)
"""

from __future__ import annotations

import os
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from forensics.errors import LibraryError, ReadOnlyLibraryError
from forensics.exchange.entries import Prepared, prepare, signal_params, video_rate
from forensics.exchange.errors import HashListSignatureError
from forensics.exchange.hashlist import (
    SIGNAL_AUDIO,
    SIGNAL_AUDIO_BASS,
    HashList,
    now_rfc3339,
)
from forensics.sqlite_ro import open_versioned
from forensics.types import Match, MediaKind, detect_kind

FOREIGN_DIR = "foreign"
_FORMAT = "rongxin-foreign-v1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lists (
    list_sm3 BLOB PRIMARY KEY,
    member TEXT NOT NULL,
    created TEXT NOT NULL,
    signer TEXT,
    entries INTEGER NOT NULL,
    imported_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS works (
    fid INTEGER PRIMARY KEY AUTOINCREMENT,
    member TEXT NOT NULL,
    ref TEXT NOT NULL,
    kind TEXT NOT NULL,
    fingerprint_sm3 BLOB NOT NULL,
    title TEXT,
    list_sm3 BLOB NOT NULL,
    complete INTEGER NOT NULL DEFAULT 0,
    UNIQUE (member, ref)
);
CREATE TABLE IF NOT EXISTS pdq (fid INTEGER NOT NULL, hash BLOB NOT NULL, quality INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS pdq_fid ON pdq(fid);
"""

Signal = Literal["rongxin-image", "rongxin-audio", "rongxin-video", "pdq"]


@dataclass(frozen=True)
class ForeignMatch:
    """Another member's work found in a query, known by reference only.

    Attributes
    ----------
    member : str
        The member that exported the work.
    reference : str
        The member's opaque reference of the work (ask the member what it names).
    kind : {"image", "audio", "video"}
        Media kind.
    score, threshold : float
        As for :class:`forensics.types.Match` (for PDQ: 1.0 at distance 0, 0.5 at distance 31, against
        0.5, as the image hash path maps its distances).
    signal : {"rongxin-image", "rongxin-audio", "rongxin-video", "pdq"}
        The signal type that matched.
    details : dict
        The evidence (as :attr:`forensics.types.Match.details`; for PDQ the distance; for
        video the query span ↔ work span, speed and what found it).
    list_sm3 : str
        SM3 (hex) of the hash list the work came from.
    fingerprint_sm3 : str
        The work's fingerprint digest in the member's library (hex), which the member
        may have anchored on chain.
    title : str, optional
        The work's id in the member's library, when the member revealed it.
    query_stream : {"audio"}, optional
        ``"audio"`` when found in a video's soundtrack.
    """

    member: str
    reference: str
    kind: MediaKind
    score: float
    threshold: float
    signal: Signal
    details: dict[str, Any] = field(default_factory=dict)
    list_sm3: str = ""
    fingerprint_sm3: str = ""
    title: str | None = None
    query_stream: Literal["audio"] | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-serializable dict, marked ``"foreign": true``.

        Examples
        --------
        >>> ForeignMatch("county-a", "rx-1", "image", 0.9, 0.5, "pdq").to_json()["foreign"]
        True
        """
        out: dict[str, Any] = {
            "foreign": True,
            "member": self.member,
            "reference": self.reference,
            "kind": self.kind,
            "score": self.score,
            "threshold": self.threshold,
            "signal": self.signal,
            "details": self.details,
            "list_sm3": self.list_sm3,
            "fingerprint_sm3": self.fingerprint_sm3,
            "title": self.title,
        }
        if self.query_stream is not None:
            out["query_stream"] = self.query_stream
        return out


@dataclass(frozen=True)
class ImportReport:
    """What importing one hash list did.

    Attributes
    ----------
    list_sm3 : bytes
        The list's digest.
    member : str
        Its exporter.
    signer : str or None
        Key id (SM3 of the public key, hex) of its signer; ``None`` when unsigned.
    added, replaced, unchanged : int
        Works new to the library, works whose fingerprint changed, works already known.
    already_imported : bool
        The same list had been imported before; nothing changed.
    """

    list_sm3: bytes
    member: str
    signer: str | None
    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    already_imported: bool = False


@dataclass(frozen=True)
class ImportedList:
    """One imported list, as :meth:`ForeignLibrary.lists` gives it."""

    list_sm3: bytes
    member: str
    created: str
    signer: str | None
    entries: int
    imported_at: str


class ForeignLibrary:
    """The foreign namespace of a library: imported hash lists and their works.

    Parameters
    ----------
    directory : path
        ``<library>/foreign``; created when missing (unless ``readonly``).
    readonly : bool
        Open for lookups only; importing raises :class:`ReadOnlyLibraryError`.

    Raises
    ------
    LibraryError
        The directory holds something else, or (``readonly``) no foreign namespace.
    """

    def __init__(self, directory: str | os.PathLike[str], *, readonly: bool = False) -> None:
        self.directory = Path(directory)
        self.readonly = readonly
        db_path = self.directory / "foreign.db"
        if readonly and not db_path.is_file():
            raise LibraryError(f"{self.directory} holds no imported hash lists")
        try:
            self._db, fmt = open_versioned(
                db_path, schema=_SCHEMA, meta_table="meta", fmt=_FORMAT, readonly=readonly
            )
        except (OSError, sqlite3.Error) as exc:
            raise LibraryError(f"cannot open the foreign works in {self.directory}: {exc}") from exc
        if fmt != _FORMAT:
            self._db.close()
            raise LibraryError(f"{db_path} was written by another format ({fmt}); use a new library")
        self._lock = threading.RLock()
        self._image: Any = None
        self._audio: Any = None
        self._video: Any = None
        self._pdq: Any = None
        self._pdq_version: int | None = None
        self._closed = False

    # -- indexes ---------------------------------------------------------------------------------

    def _image_index(self, create: bool) -> Any:
        if self._image is None:
            if not create and not (self.directory / "image" / "image.db").is_file():
                return None
            from forensics.image.index import ImageIndex

            self._image = ImageIndex(self.directory / "image", readonly=self.readonly)
        return self._image

    def _audio_index(self, create: bool) -> Any:
        if self._audio is None:
            if not create and not (self.directory / "audio" / "audio.sqlite").is_file():
                return None
            from forensics.audio.index import AudioIndex

            self._audio = AudioIndex(self.directory / "audio", readonly=self.readonly)
        return self._audio

    def _video_index(self, create: bool) -> Any:
        if self._video is None:
            if not create and not (self.directory / "video" / "video.sqlite").is_file():
                return None
            from forensics.video.index import VideoIndex

            self._video = VideoIndex(self.directory / "video", readonly=self.readonly)
            # the soundtracks live in the foreign audio index, under the same ids
            self._video.attach_audio(lambda: self._audio_index(create=not self.readonly))
        return self._video

    def _pdq_matcher(self) -> Any:
        version = self._db.execute("PRAGMA data_version").fetchone()[0]
        if version != self._pdq_version:  # another connection committed: reload
            self._pdq, self._pdq_version = None, version
        if self._pdq is None:
            from forensics.exchange.pdq import PdqMatcher

            matcher = PdqMatcher()
            rows = self._db.execute(
                "SELECT p.fid, p.hash, p.quality FROM pdq p JOIN works w ON w.fid = p.fid "
                "WHERE w.complete = 1"
            ).fetchall()
            if rows:
                matcher.add(
                    [f"f{r[0]}" for r in rows],
                    np.frombuffer(b"".join(bytes(r[1]) for r in rows), np.uint8).reshape(-1, 32),
                    np.array([r[2] for r in rows]),
                )
            self._pdq = matcher
        return self._pdq

    # -- import ----------------------------------------------------------------------------------

    def _prepare(self, hl: HashList) -> list[Prepared]:
        """Every entry as index fingerprints, checked (:func:`forensics.exchange.entries.prepare`)."""
        audio_params = bass_params = rate = None
        if any(e.kind == "audio" or e.audio is not None for e in hl.entries):
            index = self._audio_index(create=not self.readonly)
            audio_params = signal_params(hl, SIGNAL_AUDIO, index.params)
            if index.bass is not None and SIGNAL_AUDIO_BASS in hl.header.signals:
                bass_params = signal_params(hl, SIGNAL_AUDIO_BASS, index.bass.params)
        if any(e.kind == "video" for e in hl.entries):
            rate = video_rate(hl, self._video_index(create=not self.readonly).rate)
        return prepare(hl, audio_params, bass_params, rate)

    def import_list(self, hl: HashList, *, signer_checked: bool = False) -> ImportReport:
        """Add the works of a decoded (and signer-checked) hash list.

        A member's key is remembered from its first imported list (trust on first use,
        as SSH does with host keys): a later list of the same member signed by another
        key, or unsigned, is refused unless its signer was checked against the member's
        known key (``signer_checked``, e.g. ``rongxin works import --signer``).

        Parameters
        ----------
        hl : HashList
            From :func:`forensics.exchange.hashlist.decode_hash_list`, its publisher
            checked with :func:`~forensics.exchange.hashlist.check_signer`.
        signer_checked : bool
            The caller checked the signer against a key it knows for the member.

        Returns
        -------
        ImportReport

        Raises
        ------
        ReadOnlyLibraryError
            Opened read-only.
        MalformedHashListError
            An entry's fingerprints are malformed (nothing is imported).
        HashListMismatchError
            The list's audio parameters differ from this library's, or an entry's
            fingerprints do not match its digest (nothing is imported).
        HashListSignatureError
            The member's earlier lists were signed by another key, and ``signer_checked``
            is false.
        """
        self._check_open()
        if self.readonly:
            raise ReadOnlyLibraryError(f"{self.directory} was opened read-only; cannot import hash lists")
        signer = None if hl.signer is None else hl.signer.key_id()
        member = hl.header.member
        with self._lock:
            if self._db.execute("SELECT 1 FROM lists WHERE list_sm3 = ?", (hl.digest,)).fetchone():
                return ImportReport(hl.digest, member, signer, already_imported=True)
            if not signer_checked:
                self._check_known_signer(member, signer)
            prepared = self._prepare(hl)
            added = replaced = unchanged = 0
            images: list[tuple[str, list[Any]]] = []
            image_fids: list[int] = []
            for p in prepared:
                e = p.entry
                row = self._db.execute(
                    "SELECT fid, fingerprint_sm3, kind, complete FROM works WHERE member = ? AND ref = ?",
                    (member, e.ref),
                ).fetchone()
                if row is not None and bytes(row[1]) == e.fingerprint_sm3 and row[2] == e.kind and row[3]:
                    unchanged += 1
                    with self._db:
                        self._db.execute(
                            "UPDATE works SET list_sm3 = ?, title = ? WHERE fid = ?",
                            (hl.digest, e.title, row[0]),
                        )
                    continue
                if row is not None:
                    self._drop(int(row[0]), str(row[2]))
                    replaced += 1
                else:
                    added += 1
                with self._db:
                    cur = self._db.execute(
                        "INSERT INTO works (member, ref, kind, fingerprint_sm3, title, list_sm3) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (member, e.ref, e.kind, e.fingerprint_sm3, e.title, hl.digest),
                    )
                    fid = int(cur.lastrowid or 0)
                    if e.pdq:
                        self._db.executemany(
                            "INSERT INTO pdq (fid, hash, quality) VALUES (?, ?, ?)",
                            [(fid, q.hash, q.quality) for q in e.pdq],
                        )
                if e.kind == "image":
                    images.append((f"f{fid}", p.image or []))
                    image_fids.append(fid)
                else:
                    self._index_media(fid, p)
            if images:
                index = self._image_index(create=True)
                try:
                    index.add_many(images)
                except BaseException:
                    for fid in image_fids:
                        self._drop(fid, "image")
                    raise
                with self._db:
                    self._db.executemany(
                        "UPDATE works SET complete = 1 WHERE fid = ?", [(f,) for f in image_fids]
                    )
            with self._db:
                self._db.execute(
                    "INSERT INTO lists (list_sm3, member, created, signer, entries, imported_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (hl.digest, member, hl.header.created, signer, len(hl.entries), now_rfc3339()),
                )
            self._pdq = None
        return ImportReport(hl.digest, member, signer, added, replaced, unchanged)

    def _index_media(self, fid: int, p: Prepared) -> None:
        """Index foreign audio or video work ``fid`` and mark it complete (dropped again on failure)."""
        kind = p.entry.kind
        try:
            if kind == "video":
                self._video_index(create=True).add_fingerprint(f"f{fid}", p.video, p.audio)
            else:
                self._audio_index(create=True).add_fingerprint(f"f{fid}", p.audio)
            bass = self._audio_index(create=True).bass if p.bass is not None else None
            if bass is not None:
                bass.add_fingerprint(f"f{fid}", p.bass)
        except BaseException:
            self._drop(fid, kind)
            raise
        with self._db:
            self._db.execute("UPDATE works SET complete = 1 WHERE fid = ?", (fid,))

    def _check_known_signer(self, member: str, signer: str | None) -> None:
        """Refuse a list whose signer differs from the key of the member's earlier lists."""
        row = self._db.execute(
            "SELECT signer FROM lists WHERE member = ? AND signer IS NOT NULL "
            "ORDER BY imported_at DESC LIMIT 1",
            (member,),
        ).fetchone()
        if row is not None and row[0] != signer:
            got = "is not signed" if signer is None else f"is signed by key {signer[:16]}…"
            raise HashListSignatureError(
                f"member {member!r}'s earlier lists were signed by key {row[0][:16]}…, but this one {got}; "
                "if the member changed its key, import with --signer naming the new key (from its "
                "certificate)"
            )

    def _drop(self, fid: int, kind: str) -> None:
        """Forget foreign work ``fid`` in its index and the catalogue."""
        index = {"image": self._image_index, "video": self._video_index}.get(kind, self._audio_index)(False)
        if index is not None:
            index.remove(f"f{fid}")
        with self._db:
            self._db.execute("DELETE FROM pdq WHERE fid = ?", (fid,))
            self._db.execute("DELETE FROM works WHERE fid = ?", (fid,))
        self._pdq = None

    def forget_member(self, member: str) -> int:
        """Remove every work and list imported from ``member``; how many works were removed.

        Raises
        ------
        ReadOnlyLibraryError
            Opened read-only.
        """
        self._check_open()
        if self.readonly:
            raise ReadOnlyLibraryError(f"{self.directory} was opened read-only; cannot remove works")
        with self._lock:
            rows = self._db.execute("SELECT fid, kind FROM works WHERE member = ?", (member,)).fetchall()
            for fid, kind in rows:
                self._drop(int(fid), str(kind))
            with self._db:
                self._db.execute("DELETE FROM lists WHERE member = ?", (member,))
        return len(rows)

    # -- lookups ---------------------------------------------------------------------------------

    def lists(self) -> list[ImportedList]:
        """The imported lists, oldest import first."""
        self._check_open()
        with self._lock:
            rows = self._db.execute(
                "SELECT list_sm3, member, created, signer, entries, imported_at FROM lists "
                "ORDER BY imported_at, member"
            ).fetchall()
        return [ImportedList(bytes(r[0]), r[1], r[2], r[3], int(r[4]), r[5]) for r in rows]

    def works_by_member(self) -> dict[str, dict[str, int]]:
        """Foreign works per member and kind.

        Examples
        --------
        >>> import tempfile
        >>> with ForeignLibrary(tempfile.mkdtemp()) as f:
        ...     f.works_by_member()
        {}
        """
        self._check_open()
        with self._lock:
            rows = self._db.execute(
                "SELECT member, kind, COUNT(*) FROM works WHERE complete = 1 GROUP BY member, kind"
            ).fetchall()
        out: dict[str, dict[str, int]] = {}
        for member, kind, n in rows:
            out.setdefault(member, {})[kind] = int(n)
        return out

    def identify(
        self, source: str | os.PathLike[str] | NDArray[np.uint8], top_k: int = 5
    ) -> list[ForeignMatch]:
        """Foreign works found in ``source`` (an image, audio or video file, an image array).

        A video is searched by its picture and its soundtrack when video works were
        imported (audio works heard in it are reported with ``query_stream == "audio"``),
        else by its soundtrack alone.

        Returns
        -------
        list of ForeignMatch
            Best first, at most ``top_k``; empty when none passes its threshold.

        Raises
        ------
        MediaError
            The file cannot be decoded.
        """
        self._check_open()
        if top_k < 1:
            raise ValueError("top_k must be at least 1")
        with self._lock:
            if isinstance(source, np.ndarray):
                return self._identify_image(source, top_k)
            path = Path(os.fspath(source))
            kind = detect_kind(path)
            if kind == "image":
                return self._identify_image(path, top_k)
            if kind == "video" and self._video_index(create=False) is not None:
                return self._identify_video(path, top_k)
            audio = self._audio_index(create=False)
            if audio is None:
                return []
            from forensics.audio.errors import NoAudioStreamError

            try:
                matches = audio.identify(path, top_k)
            except NoAudioStreamError:
                return []
            stream: Literal["audio"] | None = "audio" if kind == "video" else None
            return self._foreign(matches, "rongxin-audio", stream)[:top_k]

    def _identify_video(self, path: Path, top_k: int) -> list[ForeignMatch]:
        """Foreign video works seen or heard in ``path``, and foreign audio works heard in it."""
        found: list[ForeignMatch] = []
        for m in self._video_index(create=False).identify(path, top_k):
            if m.query_stream == "audio":
                found += self._foreign([m], "rongxin-audio", "audio")
            else:
                found += self._foreign([m], "rongxin-video", None)
        return found[:top_k]

    def _identify_image(self, source: Path | NDArray[np.uint8], top_k: int) -> list[ForeignMatch]:
        from forensics.image.decode import load_frames

        found: list[ForeignMatch] = []
        frames = load_frames(source)  # decoded once for both paths
        index = self._image_index(create=False)
        if index is not None:
            matches = (
                index.identify_array(frames[0], top_k) if len(frames) == 1 else index.identify(source, top_k)
            )
            found = self._foreign(matches, "rongxin-image", None)
        matcher = self._pdq_matcher()
        if len(matcher):
            from forensics.exchange.pdq import MATCH_DISTANCE, pdq_hash

            best: dict[str, int] = {}
            for frame in frames:
                for ref, d in matcher.match_hash(*pdq_hash(frame)):
                    best[ref] = min(best.get(ref, 256), d)
            from forensics.image.index import SCORE_AT_THRESHOLD, hash_score

            pdq_matches = [
                Match(
                    fid,
                    hash_score(d, MATCH_DISTANCE),
                    "image",
                    SCORE_AT_THRESHOLD,
                    {"pdq_distance": d, "pdq_threshold": MATCH_DISTANCE},
                )
                for fid, d in best.items()
            ]
            have = {(m.member, m.reference) for m in found}
            found += [
                m for m in self._foreign(pdq_matches, "pdq", None) if (m.member, m.reference) not in have
            ]
        found.sort(key=lambda m: (-m.score, m.member, m.reference))
        return found[:top_k]

    def _foreign(
        self, matches: list[Match], signal: Signal, stream: Literal["audio"] | None
    ) -> list[ForeignMatch]:
        """The library-internal matches ``f<n>`` as foreign matches (incomplete works dropped)."""
        out = []
        for m in matches:
            if not m.work_id.startswith("f") or not m.work_id[1:].isdigit():
                continue
            row = self._db.execute(
                "SELECT member, ref, kind, fingerprint_sm3, title, list_sm3 FROM works "
                "WHERE fid = ? AND complete = 1",
                (int(m.work_id[1:]),),
            ).fetchone()
            if row is None:
                continue
            out.append(
                ForeignMatch(
                    member=row[0],
                    reference=row[1],
                    kind=row[2],
                    score=float(m.score),
                    threshold=float(m.threshold),
                    signal=signal,
                    details=dict(m.details),
                    list_sm3=bytes(row[5]).hex(),
                    fingerprint_sm3=bytes(row[3]).hex(),
                    title=row[4],
                    query_stream=stream,
                )
            )
        return out

    # -- lifetime --------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise LibraryError("the foreign works are closed; open them again")

    def close(self) -> None:
        """Close the indexes and the catalogue (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                for index in (self._image, self._video, self._audio):
                    if index is not None:
                        index.close()
            finally:
                self._db.close()

    def __enter__(self) -> ForeignLibrary:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_foreign(library: str | os.PathLike[str], *, readonly: bool = False) -> ForeignLibrary | None:
    """The foreign namespace of the library directory ``library``; ``None`` when read-only and absent.

    Examples
    --------
    >>> import tempfile
    >>> open_foreign(tempfile.mkdtemp(), readonly=True) is None
    True
    """
    where = Path(library) / FOREIGN_DIR
    if readonly and not (where / "foreign.db").is_file():
        return None
    return ForeignLibrary(where, readonly=readonly)
