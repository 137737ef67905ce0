"""A video's fingerprint: one 256-bit DCT hash per sampled frame, after its bars are trimmed.

Frames come from :func:`forensics.video.decode.iter_frames` (square luma, ``rate`` per
second). Per block of frames, :func:`border_box` finds letterbox and pillarbox bars: rows
and columns that stay uniform over the whole block (in space *and* time) are bars, so a
dark scene's edge is not mistaken for one. Each frame's content is hashed with the image
code's :func:`~forensics.image.phash.dct_hash`; a query also hashes the mirror image, so
a horizontally flipped copy matches. Frames with almost no detail (black, fades, flat
colour) are marked invalid: they neither vote nor count as evidence.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(3)
>>> frames = (rng.random((8, 128, 128)) * 255).astype(np.uint8)
>>> frames[:, :16] = 0; frames[:, -16:] = 0          # letterbox bars
>>> border_box(frames)
(0, 16, 128, 112)
>>> codes, mirror, valid = hash_frames(frames, border_box(frames))
>>> codes.shape, bool(valid.all())
((8, 32), True)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from forensics.image.phash import HASH_BYTES, dct_hash
from forensics.video.decode import DECODE_SIDE, iter_frames
from forensics.video.errors import VideoTooLongError, VideoTooShortError
from forensics.video.probe import Limits, VideoInfo, check, probe

__all__ = [
    "DEFAULT_RATE",
    "MIN_DETAIL",
    "VideoFingerprint",
    "border_box",
    "fingerprint_file",
    "hash_frames",
    "make_fingerprint",
]

#: Frames sampled per second, for works and queries.
DEFAULT_RATE = 4.0
#: Least standard deviation (grey levels) of a frame's content for its hash to count.
MIN_DETAIL = 8.0
#: Inset per side of the centre view a work also stores: a copy cropped by up to this much
#: on every side still shows most of the centre view.
CENTRE_INSET = 0.2
#: Frames per block (bars are found per block).
BLOCK_FRAMES = 64
#: Largest part of each dimension trimmed per side as a bar.
MAX_BAR = 0.4
#: A row or column is a bar when it varies by less than this (grey levels, standard deviation).
BAR_TOLERANCE = 5.0
_FORMAT = b"rongxin-video-fp-v1"

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class VideoFingerprint:
    """Per-frame hashes of one video.

    Attributes
    ----------
    codes : numpy.ndarray
        ``(n, 32)`` uint8: frame ``i`` (at ``i / rate`` s) hashed.
    valid : numpy.ndarray
        ``(n,)`` bool: whether frame ``i`` has enough detail to count.
    rate : float
        Frames per second.
    mirror : numpy.ndarray or None
        ``(n, 32)`` hashes of the mirrored frames (queries only).
    boxes : numpy.ndarray or None
        ``(n, 4)`` float32: each frame's content box ``x0, y0, x1, y1`` as fractions of the
        picture (queries only).
    centre : numpy.ndarray or None
        ``(n, 32)`` hashes of each frame's centre (:data:`CENTRE_INSET` trimmed from every
        side of the content), and ``centre_valid`` their validity (works only): the view a
        heavily cropped copy is matched against.
    """

    codes: NDArray[np.uint8]
    valid: NDArray[np.bool_]
    rate: float
    mirror: NDArray[np.uint8] | None = None
    boxes: NDArray[np.float32] | None = None
    centre: NDArray[np.uint8] | None = None
    centre_valid: NDArray[np.bool_] | None = None

    @property
    def duration(self) -> float:
        """Seconds covered by the sampled frames."""
        return len(self.codes) / self.rate

    @property
    def digest(self) -> bytes:
        """SHA-256 of the canonical encoding (format, rate, codes, validity), 32 bytes."""
        h = hashlib.sha256(_FORMAT)
        h.update(f"{self.rate:.6f}:{len(self.codes)}:".encode())
        h.update(np.ascontiguousarray(self.codes).tobytes())
        h.update(np.packbits(self.valid).tobytes())
        if self.centre is not None and self.centre_valid is not None:
            h.update(b"centre:" + np.ascontiguousarray(self.centre).tobytes())
            h.update(np.packbits(self.centre_valid).tobytes())
        return h.digest()


def make_fingerprint(
    codes: NDArray[np.uint8], valid: NDArray[np.bool_] | None = None, rate: float = DEFAULT_RATE
) -> VideoFingerprint:
    """A fingerprint from codes computed elsewhere (every frame valid unless ``valid`` says).

    Examples
    --------
    >>> import numpy as np
    >>> make_fingerprint(np.zeros((6, 32), np.uint8)).duration
    1.5
    """
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    if codes.ndim != 2 or codes.shape[1] != HASH_BYTES:
        raise ValueError(f"codes must be (n, {HASH_BYTES}) uint8, not {codes.shape}")
    mask = np.ones(len(codes), bool) if valid is None else np.asarray(valid, dtype=bool)
    if mask.shape != (len(codes),):
        raise ValueError("valid must hold one flag per code")
    return VideoFingerprint(codes, mask, float(rate))


def _leading(profile: NDArray[np.float32], limit: int) -> int:
    n = 0
    while n < limit and profile[n] < BAR_TOLERANCE:
        n += 1
    return n


def border_box(frames: NDArray[np.uint8]) -> Box:
    """The content box ``(x0, y0, x1, y1)`` of a block of frames ``(n, side, side)``.

    A row is a bar when its pixels vary by less than :data:`BAR_TOLERANCE` over the whole
    block (across the row and across the frames); at most :data:`MAX_BAR` of a dimension
    is trimmed per side.
    """
    f = frames.astype(np.float32)
    _, h, w = f.shape
    row_std = f.transpose(1, 0, 2).reshape(h, -1).std(axis=1)
    col_std = f.transpose(2, 0, 1).reshape(w, -1).std(axis=1)
    top = _leading(row_std, int(h * MAX_BAR))
    bottom = _leading(row_std[::-1], int(h * MAX_BAR))
    left = _leading(col_std, int(w * MAX_BAR))
    right = _leading(col_std[::-1], int(w * MAX_BAR))
    if h - top - bottom < 8 or w - left - right < 8:
        return (0, 0, w, h)
    return (left, top, w - right, h - bottom)


def centre_box(box: Box) -> Box:
    """The centre view of a content box: :data:`CENTRE_INSET` of it trimmed from every side.

    Examples
    --------
    >>> centre_box((0, 10, 100, 60))
    (20, 20, 80, 50)
    """
    x0, y0, x1, y1 = box
    dx, dy = round((x1 - x0) * CENTRE_INSET), round((y1 - y0) * CENTRE_INSET)
    return (x0 + dx, y0 + dy, x1 - dx, y1 - dy)


def hash_frames(
    frames: NDArray[np.uint8], box: Box, *, mirror: bool = True
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.bool_]]:
    """Hashes, mirrored hashes (zeros unless ``mirror``) and validity of ``frames`` cropped to ``box``."""
    x0, y0, x1, y1 = box
    codes = np.empty((len(frames), HASH_BYTES), np.uint8)
    mirrored = np.zeros_like(codes)
    valid = np.empty(len(frames), bool)
    for i, frame in enumerate(frames):
        crop = np.ascontiguousarray(frame[y0:y1, x0:x1])
        codes[i] = dct_hash(crop)
        if mirror:
            mirrored[i] = dct_hash(np.ascontiguousarray(crop[:, ::-1]))
        valid[i] = float(crop.std()) >= MIN_DETAIL
    return codes, mirrored, valid


def fingerprint_blocks(
    blocks: Iterable[NDArray[np.uint8]], rate: float, *, query: bool = False
) -> VideoFingerprint:
    """The fingerprint of frame blocks (:func:`~forensics.video.decode.iter_frames`).

    A work's (``query=False``) has the centre view too; a query's the mirrored hashes and
    the content boxes.
    """
    codes: list[NDArray[np.uint8]] = []
    mirrors: list[NDArray[np.uint8]] = []
    valid: list[NDArray[np.bool_]] = []
    boxes: list[NDArray[np.float32]] = []
    centres: list[NDArray[np.uint8]] = []
    centre_valid: list[NDArray[np.bool_]] = []
    for block in blocks:
        box = border_box(block)
        c, m, v = hash_frames(block, box, mirror=query)
        codes.append(c)
        valid.append(v)
        if not query:
            cc, _, cv = hash_frames(block, centre_box(box), mirror=False)
            centres.append(cc)
            centre_valid.append(cv)
        if query:
            mirrors.append(m)
            side = block.shape[1]
            boxes.append(np.tile(np.asarray(box, np.float32) / side, (len(block), 1)))
    if not codes:
        empty = np.zeros((0, HASH_BYTES), np.uint8)
        if query:
            return VideoFingerprint(empty, np.zeros(0, bool), rate, empty, np.zeros((0, 4), np.float32))
        return VideoFingerprint(empty, np.zeros(0, bool), rate, centre=empty, centre_valid=np.zeros(0, bool))
    if query:
        return VideoFingerprint(
            np.concatenate(codes), np.concatenate(valid), rate, np.concatenate(mirrors), np.concatenate(boxes)
        )
    return VideoFingerprint(
        np.concatenate(codes),
        np.concatenate(valid),
        rate,
        centre=np.concatenate(centres),
        centre_valid=np.concatenate(centre_valid),
    )


def fingerprint_file(
    path: Path,
    *,
    rate: float = DEFAULT_RATE,
    limits: Limits | None = None,
    query: bool = False,
    min_valid: int = 4,
    info: VideoInfo | None = None,
) -> VideoFingerprint:
    """Probe, check, decode and hash ``path``.

    Parameters
    ----------
    path : Path
        A video file.
    rate : float
        Frames per second sampled.
    limits : Limits, optional
        What is accepted (:class:`~forensics.video.probe.Limits` by default).
    query : bool
        A query: decoded leniently (a damaged upload is matched on what decodes), with
        mirrored hashes and content boxes.
    min_valid : int
        Fewest frames with detail the fingerprint must have.
    info : VideoInfo, optional
        The file's probe, when already read.

    Raises
    ------
    MediaError
        Empty, missing, not a video (:class:`NotVideoError`), a still picture
        (:class:`StillImageError`), out of limits (:class:`VideoLimitsError`,
        :class:`VideoTooLongError`), damaged (:class:`VideoDecodeError`, works only), or
        with too little picture (:class:`VideoTooShortError`).
    """
    limits = limits or Limits()
    info = info or probe(path)
    check(path, info, limits)
    cap = int(limits.max_seconds * rate) + 1
    blocks = iter_frames(
        path, rate=rate, side=DECODE_SIDE, block=BLOCK_FRAMES, strict=not query, max_frames=cap + 1
    )
    fp = fingerprint_blocks(blocks, rate, query=query)
    if len(fp.codes) > cap:
        raise VideoTooLongError(
            f"{path} lasts more than the {limits.max_seconds:.0f} s accepted; cut it into parts"
        )
    if int(fp.valid.sum()) < min_valid:
        raise VideoTooShortError(
            f"{path} gave {len(fp.codes)} sampled frames, {int(fp.valid.sum())} with detail; at least "
            f"{min_valid} frames with detail ({min_valid / rate:g} s of picture) are needed"
        )
    return fp
