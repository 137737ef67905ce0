"""A binary-code index that starts exact and becomes an inverted file as it grows.

Small collections are searched exhaustively (``faiss.IndexBinaryFlat``); once a collection
holds ``ivf_min`` codes it is clustered into an inverted file (``faiss.IndexBinaryIVF``)
whose number of lists grows with the square root of the collection, so a search visits
``nprobe`` lists of about ``√n`` codes each: query time grows sub-linearly with the library.
Codes carry 64-bit ids chosen by the caller; removal is by id.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> codes = rng.integers(0, 256, (300, 32), dtype=np.uint8)
>>> idx = GrowingBinaryIndex(ivf_min=200, nprobe=4)
>>> idx.add(codes, np.arange(300, dtype=np.int64))
>>> idx.is_ivf, idx.ntotal
(True, 300)
>>> d, i = idx.search(codes[:1], 1)
>>> int(d[0, 0]), int(i[0, 0])
(0, 0)
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from numpy.typing import NDArray

BITS = 256
CODE_BYTES = BITS // 8
#: k-means iterations when (re)training the coarse quantizer.
TRAIN_ITERATIONS = 10
#: Training points per list (k-means sample size = this × nlist).
TRAIN_POINTS_PER_LIST = 40
MAX_NLIST = 4096
#: OpenMP threads faiss may use (``$RONGXIN_FAISS_THREADS``, default 1). Searches here are small
#: and frequent; on a shared machine, OpenMP's spinning threads made them 3-30× slower.
FAISS_THREADS = int(os.environ.get("RONGXIN_FAISS_THREADS", "1"))
faiss.omp_set_num_threads(FAISS_THREADS)


def ideal_nlist(n: int) -> int:
    """Number of inverted lists for ``n`` codes: a power of two near ``√n``, at most 4096.

    Never more than ``n / TRAIN_POINTS_PER_LIST`` lists, so k-means has enough points.

    Examples
    --------
    >>> ideal_nlist(10_000), ideal_nlist(25_600_000), ideal_nlist(50)
    (128, 4096, 1)
    """
    root = 2 ** math.ceil(math.log2(max(1.0, math.sqrt(n))))
    return int(max(1, min(MAX_NLIST, root, n // TRAIN_POINTS_PER_LIST)))


class GrowingBinaryIndex:
    """Exact search below ``ivf_min`` codes, an inverted file (``nprobe`` lists visited) above.

    Parameters
    ----------
    ivf_min : int
        Codes at which the index switches from exhaustive to inverted-file search.
    nprobe : int
        Lists visited per query once the index is an inverted file.
    seed : int
        Seed of the training sample and k-means.
    """

    def __init__(self, ivf_min: int, nprobe: int, seed: int = 1) -> None:
        self.ivf_min = ivf_min
        self.nprobe = nprobe
        self.seed = seed
        self._index: Any = faiss.IndexBinaryIDMap(faiss.IndexBinaryFlat(BITS))
        self._owner: Any = None
        self._mapped = False
        self.nlist = 0

    @property
    def mapped(self) -> bool:
        """Whether the inverted lists are memory-mapped from a saved file (see :meth:`load`)."""
        return self._mapped

    def _own(self) -> None:
        """Copy a memory-mapped index into memory before it is changed."""
        if not self._mapped:
            return
        copy = faiss.deserialize_index_binary(faiss.serialize_index_binary(self._index))
        ivf: Any = faiss.downcast_IndexBinary(copy)
        ivf.nprobe = self.nprobe
        self._owner, self._index, self._mapped = copy, ivf, False

    @property
    def ntotal(self) -> int:
        """Codes currently indexed."""
        return int(self._index.ntotal)

    @property
    def is_ivf(self) -> bool:
        """Whether the index is an inverted file (else exhaustive)."""
        return self.nlist > 0

    def add(self, codes: NDArray[np.uint8], ids: NDArray[np.int64]) -> None:
        """Index ``codes`` ``(n, 32)`` under ``ids`` ``(n,)``; may (re)train the inverted file."""
        if len(codes) == 0:
            return
        self._own()
        self._index.add_with_ids(
            np.ascontiguousarray(codes, dtype=np.uint8), np.ascontiguousarray(ids, np.int64)
        )
        n = self.ntotal
        if (not self.is_ivf and n >= self.ivf_min) or (self.is_ivf and ideal_nlist(n) >= 2 * self.nlist):
            self._rebuild(ideal_nlist(n))

    def remove(self, ids: NDArray[np.int64]) -> int:
        """Remove the codes with these ids; returns how many were removed."""
        if len(ids) == 0:
            return 0
        self._own()
        return int(self._index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64)))

    def search(self, codes: NDArray[np.uint8], k: int) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
        """Distances and ids of the ``k`` nearest codes of each query (id -1 where none)."""
        if self.ntotal == 0 or len(codes) == 0:
            return np.zeros((len(codes), k), np.int32), np.full((len(codes), k), -1, np.int64)
        d, i = self._index.search(np.ascontiguousarray(codes, dtype=np.uint8), k)
        return np.asarray(d, dtype=np.int32), np.asarray(i, dtype=np.int64)

    def all_codes(self) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
        """Every indexed code and its id."""
        if not self.is_ivf:
            flat: Any = faiss.downcast_IndexBinary(self._index.index)
            codes = faiss.vector_to_array(flat.xb).reshape(-1, CODE_BYTES)
            ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
            return codes.astype(np.uint8), ids
        invlists = self._index.invlists
        code_parts: list[NDArray[np.uint8]] = []
        id_parts: list[NDArray[np.int64]] = []
        for list_no in range(self.nlist):
            size = invlists.list_size(list_no)
            if size == 0:
                continue
            code_parts.append(
                np.array(faiss.rev_swig_ptr(invlists.get_codes(list_no), size * CODE_BYTES), dtype=np.uint8)
            )
            id_parts.append(np.array(faiss.rev_swig_ptr(invlists.get_ids(list_no), size), dtype=np.int64))
        if not code_parts:
            return np.zeros((0, CODE_BYTES), np.uint8), np.zeros(0, np.int64)
        return np.concatenate(code_parts).reshape(-1, CODE_BYTES), np.concatenate(id_parts)

    def _rebuild(self, nlist: int) -> None:
        codes, ids = self.all_codes()
        rng = np.random.default_rng(self.seed)
        sample_size = min(len(codes), TRAIN_POINTS_PER_LIST * nlist)
        sample = codes[rng.choice(len(codes), size=sample_size, replace=False)]
        quantizer: Any = faiss.IndexBinaryFlat(BITS)
        ivf = faiss.IndexBinaryIVF(quantizer, BITS, nlist)
        ivf.cp.niter = TRAIN_ITERATIONS
        ivf.cp.seed = self.seed
        ivf.cp.max_points_per_centroid = TRAIN_POINTS_PER_LIST
        ivf.train(sample)
        ivf.own_fields = True
        quantizer.this.disown()
        ivf.add_with_ids(codes, ids)
        ivf.nprobe = self.nprobe
        self._index = ivf
        self.nlist = nlist

    def save(self, path: Path) -> None:
        """Write the inverted file atomically (only meaningful when :attr:`is_ivf`)."""
        tmp = path.with_name(path.name + ".tmp")
        faiss.write_index_binary(self._index, str(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def save_replacing(self, path: Path, pattern: str) -> None:
        """:meth:`save` to ``path``, then delete the older saves: the other files of its directory
        matching the glob ``pattern`` (what an index's ``flush`` does).

        Raises
        ------
        OSError, RuntimeError
            The file cannot be written (the older saves are then kept).
        """
        self.save(path)
        for old in path.parent.glob(pattern):
            if old != path:
                old.unlink(missing_ok=True)

    def load(self, path: Path, *, mapped: bool = False) -> None:
        """Read an inverted file written by :meth:`save`; ``ValueError`` when it is not one.

        With ``mapped``, the inverted lists are memory-mapped from the file instead of read:
        opening costs nothing whatever the size, a search pages in the lists it visits, and
        the first :meth:`add` or :meth:`remove` copies the index into memory. The file is
        only ever replaced, never rewritten in place (:meth:`save`), so a mapping stays valid
        after a writer saves a newer one.
        """
        flags = faiss.IO_FLAG_MMAP_IFC if mapped else 0
        try:
            index = faiss.read_index_binary(str(path), flags)
        except RuntimeError as exc:
            raise ValueError(f"{path} is not a readable binary index: {exc}") from exc
        ivf = faiss.downcast_IndexBinary(index)
        if not isinstance(ivf, faiss.IndexBinaryIVF) or ivf.d != BITS:
            raise ValueError(f"{path} does not hold a {BITS}-bit binary inverted file")
        ivf.nprobe = self.nprobe
        self._owner = index  # the downcast wrapper does not own the C++ object
        self._index = ivf
        self._mapped = mapped
        self.nlist = int(ivf.nlist)
