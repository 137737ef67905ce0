"""HLS and DASH manifests read into a bounded plan of segment URLs: pure functions, no I/O.

A streamed video is a manifest (an HLS ``.m3u8`` playlist or a DASH ``.mpd``) listing
segment files. To identify it the scanner fetches enough segments from the start of one
rendition (the lowest bandwidth: the fingerprints work on small frames) and joins them.
The manifest is hostile input, so the plan is bounded whatever it says:

* at most :attr:`StreamCaps.segments` segments and :attr:`StreamCaps.seconds` seconds of
  media are planned, however many the manifest lists (a DASH template is expanded lazily,
  so "a billion segments" costs nothing);
* a segment duration that is not a finite number in (0, :data:`MAX_SEGMENT_SECONDS`] makes
  the manifest refused (absurd durations are how a hostile playlist hides unbounded work);
* a master playlist may name media playlists, not further masters beyond
  :attr:`StreamCaps.nesting` levels; the scanner refuses a playlist URL met twice (loops);
* HLS segments encrypted with ``METHOD=AES-128`` are planned with their key URI and IV
  (the tag's, or the media sequence number), byte-range segments (``EXT-X-BYTERANGE``,
  ``EXT-X-MAP``'s ``BYTERANGE``) with their ranges (:mod:`crawlers.segments`); every other
  encryption (``SAMPLE-AES``, ``SAMPLE-AES-CTR``, key formats other than ``identity``:
  DRM) is refused, and so are DASH ``mediaRange`` segments;
* segment URLs must be http(s); whether their hosts may be reached is the fetcher's SSRF
  guard's decision, segment by segment (and :func:`literal_refusal` refuses a plan naming
  a literal internal address before anything is fetched).

HLS is parsed with the ``m3u8`` library (it knows the tag zoo: ``EXT-X-MAP``, keys, stream
infos); it is permissive (it accepts ``#EXTINF:nan`` and negative durations), so the checks
above run on what it returns. DASH is parsed with ``defusedxml`` (entity declarations,
external entities and DTDs refused) and read here: ``BaseURL``, ``SegmentTemplate`` (with
``$Number$``/``$Time$`` and ``SegmentTimeline``), ``SegmentList`` and ``SegmentBase``.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from crawlers.errors import PlaylistError
from crawlers.guard import AddressGuard
from crawlers.segments import ByteRange, Key, parse_iv, sequence_iv
from crawlers.sniff import sniff
from crawlers.urls import URLError, host_of, normalize

#: Longest segment duration accepted (seconds).
MAX_SEGMENT_SECONDS = 600.0
_DASH_NS = re.compile(r"^\{[^}]*\}")


@dataclass(frozen=True)
class StreamCaps:
    """Bounds of one stream's identification.

    Attributes
    ----------
    segments : int
        Most segments fetched (per track).
    seconds : float
        Media seconds planned from the start (per track).
    nesting : int
        Master playlists followed before a media playlist must come.
    """

    segments: int = 40
    seconds: float = 60.0
    nesting: int = 2


@dataclass(frozen=True)
class Piece:
    """How one segment (or init section) is fetched: a byte range of its URL, and its AES-128 key."""

    byterange: ByteRange | None = None
    key: Key | None = None


@dataclass(frozen=True)
class Track:
    """Segments of one rendition to fetch and join, in order (``init`` first when set).

    ``pieces`` go with ``segments`` one for one (empty: every segment a whole file in
    clear); ``init_piece`` goes with ``init``.
    """

    kind: str  # "video", "audio" or "muxed"
    init: str | None
    segments: tuple[str, ...]
    seconds: float
    pieces: tuple[Piece, ...] = ()
    init_piece: Piece = Piece()

    def parts(self) -> list[tuple[str, Piece, bool]]:
        """``(url, piece, is_init)`` to fetch, in order."""
        pieces = self.pieces or (Piece(),) * len(self.segments)
        head = [(self.init, self.init_piece, True)] if self.init else []
        return [*head, *((u, p, False) for u, p in zip(self.segments, pieces, strict=True))]

    def urls(self) -> list[str]:
        """Every URL the track fetches (segments, init section, keys)."""
        keys = [p.key.uri for p in (*self.pieces, self.init_piece) if p.key is not None]
        return [u for u, _, _ in self.parts()] + list(dict.fromkeys(keys))


@dataclass(frozen=True)
class Plan:
    """What to fetch of a manifest: tracks, or another playlist to read first (HLS masters)."""

    tracks: tuple[Track, ...] = ()
    next_playlist: str | None = None
    notes: list[str] = field(default_factory=list)


def manifest_type(body: bytes) -> str | None:
    """``"hls"``, ``"dash"`` or ``None`` from a body's first bytes.

    Examples
    --------
    >>> manifest_type(b"#EXTM3U\\n"), manifest_type(b'<?xml version="1.0"?>\\n<MPD xmlns="x">')
    ('hls', 'dash')
    """
    head = body[:1024].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"#EXTM3U"):
        return "hls"
    if sniff(head) == "application/dash+xml":
        return "dash"
    return None


def _url(raw: str, base: str) -> str:
    try:
        return normalize(raw, base)
    except URLError as exc:
        raise PlaylistError(f"bad segment URL {raw[:100]!r}: {exc}") from None


def _duration(value: Any, where: str) -> float:
    try:
        d = float(value)
    except (TypeError, ValueError):
        raise PlaylistError(f"{where}: duration {value!r} is not a number") from None
    if not math.isfinite(d) or d <= 0 or d > MAX_SEGMENT_SECONDS:
        raise PlaylistError(f"{where}: absurd segment duration {value!r}; refused")
    return d


# -- HLS ------------------------------------------------------------------------------------


def hls_plan(text: str, url: str, caps: StreamCaps, level: int = 0) -> Plan:
    """The plan of an HLS playlist fetched from ``url`` (``level`` masters deep).

    Returns
    -------
    Plan
        A master playlist gives ``next_playlist`` (its lowest-bandwidth variant); a media
        playlist gives one ``"muxed"`` track.

    Raises
    ------
    PlaylistError
        Unreadable, encrypted other than with AES-128, bad byte ranges or IVs, absurd
        durations, or masters nested too deep.
    """
    import m3u8

    try:
        pl = m3u8.loads(text, uri=url)
    except Exception as exc:  # the library raises ValueError, IndexError, AttributeError...
        raise PlaylistError(f"{url}: not a readable HLS playlist: {type(exc).__name__}") from None
    if pl.is_variant:
        if level >= caps.nesting:
            raise PlaylistError(f"{url}: master playlists nested deeper than {caps.nesting}; refused")
        variants = [(p.stream_info.bandwidth or 0, i, p.uri) for i, p in enumerate(pl.playlists) if p.uri]
        if not variants:
            raise PlaylistError(f"{url}: master playlist without variants")
        return Plan(next_playlist=_url(min(variants)[2], url))
    if not pl.segments:
        raise PlaylistError(f"{url}: playlist without segments")
    init: str | None = None
    init_piece = Piece()
    chosen: list[str] = []
    pieces: list[Piece] = []
    ends: dict[str, int] = {}  # where the last sub-range of each file ended
    total = 0.0
    for i, seg in enumerate(pl.segments):
        d = _duration(seg.duration, f"{url} segment {i}")
        section = seg.init_section
        if section is not None and section.uri:
            seg_init = _url(section.uri, url)
            if init is None and not chosen:
                init = seg_init
                if section.byterange:
                    init_piece = Piece(_byterange(section.byterange, 0, f"{url} EXT-X-MAP"))
            elif seg_init != init:
                break  # a discontinuity with another init section: stop at what we have
        if len(chosen) >= caps.segments or total >= caps.seconds:
            break
        seg_url = _url(seg.uri, url)
        piece = Piece(
            _byterange(seg.byterange, ends.get(seg_url), f"{url} segment {i}") if seg.byterange else None,
            _hls_key(seg, url, pl.media_sequence, i),
        )
        if piece.byterange is not None:
            ends[seg_url] = piece.byterange.end
        chosen.append(seg_url)
        pieces.append(piece)
        total += d
    if not any(p.byterange or p.key for p in pieces):
        pieces = []
    return Plan(tracks=(Track("muxed", init, tuple(chosen), total, tuple(pieces), init_piece),))


def _byterange(value: str, previous_end: int | None, where: str) -> ByteRange:
    try:
        return ByteRange.parse(value, previous_end)
    except PlaylistError as exc:
        raise PlaylistError(f"{where}: {exc}") from None


def _hls_key(seg: Any, url: str, first_sequence: int | None, index: int) -> Key | None:
    """The AES-128 key of a segment, ``None`` in clear; any other encryption refused."""
    key = seg.key
    method = (getattr(key, "method", None) or "NONE").upper() if key is not None else "NONE"
    if method == "NONE":
        return None
    if method != "AES-128":
        raise PlaylistError(f"{url}: stream encrypted with {method} (DRM); not identified, only AES-128 is")
    keyformat = (key.keyformat or "identity").strip().lower()
    if keyformat != "identity":
        raise PlaylistError(f"{url}: encrypted stream with key format {keyformat!r} (DRM); not identified")
    if not key.uri:
        raise PlaylistError(f"{url}: AES-128 key without a URI")
    try:
        key_url = normalize(key.uri, url)
    except URLError as exc:
        raise PlaylistError(f"{url}: bad AES-128 key URI {str(key.uri)[:100]!r}: {exc}") from None
    if key.iv:
        try:
            iv = parse_iv(key.iv)
        except PlaylistError as exc:
            raise PlaylistError(f"{url}: {exc}") from None
    else:
        sequence = getattr(seg, "media_sequence", None)
        iv = sequence_iv(sequence if isinstance(sequence, int) else (first_sequence or 0) + index)
    return Key(key_url, iv)


# -- DASH -----------------------------------------------------------------------------------


def _tag(el: Any) -> str:
    return _DASH_NS.sub("", el.tag)


def _child(el: Any, name: str) -> Any:
    return next((c for c in el if _tag(c) == name), None)


def _children(el: Any, name: str) -> list[Any]:
    return [c for c in el if _tag(c) == name]


def _iso_duration(value: str | None) -> float | None:
    """Seconds of an ISO 8601 duration such as ``PT1H2M3.5S`` (``None`` if absent or bad)."""
    if not value:
        return None
    m = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?", value.strip())
    if not m:
        return None
    d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    return d * 86400 + h * 3600 + mi * 60 + s


def _template(pattern: str, rep_id: str, bandwidth: str, number: int, time: int) -> str:
    def sub(m: re.Match[str]) -> str:
        name, fmt = m.group(1), m.group(2)
        if name == "":
            return "$"
        value: Any = {"RepresentationID": rep_id, "Bandwidth": bandwidth, "Number": number, "Time": time}.get(
            name
        )
        if value is None:
            raise PlaylistError(f"unknown template identifier ${name}$")
        if fmt and isinstance(value, int):
            width = int(fmt[2:-1]) if re.fullmatch(r"%0\d{1,2}d", fmt) else 0
            return str(value).zfill(width)
        return str(value)

    return re.sub(r"\$(\w*)(%0\d{1,2}d)?\$", sub, pattern)


def _base(el: Any, base: str) -> str:
    b = _child(el, "BaseURL")
    if b is not None and (b.text or "").strip():
        return _url(b.text.strip(), base)
    return base


def _timeline(tl: Any, start_number: int, caps: StreamCaps) -> Iterator[tuple[int, int, int]]:
    """``(number, time, duration)`` of a SegmentTimeline, expanded lazily (``r`` may be huge)."""
    number, t = start_number, 0
    for s in _children(tl, "S"):
        try:
            t = int(s.get("t", t))
            d = int(s.get("d"))
            r = int(s.get("r", 0))
        except (TypeError, ValueError):
            raise PlaylistError("SegmentTimeline entry without a valid t/d/r") from None
        if d <= 0:
            raise PlaylistError(f"absurd SegmentTimeline duration {d}; refused")
        for _ in range(min(max(r, 0), caps.segments) + 1):
            yield number, t, d
            number += 1
            t += d


def _from_template(
    tmpl: Any, rep_id: str, bw: str, base: str, total: float | None, caps: StreamCaps
) -> tuple[str | None, list[str], float]:
    try:
        timescale = int(tmpl.get("timescale", 1))
        start_number = int(tmpl.get("startNumber", 1))
    except ValueError:
        raise PlaylistError("SegmentTemplate with a bad timescale or startNumber") from None
    if timescale <= 0:
        raise PlaylistError(f"absurd timescale {timescale}; refused")
    init = None
    if tmpl.get("initialization"):
        init = _url(_template(tmpl.get("initialization"), rep_id, bw, 0, 0), base)
    media = tmpl.get("media")
    if not media:
        raise PlaylistError("SegmentTemplate without a media pattern")
    tl = _child(tmpl, "SegmentTimeline")
    if tl is not None:
        entries: Iterator[tuple[int, int, int]] = _timeline(tl, start_number, caps)
    else:
        try:
            d = _duration(int(tmpl.get("duration", 0) or 0) / timescale, "SegmentTemplate") * timescale
        except ValueError:
            raise PlaylistError("SegmentTemplate with a bad duration") from None
        count = caps.segments if total is None else max(1, math.ceil(total * timescale / d))
        entries = ((start_number + k, int(k * d), int(d)) for k in range(min(count, caps.segments)))
    urls: list[str] = []
    seconds = 0.0
    for number, t, d in entries:
        if len(urls) >= caps.segments or seconds >= caps.seconds:
            break
        seconds += _duration(d / timescale, "SegmentTemplate")
        urls.append(_url(_template(media, rep_id, bw, number, t), base))
    return init, urls, seconds


def _from_list(seg_list: Any, base: str, caps: StreamCaps) -> tuple[str | None, list[str], float]:
    init = None
    ini = _child(seg_list, "Initialization")
    if ini is not None and ini.get("sourceURL"):
        init = _url(ini.get("sourceURL"), base)
    try:
        timescale = max(int(seg_list.get("timescale", 1)), 1)
        d = _duration(int(seg_list.get("duration", 0) or 0) / timescale, "SegmentList")
    except ValueError:
        raise PlaylistError("SegmentList with a bad duration") from None
    urls: list[str] = []
    seconds = 0.0
    for s in _children(seg_list, "SegmentURL"):
        if len(urls) >= caps.segments or seconds >= caps.seconds:
            break
        if s.get("mediaRange"):
            raise PlaylistError("byte-range segments are not fetched")
        urls.append(_url(s.get("media", ""), base))
        seconds += d
    return init, urls, seconds


def _dash_track(kind: str, rep: Any, aset: Any, base: str, total: float | None, caps: StreamCaps) -> Track:
    base = _base(rep, base)
    rep_id, bw = rep.get("id", ""), rep.get("bandwidth", "")
    tmpl = _child(rep, "SegmentTemplate")
    if tmpl is None:
        tmpl = _child(aset, "SegmentTemplate")
    seg_list = _child(rep, "SegmentList")
    if seg_list is None:
        seg_list = _child(aset, "SegmentList")
    if tmpl is not None:
        init, urls, seconds = _from_template(tmpl, rep_id, bw, base, total, caps)
    elif seg_list is not None:
        init, urls, seconds = _from_list(seg_list, base, caps)
    else:  # SegmentBase or nothing: the BaseURL is the whole file
        init, urls, seconds = None, [base], total or 0.0
    if not urls:
        raise PlaylistError(f"representation {rep_id!r} lists no segments")
    return Track(kind, init, tuple(urls), seconds)


def dash_plan(body: bytes, url: str, caps: StreamCaps) -> Plan:
    """The plan of a DASH MPD fetched from ``url``: the lowest-bandwidth video and audio
    representations of its first period.

    Raises
    ------
    PlaylistError
        Not XML, entities or DTDs (refused by ``defusedxml``), no usable representation,
        absurd durations or timescales.
    """
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        root = fromstring(body, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise PlaylistError(f"{url}: not a usable MPD: {type(exc).__name__}: {exc}") from None
    if _tag(root) != "MPD":
        raise PlaylistError(f"{url}: the root element is not MPD")
    total = _iso_duration(root.get("mediaPresentationDuration"))
    base = _base(root, url)
    period = _child(root, "Period")
    if period is None:
        raise PlaylistError(f"{url}: MPD without a Period")
    base = _base(period, base)
    best: dict[str, tuple[int, Any, Any]] = {}
    for aset in _children(period, "AdaptationSet"):
        for rep in _children(aset, "Representation"):
            mime = (rep.get("mimeType") or aset.get("mimeType") or aset.get("contentType") or "").lower()
            kind = "video" if mime.startswith("video") else "audio" if mime.startswith("audio") else ""
            if not kind:
                continue
            try:
                bw = int(rep.get("bandwidth", 0))
            except ValueError:
                bw = 0
            if kind not in best or bw < best[kind][0]:
                best[kind] = (bw, rep, aset)
    if not best:
        raise PlaylistError(f"{url}: no video or audio representation")
    tracks = tuple(
        _dash_track(kind, rep, aset, _base(aset, base), total, caps)
        for kind, (_, rep, aset) in sorted(best.items(), reverse=True)  # video first
    )
    return Plan(tracks=tracks)


def literal_refusal(urls: list[str], guard: AddressGuard) -> str | None:
    """Why a plan must be refused outright: a URL whose host is a literal address the guard
    would refuse (checked without any lookup or connection), or ``None``.

    The guard's allow-list applies; this stops a playlist that names ``169.254.169.254``
    or ``10.0.0.1`` before a single segment is fetched (named hosts are resolved and
    checked by the fetcher, segment by segment).

    Examples
    --------
    >>> literal_refusal(["http://cdn.test/a.ts", "http://169.254.169.254/b.ts"], AddressGuard())
    'http://169.254.169.254/b.ts: a metadata address'
    """
    for u in urls:
        host = host_of(u)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            continue
        why = guard.refusal(host)
        if why is not None:
            return f"{u}: a {why} address"
    return None
