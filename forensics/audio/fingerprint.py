"""Fingerprinting one audio file: decode it (streaming), find its spectral peaks, hash them.

A :class:`Fingerprint` holds a file's landmark hashes, their anchor frames, the peaks they
came from and an SM3 digest of its canonical bytes. :func:`fingerprint_file` makes one from a
file, :func:`make_fingerprint` from landmarks computed elsewhere. :func:`file_peaks` and
:func:`file_layers` give the peaks of a file (of the main layer, and of both the main and
the bass layer from one decode); :func:`check_content` refuses files too short or without
spectral detail.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from chain.crypto.sm3 import SM3
from forensics.audio.bass import Decimator
from forensics.audio.decode import iter_blocks
from forensics.audio.errors import AudioIndexError, ClipTooShortError, NoFingerprintError
from forensics.audio.landmarks import LandmarkParams, PeakExtractor, Peaks, hash_peaks

__all__ = [
    "MAX_FRAME",
    "Fingerprint",
    "check_content",
    "check_fingerprint",
    "file_layers",
    "file_peaks",
    "fingerprint_file",
    "fingerprint_layers",
    "fingerprint_peaks",
    "make_fingerprint",
    "query_peaks",
]

MAX_FRAME = (1 << 32) - 1
"""The last frame of the global frame axis (and the largest landmark hash)."""


@dataclass(frozen=True)
class Fingerprint:
    """Landmarks of one file.

    Attributes
    ----------
    hashes : numpy.ndarray of uint32
        Landmark hashes.
    frames : numpy.ndarray of uint32
        Anchor frame of each hash, relative to the start of the file.
    duration : float
        Seconds of audio decoded.
    digest : bytes
        SM3 of the fingerprint's canonical bytes (parameters, then hashes and frames).
    peaks : Peaks, optional
        The spectral peaks the hashes came from; the index keeps them to verify candidate
        alignments peak by peak. Without them
        :meth:`forensics.audio.index.AudioIndex.add_fingerprint` keeps the anchor peaks the
        hashes imply (coarser: a frame and half a semitone).
    """

    hashes: npt.NDArray[np.uint32]
    frames: npt.NDArray[np.uint32]
    duration: float
    digest: bytes
    peaks: Peaks | None = None


def file_peaks(
    path: Path, params: LandmarkParams, *, max_seconds: float | None, strict: bool, query: bool = False
) -> tuple[Peaks, float]:
    """The spectral peaks of ``path`` (decoded in 30-s blocks) and the seconds of audio decoded.

    Parameters
    ----------
    path : Path
        Audio file or video file with sound.
    params : LandmarkParams
        Analysis parameters.
    max_seconds : float or None
        Longest accepted audio.
    strict : bool
        Refuse files ffmpeg reports decode errors for.
    query : bool
        Keep the evidence map a query needs (see :class:`forensics.audio.landmarks.PeakExtractor`).

    Returns
    -------
    (Peaks, float)

    Examples
    --------
    >>> import numpy as np, tempfile, wave, pathlib
    >>> x = (np.random.default_rng(3).standard_normal(8000 * 3) * 3000).astype("<i2")
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "n.wav"
    >>> with wave.open(str(p), "wb") as w:
    ...     w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000); w.writeframes(x.tobytes())
    >>> peaks, seconds = file_peaks(p, LandmarkParams(), max_seconds=None, strict=True)
    >>> seconds, bool(len(peaks) > 0)
    (3.0, True)
    """
    extractor = PeakExtractor(params, query=query)
    samples = 0
    for block in iter_blocks(
        path, sample_rate=params.sample_rate, max_seconds=max_seconds, strict=strict, block_seconds=30.0
    ):
        extractor.feed(block)
        samples += len(block)
    return extractor.finish(), samples / params.sample_rate


def file_layers(
    path: Path,
    params: LandmarkParams,
    bass: LandmarkParams,
    *,
    max_seconds: float | None,
    strict: bool,
    query: bool = False,
) -> tuple[Peaks, Peaks, float]:
    """Peaks of the main layer and of the bass layer from one decode of ``path``, and its seconds.

    Like :func:`file_peaks`; ``bass`` are the bass layer's parameters
    (:data:`forensics.audio.bass.BASS_PARAMS`), analysed on the decimated signal.

    Examples
    --------
    >>> import numpy as np, tempfile, wave, pathlib
    >>> from forensics.audio.bass import BASS_PARAMS
    >>> x = (np.random.default_rng(3).standard_normal(8000 * 3) * 3000).astype("<i2")
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "n.wav"
    >>> with wave.open(str(p), "wb") as w:
    ...     w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000); w.writeframes(x.tobytes())
    >>> main, low, seconds = file_layers(p, LandmarkParams(), BASS_PARAMS, max_seconds=None, strict=True)
    >>> seconds, bool(len(main) > len(low) > 0)
    (3.0, True)
    """
    main = PeakExtractor(params, query=query)
    low = PeakExtractor(bass, query=query)
    decimator = Decimator()
    samples = 0
    for block in iter_blocks(
        path, sample_rate=params.sample_rate, max_seconds=max_seconds, strict=strict, block_seconds=30.0
    ):
        main.feed(block)
        low.feed(decimator.feed(block))
        samples += len(block)
    return main.finish(), low.finish(), samples / params.sample_rate


def check_content(
    path: Path, peaks: Peaks, hashes: npt.NDArray[np.uint32], duration: float, min_s: float
) -> None:
    """Refuse audio shorter than ``min_s`` seconds or with too little spectral detail.

    Raises
    ------
    ClipTooShortError
        ``duration`` is below ``min_s``.
    NoFingerprintError
        Fewer than two peaks or landmarks per second (silence, a pure tone).

    Examples
    --------
    >>> from forensics.audio.landmarks import Peaks
    >>> none = Peaks(np.zeros(0), np.zeros(0), np.zeros(0), 0)
    >>> try:
    ...     check_content(Path("x.wav"), none, np.zeros(0, np.uint32), 1.0, 2.0)
    ... except ClipTooShortError as exc:
    ...     print(exc)
    x.wav holds 1.00 s of audio; at least 2.0 s are needed to fingerprint it
    """
    if duration < min_s:
        raise ClipTooShortError(
            f"{path} holds {duration:.2f} s of audio; at least {min_s:.1f} s are needed to fingerprint it"
        )
    distinct = len(np.unique(hashes))
    if len(peaks) < 2 * duration or distinct < max(20.0, 2.0 * duration):
        raise NoFingerprintError(
            f"{path} has too little spectral detail to fingerprint ({len(peaks)} peaks, {distinct} distinct "
            f"landmarks in {duration:.1f} s): it is silent, a pure tone or near-constant; give real "
            "music or speech"
        )


def fingerprint_file(
    path: Path | str,
    params: LandmarkParams | None = None,
    *,
    max_seconds: float | None = 12 * 3600.0,
    min_seconds: float = 2.0,
    strict: bool = True,
) -> Fingerprint:
    """Decode ``path`` (streaming) and compute its landmarks.

    Parameters
    ----------
    path : Path or str
        Audio file or video file with sound.
    params : LandmarkParams, optional
        Fingerprint parameters.
    max_seconds : float, optional
        Longest accepted audio.
    min_seconds : float
        Shortest accepted audio.
    strict : bool
        Refuse files ffmpeg reports decode errors for.

    Returns
    -------
    Fingerprint

    Raises
    ------
    MediaError
        Not decodable, too long, too short, or without spectral detail (its subclasses
        in :mod:`forensics.audio.errors` say which).

    Examples
    --------
    >>> import numpy as np, tempfile, wave, pathlib
    >>> rng = np.random.default_rng(3)
    >>> x = (rng.standard_normal(8000 * 3) * 3000).astype("<i2")
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "n.wav"
    >>> with wave.open(str(p), "wb") as w:
    ...     w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000); w.writeframes(x.tobytes())
    >>> fp = fingerprint_file(p)
    >>> fp.duration, len(fp.digest), bool(len(fp.hashes) > 100)
    (3.0, 32, True)
    """
    path = Path(path)
    p = params or LandmarkParams()
    peaks, duration = file_peaks(path, p, max_seconds=max_seconds, strict=strict)
    return fingerprint_peaks(path, peaks, duration, p, min_seconds)


def fingerprint_peaks(
    path: Path, peaks: Peaks, duration: float, params: LandmarkParams, min_seconds: float
) -> Fingerprint:
    """The fingerprint of ``peaks`` decoded from ``path``, refused when it has too little content.

    ``path`` only names the file in errors (see :func:`check_content`).

    Examples
    --------
    >>> import numpy as np, tempfile, wave, pathlib
    >>> x = (np.random.default_rng(3).standard_normal(8000 * 3) * 3000).astype("<i2")
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "n.wav"
    >>> with wave.open(str(p), "wb") as w:
    ...     w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000); w.writeframes(x.tobytes())
    >>> peaks, seconds = file_peaks(p, LandmarkParams(), max_seconds=None, strict=True)
    >>> fingerprint_peaks(p, peaks, seconds, LandmarkParams(), 2.0).digest == fingerprint_file(p).digest
    True
    """
    hashes, times = hash_peaks(peaks, params)
    check_content(path, peaks, hashes, duration, min_seconds)
    return make_fingerprint(hashes, times, duration, params, peaks=peaks)


def make_fingerprint(
    hashes: npt.ArrayLike,
    times: npt.ArrayLike,
    duration: float,
    params: LandmarkParams | None = None,
    *,
    peaks: Peaks | None = None,
) -> Fingerprint:
    """A :class:`Fingerprint` from landmarks computed elsewhere: sorted and digested.

    Parameters
    ----------
    hashes : array_like of uint32
        Landmark hashes.
    times : array_like
        Anchor time of each hash in frames from the start of the file (rounded).
    duration : float
        Seconds of audio the landmarks come from.
    params : LandmarkParams, optional
        The parameters they were computed with (part of the digest).
    peaks : Peaks, optional
        The peaks they were computed from (see :attr:`Fingerprint.peaks`; not part of
        the digest, which names the hashes).

    Returns
    -------
    Fingerprint
        Sorted by hash, then frame, as :meth:`forensics.audio.index.AudioIndex.add_fingerprint` needs.

    Raises
    ------
    ValueError
        Hashes and times differ in length, a time is negative or past ``duration``, or a
        hash does not fit 32 bits.

    Examples
    --------
    >>> fp = make_fingerprint([7, 3, 7], [5.2, 1.0, 2.0], 1.0)
    >>> fp.hashes.tolist(), fp.frames.tolist(), len(fp.digest)
    ([3, 7, 7], [1, 2, 5], 32)
    """
    p = params or LandmarkParams()
    h_in, t_in = np.asarray(hashes), np.asarray(times, dtype=np.float64)
    if h_in.ndim != 1 or h_in.shape != t_in.shape:
        raise ValueError(f"hashes and times must be 1-D and of one length, not {h_in.shape} and {t_in.shape}")
    if not math.isfinite(duration) or duration < 0:
        raise ValueError(f"duration must be a finite number of seconds >= 0, not {duration}")
    if h_in.size and (int(h_in.min()) < 0 or int(h_in.max()) > MAX_FRAME):
        raise ValueError("landmark hashes must fit in 32 bits (0 .. 2^32 - 1)")
    frames = np.rint(t_in)
    last = round(duration / p.frame_seconds)
    if frames.size and (not np.all(np.isfinite(frames)) or frames.min() < 0 or frames.max() > last):
        raise ValueError(f"landmark times must lie in 0 .. {last} frames ({duration:g} s)")
    h32, f32 = h_in.astype(np.uint32), frames.astype(np.uint32)
    order = np.lexsort((f32, h32))
    h32, f32 = h32[order], f32[order]
    h = SM3(b"rongxin/audio-landmarks/v1\n")
    h.update(json.dumps(p.to_dict(), sort_keys=True).encode())
    h.update(h32.astype("<u4").tobytes()).update(f32.astype("<u4").tobytes())
    return Fingerprint(hashes=h32, frames=f32, duration=duration, digest=h.digest(), peaks=peaks)


def check_fingerprint(fp: Fingerprint, params: LandmarkParams) -> int:
    """The frames ``fp`` spans with ``params``, after checking it is well formed.

    Raises
    ------
    AudioIndexError
        Arrays of other types or lengths, hashes not sorted, or frames past its duration.

    Examples
    --------
    >>> check_fingerprint(make_fingerprint([5, 9, 9], [0, 3, 1], 1.0), LandmarkParams())
    63
    """
    frames = round(fp.duration / params.frame_seconds) + 1
    h, f = fp.hashes, fp.frames
    if (
        not isinstance(h, np.ndarray)
        or not isinstance(f, np.ndarray)
        or h.dtype != np.uint32
        or f.dtype != np.uint32
        or h.ndim != 1
        or h.shape != f.shape
    ):
        raise AudioIndexError(
            "a fingerprint needs 1-D uint32 hashes and frames of one length; build it with make_fingerprint"
        )
    if len(h) > 1 and bool(np.any(h[1:] < h[:-1])):
        raise AudioIndexError("the fingerprint's hashes are not sorted; build it with make_fingerprint")
    if len(f) and int(f.max()) >= frames:
        raise AudioIndexError(
            f"the fingerprint has a landmark at frame {int(f.max())}, past its {fp.duration:g} s; "
            "build it with make_fingerprint"
        )
    return frames


def query_peaks(
    path: Path, params: LandmarkParams, bass: LandmarkParams | None, *, max_seconds: float, min_seconds: float
) -> tuple[Peaks, Peaks | None]:
    """A query's peaks (with their evidence maps), of the main layer and of the bass layer if any.

    Decoded leniently (a damaged upload is matched on what decodes) and refused like a
    registration when too short or without spectral detail (:func:`check_content`).

    Examples
    --------
    >>> import numpy as np, tempfile, wave, pathlib
    >>> x = (np.random.default_rng(3).standard_normal(8000 * 3) * 3000).astype("<i2")
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "n.wav"
    >>> with wave.open(str(p), "wb") as w:
    ...     w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000); w.writeframes(x.tobytes())
    >>> peaks, low = query_peaks(p, LandmarkParams(), None, max_seconds=60.0, min_seconds=2.0)
    >>> peaks.evidence is not None, low
    (True, None)
    """
    low: Peaks | None = None
    if bass is None:
        peaks, duration = file_peaks(path, params, max_seconds=max_seconds, strict=False, query=True)
    else:
        peaks, low, duration = file_layers(
            path, params, bass, max_seconds=max_seconds, strict=False, query=True
        )
    hashes, _ = hash_peaks(peaks, params)
    check_content(path, peaks, hashes, duration, min_seconds)
    return peaks, low


def fingerprint_layers(
    path: Path, params: LandmarkParams, bass: LandmarkParams, *, max_seconds: float | None, min_seconds: float
) -> tuple[Fingerprint, Fingerprint | None]:
    """The main layer's and the bass layer's fingerprints of ``path``, from one decode.

    The bass fingerprint is ``None`` when the file has nothing below 300 Hz to
    fingerprint (the work is then matched by the main layer only).

    Raises
    ------
    MediaError
        The file is not decodable, too long, too short or without spectral detail.

    Examples
    --------
    >>> import numpy as np, tempfile, wave, pathlib
    >>> from forensics.audio.bass import BASS_PARAMS
    >>> x = (np.random.default_rng(3).standard_normal(8000 * 3) * 3000).astype("<i2")
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "n.wav"
    >>> with wave.open(str(p), "wb") as w:
    ...     w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000); w.writeframes(x.tobytes())
    >>> main, low = fingerprint_layers(p, LandmarkParams(), BASS_PARAMS, max_seconds=None, min_seconds=2.0)
    >>> main.digest == fingerprint_file(p).digest
    True
    """
    main, low, duration = file_layers(path, params, bass, max_seconds=max_seconds, strict=True)
    main_fp = fingerprint_peaks(path, main, duration, params, min_seconds)
    try:
        return main_fp, fingerprint_peaks(path, low, duration, bass, min_seconds)
    except (ClipTooShortError, NoFingerprintError):
        return main_fp, None
