"""Export a library's fingerprints as hash-list entries (read-only; the works stay home).

What an entry holds, per kind:

* image — each frame's 256-bit DCT hash and its local features exactly as the image index
  stores them (``<library>/image/image.db``), and optionally PDQ hashes, computed from the
  original files when the exporter still has them (the library keeps no media);
* audio — the landmark hashes and anchor frames of the main and the bass layer, read back
  from the audio index's segments, and the reference peaks the index verifies with;
* video — the picture's per-frame hashes as the video index stores them (each sampled
  frame's content and centre view, frame ``i`` at ``i / rate`` s, with their detail
  flags), and the soundtrack's audio layers when it was registered.

A work is named by an opaque reference, :func:`work_reference` — derived from its content
digest, so the same work keeps its reference from one export to the next and the exporter
can tell which work a reference means (``rongxin works export --refs``), while a reader
learns nothing of titles or files. The work's id is included only when asked.

Examples
--------
>>> import tempfile, pathlib, numpy as np, cv2
>>> from forensics.library import Library
>>> rng = np.random.default_rng(7)
>>> img = cv2.GaussianBlur((rng.random((240, 320, 3)) * 255).astype(np.uint8), (0, 0), 2)
>>> with Library(pathlib.Path(tempfile.mkdtemp())) as lib:
...     reg = lib.register(img, "poster-1")
...     (entry,) = export_entries(lib)
>>> entry.kind, entry.ref == work_reference(reg.content_digest), entry.title, len(entry.frames)
('image', True, None, 1)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from chain.crypto.sm3 import sm3, sm3_file
from forensics.errors import ForensicsError, LibraryError
from forensics.exchange.errors import HashListError
from forensics.exchange.hashlist import (
    SIGNAL_AUDIO,
    SIGNAL_AUDIO_BASS,
    SIGNAL_IMAGE,
    SIGNAL_PDQ,
    SIGNAL_VIDEO,
    AudioLayer,
    Entry,
    ImageFrame,
    PdqHash,
    VideoPicture,
)
from forensics.types import Registration

if TYPE_CHECKING:
    from forensics.audio.storage import LayerStorage
    from forensics.library import Library

log = logging.getLogger(__name__)

#: Version of the image fingerprint the entries carry (the image index's ``FINGERPRINT_FORMAT``).
IMAGE_FINGERPRINT = "rongxin-image-fp-v2"
#: Version of the video picture fingerprint the entries carry.
VIDEO_FINGERPRINT = "rongxin-video-fp-v1"
#: Kinds a hash list carries.
KINDS = ("image", "audio", "video")


def work_reference(content_digest: bytes) -> str:
    """The opaque reference of a work in hash lists: ``rx-`` and 32 hex digits.

    SM3 of a fixed label and the work's content digest: stable across exports, and
    computable only by someone holding the work's exact bytes.

    Examples
    --------
    >>> work_reference(bytes(32))  # doctest: +ELLIPSIS
    'rx-...'
    >>> len(work_reference(bytes(32)))
    35
    """
    return "rx-" + sm3(b"rongxin/hash-list/work-reference\n" + content_digest).hex()[:32]


def signal_parameters(lib: Library, kinds: Iterable[str], pdq: bool) -> dict[str, Any]:
    """The header's ``signals``: the parameters a reader needs to use each signal type."""
    out: dict[str, Any] = {}
    kinds = set(kinds)
    if "image" in kinds:
        from forensics.image.index import HASH_THRESHOLD, INLIER_THRESHOLD

        out[SIGNAL_IMAGE] = {
            "fingerprint": IMAGE_FINGERPRINT,
            "hash_bits": 256,
            "features": "orb-256",
            "hash_threshold": HASH_THRESHOLD,
            "inlier_threshold": INLIER_THRESHOLD,
        }
        if pdq:
            from forensics.exchange.pdq import MATCH_DISTANCE, MIN_QUALITY

            out[SIGNAL_PDQ] = {"bits": 256, "match_distance": MATCH_DISTANCE, "min_quality": MIN_QUALITY}
    if "video" in kinds:
        video: Any = lib.index("video")
        out[SIGNAL_VIDEO] = {
            "fingerprint": VIDEO_FINGERPRINT,
            "hash_bits": 256,
            "rate": video.rate,
            "views": ["full", "centre"],
            "frame_bits": video.params.frame_bits,
            "threshold": video.threshold,
        }
    sound = "video" in kinds and (lib.directory / "audio").is_dir()  # video works' soundtracks
    if "audio" in kinds or sound:
        index: Any = lib.index("audio")
        out[SIGNAL_AUDIO] = {"params": index.params.to_dict()}
        if index.bass is not None:
            out[SIGNAL_AUDIO_BASS] = {"params": index.bass.params.to_dict()}
    return out


def _image_frames(lib: Library, work_ids: list[str], features: bool) -> dict[str, list[ImageFrame]]:
    """Every frame of the image works ``work_ids`` as stored by the image index."""
    from forensics.sqlite_ro import connect_readonly

    db_path = lib.directory / "image" / "image.db"
    if not work_ids:
        return {}
    try:
        db = connect_readonly(db_path)
    except Exception as exc:  # sqlite3 errors or a missing file
        raise LibraryError(f"cannot read the image index {db_path}: {exc}") from exc
    out: dict[str, list[ImageFrame]] = {w: [] for w in work_ids}
    try:
        for work_id, hash_blob, feat_blob in db.execute(
            "SELECT work_id, hash, features FROM items ORDER BY work_id, frame, item_id"
        ):
            if work_id in out:
                out[work_id].append(ImageFrame(bytes(hash_blob), bytes(feat_blob) if features else None))
    finally:
        db.close()
    return out


@dataclass(frozen=True)
class _Landmarks:
    hashes: npt.NDArray[np.uint32]
    frames: npt.NDArray[np.uint32]
    n_frames: int
    rowid: int


def layer_landmarks(storage: LayerStorage, work_ids: set[str]) -> dict[str, _Landmarks]:
    """The landmarks of the live works ``work_ids`` of one audio layer, read from its segments.

    One pass over every segment: a stored value is a frame on the layer's global frame
    axis, and each work holds its own range of it.
    """
    storage.sync(force=True)
    works = storage.works
    rows = [
        k for k, (w, alive) in enumerate(zip(works.ids, works.alive, strict=True)) if alive and w in work_ids
    ]
    if not rows:
        return {}
    bases = works.bases[rows].astype(np.int64)
    ends = bases + works.frames[rows].astype(np.int64)
    order = np.argsort(bases, kind="stable")
    bases, ends = bases[order], ends[order]
    ordered_rows = [rows[i] for i in order]
    parts_h: list[list[npt.NDArray[np.uint32]]] = [[] for _ in ordered_rows]
    parts_f: list[list[npt.NDArray[np.int64]]] = [[] for _ in ordered_rows]
    for seg in storage.store.segments():
        vals = np.asarray(seg.vals).astype(np.int64)
        keys = np.asarray(seg.keys)
        slot = np.searchsorted(bases, vals, side="right") - 1
        ok = (slot >= 0) & (vals < ends[np.clip(slot, 0, None)])
        for s in np.unique(slot[ok]):
            sel = ok & (slot == s)
            parts_h[int(s)].append(keys[sel].astype(np.uint32))
            parts_f[int(s)].append(vals[sel] - bases[int(s)])
    out: dict[str, _Landmarks] = {}
    for i, row in enumerate(ordered_rows):
        h = np.concatenate(parts_h[i]) if parts_h[i] else np.zeros(0, np.uint32)
        f = (np.concatenate(parts_f[i]) if parts_f[i] else np.zeros(0, np.int64)).astype(np.uint32)
        sort = np.lexsort((f, h))
        out[works.ids[row]] = _Landmarks(h[sort], f[sort], int(works.frames[row]), int(works.rowids[row]))
    return out


def _audio_layer(storage: LayerStorage, marks: _Landmarks, frame_seconds: float, peaks: bool) -> AudioLayer:
    from forensics.audio.peakstore import encode_peaks

    peaks_t = peaks_lf = b""
    if peaks:
        ref = storage.reference(marks.rowid)
        if ref is not None:
            peaks_t, peaks_lf = encode_peaks(ref)
    duration = max(0, marks.n_frames - 1) * frame_seconds
    return AudioLayer(round(duration, 6), marks.hashes, marks.frames, peaks_t, peaks_lf)


def _audio_entries(
    lib: Library, regs: list[Registration], peaks: bool
) -> dict[str, tuple[AudioLayer, AudioLayer | None]]:
    if not regs:
        return {}
    index: Any = lib.index("audio")
    ids = {r.work_id for r in regs}
    main = layer_landmarks(index.storage, ids)
    low = layer_landmarks(index.bass.storage, ids) if index.bass is not None else {}
    out: dict[str, tuple[AudioLayer, AudioLayer | None]] = {}
    for r in regs:
        if r.work_id not in main:
            raise LibraryError(f"audio work {r.work_id!r} is in the catalogue but not in the audio index")
        m = _audio_layer(index.storage, main[r.work_id], index.params.frame_seconds, peaks)
        b = None
        if r.work_id in low:
            b = _audio_layer(index.bass.storage, low[r.work_id], index.bass.params.frame_seconds, peaks)
        out[r.work_id] = (m, b)
    return out


def _video_entries(
    lib: Library, regs: list[Registration], peaks: bool
) -> dict[str, tuple[VideoPicture, AudioLayer | None, AudioLayer | None]]:
    """The picture (and soundtrack, when registered) of each video work of ``regs``."""
    if not regs:
        return {}
    index: Any = lib.index("video")
    pictures: dict[str, tuple[VideoPicture, bool]] = {}
    for r in regs:
        try:
            fp, sound = index.work_fingerprint(r.work_id)
        except ForensicsError as exc:
            raise LibraryError(f"video work {r.work_id!r}: {exc}") from exc
        centre = b"" if fp.centre is None else np.ascontiguousarray(fp.centre, np.uint8).tobytes()
        centre_valid = b"" if fp.centre_valid is None else np.packbits(fp.centre_valid).tobytes()
        picture = VideoPicture(
            fp.rate,
            np.ascontiguousarray(fp.codes, np.uint8).tobytes(),
            np.packbits(fp.valid).tobytes(),
            centre,
            centre_valid,
        )
        pictures[r.work_id] = (picture, sound)
    heard = [r for r in regs if pictures[r.work_id][1]]
    sounds = _audio_entries(lib, heard, peaks) if heard else {}
    out: dict[str, tuple[VideoPicture, AudioLayer | None, AudioLayer | None]] = {}
    for w, (picture, _sound) in pictures.items():
        main, low = sounds.get(w, (None, None))
        out[w] = (picture, main, low)
    return out


def find_media(regs: Iterable[Registration], media_dirs: Iterable[Path]) -> dict[str, Path]:
    """The original files of ``regs`` under ``media_dirs``: found by name, checked by content SM3.

    A work's file is looked for under the name ``works add`` recorded (metadata
    ``source``) and accepted only when its SM3 equals the registered content digest.
    """
    by_name: dict[str, list[Path]] = {}
    for d in media_dirs:
        for root, _dirs, files in os.walk(d):
            for name in files:
                by_name.setdefault(name, []).append(Path(root) / name)
    found: dict[str, Path] = {}
    for r in regs:
        source = r.metadata.get("source")
        if not isinstance(source, str):
            continue
        for candidate in by_name.get(source, []):
            try:
                if sm3_file(candidate) == r.content_digest:
                    found[r.work_id] = candidate
                    break
            except Exception:  # unreadable candidate: try the next one
                continue
    return found


def _pdq_of(path: Path) -> list[PdqHash]:
    from forensics.exchange.pdq import pdq_hash
    from forensics.image.decode import load_frames

    return [PdqHash(*pdq_hash(frame)) for frame in load_frames(path)]


def export_entries(
    lib: Library,
    *,
    kinds: Iterable[str] = KINDS,
    work_ids: Iterable[str] | None = None,
    reveal_ids: bool = False,
    features: bool = True,
    peaks: bool = True,
    pdq_media: Iterable[Path] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Entry]:
    """Hash-list entries for a library's works.

    Parameters
    ----------
    lib : Library
        The library (read-only is enough).
    kinds : iterable of {"image", "audio", "video"}
        Kinds exported.
    work_ids : iterable of str, optional
        Only these works (every work of ``kinds`` when omitted).
    reveal_ids : bool
        Put each work's id in its entry's ``title``.
    features : bool
        Include image local features (else the global DCT hash only, which does not find
        crops or collages).
    peaks : bool
        Include audio reference peaks, of audio works and of video works' soundtracks
        (else the importer verifies with the coarser anchor peaks the landmarks imply).
    pdq_media : iterable of Path, optional
        Directories holding the image works' original files: each image entry whose file
        is found there (:func:`find_media`) gets its PDQ hashes.
    progress : callable, optional
        Called with each work id as it is exported.

    Returns
    -------
    list of Entry
        By work id.

    Raises
    ------
    LibraryError
        A named work is missing, or an index cannot be read.
    """
    kinds = set(kinds)
    if not kinds <= set(KINDS):
        raise HashListError(
            f"hash lists carry image, audio and video works, not {sorted(kinds - set(KINDS))}"
        )
    if work_ids is None:
        regs = [r for r in lib.works() if r.kind in kinds]
    else:
        regs = [lib.work(w) for w in work_ids]
        other = [r.work_id for r in regs if r.kind not in kinds]
        if other:
            raise HashListError(
                f"works {other[:5]} are not of the kinds exported ({', '.join(sorted(kinds))})"
            )
    images = [r for r in regs if r.kind == "image"]
    frames = _image_frames(lib, [r.work_id for r in images], features)
    media = find_media(images, pdq_media) if pdq_media is not None else {}
    audio = _audio_entries(lib, [r for r in regs if r.kind == "audio"], peaks)
    video = _video_entries(lib, [r for r in regs if r.kind == "video"], peaks)
    out: list[Entry] = []
    for r in sorted(regs, key=lambda r: r.work_id):
        if progress is not None:
            progress(r.work_id)
        ref = work_reference(r.content_digest)
        title = r.work_id if reveal_ids else None
        if r.kind == "image":
            if not frames.get(r.work_id):
                raise LibraryError(f"image work {r.work_id!r} is in the catalogue but not in the image index")
            pdq: list[PdqHash] = []
            if r.work_id in media:
                try:
                    pdq = _pdq_of(media[r.work_id])
                except ForensicsError as exc:
                    log.warning("no PDQ hash for %s: %s", r.work_id, exc)
            out.append(
                Entry(
                    ref, "image", r.fingerprint_digest, title, frames=tuple(frames[r.work_id]), pdq=tuple(pdq)
                )
            )
        elif r.kind == "video":
            picture, sound, low = video[r.work_id]
            out.append(Entry(ref, "video", r.fingerprint_digest, title, audio=sound, bass=low, video=picture))
        else:
            main, bass = audio[r.work_id]
            out.append(Entry(ref, "audio", r.fingerprint_digest, title, audio=main, bass=bass))
    return out


def references(regs: Iterable[Registration]) -> Mapping[str, str]:
    """Reference → work id, for the exporter's own records (``works export --refs``).

    Examples
    --------
    >>> r = Registration("w", "image", bytes(32), bytes(32))
    >>> references([r]) == {work_reference(bytes(32)): "w"}
    True
    """
    return {work_reference(r.content_digest): r.work_id for r in regs}
