"""Local features (ORB) and geometric verification (RANSAC affine) for the slow path.

The global hash cannot see a work that fills only part of the query (a crop, a screenshot,
a collage) or that was rotated by an arbitrary angle. Local features can: oriented FAST
corners with rotated BRIEF descriptors (256-bit, rotation-invariant) are extracted on a
copy whose longer side is :data:`WORK_SIDE` pixels; a query's descriptors are matched to a
candidate work's with a ratio test, and an affine transform mapping the work into the query
is fitted with RANSAC. The number of correspondences consistent with it (each query and
each reference point counted once) is the evidence; a transform that is degenerate,
mirrored or implausibly anisotropic is rejected.

Examples
--------
>>> import numpy as np, cv2
>>> rng = np.random.default_rng(3)
>>> img = cv2.GaussianBlur((rng.random((300, 400, 3)) * 255).astype(np.uint8), (0, 0), 2)
>>> ref = extract(img, REFERENCE_FEATURES)
>>> rot = cv2.warpAffine(img, cv2.getRotationMatrix2D((200, 150), 30, 1.0), (400, 300))
>>> v = verify(extract(rot, QUERY_FEATURES), ref)
>>> v is not None and v.inliers >= 20 and abs(v.rotation_deg - 30) < 3
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from forensics.image.phash import to_gray

#: Longer side, in pixels, of the copy features are extracted from.
WORK_SIDE = 640
#: Most upscaling applied to a small image before extraction.
MAX_UPSCALE = 2.0
#: Descriptors kept per registered image (400: a 50% crop or a 40% share of a screenshot
#: still keeps about 200 of them; 256 lost a tenth of such copies, see docs/forensics.md).
REFERENCE_FEATURES = 400
#: Descriptors extracted from a query.
QUERY_FEATURES = 700
#: Lowe ratio for descriptor matching during verification.
RATIO = 0.85
#: Largest Hamming distance (of 256 bits) accepted for a descriptor match.
MAX_DESCRIPTOR_DISTANCE = 80
#: RANSAC reprojection tolerance, in working-copy pixels.
RANSAC_TOLERANCE = 6.0
#: Largest ratio between the two singular values of the affine transform (aspect change).
MAX_ANISOTROPY = 1.7
#: Accepted range of the transform's scale (work in query, working copies).
SCALE_RANGE = (0.12, 8.0)
#: Fewest ratio-test correspondences worth running RANSAC on.
RANSAC_MIN_POINTS = 6
_GRID = 4


@dataclass(frozen=True)
class LocalFeatures:
    """Keypoints and ORB descriptors of one image.

    Attributes
    ----------
    points : numpy.ndarray
        ``(n, 2)`` float32 keypoint coordinates in the working copy.
    descriptors : numpy.ndarray
        ``(n, 32)`` uint8 ORB descriptors (256 bits each).
    width, height : int
        Size of the working copy.
    scale : float
        Working copy size divided by the original size.
    """

    points: NDArray[np.float32]
    descriptors: NDArray[np.uint8]
    width: int
    height: int
    scale: float

    def __len__(self) -> int:
        return int(self.descriptors.shape[0])

    def to_bytes(self) -> bytes:
        """A compact binary encoding: header, then points (float32) and descriptors.

        Examples
        --------
        >>> import numpy as np
        >>> f = LocalFeatures(np.zeros((2, 2), np.float32), np.ones((2, 32), np.uint8), 64, 48, 0.5)
        >>> LocalFeatures.from_bytes(f.to_bytes()).height
        48
        """
        header = np.array([len(self), self.width, self.height], dtype="<u4").tobytes()
        return (
            header
            + np.array([self.scale], dtype="<f8").tobytes()
            + self.points.astype("<f4").tobytes()
            + self.descriptors.tobytes()
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> LocalFeatures:
        """Decode :meth:`to_bytes` output; ``ValueError`` when the bytes are malformed."""
        if len(data) < 20:
            raise ValueError("local-feature blob shorter than its header")
        n, width, height = (int(x) for x in np.frombuffer(data[:12], dtype="<u4"))
        scale = float(np.frombuffer(data[12:20], dtype="<f8")[0])
        if len(data) != 20 + n * 8 + n * 32:
            raise ValueError(
                f"local-feature blob has {len(data)} bytes, expected {20 + n * 40} for {n} points"
            )
        points = np.frombuffer(data[20 : 20 + n * 8], dtype="<f4").reshape(n, 2).astype(np.float32)
        descriptors = np.frombuffer(data[20 + n * 8 :], dtype=np.uint8).reshape(n, 32).copy()
        return cls(points, descriptors, width, height, scale)


@dataclass(frozen=True)
class Verification:
    """A geometrically verified match of a reference image inside a query.

    Attributes
    ----------
    inliers : int
        Correspondences consistent with ``matrix`` (distinct points on both sides).
    matches : int
        Correspondences that passed the ratio test.
    matrix : numpy.ndarray
        ``(2, 3)`` affine map from reference working coordinates to query working coordinates.
    scale : float
        Geometric mean of the transform's singular values.
    rotation_deg : float
        Rotation of the reference inside the query, counter-clockwise in image display.
    """

    inliers: int
    matches: int
    matrix: NDArray[np.float64]
    scale: float
    rotation_deg: float

    def region(self, query: LocalFeatures, reference: LocalFeatures) -> list[list[float]]:
        """The reference's corners in the query's original pixel coordinates (clockwise from top-left)."""
        w, h = reference.width, reference.height
        corners = np.array([[0, 0, 1], [w, 0, 1], [w, h, 1], [0, h, 1]], dtype=np.float64)
        mapped = corners @ self.matrix.T / query.scale
        return [[round(float(x), 1), round(float(y), 1)] for x, y in mapped]


def _working_copy(gray: NDArray[np.uint8]) -> tuple[NDArray[np.uint8], float]:
    h, w = gray.shape
    scale = min(MAX_UPSCALE, WORK_SIDE / max(h, w))
    if abs(scale - 1.0) < 1e-6:
        return gray, 1.0
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(gray, size, interpolation=interp), dtype=np.uint8), scale


_ORB_CACHE: dict[int, cv2.ORB] = {}


def _orb(n: int) -> cv2.ORB:
    orb = _ORB_CACHE.get(n)
    if orb is None:
        orb = cv2.ORB.create(
            nfeatures=n, scaleFactor=1.2, nlevels=8, edgeThreshold=19, patchSize=19, fastThreshold=10
        )
        _ORB_CACHE[n] = orb
    return orb


def extract(image: NDArray[np.uint8], max_features: int) -> LocalFeatures:
    """ORB keypoints and descriptors of an RGB or gray image, spread over a 4×4 grid.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W, 3)`` RGB or ``(H, W)`` gray, uint8.
    max_features : int
        Most descriptors returned; the strongest corners of each grid cell are taken in
        turn so that every part of the image is represented (crops keep some).

    Returns
    -------
    LocalFeatures

    Examples
    --------
    >>> import numpy as np
    >>> f = extract(np.zeros((100, 100), dtype=np.uint8), 50)
    >>> len(f), f.width
    (0, 200)
    """
    gray, scale = _working_copy(to_gray(image))
    h, w = gray.shape
    keypoints, descriptors = _orb(max_features * 3).detectAndCompute(gray, None)
    if descriptors is None or not keypoints:
        return LocalFeatures(np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8), w, h, scale)
    pts = np.array([kp.pt for kp in keypoints], dtype=np.float32)
    response = np.array([kp.response for kp in keypoints], dtype=np.float32)
    cell = np.minimum((pts[:, 1] * _GRID / h).astype(int), _GRID - 1) * _GRID + np.minimum(
        (pts[:, 0] * _GRID / w).astype(int), _GRID - 1
    )
    # Rank inside each cell by response, then interleave the cells: rank 0 of every cell first.
    order = np.lexsort((-response, cell))
    rank = np.empty(len(order), dtype=int)
    sorted_cells = cell[order]
    starts = np.searchsorted(sorted_cells, sorted_cells, side="left")
    rank[order] = np.arange(len(order)) - starts
    chosen = np.lexsort((-response, rank))[:max_features]
    return LocalFeatures(
        np.ascontiguousarray(pts[chosen]), np.ascontiguousarray(descriptors[chosen]), w, h, scale
    )


_MATCHER = cv2.BFMatcher(cv2.NORM_HAMMING)


def verify(
    query: LocalFeatures, reference: LocalFeatures, min_matches: int = RANSAC_MIN_POINTS
) -> Verification | None:
    """Fit an affine map placing ``reference`` inside ``query``; ``None`` when none is plausible.

    Parameters
    ----------
    query, reference : LocalFeatures
    min_matches : int
        Fewest ratio-test correspondences worth running RANSAC on.

    Returns
    -------
    Verification or None
    """
    found = correspondences(query, reference, min_matches)
    return None if found is None else found[0]


def correspondences(
    query: LocalFeatures, reference: LocalFeatures, min_matches: int = RANSAC_MIN_POINTS
) -> tuple[Verification, NDArray[np.float64], NDArray[np.float64]] | None:
    """:func:`verify`, with the inlier point pairs that support the transform.

    Returns
    -------
    (Verification, numpy.ndarray, numpy.ndarray) or None
        The verification, then the ``(k, 2)`` reference points and the ``(k, 2)`` query
        points of its inliers, in each image's working-copy pixels (divide by the
        :attr:`LocalFeatures.scale` for original pixels); what a report draws.

    Examples
    --------
    >>> import numpy as np, cv2
    >>> rng = np.random.default_rng(3)
    >>> img = cv2.GaussianBlur((rng.random((300, 400, 3)) * 255).astype(np.uint8), (0, 0), 2)
    >>> query, ref = extract(img, QUERY_FEATURES), extract(img, REFERENCE_FEATURES)
    >>> v, ref_pts, query_pts = correspondences(query, ref)
    >>> len(ref_pts) >= v.inliers, float(np.abs(ref_pts - query_pts).max()) < 7
    (True, True)
    """
    if len(query) < 2 or len(reference) < 2:
        return None
    pairs = _MATCHER.knnMatch(query.descriptors, reference.descriptors, k=2)
    q_idx: list[int] = []
    r_idx: list[int] = []
    for pair in pairs:
        if len(pair) < 2:
            continue
        best, second = pair
        if best.distance <= MAX_DESCRIPTOR_DISTANCE and best.distance < RATIO * second.distance:
            q_idx.append(best.queryIdx)
            r_idx.append(best.trainIdx)
    if len(q_idx) < min_matches:
        return None
    src = reference.points[r_idx].astype(np.float64)
    dst = query.points[q_idx].astype(np.float64)
    matrix, mask = cv2.estimateAffine2D(
        src, dst, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_TOLERANCE, maxIters=2000, confidence=0.995
    )
    if matrix is None or mask is None:
        return None
    inl = mask.ravel().astype(bool)
    q_in = np.asarray(q_idx)[inl]
    r_in = np.asarray(r_idx)[inl]
    inliers = min(len(np.unique(q_in)), len(np.unique(r_in)))
    linear = matrix[:, :2]
    det = float(np.linalg.det(linear))
    if det <= 0:
        return None  # mirrored or degenerate: ORB descriptors do not survive flips anyway
    s = np.linalg.svd(linear, compute_uv=False)
    scale = math.sqrt(det)
    if s[0] / s[1] > MAX_ANISOTROPY or not SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]:
        return None
    # Rotation in display coordinates (y down): positive = counter-clockwise on screen.
    rotation = -math.degrees(math.atan2(float(linear[1, 0]), float(linear[0, 0])))
    verification = Verification(int(inliers), len(q_idx), matrix.astype(np.float64), scale, rotation)
    return verification, src[inl], dst[inl]
