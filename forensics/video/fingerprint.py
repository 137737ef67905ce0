"""A video's fingerprint: one 256-bit DCT hash per sampled frame, after its bars are trimmed.

Frames come from :func:`forensics.video.decode.iter_frames` (square luma, ``rate`` per
second). Per block of frames, :func:`border_box` finds letterbox and pillarbox bars: rows
and columns that stay uniform over the whole block (in space *and* time) are bars, so a
dark scene's edge is not mistaken for one. Each frame's content is hashed with the image
code's :func:`~forensics.image.phash.dct_hash`; a query also hashes the mirror image, so
a horizontally flipped copy matches. Frames with almost no detail (black, fades, flat
colour) or with no edges (smooth gradients, a blurred sky: :func:`frame_quality` below
:data:`MIN_QUALITY`) are marked invalid: they neither vote nor count as evidence.

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
import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from forensics.image.phash import HASH_BYTES, dct_hash
from forensics.video.avdecode import DecodeStats, query_frames
from forensics.video.decode import DECODE_SIDE, iter_frames
from forensics.video.errors import VideoTooLongError, VideoTooShortError
from forensics.video.probe import Limits, VideoInfo, check, probe

__all__ = [
    "DEFAULT_RATE",
    "MIN_DETAIL",
    "MIN_QUALITY",
    "VideoFingerprint",
    "border_box",
    "fingerprint_file",
    "frame_quality",
    "hash_frames",
    "make_fingerprint",
]

#: Frames sampled per second, for works and queries.
DEFAULT_RATE = 4.0
#: Least standard deviation (grey levels) of a frame's content for its hash to count.
MIN_DETAIL = 8.0
#: Least :func:`frame_quality` for a frame's hash to count: the level below which
#: ThreatExchange's vPDQ leaves a frame out of matching, on the same scale as PDQ's quality.
MIN_QUALITY = 50
#: Inset per side of the centre view a work also stores: a copy cropped by up to this much
#: on every side still shows most of the centre view.
CENTRE_INSET = 0.2
#: Frames per block (bars are found per block).
BLOCK_FRAMES = 64
#: Decoder threads for a query: one per core, at most 4 (latency counts; a registration
#: decodes on one thread, so that a batch of registrations uses one core each). Frame
#: threading gives the same frames.
QUERY_DECODE_THREADS = max(1, min(4, os.cpu_count() or 1))
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
    inset, inset_mirror, inset_valid, inset_boxes : numpy.ndarray or None
        Queries only: hashes (as decoded and mirrored), validity and boxes (fractions of
        the picture; NaN where none) of a picture-in-picture inset found in each frame's
        block by :func:`inset_box` (invalid where none was found).
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
    inset: NDArray[np.uint8] | None = None
    inset_mirror: NDArray[np.uint8] | None = None
    inset_valid: NDArray[np.bool_] | None = None
    inset_boxes: NDArray[np.float32] | None = None

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
    frames: NDArray[np.uint8], box: Box, *, mirror: bool = True, min_quality: int = MIN_QUALITY
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.bool_]]:
    """Hashes, mirrored hashes (zeros unless ``mirror``) and validity of ``frames`` cropped to ``box``.

    A frame is valid when its content varies by :data:`MIN_DETAIL` grey levels and its
    :func:`frame_quality` reaches ``min_quality`` (0: no quality gate).
    """
    x0, y0, x1, y1 = box
    codes = np.empty((len(frames), HASH_BYTES), np.uint8)
    mirrored = np.zeros_like(codes)
    valid = np.empty(len(frames), bool)
    for i, frame in enumerate(frames):
        crop = np.ascontiguousarray(frame[y0:y1, x0:x1])
        codes[i] = dct_hash(crop)
        if mirror:
            mirrored[i] = dct_hash(np.ascontiguousarray(crop[:, ::-1]))
        valid[i] = float(crop.std()) >= MIN_DETAIL and (
            min_quality <= 0 or frame_quality(crop) >= min_quality
        )
    return codes, mirrored, valid


def frame_quality(image: NDArray[np.uint8]) -> int:
    """How much edge a picture holds, 0–100, on the scale of PDQ's quality metric.

    The picture is reduced to 64 × 64 (area average); every pair of neighbouring pixels,
    across and down, adds its difference in whole percent of the grey range (differences
    under 1 % add nothing); the sum over 90 is the quality, at most 100. A smooth gradient
    or a blurred sky scores under 10 whatever its contrast, because no neighbour differs
    from the next by a whole percent; a picture with texture or outlines scores 100. The
    DCT hash of a picture without edges is decided by its few lowest frequencies, which
    unrelated smooth pictures share, so such frames match by chance.

    Examples
    --------
    >>> import numpy as np
    >>> ramp = np.tile(np.linspace(60, 200, 128), (128, 1)).astype(np.uint8)
    >>> frame_quality(ramp) < 10
    True
    >>> rng = np.random.default_rng(0)
    >>> frame_quality((rng.random((128, 128)) * 255).astype(np.uint8))
    100
    """
    small = cv2.resize(np.ascontiguousarray(image), (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32)
    scale = np.float32(100.0 / 255.0)
    across = np.floor(np.abs(np.diff(small, axis=1)) * scale).sum()
    down = np.floor(np.abs(np.diff(small, axis=0)) * scale).sum()
    return min(100, int((across + down) / 90))


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
    insets: list[tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.bool_], NDArray[np.float32]]] = []
    last: tuple[NDArray[np.uint8], Box | None] | None = None  # the block before, and its inset's box
    for block in blocks:
        box = border_box(block)
        c, m, v = hash_frames(block, box, mirror=query)
        codes.append(c)
        valid.append(v)
        if not query:
            cc, _, cv = hash_frames(block, centre_box(box), mirror=False)
            centres.append(cc)
            centre_valid.append(cv)
        else:
            # an inset stays where it is: a block that finds no box, or one that the box of the
            # block before holds (:func:`_holds`: a box on lasting edges of the inset's own
            # content), keeps that block's box; a block before that found none, or one this
            # block's box holds, takes this block's (one block back: memory stays one block)
            found = inset_box(block)
            before = last[1] if last is not None else None
            side = block.shape[1]
            if before is not None and (found is None or _holds(before, found, side)):
                found = before
            elif found is not None and last is not None and (before is None or _holds(found, before, side)):
                insets[-1] = _inset_hashes(last[0], found)
            insets.append(_inset_hashes(block, found))
            last = (block, found)
            mirrors.append(m)
            boxes.append(np.tile(np.asarray(box, np.float32) / side, (len(block), 1)))
    if not codes:
        empty = np.zeros((0, HASH_BYTES), np.uint8)
        if query:
            return VideoFingerprint(empty, np.zeros(0, bool), rate, empty, np.zeros((0, 4), np.float32))
        return VideoFingerprint(empty, np.zeros(0, bool), rate, centre=empty, centre_valid=np.zeros(0, bool))
    if query:
        return VideoFingerprint(
            np.concatenate(codes),
            np.concatenate(valid),
            rate,
            np.concatenate(mirrors),
            np.concatenate(boxes),
            inset=np.concatenate([i[0] for i in insets]),
            inset_mirror=np.concatenate([i[1] for i in insets]),
            inset_valid=np.concatenate([i[2] for i in insets]),
            inset_boxes=np.concatenate([i[3] for i in insets]),
        )
    return VideoFingerprint(
        np.concatenate(codes),
        np.concatenate(valid),
        rate,
        centre=np.concatenate(centres),
        centre_valid=np.concatenate(centre_valid),
    )


def _inset_hashes(
    block: NDArray[np.uint8], box: Box | None
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.bool_], NDArray[np.float32]]:
    """Hashes, mirrored hashes, validity and boxes of the block's inset at ``box`` (all invalid when none)."""
    n, side = len(block), block.shape[1]
    if box is None:
        zeros = np.zeros((n, HASH_BYTES), np.uint8)
        return zeros, zeros, np.zeros(n, bool), np.full((n, 4), np.nan, np.float32)
    # no quality gate: an inset is a picture shrunk to a fraction of the frame and blurred
    # by the rescaling, where the quality metric reads far lower than for the same picture
    # full size (a shot of quality 100 in the work read 39-40 as a quarter-frame inset);
    # the four lasting edges that found the box already say that it holds a picture
    c, m, v = hash_frames(block, box, min_quality=0)
    return c, m, v, np.tile(np.asarray(box, np.float32) / side, (n, 1))


def fingerprint_file(
    path: Path,
    *,
    rate: float = DEFAULT_RATE,
    limits: Limits | None = None,
    query: bool = False,
    min_valid: int = 4,
    info: VideoInfo | None = None,
    threads: int | None = None,
    decoder: str = "pyav",
    stats: DecodeStats | None = None,
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
    threads : int, optional
        Decoder threads: :data:`QUERY_DECODE_THREADS` for a query, 1 for a work by default.
        The frames decoded are the same whatever the count.
    decoder : str
        A query's decoder: ``"pyav"`` (in this process, only the frames the samples need;
        :func:`forensics.video.avdecode.query_frames`, which falls back to the ffmpeg
        process for what PyAV cannot open) or ``"ffmpeg"`` (the ffmpeg process). A work
        is always decoded by the ffmpeg process, whose error report makes a damaged
        stream an error.
    stats : DecodeStats, optional
        Filled in by a query's PyAV decode.

    Raises
    ------
    MediaError
        Empty, missing, not a video (:class:`NotVideoError`), a still picture
        (:class:`StillImageError`), out of limits (:class:`VideoLimitsError`,
        :class:`VideoTooLongError`), damaged (:class:`VideoDecodeError`, works only), or
        with too little picture (:class:`VideoTooShortError`).
    """
    if decoder not in ("pyav", "ffmpeg"):
        raise ValueError(f"decoder must be 'pyav' or 'ffmpeg', not {decoder!r}")
    limits = limits or Limits()
    info = info or probe(path)
    check(path, info, limits)
    cap = int(limits.max_seconds * rate) + 1
    if threads is None:
        threads = QUERY_DECODE_THREADS if query else 1
    blocks: Iterator[NDArray[np.uint8]]
    if query and decoder == "pyav":
        blocks = query_frames(
            path,
            rate=rate,
            side=DECODE_SIDE,
            block=BLOCK_FRAMES,
            max_frames=cap + 1,
            threads=threads,
            rotation=info.rotation,
            max_pixels=limits.max_pixels,
            stats=stats,
        )
    else:
        blocks = iter_frames(
            path,
            rate=rate,
            side=DECODE_SIDE,
            block=BLOCK_FRAMES,
            strict=not query,
            max_frames=cap + 1,
            threads=threads,
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


#: Smallest and largest side (decoded pixels, of 128) of a picture-in-picture inset searched.
INSET_SIDES = (32, 100)
#: Height / width of the insets searched, in the decoded square frame: an inset of the host's
#: aspect ratio (1), a 4:3 picture in a 16:9 host (4/3) and the reverse (3/4).
INSET_ASPECTS = (1.0, 4 / 3, 3 / 4)
#: How much stronger than the block's average the inset's weakest edge must be.
INSET_EDGE_RATIO = 2.5
#: How strong, as a share of the strongest box's, a box holding it must be to be taken instead.
INSET_HOLD = 0.5


#: Parts each side of an inset is cut into: a side is as strong as its weakest part, so that a
#: box reaching past the inset's corner (over the host's content) is not taken for it.
INSET_SIDE_PARTS = 4
#: Share of the host's picture in the box's outermost row or column from which it is left out
#: (the inset's side fell inside that decoded pixel; a half-pixel blend holds 0.5, a line of
#: the inset alone 0). A hash of the inset loses more to a fifth of a host line kept than to
#: a line of the inset left out.
INSET_BLEND = 0.3


def inset_box(frames: NDArray[np.uint8]) -> Box | None:
    """A picture-in-picture inset in a block of frames ``(n, side, side)``, or ``None``.

    An inset is another picture pasted into the frame: along its four sides neighbouring
    pixels belong to unrelated pictures, so the mean absolute difference across each side
    (averaged over the block's frames) is much larger than inside natural content, and
    that along the side's whole length. Boxes of the shapes :data:`INSET_ASPECTS` in the
    decoded frame, of every size in :data:`INSET_SIDES` and place, are scored by their
    weakest side, each side by the weakest of its :data:`INSET_SIDE_PARTS` parts (a side on
    the frame's border counts as present), against the block's mean difference; of the
    boxes whose ratio reaches :data:`INSET_EDGE_RATIO`, the largest within 10 % of the
    strongest is taken. Each of its sides is then moved by up to a pixel to the strongest
    edge, so that the box holds no row or column that is mostly the host's.

    Examples
    --------
    >>> import numpy as np, cv2
    >>> rng = np.random.default_rng(2)
    >>> def smooth(n, side):
    ...     return np.stack([cv2.GaussianBlur(rng.random((side, side)) * 255, (0, 0), 3) for _ in range(n)])
    >>> host = smooth(4, 128)
    >>> host[:, 40:88, 40:88] = smooth(4, 48)
    >>> inset_box((host * 3 - 256).clip(0, 255).astype(np.uint8))
    (40, 40, 88, 88)
    """
    f = frames.astype(np.float32)
    _, h, w = f.shape
    raw_r = np.abs(np.diff(f, axis=1)).mean(axis=0)  # (h-1, w): between row r and r+1
    raw_c = np.abs(np.diff(f, axis=2)).mean(axis=0)  # (h, w-1)
    base = float(raw_r.mean() + raw_c.mean()) / 2 + 1e-3
    ir = np.pad(raw_r, ((1, 1), (0, 0)))  # index t: the edge above row t (0 on the borders)
    ic = np.pad(raw_c, ((0, 0), (1, 1)))  # index l: the edge left of column l
    # a side may be a pixel off the square's (the inset's size is not a multiple of 2 pixels
    # here); the border's credit stays on the border: lent to the line next to it, it let a
    # box of an inset flush with the border stop a pixel short of it, on the inset's content
    er = ir + 0.5 * np.maximum(np.roll(ir, 1, axis=0), np.roll(ir, -1, axis=0))
    ec = ic + 0.5 * np.maximum(np.roll(ic, 1, axis=1), np.roll(ic, -1, axis=1))
    for a in (er, ir):  # a side on the frame's border counts as present
        a[[0, -1]] = 1e6
    for a in (ec, ic):
        a[:, [0, -1]] = 1e6
    cr = np.concatenate([np.zeros((h + 1, 1), np.float32), np.cumsum(er, axis=1)], axis=1)
    cc = np.concatenate([np.zeros((1, w + 1), np.float32), np.cumsum(ec, axis=0)], axis=0)
    found: list[tuple[float, int, Box]] = []  # (score, area, box): the best place of each size
    lo, hi = INSET_SIDES
    for aspect in INSET_ASPECTS:
        for sw in range(lo, min(hi, w - 1) + 1, 2):
            sh = round(sw * aspect)
            if not lo <= sh <= min(hi, h - 1):
                continue
            k, m = h - sh + 1, w - sw + 1
            horiz = _weakest_part(cr, sw, m)  # [t, x]: edge above row t along columns x..x+sw
            vert = _weakest_part(cc.T, sh, k).T  # [t, x]: edge left of column x along rows t..t+sh
            top, bottom = horiz[:k], horiz[sh : sh + k]
            left, right = vert[:, :m], vert[:, sw : sw + m]
            weakest = np.minimum(np.minimum(top, bottom), np.minimum(left, right))
            t, x = np.unravel_index(int(np.argmax(weakest)), weakest.shape)
            score = float(weakest[t, x]) / base
            if INSET_EDGE_RATIO <= score < 1e5:  # not a box of borders alone
                found.append((score, sw * sh, (int(x), int(t), int(x) + sw, int(t) + sh)))
    if not found:
        return None
    # the largest box nearly as strong as the strongest, or, holding the strongest, at least
    # half as strong: a smaller box inside the inset borrows lasting edges of its content
    # (a still photo panned slowly) for one or two sides and may outscore the inset's own,
    # but it shares the inset's other sides, so the inset's box holds it
    score, _, best = max(found, key=lambda b: b[0])
    return _snap(
        max(
            (
                b
                for b in found
                if b[0] >= 0.9 * score or (b[0] >= INSET_HOLD * score and _holds(b[2], best, w))
            ),
            key=lambda b: b[1],
        )[2],
        f,
        ir,
        ic,
    )


def _holds(outer: Box, inner: Box, side: int) -> bool:
    """Whether ``outer`` is the inset that box ``inner`` lies in, anchored at its sides.

    A box inside an inset borrows lasting edges of the inset's content for the sides it
    does not share with the inset, so the inset's box holds it (to a pixel) and grows past
    it on at most one end of each axis. A box that grows past it at both ends of an axis
    runs on over the host's content, and one that reaches the frame's border where
    ``inner`` does not ran on to it (a side there costs nothing): neither is taken.
    """
    grows = [
        outer[0] < inner[0] - 1,
        outer[1] < inner[1] - 1,
        outer[2] > inner[2] + 1,
        outer[3] > inner[3] + 1,
    ]
    if (
        outer[0] > inner[0] + 1
        or outer[1] > inner[1] + 1
        or outer[2] < inner[2] - 1
        or outer[3] < inner[3] - 1
    ):
        return False
    if (grows[0] and grows[2]) or (grows[1] and grows[3]):
        return False
    on = [outer[0] == 0, outer[1] == 0, outer[2] == side, outer[3] == side]
    was = [inner[0] == 0, inner[1] == 0, inner[2] == side, inner[3] == side]
    return not any(o and not i for o, i in zip(on, was, strict=True))


def _weakest_part(cum: NDArray[np.float32], length: int, places: int) -> NDArray[np.float32]:
    """Per row of ``cum`` (cumulative sums along axis 1) and start ``0..places-1``: the lowest mean
    over the :data:`INSET_SIDE_PARTS` parts of the ``length`` values from that start."""
    cuts = [round(j * length / INSET_SIDE_PARTS) for j in range(INSET_SIDE_PARTS + 1)]
    out = np.full((cum.shape[0], places), np.inf, np.float32)
    for a, b in itertools.pairwise(cuts):
        np.minimum(out, (cum[:, b : b + places] - cum[:, a : a + places]) / np.float32(b - a), out=out)
    return out


def _blend(lines: NDArray[np.float32], line: int, inward: int) -> float:
    """The share of the host's picture in ``line``, the box's outermost line on one side.

    ``lines`` are the block's lines across that side (``(n, lines, length)``, rows or
    columns); ``inward`` the step towards the box's inside. ``line`` is fitted, over every
    frame (each line less its mean in that frame), by least squares as ``b · host + c ·
    inner``: ``inner`` the next line in, ``host`` the host's line two out (one out when that
    is the frame's edge), clear of a blend that the side's own pixel may hold. The host and
    the inset are unrelated pictures, so a line of the inset alone owes the host nothing
    (``b`` near 0, however strong the inset's own detail there), while a line that the
    inset's side cut inside a decoded pixel holds its share of the host. The host two lines
    away stands for the host at ``line`` only in part, so ``b`` is divided by how much of the
    host's line one out is carried by its line three out (the same distance; at least 0.4).
    """
    n = lines.shape[1]

    def centred(i: int) -> NDArray[np.float64]:  # line i of every frame, less its mean there
        a: NDArray[np.float64] = lines[:, i].astype(np.float64)
        return np.asarray(a - a.mean(axis=1, keepdims=True), dtype=np.float64)

    host = line - 2 * inward if 0 <= line - 2 * inward < n else line - inward
    y, u, v = centred(line), centred(host), centred(line + inward)
    uu, vv, uv = float((u * u).sum()), float((v * v).sum()), float((u * v).sum())
    det = uu * vv - uv * uv
    if det <= 1e-6 * max(uu * vv, 1e-12):  # flat or alike lines: nothing to tell apart
        return 0.0
    share = (float((u * y).sum()) * vv - float((v * y).sum()) * uv) / det
    far = host - 2 * inward
    if host == line - 2 * inward and 0 <= far < n:
        # the host's own likeness two lines apart, measured one and three lines out
        a, c = centred(line - inward), centred(far)
        cc = float((c * c).sum())
        if cc > 1e-6 * c.size:
            share /= min(1.0, max(0.4, float((a * c).sum()) / cc))
    return share


def _snap(box: Box, f: NDArray[np.float32], er: NDArray[np.float32], ec: NDArray[np.float32]) -> Box:
    """``box`` with each side not on the frame's border moved to the inset's outermost whole pixels.

    ``f`` are the block's frames, ``er[t]`` the edge above row ``t`` and ``ec[:, l]`` the
    edge left of column ``l`` (the frame's borders included, unsmoothed). The scores
    tolerate a side a pixel off, but a hash of the inset does not: a row of the host inside
    the box changes many bits. Each side moves by up to a pixel to its strongest edge; then,
    when the box's outermost row or column there holds at least :data:`INSET_BLEND` of the
    host's picture (:func:`_blend`: the inset's side fell inside a decoded pixel), it is
    left out. An inset placed on whole pixels keeps its outermost row and column, however
    strong the inset's own detail next to them.
    """
    x0, y0, x1, y1 = box
    h, w = er.shape[0] - 1, ec.shape[1] - 1
    rows = f[:, :, x0:x1]  # (n, h, width): the lines of a top or bottom side
    cols = f[:, y0:y1, :].transpose(0, 2, 1)  # (n, w, height): those of a left or right side

    def side(pos: int, n: int, inward: int, along: Callable[[int], float], lines: NDArray[np.float32]) -> int:
        if pos in (0, n):
            return pos
        pos = max((p for p in (pos - 1, pos, pos + 1) if 0 < p < n), key=along)
        line = pos if inward > 0 else pos - 1  # the box's outermost line on this side
        if 0 < pos + inward < n and _blend(lines, line, inward) >= INSET_BLEND:
            return pos + inward
        return pos

    def row(t: int) -> float:
        return float(er[t, x0:x1].mean())

    def col(c: int) -> float:
        return float(ec[y0:y1, c].mean())

    return (
        side(x0, w, 1, col, cols),
        side(y0, h, 1, row, rows),
        side(x1, w, -1, col, cols),
        side(y1, h, -1, row, rows),
    )
