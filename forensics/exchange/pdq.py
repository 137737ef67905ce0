"""PDQ hashes and ThreatExchange's PDQ match rule, for hash lists shared with PDQ.

PDQ (Meta's open photo hash) gives 256 bits and a quality from 0 to 100.
ThreatExchange's PDQ signal type matches two hashes when their Hamming distance is at
most 31 bits (``PDQ_CONFIDENT_MATCH_THRESHOLD``) and does not use an image whose quality
is below 50 (too little detail to hash reliably); :class:`PdqMatcher` applies the same
rule. Hashes are 32 bytes, most significant bit first: ``hash.hex()`` is the 64-digit
form ThreatExchange exchanges.

Examples
--------
>>> import numpy as np, cv2
>>> rng = np.random.default_rng(3)
>>> img = cv2.GaussianBlur((rng.random((200, 260, 3)) * 255).astype(np.uint8), (0, 0), 3)
>>> h, q = pdq_hash(img)
>>> len(h), q >= MIN_QUALITY
(32, True)
>>> m = PdqMatcher()
>>> m.add(["w"], np.frombuffer(h, np.uint8)[None, :], np.array([q]))
>>> [(ref, d) for ref, d in m.search(img)]
[('w', 0)]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

#: Largest Hamming distance (of 256 bits) at which ThreatExchange calls two PDQ hashes a match.
MATCH_DISTANCE = 31
#: Lowest PDQ quality ThreatExchange hashes and matches on.
MIN_QUALITY = 50
BITS = 256

_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint16)


def pdq_hash(image: NDArray[np.uint8]) -> tuple[bytes, int]:
    """PDQ hash (32 bytes, MSB first) and quality of an RGB or gray uint8 image.

    Raises
    ------
    ValueError
        Not a 2-D or 3-channel uint8 image.
    """
    import pdqhash  # type: ignore[import-untyped]  # compiled extension, imported when PDQ is used

    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3):
        raise ValueError("PDQ hashes uint8 images of shape (h, w) or (h, w, 3)")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.shape[2] != 3:
        arr = arr[:, :, :3]
    bits, quality = pdqhash.compute(np.ascontiguousarray(arr))
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes(), int(quality)


def hamming(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> NDArray[np.int64]:
    """Hamming distances between each row of ``a`` ``(n, 32)`` and ``b`` ``(32,)``.

    Examples
    --------
    >>> a = np.zeros((2, 32), np.uint8); a[1, 0] = 0b1011
    >>> hamming(a, np.zeros(32, np.uint8)).tolist()
    [0, 3]
    """
    out: NDArray[np.int64] = _POPCOUNT[np.bitwise_xor(a, b[None, :])].sum(axis=1).astype(np.int64)
    return out


class PdqMatcher:
    """Brute-force PDQ matching under ThreatExchange's rule (distance ≤ 31, quality ≥ 50).

    A brute-force scan costs about a microsecond per thousand stored hashes, enough for
    the lists members exchange; hashes below ``min_quality`` are not stored.

    Parameters
    ----------
    distance : int
        Largest Hamming distance that matches.
    min_quality : int
        Lowest quality of a stored hash or a query that is matched.
    """

    def __init__(self, distance: int = MATCH_DISTANCE, min_quality: int = MIN_QUALITY) -> None:
        if not 0 <= distance < BITS:
            raise ValueError(f"a PDQ distance is 0..{BITS - 1}")
        self.distance = distance
        self.min_quality = min_quality
        self._refs: list[str] = []
        self._codes = np.zeros((0, BITS // 8), np.uint8)

    def __len__(self) -> int:
        return len(self._refs)

    def add(self, refs: Sequence[str], codes: NDArray[np.uint8], qualities: NDArray[np.integer]) -> None:
        """Store ``codes`` ``(n, 32)`` under ``refs``; those of low quality are dropped."""
        codes = np.asarray(codes, dtype=np.uint8).reshape(-1, BITS // 8)
        keep = np.asarray(qualities) >= self.min_quality
        self._refs.extend(r for r, k in zip(refs, keep, strict=True) if k)
        self._codes = np.concatenate([self._codes, codes[keep]])

    def match_hash(self, code: bytes, quality: int) -> list[tuple[str, int]]:
        """``(ref, distance)`` of the stored hashes within :attr:`distance` of ``code``, nearest first.

        Empty when the query's quality is below :attr:`min_quality`.
        """
        if quality < self.min_quality or not self._refs:
            return []
        d = hamming(self._codes, np.frombuffer(code, np.uint8))
        best: dict[str, int] = {}
        for i in np.nonzero(d <= self.distance)[0]:
            ref = self._refs[int(i)]
            best[ref] = min(best.get(ref, BITS), int(d[i]))
        return sorted(best.items(), key=lambda kv: (kv[1], kv[0]))

    def search(self, image: NDArray[np.uint8]) -> list[tuple[str, int]]:
        """:meth:`match_hash` of the image's PDQ hash."""
        return self.match_hash(*pdq_hash(image))
