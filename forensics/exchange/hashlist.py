"""The hash-list file (``.rxhl``): encode, decode, digest and sign; no I/O.

A hash list carries the fingerprints of a member's works so another member can find
copies of them without receiving the works (the approach of ThreatExchange's
hasher-matcher-actioner, where members share *signals* — hashes of a named *signal type*
— rather than media). The file is UTF-8 JSON lines (``docs/hash-list-format.md``)::

    {"format": "rongxin-hash-list", "version": 1, "member": ..., "created": ..., ...}   header
    {"ref": "rx-…", "kind": "image", "fingerprint_sm3": ..., "image": {...}, "pdq": [...]}   entries
    ...
    {"sm3": "<hex>", "signature": "<hex>" | null}                                      trailer

The trailer's ``sm3`` is SM3 over every byte before the trailer line; ``signature`` is an
SM2 signature (default user ID ``1234567812345678``) of those 32 digest bytes by the key
whose public point the header names in ``signer``. The header states how many entries
follow, so a truncated copy is told from a complete one.

Examples
--------
>>> from chain.crypto.sm2 import PrivateKey
>>> key = PrivateKey.generate()
>>> e = Entry(ref="rx-01", kind="image", fingerprint_sm3=bytes(32),
...           frames=(ImageFrame(dct=bytes(range(32)), features=None),))
>>> data = encode_hash_list("county-a", [e], key=key, created="2026-12-05T00:00:00Z")
>>> hl = decode_hash_list(data)
>>> hl.header.member, hl.entries[0].frames[0].dct == bytes(range(32)), hl.signer == key.public_key
('county-a', True, True)
>>> decode_hash_list(data[:-20])  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
forensics.exchange.errors.TruncatedHashListError: the hash list ends mid-line ...
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from chain.crypto.errors import CryptoError
from chain.crypto.sm2 import PrivateKey, PublicKey
from chain.crypto.sm3 import sm3
from forensics.exchange.errors import (
    HashListDigestError,
    HashListError,
    HashListSignatureError,
    HashListTooLargeError,
    MalformedHashListError,
    TruncatedHashListError,
    UnsupportedHashListVersionError,
)

FORMAT = "rongxin-hash-list"
VERSION = 1
#: File name suffix of a hash list.
SUFFIX = ".rxhl"

#: Signal types (ThreatExchange's word: a named kind of hash) a version-1 list may carry.
SIGNAL_IMAGE = "rongxin-image"
SIGNAL_AUDIO = "rongxin-audio"
SIGNAL_AUDIO_BASS = "rongxin-audio-bass"
SIGNAL_PDQ = "pdq"
SIGNAL_VIDEO = "rongxin-video"

#: Bytes of one frame hash of a video entry (the image code's 256-bit DCT hash).
VIDEO_HASH_BYTES = 32

_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_MEMBER_MAX = 200
_TITLE_MAX = 500


@dataclass(frozen=True)
class Limits:
    """What a reader accepts; a list beyond any of these is refused before it is used.

    Attributes
    ----------
    max_bytes : int
        Largest file.
    max_line : int
        Longest line (one entry).
    max_entries : int
        Most entries.
    max_frames : int
        Most frames of one image entry.
    max_features : int
        Largest local-feature blob of one frame (bytes).
    max_landmarks : int
        Most landmarks of one audio layer (about 40 an hour-second ... 12 h of audio).
    max_pdq : int
        Most PDQ hashes of one entry.
    max_video_frames : int
        Most sampled frames of one video entry (12 hours at 4 frames a second).
    """

    max_bytes: int = 1 << 30
    max_line: int = 64 << 20
    max_entries: int = 1_000_000
    max_frames: int = 64
    max_features: int = 1 << 20
    max_landmarks: int = 8_000_000
    max_pdq: int = 64
    max_video_frames: int = 172_800


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class ImageFrame:
    """One frame of an image work: its 256-bit DCT hash and, optionally, its local features.

    ``features`` is :meth:`forensics.image.features.LocalFeatures.to_bytes` output, or
    ``None`` when the exporter shared the global hash only.
    """

    dct: bytes
    features: bytes | None = None


@dataclass(frozen=True)
class PdqHash:
    """A PDQ hash (256 bits, 32 bytes, most significant bit first) and its quality (0-100)."""

    hash: bytes
    quality: int


@dataclass(frozen=True)
class AudioLayer:
    """One layer of an audio work's fingerprint: landmarks and the stored reference peaks.

    Attributes
    ----------
    duration : float
        Seconds the landmarks span.
    hashes, frames : numpy.ndarray of uint32
        Landmark hashes and their anchor frames, sorted by hash then frame.
    peaks_t, peaks_lf : bytes
        The reference peaks in their stored form
        (:func:`forensics.audio.peakstore.encode_peaks`); empty when not shared.
    """

    duration: float
    hashes: npt.NDArray[np.uint32]
    frames: npt.NDArray[np.uint32]
    peaks_t: bytes = b""
    peaks_lf: bytes = b""


@dataclass(frozen=True)
class VideoPicture:
    """The picture of a video work: one 256-bit hash per sampled frame.

    Frame ``i`` was sampled at ``i / rate`` seconds of the work: the timestamps are the
    frame numbers over the rate (the video index samples at a fixed rate).

    Attributes
    ----------
    rate : float
        Frames sampled per second.
    codes : bytes
        ``32 × n`` bytes: the DCT hash of each frame's content (bars trimmed).
    valid : bytes
        The frames' detail flags, ``numpy.packbits`` order (most significant bit first),
        ``ceil(n / 8)`` bytes, unused bits zero: a frame without detail neither votes nor
        counts as evidence.
    centre, centre_valid : bytes
        The same for each frame's centre view (what a heavily cropped copy is matched
        against); empty when the work was indexed without one.
    """

    rate: float
    codes: bytes
    valid: bytes
    centre: bytes = b""
    centre_valid: bytes = b""

    @property
    def frames(self) -> int:
        """Sampled frames."""
        return len(self.codes) // VIDEO_HASH_BYTES


@dataclass(frozen=True)
class Entry:
    """One work of a hash list.

    Attributes
    ----------
    ref : str
        The exporter's opaque reference of the work (letters, digits, ``._:-``; at most 128).
    kind : {"image", "audio", "video"}
        Media kind.
    fingerprint_sm3 : bytes
        The work's fingerprint digest in the exporter's library (what it anchors on chain).
    title : str, optional
        The work's id in the exporter's library, when the exporter chose to reveal it.
    frames : tuple of ImageFrame
        Image works: the frames' fingerprints.
    pdq : tuple of PdqHash
        Image works: PDQ hashes, when shared.
    audio, bass : AudioLayer, optional
        Audio works: the main layer and the bass layer (the latter optional). Video
        works: their soundtrack's, when it was registered.
    video : VideoPicture, optional
        Video works: the picture's frame hashes.
    """

    ref: str
    kind: Literal["image", "audio", "video"]
    fingerprint_sm3: bytes
    title: str | None = None
    frames: tuple[ImageFrame, ...] = ()
    pdq: tuple[PdqHash, ...] = ()
    audio: AudioLayer | None = None
    bass: AudioLayer | None = None
    video: VideoPicture | None = None


@dataclass(frozen=True)
class Header:
    """The first line of a hash list.

    Attributes
    ----------
    member : str
        The exporting member.
    created : str
        When the list was written (UTC, RFC 3339).
    entries : int
        How many entries follow.
    signals : dict
        Per signal type present, its parameters (e.g. the audio landmark parameters).
    signer : bytes or None
        The signing key's uncompressed SM2 point, ``None`` for an unsigned list.
    version : int
        Format version.
    """

    member: str
    created: str
    entries: int
    signals: dict[str, Any] = field(default_factory=dict)
    signer: bytes | None = None
    version: int = VERSION


@dataclass(frozen=True)
class HashList:
    """A decoded, digest-checked and (if signed) signature-checked hash list.

    Attributes
    ----------
    header : Header
    entries : tuple of Entry
    digest : bytes
        SM3 of the bytes before the trailer: the list's identity.
    signature : bytes or None
        The SM2 signature of ``digest``, checked against ``header.signer``.
    """

    header: Header
    entries: tuple[Entry, ...]
    digest: bytes
    signature: bytes | None

    @property
    def signer(self) -> PublicKey | None:
        """The key that signed the list (its signature verified), or ``None`` when unsigned."""
        return None if self.header.signer is None else PublicKey.from_bytes(self.header.signer)


def now_rfc3339() -> str:
    """The current UTC time, RFC 3339 to the second.

    Examples
    --------
    >>> now_rfc3339().endswith("Z")
    True
    """
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# -- encoding ----------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _layer_json(layer: AudioLayer) -> dict[str, Any]:
    return {
        "duration": layer.duration,
        "hashes": _b64(np.asarray(layer.hashes, dtype="<u4").tobytes()),
        "frames": _b64(np.asarray(layer.frames, dtype="<u4").tobytes()),
        "peaks_t": _b64(layer.peaks_t),
        "peaks_lf": _b64(layer.peaks_lf),
    }


def entry_json(entry: Entry) -> dict[str, Any]:
    """The JSON object of one entry (as written on its line).

    Examples
    --------
    >>> entry_json(Entry("rx-1", "image", bytes(32), frames=(ImageFrame(bytes(32)),)))["image"]["frames"]
    [{'dct': '0000000000000000000000000000000000000000000000000000000000000000', 'features': None}]
    """
    out: dict[str, Any] = {
        "ref": entry.ref,
        "kind": entry.kind,
        "fingerprint_sm3": entry.fingerprint_sm3.hex(),
    }
    if entry.title is not None:
        out["title"] = entry.title
    if entry.kind == "image":
        out["image"] = {
            "frames": [
                {"dct": f.dct.hex(), "features": None if f.features is None else _b64(f.features)}
                for f in entry.frames
            ]
        }
        if entry.pdq:
            out["pdq"] = [{"hash": p.hash.hex(), "quality": p.quality} for p in entry.pdq]
    elif entry.kind == "video":
        v = entry.video
        if v is None:
            raise HashListError(f"video entry {entry.ref} has no picture fingerprint")
        out["video"] = {
            "rate": v.rate,
            "frames": v.frames,
            "codes": _b64(v.codes),
            "valid": _b64(v.valid),
            "centre": _b64(v.centre),
            "centre_valid": _b64(v.centre_valid),
        }
        if entry.audio is not None:
            out["audio"] = _layer_json(entry.audio)
            if entry.bass is not None:
                out["bass"] = _layer_json(entry.bass)
    else:
        if entry.audio is None:
            raise HashListError(f"audio entry {entry.ref} has no main-layer fingerprint")
        out["audio"] = _layer_json(entry.audio)
        if entry.bass is not None:
            out["bass"] = _layer_json(entry.bass)
    return out


def _line(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8") + b"\n"


def encode_hash_list(
    member: str,
    entries: Iterable[Entry],
    *,
    signals: Mapping[str, Any] | None = None,
    key: PrivateKey | None = None,
    created: str | None = None,
) -> bytes:
    """The bytes of a hash list of ``entries`` exported by ``member``, signed with ``key`` if given.

    Parameters
    ----------
    member : str
        The exporting member's id (at most 200 printable characters).
    entries : iterable of Entry
        The works.
    signals : mapping, optional
        Parameters per signal type (see :func:`forensics.exchange.export.signal_parameters`).
    key : PrivateKey, optional
        The member's SM2 key; the list is unsigned without one.
    created : str, optional
        Creation time (UTC, RFC 3339); now when omitted.

    Returns
    -------
    bytes

    Raises
    ------
    HashListError
        A bad member id, a duplicate reference or an entry that cannot be encoded.
    """
    _check_member(member)
    items = list(entries)
    seen: set[str] = set()
    for e in items:
        _check_ref(e.ref)
        if e.ref in seen:
            raise HashListError(f"reference {e.ref} appears twice; every work needs its own reference")
        seen.add(e.ref)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "member": member,
        "created": created or now_rfc3339(),
        "entries": len(items),
        "signals": dict(signals or {}),
        "signer": None
        if key is None
        else {"algorithm": "SM2", "public_key": key.public_key.to_bytes().hex()},
    }
    body = bytearray(_line(header))
    for e in items:
        body += _line(entry_json(e))
    digest = sm3(bytes(body))
    signature = None if key is None else key.sign(digest).hex()
    return bytes(body) + _line({"sm3": digest.hex(), "signature": signature})


# -- decoding ----------------------------------------------------------------------------------


def _check_member(member: object) -> str:
    if (
        not isinstance(member, str)
        or not member.strip()
        or len(member) > _MEMBER_MAX
        or any(ord(c) < 32 for c in member)
    ):
        raise MalformedHashListError(
            f"a member id is 1 to {_MEMBER_MAX} printable characters, not {str(member)[:40]!r}"
        )
    return member


def _check_ref(ref: object) -> str:
    if not isinstance(ref, str) or not _REF.match(ref):
        raise MalformedHashListError(
            f"a work reference is 1 to 128 letters, digits or '._:-' (starting with a letter or digit), "
            f"not {str(ref)[:40]!r}"
        )
    return ref


def _hex(value: object, size: int, what: str) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * size:
        raise MalformedHashListError(f"{what} must be {2 * size} hex digits")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise MalformedHashListError(f"{what} is not hexadecimal") from None


def _unb64(value: object, what: str, limit: int) -> bytes:
    if not isinstance(value, str):
        raise MalformedHashListError(f"{what} must be a base64 string")
    if len(value) > (limit + 2) // 3 * 4:
        raise HashListTooLargeError(f"{what} is larger than the reader's limit of {limit} bytes")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise MalformedHashListError(f"{what} is not valid base64") from None


def _obj(
    value: object, what: str, keys: set[str], optional: frozenset[str] | set[str] = frozenset()
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedHashListError(f"{what} must be a JSON object")
    missing = keys - value.keys()
    extra = value.keys() - keys - optional
    if missing:
        raise MalformedHashListError(f"{what} lacks {', '.join(sorted(missing))}")
    if extra:
        raise MalformedHashListError(f"{what} has unknown fields {', '.join(sorted(extra))}")
    return value


def _layer(value: object, what: str, limits: Limits) -> AudioLayer:
    d = _obj(value, what, {"duration", "hashes", "frames", "peaks_t", "peaks_lf"})
    duration = d["duration"]
    if isinstance(duration, bool) or not isinstance(duration, int | float) or not math.isfinite(duration):
        raise MalformedHashListError(f"{what}.duration must be a number of seconds")
    if not 0 <= duration <= 24 * 3600:
        raise MalformedHashListError(f"{what}.duration {duration} is outside 0 .. 86400 s")
    hashes = _unb64(d["hashes"], f"{what}.hashes", 4 * limits.max_landmarks)
    frames = _unb64(d["frames"], f"{what}.frames", 4 * limits.max_landmarks)
    if len(hashes) % 4 or len(hashes) != len(frames):
        raise MalformedHashListError(f"{what}: hashes and frames must be 32-bit arrays of one length")
    peaks_t = _unb64(d["peaks_t"], f"{what}.peaks_t", 4 * limits.max_landmarks)
    peaks_lf = _unb64(d["peaks_lf"], f"{what}.peaks_lf", 2 * limits.max_landmarks)
    if len(peaks_t) % 4 or len(peaks_lf) * 2 != len(peaks_t):
        raise MalformedHashListError(f"{what}: reference peaks must be 32-bit times and 16-bit frequencies")
    h = np.frombuffer(hashes, dtype="<u4").astype(np.uint32)
    f = np.frombuffer(frames, dtype="<u4").astype(np.uint32)
    if len(h) > 1 and bool(np.any((h[1:] < h[:-1]) | ((h[1:] == h[:-1]) & (f[1:] < f[:-1])))):
        raise MalformedHashListError(f"{what}: landmarks must be sorted by hash, then frame")
    return AudioLayer(float(duration), h, f, peaks_t, peaks_lf)


def _flags(data: bytes, frames: int, what: str) -> bytes:
    """Packed per-frame flags, checked: one bit per frame, unused bits zero."""
    if len(data) != (frames + 7) // 8:
        raise MalformedHashListError(f"{what} must hold one bit per frame ({(frames + 7) // 8} bytes)")
    if frames % 8 and data[-1] & (0xFF >> (frames % 8)):
        raise MalformedHashListError(f"{what}: the bits past the last frame must be zero")
    return data


def _video(value: object, what: str, limits: Limits) -> VideoPicture:
    d = _obj(value, what, {"rate", "frames", "codes", "valid", "centre", "centre_valid"})
    rate, frames = d["rate"], d["frames"]
    if (
        isinstance(rate, bool)
        or not isinstance(rate, int | float)
        or not (math.isfinite(rate) and 0 < rate <= 60)
    ):
        raise MalformedHashListError(f"{what}.rate must be frames per second, above 0 and at most 60")
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise MalformedHashListError(f"{what}.frames must be a positive count")
    if frames > limits.max_video_frames:
        raise HashListTooLargeError(
            f"{what} has {frames:,} frames, more than the reader's limit of {limits.max_video_frames:,}"
        )
    size = VIDEO_HASH_BYTES * limits.max_video_frames
    codes = _unb64(d["codes"], f"{what}.codes", size)
    valid = _flags(_unb64(d["valid"], f"{what}.valid", size), frames, f"{what}.valid")
    if len(codes) != VIDEO_HASH_BYTES * frames:
        raise MalformedHashListError(f"{what}.codes must hold {VIDEO_HASH_BYTES} bytes per frame ({frames})")
    centre = _unb64(d["centre"], f"{what}.centre", size)
    centre_valid = _unb64(d["centre_valid"], f"{what}.centre_valid", size)
    if centre or centre_valid:
        if len(centre) != len(codes):
            raise MalformedHashListError(f"{what}.centre must hold one hash per frame, as codes")
        _flags(centre_valid, frames, f"{what}.centre_valid")
    return VideoPicture(float(rate), codes, valid, centre, centre_valid)


def _entry(value: object, n: int, limits: Limits) -> Entry:
    where = f"entry {n}"
    if not isinstance(value, dict):
        raise MalformedHashListError(f"{where} must be a JSON object")
    kind = value.get("kind")
    if kind == "image":
        d = _obj(value, where, {"ref", "kind", "fingerprint_sm3", "image"}, {"title", "pdq"})
    elif kind == "audio":
        d = _obj(value, where, {"ref", "kind", "fingerprint_sm3", "audio"}, {"title", "bass"})
    elif kind == "video":
        d = _obj(value, where, {"ref", "kind", "fingerprint_sm3", "video"}, {"title", "audio", "bass"})
    else:
        raise MalformedHashListError(
            f"{where}: kind must be 'image', 'audio' or 'video', not {str(kind)[:20]!r}"
        )
    ref = _check_ref(d["ref"])
    where = f"entry {n} ({ref})"
    fp = _hex(d["fingerprint_sm3"], 32, f"{where}: fingerprint_sm3")
    title = d.get("title")
    if title is not None and (not isinstance(title, str) or len(title) > _TITLE_MAX):
        raise MalformedHashListError(f"{where}: title must be a string of at most {_TITLE_MAX} characters")
    if kind == "audio":
        audio = _layer(d["audio"], f"{where}.audio", limits)
        bass = None if d.get("bass") is None else _layer(d["bass"], f"{where}.bass", limits)
        return Entry(ref, "audio", fp, title, audio=audio, bass=bass)
    if kind == "video":
        video = _video(d["video"], f"{where}.video", limits)
        sound = None if d.get("audio") is None else _layer(d["audio"], f"{where}.audio", limits)
        if d.get("bass") is not None and sound is None:
            raise MalformedHashListError(f"{where}: a bass layer without the soundtrack's main layer")
        bass = None if d.get("bass") is None else _layer(d["bass"], f"{where}.bass", limits)
        return Entry(ref, "video", fp, title, audio=sound, bass=bass, video=video)
    image = _obj(d["image"], f"{where}.image", {"frames"})
    raw_frames = image["frames"]
    if not isinstance(raw_frames, list) or not raw_frames:
        raise MalformedHashListError(f"{where}: an image entry needs a non-empty list of frames")
    if len(raw_frames) > limits.max_frames:
        raise HashListTooLargeError(f"{where} has {len(raw_frames)} frames, more than {limits.max_frames}")
    frames = []
    for k, raw in enumerate(raw_frames):
        fr = _obj(raw, f"{where} frame {k}", {"dct", "features"})
        dct = _hex(fr["dct"], 32, f"{where} frame {k}: dct")
        feats = None
        if fr["features"] is not None:
            feats = _unb64(fr["features"], f"{where} frame {k}: features", limits.max_features)
        frames.append(ImageFrame(dct, feats))
    pdq_raw = d.get("pdq") or []
    if not isinstance(pdq_raw, list):
        raise MalformedHashListError(f"{where}: pdq must be a list")
    if len(pdq_raw) > limits.max_pdq:
        raise HashListTooLargeError(f"{where} has {len(pdq_raw)} PDQ hashes, more than {limits.max_pdq}")
    pdq = []
    for k, raw in enumerate(pdq_raw):
        p = _obj(raw, f"{where} pdq {k}", {"hash", "quality"})
        q = p["quality"]
        if isinstance(q, bool) or not isinstance(q, int) or not 0 <= q <= 100:
            raise MalformedHashListError(f"{where} pdq {k}: quality must be an integer 0..100")
        pdq.append(PdqHash(_hex(p["hash"], 32, f"{where} pdq {k}: hash"), q))
    return Entry(ref, "image", fp, title, frames=tuple(frames), pdq=tuple(pdq))


def _json_line(line: bytes, what: str) -> Any:
    try:
        return json.loads(line.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise MalformedHashListError(f"{what} is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise MalformedHashListError(f"{what} is not JSON ({exc.msg} at column {exc.colno})") from None


def _no_constant(name: str) -> Any:
    raise MalformedHashListError(f"the hash list holds {name}, which JSON does not allow")


def _header(value: object) -> Header:
    if not isinstance(value, dict) or value.get("format") != FORMAT:
        raise MalformedHashListError(f"not a hash list: the first line does not say format {FORMAT!r}")
    version = value.get("version")
    if version != VERSION:
        raise UnsupportedHashListVersionError(
            f"the hash list is format version {str(version)[:12]}; this reader knows version {VERSION} "
            "only (ask the member for a list in version 1, or upgrade)"
        )
    d = _obj(value, "the header", {"format", "version", "member", "created", "entries", "signals", "signer"})
    member = _check_member(d["member"])
    created = d["created"]
    if not isinstance(created, str) or len(created) > 40:
        raise MalformedHashListError("the header's created must be an RFC 3339 time")
    try:
        datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedHashListError(f"the header's created {created!r} is not an RFC 3339 time") from None
    entries = d["entries"]
    if isinstance(entries, bool) or not isinstance(entries, int) or entries < 0:
        raise MalformedHashListError("the header's entries must be a count")
    if not isinstance(d["signals"], dict):
        raise MalformedHashListError("the header's signals must be a JSON object")
    signer = None
    if d["signer"] is not None:
        s = _obj(d["signer"], "the header's signer", {"algorithm", "public_key"})
        if s["algorithm"] != "SM2":
            raise HashListSignatureError(
                f"unknown signature algorithm {str(s['algorithm'])[:20]!r}; SM2 is known"
            )
        signer = _hex(s["public_key"], 65, "the signer's public key")
    return Header(member, created, entries, dict(d["signals"]), signer, VERSION)


def _framed(data: bytes, limits: Limits) -> tuple[Header, list[bytes]]:
    """The header and the lines of a complete list (header, entries, trailer), sizes checked."""
    end = data.find(b"\n", 0, limits.max_line + 1)
    if not data.startswith(b"{"):
        raise MalformedHashListError(
            f"not a hash list: the file does not start with a {FORMAT} header line (is it a media file?)"
        )
    if end < 0:
        if len(data) > limits.max_line:
            raise HashListTooLargeError(
                f"the hash list's first line is longer than {limits.max_line:,} bytes"
            )
        raise TruncatedHashListError("the hash list ends inside its header line; the copy is incomplete")
    try:
        first = _json_line(data[:end], "the header line")
    except MalformedHashListError as exc:
        raise MalformedHashListError(f"not a hash list: {exc} (is it a media file?)") from None
    header = _header(first)
    if not data.endswith(b"\n"):
        raise TruncatedHashListError(
            f"the hash list ends mid-line (no final newline after {len(data):,} bytes); the copy is "
            "incomplete"
        )
    lines = data.split(b"\n")[:-1]
    if any(len(line) > limits.max_line for line in lines):
        raise HashListTooLargeError(f"a line of the hash list is longer than {limits.max_line:,} bytes")
    if header.entries > limits.max_entries:
        raise HashListTooLargeError(
            f"the hash list holds {header.entries:,} entries, more than the limit of {limits.max_entries:,}"
        )
    expected = header.entries + 2
    if len(lines) < expected:
        raise TruncatedHashListError(
            f"the hash list ends after {max(0, len(lines) - 1)} of {header.entries} entries and has no "
            "trailer; the copy is incomplete"
        )
    if len(lines) > expected:
        raise MalformedHashListError(
            f"the hash list has {len(lines) - expected} more lines than its {header.entries} entries and "
            "trailer"
        )
    return header, lines


def _checked_trailer(data: bytes, last: bytes, header: Header) -> tuple[bytes, bytes | None]:
    """The list's digest and signature, both checked against the bytes before the trailer."""
    trailer_raw = _json_line(last, "the trailer line")
    if isinstance(trailer_raw, dict) and "format" in trailer_raw:
        raise TruncatedHashListError("the hash list has no trailer; the copy is incomplete")
    trailer = _obj(trailer_raw, "the trailer", {"sm3", "signature"})
    body = data[: len(data) - len(last) - 1]
    digest = sm3(body)
    if _hex(trailer["sm3"], 32, "the trailer's sm3") != digest:
        raise HashListDigestError(
            "the hash list's bytes do not match its SM3 digest: it was altered or damaged after it was "
            "written"
        )
    signature = None if trailer["signature"] is None else _hex(trailer["signature"], 64, "the signature")
    if (signature is None) != (header.signer is None):
        raise HashListSignatureError(
            "the header names a signer but the trailer has no signature"
            if signature is None
            else "the trailer has a signature but the header names no signer"
        )
    if signature is not None and header.signer is not None:
        try:
            PublicKey.from_bytes(header.signer).verify(digest, signature)
        except CryptoError as exc:
            raise HashListSignatureError(
                f"the hash list's SM2 signature does not verify with the key it names ({exc}); it was forged "
                "or altered"
            ) from None
    return digest, signature


def decode_hash_list(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> HashList:
    """Decode and check a hash list: format, version, sizes, entry count, digest, signature.

    A signed list's signature is verified against the key its header names; whether that
    key is the one the reader expects is :func:`check_signer`'s question.

    Parameters
    ----------
    data : bytes
        The file's bytes.
    limits : Limits
        What is accepted.

    Returns
    -------
    HashList

    Raises
    ------
    MalformedHashListError
        Not a hash list, or a line breaks the format.
    TruncatedHashListError
        Fewer entries than the header states, or no complete trailer.
    HashListTooLargeError
        Beyond ``limits``.
    UnsupportedHashListVersionError
        Another format version.
    HashListDigestError
        The bytes do not match the trailer's SM3 digest.
    HashListSignatureError
        The signature is malformed or does not verify.
    """
    if len(data) > limits.max_bytes:
        raise HashListTooLargeError(
            f"the hash list is {len(data):,} bytes, more than the limit of {limits.max_bytes:,}"
        )
    if not data:
        raise MalformedHashListError("the file is empty; it is not a hash list")
    header, lines = _framed(data, limits)
    digest, signature = _checked_trailer(data, lines[-1], header)
    entries = tuple(_entry(_json_line(line, f"entry {n}"), n, limits) for n, line in enumerate(lines[1:-1]))
    refs = [e.ref for e in entries]
    if len(set(refs)) != len(refs):
        raise MalformedHashListError("the hash list names one work reference twice")
    return HashList(header, entries, digest, signature)


def check_signer(
    hl: HashList,
    *,
    expected: PublicKey | None = None,
    member: str | None = None,
    allow_unsigned: bool = False,
) -> None:
    """Check who published ``hl``: the expected key and member, or an allowed unsigned list.

    Parameters
    ----------
    hl : HashList
        A decoded list (its signature, if any, already verified).
    expected : PublicKey, optional
        The key the publisher is known by (from its certificate); any verified signer
        is accepted when omitted.
    member : str, optional
        The member the list must name.
    allow_unsigned : bool
        Accept a list without signature (``expected`` must then be omitted).

    Raises
    ------
    HashListSignatureError
        Unsigned and not allowed, or signed by another key than ``expected``.
    HashListMismatchError
        The list names another member.

    Examples
    --------
    >>> from chain.crypto.sm2 import PrivateKey
    >>> a, b = PrivateKey.generate(), PrivateKey.generate()
    >>> hl = decode_hash_list(encode_hash_list("m", [], key=a))
    >>> check_signer(hl, expected=a.public_key, member="m")
    >>> check_signer(hl, expected=b.public_key)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    forensics.exchange.errors.HashListSignatureError: the hash list was signed by key ...
    """
    from forensics.exchange.errors import HashListMismatchError

    if member is not None and hl.header.member != member:
        raise HashListMismatchError(
            f"the hash list was exported by member {hl.header.member!r}, not {member!r}; not imported"
        )
    signer = hl.signer
    if signer is None:
        if expected is not None or not allow_unsigned:
            raise HashListSignatureError(
                "the hash list is not signed, so who published it cannot be checked; ask the member for a "
                "signed list (works export --key), or accept it knowingly with --allow-unsigned"
            )
        return
    if expected is not None and signer != expected:
        raise HashListSignatureError(
            f"the hash list was signed by key {signer.key_id()[:16]}…, not by the expected key "
            f"{expected.key_id()[:16]}…; not imported"
        )
