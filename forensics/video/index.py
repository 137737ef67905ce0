"""The persistent video index: register programmes, find them in clips, fuse with their soundtrack.

:class:`VideoIndex` implements :class:`forensics.types.MediaIndex` for ``video``. A work's
picture is sampled at :data:`~forensics.video.fingerprint.DEFAULT_RATE` frames per second
and hashed frame by frame (:mod:`~forensics.video.fingerprint`); the hashes go to a
segment on disk (:mod:`~forensics.video.storage`, 33 bytes per frame, ≈ 0.5 MB per hour)
and to a binary nearest-neighbour index in memory (:class:`~forensics.image.binindex.
GrowingBinaryIndex`, exhaustive while small, an inverted file once large). A query's
frames and their mirror images look up their nearest registered frames; the pairs vote
for (offset, speed) alignments that are verified frame by frame
(:mod:`~forensics.video.align`). The score of an alignment is its matched seconds; a match
is returned only when it reaches the threshold stored with the index, which
:meth:`VideoIndex.calibrate` sets from unrelated video.

The soundtrack: inside a :class:`~forensics.library.Library`, the library attaches its
audio index (:meth:`VideoIndex.attach_audio`). Registering a video then also registers
its first audio stream with the audio index under the same work id, and a query's
soundtrack is searched there too: each match says whether the picture, the sound or both
found it (:class:`~forensics.evidence.VideoEvidence`). Sound matches of audio works (music
registered on its own) are passed on as audio matches of the query's soundtrack
(``query_stream == "audio"``).
A query's soundtrack is decoded and searched on a second thread while its picture is
decoded (in this process with PyAV, leaving undecoded the frames no sample shows;
see :mod:`forensics.video.avdecode`) and searched.

A large index (once the search is an inverted file) keeps the trained inverted file on
disk, ``search-<works>-<tag>.ivf`` (the tag digests the rows and segments of the works it
covers), written when a writer closes (or calls
:meth:`VideoIndex.flush`). Opening the index reads it instead of clustering every frame
again, as long as the works it covers are still the first ones of the catalogue; works
registered since are added to it. It is a cache: a missing, stale or unreadable file is
ignored (and logged) and the search rebuilt from the segments.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from forensics.errors import MediaError
from forensics.evidence import AudioEvidence, VideoEvidence
from forensics.types import Match, MediaIndex, MediaKind
from forensics.video.align import Alignment, AlignParams, Pairs, QueryCodes, align
from forensics.video.errors import VideoIndexError
from forensics.video.fingerprint import DEFAULT_RATE, VideoFingerprint, fingerprint_file
from forensics.video.probe import Limits, probe
from forensics.video.storage import Catalogue, WorkRow

__all__ = ["DEFAULT_FPR_TARGET", "DEFAULT_THRESHOLD", "VideoIndex", "work_digest"]

log = logging.getLogger(__name__)

#: Matched seconds a match needs until :meth:`VideoIndex.calibrate` sets a threshold.
DEFAULT_THRESHOLD = 3.0
#: False-positive rate per (query, work) the default threshold is meant for.
DEFAULT_FPR_TARGET = 1e-4
#: Nearest registered frames looked up per query frame (and per mirrored frame).
NEIGHBOURS = 16
#: The views of a work's frames in the index: the content, and its centre (for crops).
VIEWS = ("full", "centre")
#: Two alignments of one work (picture and sound) agree when their offsets differ by at most this.
FUSE_SECONDS = 2.0
#: Sound matches (occurrences) asked of the audio index per query.
SOUND_MATCHES = 20


def work_digest(picture: bytes, sound: bytes = b"") -> bytes:
    """A video work's fingerprint digest: its picture's and its soundtrack's (``b""`` without one).

    What :meth:`VideoIndex.add` returns and the library records (and may anchor); a hash
    list's importer recomputes it from the entry's fingerprints.

    Examples
    --------
    >>> len(work_digest(bytes(32))), work_digest(bytes(32)) != work_digest(bytes(32), bytes(32))
    (32, True)
    """
    return hashlib.sha256(b"rongxin-video-v1" + picture + sound).digest()


class VideoIndex:
    """Video works in a persistent per-frame hash index; implements :class:`forensics.types.MediaIndex`.

    Parameters
    ----------
    directory : Path
        Where the index lives; created if missing (unless ``readonly``).
    readonly : bool
        Open an existing index for lookups only.
    rate : float
        Frames sampled per second (works and queries).
    limits : Limits, optional
        Sizes, frame rates and durations accepted.
    params : AlignParams, optional
        Voting and verification parameters.
    ivf_min : int
        Registered frames at which the nearest-neighbour search becomes an inverted file.

    Raises
    ------
    VideoIndexError
        The directory or its catalogue is unusable, or a segment is damaged.
    """

    kind: ClassVar[MediaKind] = "video"

    def __init__(
        self,
        directory: Path | str,
        *,
        readonly: bool = False,
        rate: float = DEFAULT_RATE,
        limits: Limits | None = None,
        params: AlignParams | None = None,
        ivf_min: int = 400_000,
    ) -> None:
        self.directory = Path(directory)
        self.readonly = readonly
        self.rate = rate
        self.limits = limits or Limits()
        self.params = params or AlignParams()
        self.ivf_min = ivf_min
        self.catalogue = Catalogue(self.directory, readonly=readonly)
        self._lock = threading.RLock()
        self._audio: Callable[[], MediaIndex | None] | None = None
        self._generation = -1
        self._rows: list[WorkRow] = []
        # one entry per (work, view): what the nearest-neighbour ids and the alignment index
        self._codes: list[NDArray[np.uint8]] = []
        self._valid: list[NDArray[np.bool_]] = []
        self._owner: list[tuple[int, int]] = []  # (row, view)
        self._bases = np.zeros(0, np.int64)
        self._search: Any = None
        self._saved: tuple[int, str] | None = None  # (works, tag) of the inverted file on disk
        #: Where the search came from at the last full load: ``"file"`` (the saved inverted
        #: file) or ``"built"`` (clustered from the segments).
        self.search_source = "built"
        #: A query's picture decoder: ``"pyav"`` (in this process, only the frames the samples
        #: need; the ffmpeg process for what PyAV cannot open) or ``"ffmpeg"`` (the ffmpeg process).
        self.query_decoder = "pyav"
        self._closed = False
        try:
            self._sync()
        except BaseException:
            self.catalogue.close()
            raise

    # -- soundtrack -------------------------------------------------------------------------

    def attach_audio(self, get_audio: Callable[[], MediaIndex | None]) -> None:
        """Register and search soundtracks through the audio index ``get_audio()`` returns.

        ``get_audio`` is called when a soundtrack is registered or searched; it may return
        ``None`` (no audio index to search, e.g. in a read-only library without one).
        """
        self._audio = get_audio

    # -- state ------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise VideoIndexError("the video index is closed; open a new VideoIndex")

    def _sync(self) -> None:
        """Catch up with the catalogue when it changed (another writer, or this one).

        Works added after those held are loaded and added to the search on their own; a
        removal or a replacement reloads everything.
        """
        generation = self.catalogue.generation()
        if generation == self._generation:
            return
        from forensics.image.binindex import GrowingBinaryIndex

        rows = self.catalogue.rows()
        held = len(self._rows)
        covered = held  # rows whose frames the search already holds
        if self._search is None or rows[:held] != self._rows:  # something held changed: start over
            self._rows, self._codes, self._valid, self._owner = [], [], [], []
            self._bases = np.zeros(0, np.int64)
            self._search = GrowingBinaryIndex(ivf_min=self.ivf_min, nprobe=16)
            held = 0
            covered = self._load_saved(rows)
        next_base = int(self._bases[-1]) + len(self._codes[-1]) if self._codes else 0
        bases: list[int] = [int(b) for b in self._bases]
        for r in range(held, len(rows)):
            for view, (c, v) in enumerate(self.catalogue.load(rows[r])):
                ids = np.flatnonzero(v).astype(np.int64)
                if r >= covered:
                    self._search.add(c[ids], ids + next_base)
                self._codes.append(c)
                self._valid.append(v)
                self._owner.append((r, view))
                bases.append(next_base)
                next_base += len(c)
        self._rows = rows
        self._bases = np.asarray(bases, np.int64)
        self._generation = generation
        if covered > held:
            total = sum(int(np.count_nonzero(v)) for v in self._valid)
            if self._search.ntotal != total:
                log.warning(
                    "the saved search of %s holds %d frames, not the %d of its works; rebuilding it",
                    self.directory,
                    self._search.ntotal,
                    total,
                )
                self._rebuild_search()

    def _rebuild_search(self) -> None:
        """Cluster the search again from the codes held (the saved file did not match them)."""
        from forensics.image.binindex import GrowingBinaryIndex

        self._search = GrowingBinaryIndex(ivf_min=self.ivf_min, nprobe=16)
        for c, v, base in zip(self._codes, self._valid, self._bases, strict=True):
            ids = np.flatnonzero(v).astype(np.int64)
            self._search.add(c[ids], ids + int(base))
        self._saved, self.search_source = None, "built"

    # -- the saved inverted file ----------------------------------------------------------

    @staticmethod
    def _tag(rows: list[WorkRow]) -> str:
        """Names the exact works (rows and segment files) a saved search covers."""
        text = "\n".join(f"{r.row} {r.work_id} {r.segment}" for r in rows)
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def _saved_files(self) -> list[tuple[int, str, Path]]:
        found = []
        for path in self.directory.glob("search-*-*.ivf"):
            parts = path.stem.split("-")
            if len(parts) == 3 and parts[1].isdigit():
                found.append((int(parts[1]), parts[2], path))
        return sorted(found, reverse=True)

    def _load_saved(self, rows: list[WorkRow]) -> int:
        """Read the saved inverted file covering the most leading works; how many it covers."""
        for works, tag, path in self._saved_files():
            if not 0 < works <= len(rows) or self._tag(rows[:works]) != tag:
                continue  # works were removed or replaced since it was written: stale
            try:
                self._search.load(path, mapped=True)  # opening reads none of the lists
            except ValueError as exc:
                log.warning("ignoring unreadable saved search %s: %s", path, exc)
                continue
            self._saved = (works, tag)
            self.search_source = "file"
            return works
        self.search_source = "built"
        return 0

    def flush(self) -> None:
        """Save the inverted file of the search (when it is one and the file is not current).

        Written atomically next to the catalogue; older saved files are deleted. A no-op
        for a read-only index or a search still small enough to be exhaustive.
        """
        with self._lock:
            self._check_open()
            if self.readonly or self._search is None or not self._search.is_ivf or not self._rows:
                return
            key = (len(self._rows), self._tag(self._rows))
            if key == self._saved:
                return
            target = self.directory / f"search-{key[0]}-{key[1]}.ivf"
            try:
                self._search.save_replacing(target, "search-*-*.ivf")
            except (OSError, RuntimeError) as exc:
                raise VideoIndexError(f"cannot save the video search to {target}: {exc}") from exc
            self._saved = key

    @property
    def threshold(self) -> float:
        """Matched seconds a match needs."""
        return float(self.catalogue.get("threshold") or DEFAULT_THRESHOLD)

    @property
    def fpr_target(self) -> float:
        """False-positive rate per (query, work) the threshold is calibrated for."""
        return float(self.catalogue.get("fpr_target") or DEFAULT_FPR_TARGET)

    def work_ids(self) -> list[str]:
        """Ids of the registered works."""
        with self._lock:
            self._check_open()
            self._sync()
            return [r.work_id for r in self._rows]

    # -- MediaIndex -------------------------------------------------------------------------

    def fingerprint(self, path: Path, *, query: bool = False) -> VideoFingerprint:
        """The fingerprint of ``path`` at this index's rate and limits (see :func:`fingerprint_file`)."""
        return fingerprint_file(
            Path(path), rate=self.rate, limits=self.limits, query=query, decoder=self.query_decoder
        )

    def add(self, work_id: str, path: Path) -> bytes:
        """Fingerprint ``path``'s picture (and soundtrack) and index it under ``work_id``.

        Registering an id already present replaces it. The picture is committed first; the
        soundtrack then goes to the attached audio index (when the file has one with
        enough sound: silence or a too short track leave the work matched by its picture
        only). If the audio index fails otherwise, the picture is removed again.

        Returns
        -------
        bytes
            SM3-sized digest (32 bytes) of the picture fingerprint and the soundtrack's.

        Raises
        ------
        MediaError
            Not a usable video (see :func:`~forensics.video.fingerprint.fingerprint_file`).
        VideoIndexError
            The index is read-only, closed or damaged.
        """
        self._check_open()
        if not isinstance(work_id, str) or not work_id:
            raise VideoIndexError("work_id must be a non-empty string")
        if self.readonly:
            raise VideoIndexError("the video index was opened read-only; cannot register works")
        path = Path(path)
        info = probe(path)
        fp = fingerprint_file(path, rate=self.rate, limits=self.limits, info=info)
        with_sound = info.has_audio and self._audio is not None
        return self._commit(work_id, fp, lambda: self._add_sound(work_id, path) if with_sound else b"")

    def _commit(self, work_id: str, fp: VideoFingerprint, add_sound: Callable[[], bytes]) -> bytes:
        """Commit the picture, then the soundtrack (``add_sound``: its digest, ``b""`` for none).

        The picture is removed again when the soundtrack fails.
        """
        with self._lock:
            self.catalogue.add(work_id, fp, fp.digest, sound=False)
            try:
                sound_digest = add_sound()
                if sound_digest:
                    self.catalogue.set_sound(work_id, True)
            except BaseException:
                self.catalogue.remove(work_id)
                raise
            self._sync()
        return work_digest(fp.digest, sound_digest)

    def add_fingerprint(self, work_id: str, fp: VideoFingerprint, sound: Any = None) -> bytes:
        """Index a work's fingerprint computed elsewhere (e.g. an imported hash list's entry).

        ``fp`` must be a work's fingerprint at this index's rate (with its centre view);
        ``sound``, an audio fingerprint of the soundtrack at the attached audio index's
        parameters, goes to that index under the same id. As :meth:`add`, the picture is
        committed first and removed again when the soundtrack cannot be added.

        Returns
        -------
        bytes
            :func:`work_digest` of the picture and the soundtrack.

        Raises
        ------
        VideoIndexError
            Read-only, closed, another rate, malformed codes, or a soundtrack with no
            audio index attached.
        """
        self._check_open()
        if not isinstance(work_id, str) or not work_id:
            raise VideoIndexError("work_id must be a non-empty string")
        if self.readonly:
            raise VideoIndexError("the video index was opened read-only; cannot register works")
        if abs(fp.rate - self.rate) > 1e-9:
            raise VideoIndexError(
                f"the fingerprint was sampled at {fp.rate:g} frames/s, this index at {self.rate:g}"
            )
        if fp.codes.ndim != 2 or fp.codes.shape[1] != 32 or fp.valid.shape != (len(fp.codes),):
            raise VideoIndexError("a video fingerprint holds 32 bytes and a detail flag per frame")
        audio = self._audio() if sound is not None and self._audio is not None else None
        add = getattr(audio, "add_fingerprint", None)
        if sound is not None and add is None:
            raise VideoIndexError("a soundtrack fingerprint needs an attached audio index")
        return self._commit(work_id, fp, lambda: b"" if add is None else bytes(add(work_id, sound)))

    def work_fingerprint(self, work_id: str) -> tuple[VideoFingerprint, bool]:
        """A registered work's fingerprint as stored, and whether its soundtrack was registered.

        Raises
        ------
        VideoIndexError
            Unknown work, or its segment is damaged.
        """
        self._check_open()
        with self._lock:
            self._sync()
            row = next((r for r in self._rows if r.work_id == work_id), None)
            if row is None:
                raise VideoIndexError(f"no video work {work_id!r} in {self.directory}")
            views = self.catalogue.load(row)
        (codes, valid), centre = views[0], views[1] if len(views) > 1 else (None, None)
        return VideoFingerprint(codes, valid, row.rate, centre=centre[0], centre_valid=centre[1]), row.sound

    def _add_sound(self, work_id: str, path: Path) -> bytes:
        """Register the soundtrack; ``b""`` when it has nothing to fingerprint."""
        from forensics.audio.errors import ClipTooShortError, NoAudioStreamError, NoFingerprintError

        audio = self._audio() if self._audio is not None else None
        if audio is None:
            return b""
        try:
            return audio.add(work_id, path)
        except (NoAudioStreamError, ClipTooShortError, NoFingerprintError):
            return b""

    def remove(self, work_id: str) -> bool:
        """Forget ``work_id`` (and its soundtrack in the audio index); ``False`` when unknown."""
        self._check_open()
        if self.readonly:
            raise VideoIndexError("the video index was opened read-only; cannot remove works")
        with self._lock:
            sound = any(r.work_id == work_id and r.sound for r in self.catalogue.rows())
            removed = self.catalogue.remove(work_id)
            audio = self._audio() if sound and self._audio is not None else None
            if audio is not None:
                audio.remove(work_id)
            self._sync()
        return removed

    def identify(self, path: Path, top_k: int = 5) -> list[Match]:
        """Registered works seen or heard in ``path``, best first, at most ``top_k``.

        Every work found is reported with its span (a compilation gives several; a work
        used twice gives two). The query is decoded leniently.

        Raises
        ------
        MediaError
            Not a usable video.
        """
        self._check_open()
        if top_k < 1:
            raise ValueError("top_k must be at least 1")
        path = Path(path)
        info = probe(path)
        audio = self._audio() if info.has_audio and self._audio is not None else None
        # the soundtrack is decoded and searched on a second thread while the picture is:
        # the sound's decoder is an ffmpeg process, the picture's libavcodec in this process
        # (PyAV releases the interpreter lock while it decodes) and the searches are mostly
        # numpy, so on a machine with a free core the query takes about as long as the slower
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="video-soundtrack") as pool:
            heard = pool.submit(_sound_matches, audio, path) if audio is not None else None
            fp = fingerprint_file(
                path,
                rate=self.rate,
                limits=self.limits,
                query=True,
                info=info,
                min_valid=0,
                decoder=self.query_decoder,
            )
            picture = self._alignments(fp)  # those under the threshold may only join one above
            sound = heard.result() if heard is not None else []
        return self._fuse(picture, sound, fp)[:top_k]

    def alignments(self, fp: VideoFingerprint) -> list[tuple[str, Alignment]]:
        """Every alignment of a query fingerprint (with mirrors) with a work, unthresholded, best first."""
        return [(w, a) for w, a, _ in self._alignments(fp)]

    def _alignments(self, fp: VideoFingerprint) -> list[tuple[str, Alignment, bool]]:
        """Alignments as :meth:`alignments`, each with whether the query's inset found it."""
        self._check_open()
        if fp.mirror is None:
            raise ValueError("a query fingerprint needs its mirrored hashes (fingerprint(..., query=True))")
        with self._lock:
            self._sync()
            if not self._rows or len(fp.codes) == 0:
                return []
            queries = [(QueryCodes(fp.codes, fp.mirror, fp.valid, fp.rate), False)]
            inset_ok = fp.inset is not None and fp.inset_mirror is not None and fp.inset_valid is not None
            if inset_ok and fp.inset_valid is not None and fp.inset_valid.any():
                assert fp.inset is not None and fp.inset_mirror is not None
                queries.append((QueryCodes(fp.inset, fp.inset_mirror, fp.inset_valid, fp.rate), True))
            found: list[tuple[Alignment, bool]] = []
            for query, inset in queries:
                pairs = self._pairs(query)
                codes = lambda w: (self._codes[w], self._valid[w])  # noqa: E731
                found.extend((a, inset) for a in align(query, pairs, codes, self.params))
            found.sort(key=lambda t: (-t[0].score, t[0].mean_bits))
            kept: list[tuple[Alignment, bool]] = []
            for a, inset in found:  # best first: one alignment per work and stretch of the query, any view
                row = self._owner[a.work][0]
                if not any(self._owner[k.work][0] == row and _shared(a, k) > 0.5 for k, _ in kept):
                    kept.append((a, inset))
            return [(self._rows[self._owner[a.work][0]].work_id, a, inset) for a, inset in kept]

    def view_of(self, a: Alignment) -> str:
        """Which view of the work an alignment matched: ``"full"`` or ``"centre"``."""
        return VIEWS[self._owner[a.work][1]]

    def identify_fingerprint(
        self, fp: VideoFingerprint, threshold: float | None = None
    ) -> list[tuple[str, Alignment]]:
        """The picture's alignments at or above ``threshold`` (the stored one when ``None``)."""
        limit = self.threshold if threshold is None else threshold
        return [(w, a) for w, a in self.alignments(fp) if a.score >= limit]

    def _pairs(self, query: QueryCodes) -> Pairs:
        valid = np.flatnonzero(query.valid)
        both = np.concatenate([query.codes[valid], query.mirror[valid]])
        k = min(NEIGHBOURS, max(1, self._search.ntotal))
        dist, ids = self._search.search(both, k)
        frame = np.tile(valid, 2)[:, None].repeat(k, axis=1)
        variant = np.repeat(np.array([0, 1], np.int8), len(valid))[:, None].repeat(k, axis=1)
        keep = (ids >= 0) & (dist <= self.params.frame_bits)
        ids = ids[keep]
        work = np.searchsorted(self._bases, ids, side="right") - 1
        return Pairs(
            frame[keep].astype(np.int64),
            variant[keep].astype(np.int8),
            work.astype(np.int64),
            (ids - self._bases[work]).astype(np.int64),
            dist[keep].astype(np.int16),
        )

    def _fuse(
        self, picture: list[tuple[str, Alignment, bool]], sound: list[Match], fp: VideoFingerprint
    ) -> list[Match]:
        """Video matches (picture, sound or both) and the sound matches of audio works, best first.

        ``picture`` holds every alignment, best first: one at or above the threshold makes a
        match, one below it only joins a match on its line.
        """
        videos = {r.work_id for r in self._rows}
        used: set[int] = set()
        absorbed: set[int] = set()
        out: list[tuple[float, Match]] = []
        pic_pieces = [_Piece.of(a) for _, a, _ in picture]
        sound_pieces = [
            _Piece.of(m.evidence) if isinstance(m.evidence, AudioEvidence) else None for m in sound
        ]

        def grow(line: list[_Piece], work_id: str) -> list[int]:
            """Join to ``line`` every piece of ``work_id`` on it that no match took yet, and
            every piece on the grown line, and so on; the sound matches that joined."""
            joined: list[int] = []
            grown = True
            while grown:
                grown = False
                for j, (w, _a, _inset) in enumerate(picture):
                    if j not in absorbed and w == work_id and _on_line(line, pic_pieces[j]):
                        absorbed.add(j)
                        line.append(pic_pieces[j])
                        grown = True
                for i, m in enumerate(sound):
                    piece = sound_pieces[i]
                    if i not in used and piece is not None and m.work_id == work_id and _on_line(line, piece):
                        used.add(i)
                        joined.append(i)
                        line.append(piece)
                        grown = True
            return joined

        for k, (work_id, a, inset) in enumerate(picture):
            if k in absorbed or a.score < self.threshold:
                continue
            absorbed.add(k)
            # one copy is one line ref = offset + speed · query: the picture's other alignments
            # of this work on it (the copy's picture matched in pieces, between shots a logo or
            # a ticker covers) and every sound occurrence on it (a long query's windows) join it
            line = [pic_pieces[k]]
            agree = grow(line, work_id)
            margin = a.score / self.threshold
            partner = None
            if agree:
                best = max(agree, key=lambda i: sound[i].score / sound[i].threshold)
                partner = sound[best].evidence
                margin = max(margin, sound[best].score / sound[best].threshold)
            assert partner is None or isinstance(partner, AudioEvidence)
            ev = self._evidence(a, fp, partner, inset)
            # the span is that of every piece of the line: where the picture stops matching
            # (a dark shot under a ticker, a cut to black) the sound or the picture's next
            # piece carries the copy on; each end is the outermost piece's own
            ev = _span_of(ev, line)
            out.append((margin, Match.of(work_id, a.score, self.threshold, ev)))
        for i, top in enumerate(sound):  # best first: what no picture match took
            if i in used:
                continue
            used.add(i)
            e = top.evidence
            if top.work_id not in videos or not isinstance(e, AudioEvidence):
                out.append((top.score / top.threshold, dataclasses.replace(top, query_stream="audio")))
                continue
            # the sound's other windows of this copy, and the picture's pieces under the
            # threshold on its line, carry the span on as they do for a picture match
            line = [_Piece.of(e)]
            grow(line, top.work_id)
            ev = VideoEvidence(
                e.query_start,
                e.query_end,
                e.ref_start,
                e.ref_end,
                e.speed,
                "sound",
                False,
                (0.0, 0.0, 1.0, 1.0),
                0,
                0,
                self.params.frame_bits,
                (),
                (),
                e.fpr_target,
                e,
            )
            ev = _span_of(ev, line)
            out.append((top.score / top.threshold, Match.of(top.work_id, top.score, top.threshold, ev)))
        out.sort(key=lambda t: -t[0])
        return [m for _, m in out]

    def _evidence(
        self, a: Alignment, fp: VideoFingerprint, sound: AudioEvidence | None, inset: bool = False
    ) -> VideoEvidence:
        box = (0.0, 0.0, 1.0, 1.0)
        i = int(a.query_start * fp.rate)
        if fp.boxes is not None and len(fp.boxes):
            box = _box(fp.boxes[min(len(fp.boxes) - 1, i)])
        pip = None
        if inset and fp.inset_boxes is not None and len(fp.inset_boxes):
            pip = _box(fp.inset_boxes[min(len(fp.inset_boxes) - 1, i)])
        return VideoEvidence(
            a.query_start,
            a.query_end,
            a.ref_start,
            a.ref_end,
            a.speed,
            "both" if sound is not None else "picture",
            a.flip,
            box,
            a.matched,
            a.compared,
            self.params.frame_bits,
            a.per_second,
            a.pairs,
            self.fpr_target,
            sound,
            self.view_of(a),
            pip,
        )

    # -- calibration ------------------------------------------------------------------------

    def calibrate(
        self,
        paths: Iterable[Path | str],
        *,
        fpr_target: float = DEFAULT_FPR_TARGET,
        margin: float = 0.5,
        floor: float = 2.0,
    ) -> dict[str, Any]:
        """Set the threshold from videos that hold none of the registered works.

        Each unrelated video is a query; the best score any work reaches in any of them
        sets the threshold (that score plus ``margin``, at least ``floor`` matched seconds).
        The (query, work) pairs measured must be enough for ``fpr_target``: at least
        ``1 / fpr_target`` of them.

        Returns
        -------
        dict
            ``threshold``, ``queries``, ``pairs``, ``max_unrelated``, ``fpr_target``, and
            ``fpr_measured_bound`` (1 / pairs: no pair exceeded the threshold).

        Raises
        ------
        VideoIndexError
            The index is empty or read-only, or too few (query, work) pairs for ``fpr_target``.
        """
        self._check_open()
        if self.readonly:
            raise VideoIndexError("the video index was opened read-only; cannot store a threshold")
        works = len(self.work_ids())
        if works == 0:
            raise VideoIndexError("calibrate needs registered works; register the programmes first")
        scores: list[float] = []
        for p in paths:
            fp = self.fingerprint(Path(p), query=True)
            best = max((a.score for _, a in self.alignments(fp)), default=0.0)
            scores.append(best)
        pairs = len(scores) * works
        if pairs * fpr_target < 1.0:
            raise VideoIndexError(
                f"{len(scores)} unrelated videos × {works} works = {pairs} (query, work) pairs; "
                f"a false-positive rate of {fpr_target:g} needs at least {int(np.ceil(1 / fpr_target))}"
            )
        top = max(scores, default=0.0)
        threshold = round(max(floor, top + margin), 3)
        self.catalogue.set_many(
            {
                "threshold": f"{threshold}",
                "fpr_target": f"{fpr_target}",
                "calibration": json.dumps({"queries": len(scores), "pairs": pairs, "max_unrelated": top}),
            }
        )
        return {
            "threshold": threshold,
            "queries": len(scores),
            "pairs": pairs,
            "max_unrelated": top,
            "fpr_target": fpr_target,
            "fpr_measured_bound": 1.0 / pairs,
        }

    def set_threshold(self, threshold: float, fpr_target: float | None = None) -> None:
        """Store a threshold (matched seconds) chosen elsewhere (e.g. by a benchmark's calibration)."""
        self._check_open()
        if not threshold > 0:
            raise ValueError("the threshold must be positive")
        values = {"threshold": f"{threshold}"}
        if fpr_target is not None:
            values["fpr_target"] = f"{fpr_target}"
        self.catalogue.set_many(values)

    # -- upkeep -----------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Works, hours, frames, bytes on disk and per hour, threshold."""
        self._check_open()
        with self._lock:
            self._sync()
            frames = sum(r.frames for r in self._rows)
            hours = sum(r.frames / r.rate for r in self._rows) / 3600.0
            size = self.catalogue.bytes_on_disk()
            search = sum(p.stat().st_size for _w, _l, p in self._saved_files())
            return {
                "kind": self.kind,
                "works": len(self._rows),
                "with_sound": sum(r.sound for r in self._rows),
                "hours": round(hours, 4),
                "frames": frames,
                "bytes": size,
                "bytes_per_hour": round(size / hours) if hours > 0 else None,
                "search_file_bytes": search,
                "search": "inverted file"
                if self._search is not None and self._search.is_ivf
                else "exhaustive",
                "threshold": self.threshold,
                "fpr_target": self.fpr_target,
            }

    def close(self) -> None:
        """Save the search's inverted file (a writer, see :meth:`flush`), release the catalogue.

        Further calls raise.
        """
        with self._lock:
            if self._closed:
                return
            try:
                self.flush()
            except VideoIndexError as exc:  # a cache: the index itself is complete without it
                log.warning("%s", exc)
            finally:
                self._closed = True
                self.catalogue.close()

    def __enter__(self) -> VideoIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _box(values: NDArray[np.float32]) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (round(float(v), 3) for v in values)
    return (x0, y0, x1, y1)


def _shared(a: Alignment, b: Alignment) -> float:
    """Shared query time of two alignments as a fraction of the shorter."""
    inter = min(a.query_end, b.query_end) - max(a.query_start, b.query_start)
    shorter = min(a.query_end - a.query_start, b.query_end - b.query_start)
    return max(0.0, inter) / shorter if shorter > 0 else 0.0


def _sound_matches(audio: MediaIndex, path: Path) -> list[Match]:
    """The soundtrack's matches in ``audio`` (none when it has no usable sound)."""
    from forensics.audio.errors import ClipTooShortError, NoAudioStreamError, NoFingerprintError

    try:
        return audio.identify(path, SOUND_MATCHES)
    except (NoAudioStreamError, ClipTooShortError, NoFingerprintError):
        return []
    except MediaError:
        return []  # an undecodable soundtrack: the picture still decides


@dataclasses.dataclass(frozen=True)
class _Piece:
    """A matched stretch of a query on the line ``ref = offset + speed · query`` (seconds)."""

    query_start: float
    query_end: float
    ref_start: float
    ref_end: float
    offset: float
    speed: float

    @classmethod
    def of(cls, m: Alignment | AudioEvidence) -> _Piece:
        offset = m.ref_start - m.speed * m.query_start
        return cls(m.query_start, m.query_end, m.ref_start, m.ref_end, offset, m.speed)

    def at(self, t: float) -> float:
        return self.offset + self.speed * t


#: Two pieces of one copy may differ in speed by at most this (a short piece's speed is coarse).
LINE_SPEED = 0.15


def _on_line(line: list[_Piece], p: _Piece) -> bool:
    """Whether ``p`` continues a piece of ``line``: the two map the time between them to the
    same reference time within :data:`FUSE_SECONDS`, at speeds no further apart than
    :data:`LINE_SPEED`."""
    for q in line:
        if abs(q.speed - p.speed) > LINE_SPEED:
            continue
        t = (q.query_start + q.query_end + p.query_start + p.query_end) / 4
        if abs(q.at(t) - p.at(t)) <= FUSE_SECONDS:
            return True
    return False


def _span_of(ev: VideoEvidence, line: list[_Piece]) -> VideoEvidence:
    """``ev`` (the evidence of ``line[0]``) with its spans those of all of ``line``: from the
    first piece's start to the last piece's end, each end where that piece itself put it."""
    first = min(line, key=lambda p: p.query_start)  # ties: the earliest in ``line``, so line[0]
    last = max(line, key=lambda p: p.query_end)
    if first is line[0] and last is line[0]:
        return ev
    r0 = max(0.0, first.ref_start)
    return dataclasses.replace(
        ev,
        query_start=first.query_start,
        query_end=last.query_end,
        ref_start=r0,
        ref_end=max(r0, last.ref_end),
    )
