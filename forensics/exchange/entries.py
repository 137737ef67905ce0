"""A hash list's entries as the indexes' fingerprints, checked before anything is written.

Each entry becomes what :class:`forensics.image.index.ImageIndex`,
:class:`forensics.audio.index.AudioIndex` or :class:`forensics.video.index.VideoIndex`
stores — and is refused when it could not have come from an exporter's library: local
features out of range (more points than the index keeps, non-finite coordinates, a
non-positive scale), landmarks past the work's end, reference peaks outside it, audio
computed with other parameters than the importer's, video sampled at another rate, or
fingerprints that do not hash to the entry's ``fingerprint_sm3`` (the digest the exporter
registered and may have anchored). Pure: no file is touched.

Examples
--------
>>> import numpy as np, cv2
>>> from forensics.exchange.hashlist import Entry, ImageFrame
>>> from forensics.image.index import ImageFingerprint, fingerprint_digest
>>> rng = np.random.default_rng(7)
>>> img = cv2.GaussianBlur((rng.random((240, 320, 3)) * 255).astype(np.uint8), (0, 0), 2)
>>> fp = ImageFingerprint.of(img)
>>> frames = (ImageFrame(fp.hash.tobytes(), fp.features.to_bytes()),)
>>> e = Entry("rx-1", "image", fingerprint_digest([fp]), frames=frames)
>>> len(image_fingerprints(e))
1
>>> image_fingerprints(Entry("rx-1", "image", bytes(32), frames=e.frames))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
forensics.exchange.errors.HashListMismatchError: entry rx-1: its image fingerprints do not hash to ...
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from forensics.errors import ForensicsError
from forensics.exchange.errors import HashListMismatchError, MalformedHashListError
from forensics.exchange.hashlist import SIGNAL_VIDEO, VIDEO_HASH_BYTES, AudioLayer, Entry, HashList


@dataclass
class Prepared:
    """One entry and the fingerprints its index will store: ``image``; ``audio`` and ``bass``;
    or ``video`` (with ``audio`` and ``bass`` of its soundtrack, if any)."""

    entry: Entry
    image: list[Any] | None = None
    audio: Any = None
    bass: Any = None
    video: Any = None


def prepare(
    hl: HashList, audio_params: Any, bass_params: Any, video_rate: float | None = None
) -> list[Prepared]:
    """Every entry of ``hl`` as index fingerprints, checked against its digest.

    Parameters
    ----------
    hl : HashList
        A decoded list.
    audio_params, bass_params : LandmarkParams or None
        The importer's landmark parameters (from :func:`signal_params`); ``bass_params``
        ``None`` drops the bass layers.
    video_rate : float, optional
        The importer's video sampling rate (from :func:`video_rate`); needed when the
        list holds video works.

    Raises
    ------
    MalformedHashListError, HashListMismatchError
        See the module's notes.
    """
    prepared = []
    for e in hl.entries:
        p = Prepared(e)
        if e.kind == "image":
            p.image = image_fingerprints(e)
        elif e.kind == "video":
            p.video, p.audio, p.bass = video_fingerprints(e, video_rate, audio_params, bass_params)
        else:
            if e.audio is None or audio_params is None:
                raise MalformedHashListError(f"entry {e.ref}: an audio entry without audio parameters")
            p.audio = audio_fingerprint(e, e.audio, audio_params, "audio")
            if e.fingerprint_sm3 != p.audio.digest:
                raise HashListMismatchError(
                    f"entry {e.ref}: its landmarks do not hash to its fingerprint_sm3; the list is "
                    "inconsistent, not imported"
                )
            if e.bass is not None and bass_params is not None:
                p.bass = audio_fingerprint(e, e.bass, bass_params, "bass")
        prepared.append(p)
    return prepared


def video_fingerprints(
    e: Entry, rate: float | None, audio_params: Any, bass_params: Any
) -> tuple[Any, Any, Any]:
    """The video index's picture fingerprint of an entry and its soundtrack's layers, checked.

    The picture must be sampled at ``rate`` (the importer's); the entry's
    ``fingerprint_sm3`` must equal :func:`forensics.video.index.work_digest` of the picture
    and the soundtrack's main layer.

    Raises
    ------
    MalformedHashListError, HashListMismatchError
    """
    from forensics.video.fingerprint import VideoFingerprint
    from forensics.video.index import work_digest

    v = e.video
    if v is None or rate is None:
        raise MalformedHashListError(f"entry {e.ref}: a video entry without its picture or the video rate")
    if abs(v.rate - rate) > 1e-9:
        raise HashListMismatchError(
            f"entry {e.ref}: its picture was sampled at {v.rate:g} frames/s, this library's at {rate:g}; "
            "it cannot be matched here"
        )
    picture = VideoFingerprint(_codes(v.codes), _bits(v.valid, v.frames), v.rate)
    if v.centre:
        picture = VideoFingerprint(
            picture.codes,
            picture.valid,
            v.rate,
            centre=_codes(v.centre),
            centre_valid=_bits(v.centre_valid, v.frames),
        )
    sound = bass = None
    if e.audio is not None:
        if audio_params is None:
            raise MalformedHashListError(f"entry {e.ref}: a soundtrack without audio parameters")
        sound = audio_fingerprint(e, e.audio, audio_params, "soundtrack")
        if e.bass is not None and bass_params is not None:
            bass = audio_fingerprint(e, e.bass, bass_params, "soundtrack's bass")
    digest = work_digest(picture.digest, b"" if sound is None else sound.digest)
    if digest != e.fingerprint_sm3:
        raise HashListMismatchError(
            f"entry {e.ref}: its picture and soundtrack do not hash to its fingerprint_sm3; the list is "
            "inconsistent, not imported"
        )
    return picture, sound, bass


def _codes(data: bytes) -> Any:
    return np.frombuffer(data, np.uint8).reshape(-1, VIDEO_HASH_BYTES).copy()


def _bits(data: bytes, n: int) -> Any:
    return np.unpackbits(np.frombuffer(data, np.uint8))[:n].astype(bool)


def video_rate(hl: HashList, rate: float) -> float:
    """``rate`` (the importer's video sampling rate), once checked equal to the list's.

    Raises
    ------
    MalformedHashListError
        The header gives no ``rongxin-video`` parameters.
    HashListMismatchError
        Another fingerprint version or rate.
    """

    declared = hl.header.signals.get(SIGNAL_VIDEO)
    if not isinstance(declared, dict) or not isinstance(declared.get("rate"), int | float):
        raise MalformedHashListError(
            "the hash list holds video works but its header gives no video parameters"
        )
    if declared.get("fingerprint") != "rongxin-video-fp-v1" or declared.get("hash_bits") != 256:
        raise HashListMismatchError(
            f"the list's video fingerprints are {str(declared.get('fingerprint'))[:40]!r}; this library "
            "matches rongxin-video-fp-v1 (256-bit frame hashes)"
        )
    if abs(float(declared["rate"]) - rate) > 1e-9:
        raise HashListMismatchError(
            f"the list's video was sampled at {declared['rate']} frames/s, this library's at {rate:g}; "
            "it cannot be matched here"
        )
    return rate


def signal_params(hl: HashList, signal: str, params: Any) -> Any:
    """``params`` (the importer's), once checked equal to the list's parameters of ``signal``.

    Raises
    ------
    MalformedHashListError
        The header gives no parameters for ``signal``.
    HashListMismatchError
        They differ from ``params``.
    """
    declared = hl.header.signals.get(signal)
    if not isinstance(declared, dict) or not isinstance(declared.get("params"), dict):
        raise MalformedHashListError(
            f"the hash list holds audio works but its header gives no {signal} parameters"
        )
    if declared["params"] != json.loads(json.dumps(params.to_dict())):
        raise HashListMismatchError(
            f"the list's {signal} fingerprints were computed with other parameters than this library's "
            f"({json.dumps(declared['params'], sort_keys=True)[:200]}); they cannot be matched here"
        )
    return params


def image_fingerprints(e: Entry) -> list[Any]:
    """The image index's fingerprints of an entry's frames, checked; digest checked when complete."""
    from forensics.image import features as feat
    from forensics.image.index import ImageFingerprint, fingerprint_digest

    out = []
    for k, frame in enumerate(e.frames):
        if frame.features is None:
            features = feat.LocalFeatures(
                np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8), 1, 1, 1.0
            )
        else:
            try:
                features = feat.LocalFeatures.from_bytes(frame.features)
            except ValueError as exc:
                raise MalformedHashListError(f"entry {e.ref} frame {k}: {exc}") from None
            if (
                len(features) > feat.REFERENCE_FEATURES
                or not np.all(np.isfinite(features.points))
                or not (math.isfinite(features.scale) and features.scale > 0)
                or not (0 < features.width <= 1 << 16 and 0 < features.height <= 1 << 16)
            ):
                raise MalformedHashListError(
                    f"entry {e.ref} frame {k}: local features out of range (at most "
                    f"{feat.REFERENCE_FEATURES} points, finite coordinates, a positive scale)"
                )
        out.append(ImageFingerprint(np.frombuffer(frame.dct, np.uint8).copy(), features))
    if all(f.features is not None for f in e.frames) and fingerprint_digest(out) != e.fingerprint_sm3:
        raise HashListMismatchError(
            f"entry {e.ref}: its image fingerprints do not hash to its fingerprint_sm3; the list is "
            "inconsistent, not imported"
        )
    return out


def audio_fingerprint(e: Entry, layer: AudioLayer, params: Any, what: str) -> Any:
    """The audio index's fingerprint of one layer of an entry (``what``: its name in errors), checked."""
    from forensics.audio.fingerprint import make_fingerprint
    from forensics.audio.peakstore import decode_peaks

    n_frames = round(layer.duration / params.frame_seconds) + 1
    try:
        peaks = decode_peaks(layer.peaks_t, layer.peaks_lf, n_frames) if layer.peaks_t else None
        fp = make_fingerprint(layer.hashes, layer.frames, layer.duration, params, peaks=peaks)
    except (ValueError, ForensicsError) as exc:
        raise MalformedHashListError(
            f"entry {e.ref}: the {what} layer's landmarks are malformed: {exc}"
        ) from None
    if (
        peaks is not None
        and len(peaks)
        and (
            float(peaks.t.max()) > n_frames
            or float(peaks.lf.max()) > 12.0 * math.log2(params.fmax / params.fmin) + 1
        )
    ):
        raise MalformedHashListError(
            f"entry {e.ref}: the {what} layer's reference peaks lie outside the work"
        )
    return fp
