"""The persistent image index: global hashes (fast path) and local features (slow path).

Layout inside the index directory (``<library>/image/``)::

    image.db                        SQLite (WAL): every registered frame's fingerprint
    descriptors-<item>-<seq>.ivf    the descriptor inverted file, when the library is large

The database is the source of truth. In memory, two :class:`GrowingBinaryIndex` caches are
kept in step with it by *item id* (monotonic, one per registered frame) and *removal
sequence*: every ``add``, ``remove`` and ``identify`` first applies what other processes
committed since, so concurrent readers and writers see each other's work. The descriptor
inverted file is saved under a name carrying the state it reflects; on open, the newest is
loaded and the rest replayed from the database.

Decision rule (the slow path runs only when the fast path finds nothing):

- **fast path**: the query's eight dihedral hashes against registered hashes; a work
  matches when a Hamming distance is at most ``hash_threshold`` bits;
- **slow path**: the query's ORB descriptors vote for works through the descriptor index;
  the best-voted works are verified (ratio test + RANSAC affine); a work matches when at
  least ``inlier_threshold`` correspondences agree. When none does, the same is done on
  the query's horizontal mirror (ORB descriptors are not mirror-invariant), at the same
  threshold, so that a mirrored copy that was also rotated, cropped or captioned is found.

Both thresholds were calibrated on unrelated images so that none of 1.6 million
(query, work) calibration pairs matched (target: a false-positive rate of at most 1e-4, and
an unregistered image returns nothing; see ``docs/forensics.md``). When the fast path finds
nothing, the works nearest in hash are verified too. Scores are mapped so that the
threshold is 0.5 on both paths and 1.0 is certain.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from chain.crypto.sm3 import sm3
from forensics.errors import LibraryError
from forensics.evidence import ImageFeatureEvidence, ImageHashEvidence, points
from forensics.image import features as feat
from forensics.image.binindex import GrowingBinaryIndex
from forensics.image.decode import DEFAULT_MAX_FRAMES, DEFAULT_MAX_PIXELS, ImageSource, load_frames
from forensics.image.phash import DIHEDRAL, content_box, dct_hash, dihedral_hashes, to_gray
from forensics.sqlite_ro import connect_readonly
from forensics.types import Match, MediaKind

log = logging.getLogger(__name__)

#: Largest Hamming distance (of 256 bits) at which two hashes are the same work.
HASH_THRESHOLD = 29
#: Fewest verified correspondences at which a local-feature match is the same work.
INLIER_THRESHOLD = 15
#: False-positive rate per (query, work) pair the thresholds were calibrated for.
FPR_TARGET = 1e-4
#: Score at the decision threshold (both paths).
SCORE_AT_THRESHOLD = 0.5
#: Descriptor ids are ``item_id * _DESC_STRIDE + j``.
_DESC_STRIDE = 1024
#: Largest Hamming distance for a descriptor to vote.
VOTE_DISTANCE = 64
#: Neighbours per query descriptor in the vote.
VOTE_NEIGHBOURS = 3
#: Works verified geometrically per query frame.
VERIFY_CANDIDATES = 8
#: Fewest votes for a work to be verified.
MIN_VOTES = 5
#: Registered images nearest in hash (under any of the eight orientations) that are verified
#: geometrically as well, whatever their votes: a copy whose hash moved just past the
#: threshold (a small rotation, a crop) is usually still the nearest hash.
HASH_CANDIDATES = 3
#: Format tag hashed into the fingerprint digest.
FINGERPRINT_FORMAT = b"rongxin-image-fp-v2"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    item_id INTEGER PRIMARY KEY AUTOINCREMENT,
    work_id TEXT NOT NULL,
    frame INTEGER NOT NULL,
    hash BLOB NOT NULL,
    features BLOB NOT NULL,
    n_desc INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS items_work ON items(work_id);
CREATE TABLE IF NOT EXISTS removed (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id INTEGER NOT NULL,
    n_desc INTEGER NOT NULL
);
"""


class ImageFingerprint:
    """The fingerprint of one image frame: its hash and local features.

    Examples
    --------
    >>> import numpy as np
    >>> g = (np.random.default_rng(0).random((120, 160)) * 255).astype(np.uint8)
    >>> fp = ImageFingerprint.of(g)
    >>> len(fp.hash.tobytes()), len(fp.features) <= feat.REFERENCE_FEATURES
    (32, True)
    """

    __slots__ = ("features", "hash")

    def __init__(self, hash_: NDArray[np.uint8], features: feat.LocalFeatures) -> None:
        self.hash = hash_
        self.features = features

    @classmethod
    def of(cls, image: NDArray[np.uint8]) -> ImageFingerprint:
        """Fingerprint an RGB or gray uint8 image."""
        return cls(dct_hash(image), feat.extract(image, feat.REFERENCE_FEATURES))


def fingerprint_digest(fingerprints: list[ImageFingerprint]) -> bytes:
    """SM3 over a canonical encoding of a work's frame fingerprints (format tag, then each frame).

    Examples
    --------
    >>> import numpy as np
    >>> g = (np.random.default_rng(0).random((64, 64)) * 255).astype(np.uint8)
    >>> len(fingerprint_digest([ImageFingerprint.of(g)]))
    32
    """
    parts = [FINGERPRINT_FORMAT, len(fingerprints).to_bytes(4, "big")]
    for fp in fingerprints:
        blob = fp.features.to_bytes()
        parts += [fp.hash.tobytes(), len(blob).to_bytes(4, "big"), blob]
    return sm3(b"".join(parts))


def hash_score(distance: int, threshold: int) -> float:
    """Score of a hash match: 1.0 at distance 0, 0.5 at the threshold, 0 at twice it.

    Examples
    --------
    >>> hash_score(0, 60), hash_score(60, 60), hash_score(200, 60)
    (1.0, 0.5, 0.0)
    """
    return float(min(1.0, max(0.0, 0.5 + 0.5 * (threshold - distance) / threshold)))


def inlier_score(inliers: int, threshold: int) -> float:
    """Score of a local-feature match: 0.5 at the threshold, 1.0 at twice it.

    Examples
    --------
    >>> inlier_score(14, 14), inlier_score(100, 14)
    (0.5, 1.0)
    """
    return float(min(1.0, inliers / (2.0 * threshold)))


class ImageIndex:
    """Image works in one directory; implements :class:`forensics.types.MediaIndex`.

    Parameters
    ----------
    directory : Path
        Created if missing.
    hash_threshold, inlier_threshold : int
        Decision thresholds; the defaults are the calibrated ones.
    max_pixels : int
        Largest accepted image (pixels per frame).
    hash_ivf_min, desc_ivf_min : int
        Sizes at which the hash and descriptor indexes become inverted files.
    readonly : bool
        Open an existing index for lookups only: nothing is created or written (the
        descriptor inverted file is not saved); adding or removing fails.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, cv2
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> rng = np.random.default_rng(5)
    >>> img = cv2.GaussianBlur((rng.random((240, 320, 3)) * 255).astype(np.uint8), (0, 0), 2)
    >>> idx = ImageIndex(d)
    >>> len(idx.add_array("w1", img))
    32
    >>> [m.work_id for m in idx.identify_array(img[::-1, :], 5)]
    ['w1']
    >>> idx.close()
    """

    kind: ClassVar[MediaKind] = "image"

    def __init__(
        self,
        directory: Path,
        *,
        hash_threshold: int = HASH_THRESHOLD,
        inlier_threshold: int = INLIER_THRESHOLD,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_frames: int = DEFAULT_MAX_FRAMES,
        hash_ivf_min: int = 20_000,
        desc_ivf_min: int = 50_000,
        readonly: bool = False,
    ) -> None:
        self.directory = Path(directory)
        self.readonly = readonly
        try:
            if readonly:
                self._db = connect_readonly(self.directory / "image.db")
            else:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.directory / "image.db", timeout=30.0, check_same_thread=False)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise LibraryError(f"cannot open the image index in {self.directory}: {exc}") from exc
        self.hash_threshold = hash_threshold
        self.inlier_threshold = inlier_threshold
        self.max_pixels = max_pixels
        self.max_frames = max_frames
        self._lock = threading.RLock()
        self._hashes = GrowingBinaryIndex(ivf_min=hash_ivf_min, nprobe=32)
        self._desc = GrowingBinaryIndex(ivf_min=desc_ivf_min, nprobe=8)
        self._item_work: dict[int, str] = {}
        self._max_item = 0
        self._removed_seq = 0
        self._desc_dirty = False
        self._load()

    # -- synchronisation with the database ---------------------------------------------------

    def _db_state(self) -> tuple[int, int]:
        row = self._db.execute(
            "SELECT (SELECT COALESCE(MAX(item_id), 0) FROM items), "
            "(SELECT COALESCE(MAX(seq), 0) FROM removed)"
        ).fetchone()
        return int(row[0]), int(row[1])

    def _load(self) -> None:
        """Build the caches: hashes from the database, descriptors from a saved file if any."""
        saved = self._saved_descriptor_files()
        desc_from: tuple[int, int] | None = None
        for item, seq, path in saved:
            try:
                self._desc.load(path)
                desc_from = (item, seq)
                break
            except ValueError as exc:
                log.warning("ignoring unreadable descriptor index %s: %s", path, exc)
        rows = self._db.execute("SELECT item_id, work_id, hash, features, n_desc FROM items ORDER BY item_id")
        hashes, hash_ids, codes, code_ids = [], [], [], []
        for item_id, work_id, hash_blob, feat_blob, _n in rows:
            self._item_work[item_id] = work_id
            hashes.append(np.frombuffer(hash_blob, dtype=np.uint8))
            hash_ids.append(item_id)
            if desc_from is None or item_id > desc_from[0]:
                features = feat.LocalFeatures.from_bytes(feat_blob)
                codes.append(features.descriptors)
                code_ids.append(item_id * _DESC_STRIDE + np.arange(len(features), dtype=np.int64))
        if hashes:
            self._hashes.add(np.stack(hashes), np.asarray(hash_ids, dtype=np.int64))
        if desc_from is not None:
            for _seq, item_id, n_desc in self._db.execute(
                "SELECT seq, item_id, n_desc FROM removed WHERE seq > ?", (desc_from[1],)
            ):
                self._desc.remove(item_id * _DESC_STRIDE + np.arange(n_desc, dtype=np.int64))
        if codes:
            self._desc.add(np.concatenate(codes), np.concatenate(code_ids))
            self._desc_dirty = self._desc.is_ivf
        self._max_item, self._removed_seq = self._db_state()

    def _refresh(self) -> None:
        """Apply items added and removed (by any process) since the caches were last in step."""
        max_item, removed_seq = self._db_state()
        if (max_item, removed_seq) == (self._max_item, self._removed_seq):
            return
        rows = self._db.execute(
            "SELECT item_id, work_id, hash, features FROM items WHERE item_id > ? ORDER BY item_id",
            (self._max_item,),
        ).fetchall()
        if rows:
            self._hashes.add(
                np.stack([np.frombuffer(r[2], dtype=np.uint8) for r in rows]),
                np.array([r[0] for r in rows], dtype=np.int64),
            )
            codes, ids = [], []
            for item_id, work_id, _h, blob in rows:
                self._item_work[item_id] = work_id
                features = feat.LocalFeatures.from_bytes(blob)
                codes.append(features.descriptors)
                ids.append(item_id * _DESC_STRIDE + np.arange(len(features), dtype=np.int64))
            self._desc.add(np.concatenate(codes), np.concatenate(ids))
            self._desc_dirty = True
        removed = self._db.execute(
            "SELECT item_id, n_desc FROM removed WHERE seq > ?", (self._removed_seq,)
        ).fetchall()
        if removed:
            self._hashes.remove(np.array([r[0] for r in removed], dtype=np.int64))
            self._desc.remove(
                np.concatenate([i * _DESC_STRIDE + np.arange(n, dtype=np.int64) for i, n in removed])
            )
            for item_id, _n in removed:
                self._item_work.pop(item_id, None)
            self._desc_dirty = True
        self._max_item = max(max_item, self._max_item)
        self._removed_seq = removed_seq

    def _saved_descriptor_files(self) -> list[tuple[int, int, Path]]:
        found = []
        for path in self.directory.glob("descriptors-*-*.ivf"):
            parts = path.stem.split("-")
            with contextlib.suppress(ValueError, IndexError):
                found.append((int(parts[1]), int(parts[2]), path))
        return sorted(found, reverse=True)

    def flush(self) -> None:
        """Save the descriptor inverted file (when there is one and it changed)."""
        with self._lock:
            if self.readonly or not (self._desc.is_ivf and self._desc_dirty):
                return
            target = self.directory / f"descriptors-{self._max_item}-{self._removed_seq}.ivf"
            try:
                self._desc.save_replacing(target, "descriptors-*-*.ivf")
            except (OSError, RuntimeError) as exc:
                raise LibraryError(f"cannot save the descriptor index to {target}: {exc}") from exc
            self._desc_dirty = False

    # -- MediaIndex ----------------------------------------------------------------------------

    def add(self, work_id: str, path: Path) -> bytes:
        """Fingerprint the image (every frame, up to ``max_frames``) and index it under ``work_id``."""
        frames = load_frames(path, max_pixels=self.max_pixels, max_frames=self.max_frames)
        return self.add_fingerprints(work_id, [ImageFingerprint.of(f) for f in frames])

    def add_array(self, work_id: str, image: ImageSource) -> bytes:
        """Like :meth:`add` for an array (or a path)."""
        frames = load_frames(image, max_pixels=self.max_pixels, max_frames=self.max_frames)
        return self.add_fingerprints(work_id, [ImageFingerprint.of(f) for f in frames])

    def add_fingerprints(self, work_id: str, fingerprints: list[ImageFingerprint]) -> bytes:
        """Index precomputed fingerprints (one per frame) under ``work_id``; returns their digest."""
        return self.add_many([(work_id, fingerprints)])[0]

    def add_many(self, works: list[tuple[str, list[ImageFingerprint]]]) -> list[bytes]:
        """Index many works' precomputed fingerprints in one transaction; their digests in order."""
        rows = []
        digests = []
        for work_id, fingerprints in works:
            if not fingerprints:
                raise LibraryError(f"no fingerprint given for work {work_id!r}")
            digests.append(fingerprint_digest(fingerprints))
            rows += [
                (work_id, i, fp.hash.tobytes(), fp.features.to_bytes(), len(fp.features))
                for i, fp in enumerate(fingerprints)
            ]
        with self._lock:
            try:
                with self._db:
                    self._db.executemany(
                        "INSERT INTO items (work_id, frame, hash, features, n_desc) VALUES (?, ?, ?, ?, ?)",
                        rows,
                    )
            except sqlite3.Error as exc:
                raise LibraryError(f"cannot store fingerprints in {self.directory}: {exc}") from exc
            self._refresh()
        return digests

    def remove(self, work_id: str) -> bool:
        """Forget every frame of ``work_id``; ``False`` when it was not indexed."""
        with self._lock:
            try:
                with self._db:
                    rows = self._db.execute(
                        "SELECT item_id, n_desc FROM items WHERE work_id = ?", (work_id,)
                    ).fetchall()
                    if not rows:
                        return False
                    self._db.execute("DELETE FROM items WHERE work_id = ?", (work_id,))
                    self._db.executemany("INSERT INTO removed (item_id, n_desc) VALUES (?, ?)", rows)
            except sqlite3.Error as exc:
                raise LibraryError(f"cannot remove {work_id!r} from the image index: {exc}") from exc
            self._refresh()
            return True

    def identify(self, path: Path, top_k: int) -> list[Match]:
        """Registered works found in the image at ``path`` (any frame), best first."""
        frames = load_frames(path, max_pixels=self.max_pixels, max_frames=self.max_frames)
        return self._identify_frames(frames, top_k)

    def identify_array(self, image: ImageSource, top_k: int = 5) -> list[Match]:
        """Like :meth:`identify` for an array (or a path)."""
        frames = load_frames(image, max_pixels=self.max_pixels, max_frames=self.max_frames)
        return self._identify_frames(frames, top_k)

    def stats(self) -> dict[str, Any]:
        """Counts of works, frames and descriptors, and the index structures in use."""
        with self._lock:
            self._refresh()
            works = self._db.execute("SELECT COUNT(DISTINCT work_id) FROM items").fetchone()[0]
            return {
                "works": int(works),
                "frames": len(self._item_work),
                "descriptors": self._desc.ntotal,
                "hash_index": f"ivf({self._hashes.nlist})" if self._hashes.is_ivf else "flat",
                "descriptor_index": f"ivf({self._desc.nlist})" if self._desc.is_ivf else "flat",
                "hash_threshold": self.hash_threshold,
                "inlier_threshold": self.inlier_threshold,
                "fpr_target": FPR_TARGET,
            }

    def close(self) -> None:
        """Save the descriptor index if it changed and close the database."""
        with self._lock:
            try:
                self.flush()
            finally:
                self._db.close()

    # -- identification ------------------------------------------------------------------------

    def _identify_frames(self, frames: list[NDArray[np.uint8]], top_k: int) -> list[Match]:
        if top_k < 1:
            raise ValueError("top_k must be at least 1")
        best: dict[str, Match] = {}
        with self._lock:
            self._refresh()
            for number, frame in enumerate(frames):
                for match in self._identify_one(frame, top_k):
                    if len(frames) > 1 and isinstance(
                        match.evidence, ImageHashEvidence | ImageFeatureEvidence
                    ):
                        evidence = dataclasses.replace(match.evidence, query_frame=number)
                        match = Match.of(match.work_id, match.score, match.threshold, evidence)
                    kept = best.get(match.work_id)
                    if kept is None or match.score > kept.score:
                        best[match.work_id] = match
        ranked = sorted(best.values(), key=lambda m: (-m.score, m.work_id))
        return ranked[:top_k]

    def _identify_one(self, image: NDArray[np.uint8], top_k: int) -> list[Match]:
        matches, nearest = self.hash_matches(image, top_k)
        if matches:
            return matches
        return self.feature_matches(image, top_k, nearest)

    def work_of_item(self, item: int) -> str | None:
        """The work a registered frame (item, as in ``evidence.item``) belongs to, or ``None``."""
        with self._lock:
            return self._item_work.get(int(item))

    def hash_matches(self, image: NDArray[np.uint8], top_k: int) -> tuple[list[Match], list[int]]:
        """The fast path on one frame: hash matches, and the items nearest in hash.

        The nearest items are the candidates :meth:`feature_matches` verifies when no hash
        matches. :meth:`identify` runs both paths; this is for inspecting one.
        """
        if self._hashes.ntotal == 0:
            return [], []
        variants = dihedral_hashes(image)
        k = min(self._hashes.ntotal, max(top_k, 4, HASH_CANDIDATES))
        dist, ids = self._hashes.search(variants, k)
        flat = np.argsort(dist, axis=None, kind="stable")
        nearest: list[int] = []
        for item in ids.ravel()[flat]:
            if item >= 0 and int(item) not in nearest:
                nearest.append(int(item))
            if len(nearest) == HASH_CANDIDATES:
                break
        found: dict[str, tuple[int, int, int]] = {}
        for variant in range(len(DIHEDRAL)):
            for d, item in zip(dist[variant], ids[variant], strict=True):
                if item < 0 or d > self.hash_threshold:
                    continue
                work = self._item_work.get(int(item))
                if work is not None and (work not in found or d < found[work][0]):
                    found[work] = (int(d), variant, int(item))
        if not found:
            return [], nearest
        h, w = image.shape[:2]
        x0, y0, x1, y1 = content_box(to_gray(image))
        out = []
        for work, (d, variant, item) in found.items():
            evidence = ImageHashEvidence(
                hamming=d,
                hash_threshold=self.hash_threshold,
                transform=DIHEDRAL[variant],
                region=points([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]),
                query_size=(w, h),
                item=item,
                fpr_target=FPR_TARGET,
            )
            out.append(Match.of(work, hash_score(d, self.hash_threshold), SCORE_AT_THRESHOLD, evidence))
        return out, nearest

    def _voted(self, query: feat.LocalFeatures) -> list[int]:
        """The best-voted registered items (one vote per query descriptor and item)."""
        dist, ids = self._desc.search(query.descriptors, VOTE_NEIGHBOURS)
        ok = (ids >= 0) & (dist <= VOTE_DISTANCE)
        items = ids[ok] // _DESC_STRIDE
        if len(items) == 0:
            return []
        pairs = np.unique(np.stack([np.nonzero(ok)[0], items], axis=1), axis=0)
        cand, votes = np.unique(pairs[:, 1], return_counts=True)
        order = np.argsort(-votes, kind="stable")
        return [int(cand[i]) for i in order[:VERIFY_CANDIDATES] if votes[i] >= MIN_VOTES]

    def feature_matches(self, image: NDArray[np.uint8], top_k: int, nearest: list[int]) -> list[Match]:
        """The slow path on one frame: local features verified on the best-voted items and ``nearest``.

        ORB descriptors do not survive a mirror image, so when the query as given verifies
        against no work, its horizontal mirror is tried the same way (features extracted
        from the flipped pixels, voted and verified at the same inlier threshold) and a
        match found so is marked ``mirrored`` in its evidence. A vertical flip is a
        horizontal one turned by 180°, which the rotation-invariant features absorb.
        """
        if self._desc.ntotal == 0:
            return []
        found = self._verified(image, nearest, mirrored=False)
        if not found:
            found = self._verified(image, nearest, mirrored=True)
        return list(found.values())

    def _verified(self, image: NDArray[np.uint8], nearest: list[int], *, mirrored: bool) -> dict[str, Match]:
        """Works whose features verify in ``image`` (or in its horizontal mirror), by work."""
        h, w = image.shape[:2]
        query = feat.extract(np.ascontiguousarray(image[:, ::-1]) if mirrored else image, feat.QUERY_FEATURES)
        if len(query) < feat.RANSAC_MIN_POINTS:
            return {}
        chosen = list(dict.fromkeys(self._voted(query) + nearest))
        if not chosen:
            return {}
        placeholders = ",".join("?" * len(chosen))
        rows = self._db.execute(
            f"SELECT item_id, work_id, features FROM items WHERE item_id IN ({placeholders})", chosen
        ).fetchall()
        found: dict[str, Match] = {}
        for item_id, work_id, blob in rows:
            reference = feat.LocalFeatures.from_bytes(blob)
            verified = feat.verify(query, reference)
            if verified is None or verified.inliers < self.inlier_threshold:
                continue
            score = inlier_score(verified.inliers, self.inlier_threshold)
            if work_id in found and found[work_id].score >= score:
                continue
            region = verified.region(query, reference)
            rotation = verified.rotation_deg
            if mirrored:
                # Back to the query's own pixels; mirroring after a rotation by a turns it into -a.
                region = [[round(w - x, 1), y] for x, y in region]
                rotation = -rotation
            evidence = ImageFeatureEvidence(
                inliers=verified.inliers,
                inlier_threshold=self.inlier_threshold,
                rotation_deg=round(rotation, 1) + 0.0,
                scale=round(verified.scale * reference.scale / query.scale, 3),
                region=points(region),
                query_size=(w, h),
                item=int(item_id),
                fpr_target=FPR_TARGET,
                mirrored=mirrored,
            )
            found[work_id] = Match.of(work_id, score, SCORE_AT_THRESHOLD, evidence)
        return found
