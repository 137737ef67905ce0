"""Content forensics: find registered works in copies of images, audio and video.

What the package holds today:

* :class:`Library` (:mod:`forensics.library`) — one persistent library per deployment:
  register works, identify copies, remove, reopen; one SQLite catalogue plus one index per
  media kind, routed by :func:`detect_kind`;
* :mod:`forensics.image` — a 256-bit DCT hash under all eight flips and quarter turns
  (fast path) and ORB features with RANSAC verification for crops, rotations and
  collages (slow path): :class:`ImageIndex`;
* :mod:`forensics.audio` — spectral-peak landmarks (Wang 2003) in sorted, memory-mapped
  segments, offset voting over speed and pitch hypotheses, peak-by-peak and spectral
  verification, and a second, bass-band layer: :class:`AudioIndex`;
* :mod:`forensics.video` — per-frame DCT hashes of sampled frames, (offset, speed)
  alignment of a clip with the programmes, fusion with the soundtrack through the audio
  index: :class:`VideoIndex`;
* :mod:`forensics.types` — the values every index shares (:class:`Match`,
  :class:`Registration`) and the :class:`MediaIndex` protocol a new media kind
  implements (register it with :func:`register_index`).

Every error is a :class:`ForensicsError`. The library and
the indexes (numpy, OpenCV, faiss, scipy) are imported on first use.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> from forensics import Library, detect_kind
>>> import wave, numpy as np
>>> song = Path(tempfile.mkdtemp()) / "anthem.wav"
>>> pcm = (np.random.default_rng(1).standard_normal(8000 * 6) * 3000).astype("<i2")
>>> with wave.open(str(song), "wb") as w:
...     w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000); w.writeframes(pcm.tobytes())
>>> detect_kind(song)
'audio'
>>> with Library(song.parent / "library") as lib:
...     lib.identify(song)
[]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chain.lazy import lazy_exports
from forensics.errors import (
    DuplicateContentError,
    ForensicsError,
    LibraryError,
    MediaError,
    ReadOnlyLibraryError,
    UnsupportedMediaError,
)
from forensics.types import Match, MediaIndex, MediaKind, Registration, detect_kind

if TYPE_CHECKING:
    from forensics.audio.index import AudioIndex
    from forensics.image.index import ImageIndex
    from forensics.library import INDEX_CLASSES, Library, array_digest, register_index
    from forensics.video.index import VideoIndex

#: Public name -> the module that defines it (imported on first access).
_LAZY: dict[str, str] = {
    "AudioIndex": "forensics.audio.index",
    "ImageIndex": "forensics.image.index",
    "INDEX_CLASSES": "forensics.library",
    "Library": "forensics.library",
    "array_digest": "forensics.library",
    "register_index": "forensics.library",
    "VideoIndex": "forensics.video.index",
}

__all__ = [
    "INDEX_CLASSES",
    "AudioIndex",
    "DuplicateContentError",
    "ForensicsError",
    "ImageIndex",
    "Library",
    "LibraryError",
    "Match",
    "MediaError",
    "MediaIndex",
    "MediaKind",
    "ReadOnlyLibraryError",
    "Registration",
    "UnsupportedMediaError",
    "VideoIndex",
    "array_digest",
    "detect_kind",
    "register_index",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
