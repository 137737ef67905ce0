"""A 256-bit DCT perceptual hash with border trimming and the eight flips/rotations.

The hash is the fast path of image identification. An image is reduced to luma, cropped to
its content (uniform borders, letterbox bars and padding are trimmed), shrunk to 64×64 by
area averaging, and transformed with a 2-D DCT; the 256 lowest-frequency AC coefficients
(in zig-zag order) are compared with their median, one bit each. Near copies differ in a
few dozen bits; unrelated photos differ in about half of them (128).

A registered work stores one hash. A query computes eight: one per element of the
dihedral group (identity, two flips, three rotations by multiples of 90°, two
transpositions), each *undoing* that transform, so a mirrored or rotated copy matches the
original's hash.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> img = (rng.random((96, 128)) * 255).astype(np.uint8)
>>> h = dct_hash(img)
>>> h.shape, h.dtype
((32,), dtype('uint8'))
>>> variants = dihedral_hashes(np.rot90(img))
>>> int(hamming(variants[DIHEDRAL.index("rot90")], h))
0
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
from numpy.typing import NDArray

#: Bits in a hash.
HASH_BITS = 256
#: Bytes in a packed hash.
HASH_BYTES = HASH_BITS // 8
#: Side of the square the image is shrunk to before the DCT.
DCT_SIDE = 64
#: Names of the transforms a query may have undergone, in the order of :func:`dihedral_hashes`.
DIHEDRAL: tuple[str, ...] = (
    "none",
    "flip_h",
    "flip_v",
    "rot180",
    "rot90",
    "rot270",
    "transpose",
    "anti_transpose",
)

GrayImage = NDArray[np.uint8]
Box = tuple[int, int, int, int]


def _zigzag_positions(count: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """The first ``count`` AC positions of a zig-zag scan (DC excluded)."""
    cells = sorted(
        ((u, v) for u in range(DCT_SIDE // 2) for v in range(DCT_SIDE // 2) if (u, v) != (0, 0)),
        key=lambda uv: (uv[0] + uv[1], uv[0] if (uv[0] + uv[1]) % 2 else uv[1]),
    )[:count]
    rows = np.array([c[0] for c in cells], dtype=np.intp)
    cols = np.array([c[1] for c in cells], dtype=np.intp)
    return rows, cols


_ROWS, _COLS = _zigzag_positions(HASH_BITS)

# Each entry undoes the transform named at the same position of DIHEDRAL.
_UNDO: tuple[Callable[[NDArray[np.float32]], NDArray[np.float32]], ...] = (
    lambda a: a,
    lambda a: a[:, ::-1],
    lambda a: a[::-1, :],
    lambda a: a[::-1, ::-1],
    lambda a: np.rot90(a, -1),
    lambda a: np.rot90(a, 1),
    lambda a: a.T,
    lambda a: a[::-1, ::-1].T,
)


def to_gray(rgb: NDArray[np.uint8]) -> GrayImage:
    """Luma (ITU-R BT.601) of an RGB or already-gray uint8 image.

    Examples
    --------
    >>> import numpy as np
    >>> to_gray(np.full((2, 2, 3), 100, dtype=np.uint8)).tolist()
    [[100, 100], [100, 100]]
    """
    if rgb.ndim == 2:
        return rgb
    return np.asarray(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY), dtype=np.uint8)


def content_box(gray: GrayImage, tolerance: float = 6.0, max_fraction: float = 0.45) -> Box:
    """The box ``(x0, y0, x1, y1)`` left after trimming uniform borders from each side.

    A row or column is border when its pixels (measured on an area-averaged copy at most
    256 px wide, so that noise averages out) vary by less than ``tolerance`` grey levels in
    standard deviation. At most ``max_fraction`` of each dimension is trimmed per side.

    Examples
    --------
    >>> import numpy as np
    >>> g = np.zeros((100, 100), dtype=np.uint8)
    >>> g[20:80, 10:90] = 50 + np.arange(80, dtype=np.uint8)[None, :] * 2
    >>> content_box(g)
    (10, 20, 90, 80)
    """
    h, w = gray.shape
    scale = min(1.0, 256.0 / max(h, w))
    small: NDArray[np.generic] = gray
    if scale < 1.0:
        small = cv2.resize(
            gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
        )
    sh, sw = small.shape
    f = small.astype(np.float32)
    row_std = f.std(axis=1)
    col_std = f.std(axis=0)

    def trim(profile: NDArray[np.float32], limit: int) -> int:
        n = 0
        while n < limit and profile[n] < tolerance:
            n += 1
        return n

    top = trim(row_std, int(sh * max_fraction))
    bottom = trim(row_std[::-1], int(sh * max_fraction))
    left = trim(col_std, int(sw * max_fraction))
    right = trim(col_std[::-1], int(sw * max_fraction))
    x0, x1 = round(left / scale), w - round(right / scale)
    y0, y1 = round(top / scale), h - round(bottom / scale)
    if x1 - x0 < 8 or y1 - y0 < 8:  # a (nearly) uniform image: keep it whole
        return (0, 0, w, h)
    return (x0, y0, x1, y1)


def _dct_square(gray: GrayImage) -> NDArray[np.float32]:
    x0, y0, x1, y1 = content_box(gray)
    crop = gray[y0:y1, x0:x1]
    small = cv2.resize(crop, (DCT_SIDE, DCT_SIDE), interpolation=cv2.INTER_AREA)
    return np.asarray(small, dtype=np.float32)


def _bits(square: NDArray[np.float32]) -> NDArray[np.uint8]:
    coeffs = cv2.dct(np.ascontiguousarray(square))[_ROWS, _COLS]
    return np.packbits(coeffs > np.median(coeffs))


def dct_hash(image: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """The 256-bit hash of an RGB or gray image, packed into 32 bytes.

    Examples
    --------
    >>> import numpy as np
    >>> g = np.tile(np.arange(64, dtype=np.uint8) * 4, (64, 1))
    >>> len(dct_hash(g).tobytes())
    32
    """
    return _bits(_dct_square(to_gray(image)))


def dihedral_hashes(image: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Eight hashes ``(8, 32)``: row ``i`` undoes the transform ``DIHEDRAL[i]`` first.

    Examples
    --------
    >>> import numpy as np
    >>> g = (np.random.default_rng(1).random((80, 60)) * 255).astype(np.uint8)
    >>> hs = dihedral_hashes(g[:, ::-1])
    >>> int(hamming(hs[DIHEDRAL.index("flip_h")], dct_hash(g)))
    0
    """
    square = _dct_square(to_gray(image))
    return np.stack([_bits(np.ascontiguousarray(undo(square))) for undo in _UNDO])


def hamming(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> int:
    """Number of differing bits between two packed hashes.

    Examples
    --------
    >>> import numpy as np
    >>> hamming(np.array([0b1010], dtype=np.uint8), np.array([0b0110], dtype=np.uint8))
    2
    """
    return int(np.unpackbits(np.bitwise_xor(a, b)).sum())
