"""Video fingerprints: sampled-frame DCT hashes, temporal alignment, fusion with the soundtrack.

:class:`~forensics.video.index.VideoIndex` is the library's index for ``video`` works. The
parts, one concept each:

* :mod:`~forensics.video.probe` — what a file holds (ffprobe), and the refusals of files
  that are not usable video;
* :mod:`~forensics.video.decode` — frames streamed from an ffmpeg pipe at a reduced size
  and rate, with letterbox and pillarbox bars found per block and trimmed;
* :mod:`~forensics.video.fingerprint` — one 256-bit DCT hash per sampled frame (the image
  code's :func:`~forensics.image.phash.dct_hash`), and its horizontal mirror for queries;
* :mod:`~forensics.video.align` — candidate frame pairs voted into (offset, speed)
  hypotheses, each verified frame by frame into a query span ↔ work span;
* :mod:`~forensics.video.storage` — the catalogue and per-work code segments on disk;
* :mod:`~forensics.video.errors` — the errors, all :class:`~forensics.errors.ForensicsError`.
"""
