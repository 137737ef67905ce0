"""Seeds from sitemaps and feeds: XML sitemaps (and their indexes), RSS 2.0 and Atom.

``rongxin scan --sitemap URL`` expands a sitemap, a sitemap index, an RSS or an Atom feed
into seed pages (and, for feeds, the media they enclose: podcasts and video feeds). Every
file is hostile input:

* XML is parsed with ``defusedxml`` with DTDs forbidden: entity expansion ("billion
  laughs"), external entities and DTD fetches are refused, never resolved;
* a gzip-compressed sitemap (``.xml.gz``, by its magic bytes) is decompressed up to
  :attr:`SeedCaps.file_bytes` with a ratio cap (a decompression bomb is refused);
* sitemap indexes are followed :attr:`SeedCaps.depth` levels deep, :attr:`SeedCaps.files`
  files at most, each file once (an index that lists itself is not a loop);
* at most :attr:`SeedCaps.urls` URLs are taken, and, as the sitemap protocol says, only
  URLs on the sitemap's own origin (a sitemap cannot seed another site, or an internal
  address); feed links may point anywhere (feeds aggregate), the fetcher's guard still
  decides what is reached.

Parsing is pure (:func:`parse`); :func:`expand` fetches with the scan's guarded fetcher.
"""

from __future__ import annotations

import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from crawlers.errors import CrawlError, SeedFileError
from crawlers.fetch import Fetcher
from crawlers.urls import URLError, normalize, origin_of


@dataclass(frozen=True)
class SeedCaps:
    """Bounds of one sitemap or feed expansion.

    Attributes
    ----------
    depth : int
        Sitemap-index levels followed below the given file.
    files : int
        Sitemap files fetched in all.
    urls : int
        Page (and enclosure) URLs taken in all.
    file_bytes : int
        Largest file, after gzip decompression (the protocol's limit is 50 MB).
    max_ratio : int
        Largest gzip decompression ratio accepted beyond 1 MiB of output.
    """

    depth: int = 2
    files: int = 50
    urls: int = 50_000
    file_bytes: int = 50 * 1024 * 1024
    max_ratio: int = 200


@dataclass
class Expansion:
    """What sitemaps and feeds gave: pages, nested sitemaps, media, and what was refused."""

    kind: str = ""
    pages: list[str] = field(default_factory=list)
    sitemaps: list[str] = field(default_factory=list)
    media: list[tuple[str, str]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def gunzip(data: bytes, caps: SeedCaps) -> bytes:
    """``data`` decompressed when it is gzip (by its magic bytes), within the caps.

    Raises
    ------
    SeedFileError
        Corrupt, larger than ``caps.file_bytes``, or a ratio beyond ``caps.max_ratio``.

    Examples
    --------
    >>> import gzip
    >>> gunzip(gzip.compress(b"<urlset/>"), SeedCaps()), gunzip(b"<urlset/>", SeedCaps())
    (b'<urlset/>', b'<urlset/>')
    """
    if not data.startswith(b"\x1f\x8b"):
        return data
    z = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = z.decompress(data, caps.file_bytes + 1)
    except zlib.error as exc:
        raise SeedFileError(f"corrupt gzip: {exc}") from None
    if len(out) > caps.file_bytes or z.unconsumed_tail:
        raise SeedFileError(f"decompresses beyond {caps.file_bytes} bytes; refused as a bomb")
    if len(out) > 1 << 20 and len(out) > caps.max_ratio * len(data):
        raise SeedFileError(f"compression ratio above {caps.max_ratio}; refused as a bomb")
    if not z.eof:
        raise SeedFileError("corrupt gzip: the stream is truncated")
    return out


def _local(el: Any) -> str:
    tag = el.tag if isinstance(el.tag, str) else ""
    return tag.rsplit("}", 1)[-1].lower()


def _text(el: Any, name: str) -> str | None:
    for c in el:
        if _local(c) == name and c.text and c.text.strip():
            return str(c.text.strip())
    return None


def _media_hint(mime: str) -> str:
    top = mime.split("/", 1)[0].lower()
    return top if top in ("image", "audio", "video") else "unknown"


def parse(body: bytes, url: str, caps: SeedCaps | None = None) -> Expansion:
    """Read a sitemap, sitemap index, RSS or Atom document fetched from ``url``.

    Raises
    ------
    SeedFileError
        Not XML, a DTD or entity (refused, never expanded), a gzip bomb, or an unknown
        root element.

    Examples
    --------
    >>> x = parse(b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
    ...           b'<url><loc>http://h.test/a</loc></url><url><loc>http://evil.test/</loc></url></urlset>',
    ...           "http://h.test/sitemap.xml")
    >>> x.kind, x.pages, x.refused
    ('urlset', ['http://h.test/a'], ['http://evil.test/: not on http://h.test'])
    """
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    caps = caps or SeedCaps()
    data = gunzip(body, caps)
    try:
        root = fromstring(data, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise SeedFileError(f"{url}: not a usable sitemap or feed: {type(exc).__name__}: {exc}") from None
    out = _Collector(url, Expansion(kind=_local(root)))
    reader = _READERS.get(out.exp.kind)
    if reader is None:
        raise SeedFileError(f"{url}: root element <{out.exp.kind}> is not a sitemap, RSS or Atom feed")
    reader(root, out)
    return out.exp


class _Collector:
    """Normalises URLs found in one file into its :class:`Expansion`, refusing bad ones."""

    def __init__(self, url: str, exp: Expansion) -> None:
        self.url, self.exp, self.origin = url, exp, origin_of(url)

    def take(self, raw: str | None, into: list[str], same_origin: bool) -> None:
        if not raw:
            return
        try:
            u = normalize(raw, self.url)
        except URLError as exc:
            self.exp.refused.append(f"{raw[:200]}: {exc}")
            return
        if same_origin and origin_of(u) != self.origin:
            self.exp.refused.append(f"{u}: not on {self.origin}")
            return
        into.append(u)

    def media(self, raw: str | None, mime: str) -> None:
        found: list[str] = []
        self.take(raw, found, False)
        self.exp.media += [(u, _media_hint(mime)) for u in found]


def _urlset(root: Any, out: _Collector) -> None:
    for el in root:
        if _local(el) == "url":
            out.take(_text(el, "loc"), out.exp.pages, True)


def _sitemapindex(root: Any, out: _Collector) -> None:
    for el in root:
        if _local(el) == "sitemap":
            out.take(_text(el, "loc"), out.exp.sitemaps, True)


def _rss(root: Any, out: _Collector) -> None:
    for item in root.iter():
        if _local(item) != "item":
            continue
        out.take(_text(item, "link"), out.exp.pages, False)
        for c in item:
            if _local(c) in ("enclosure", "content") and c.get("url"):
                out.media(c.get("url"), c.get("type", ""))


def _atom(root: Any, out: _Collector) -> None:
    for entry in root:
        if _local(entry) != "entry":
            continue
        for link in entry:
            if _local(link) != "link" or not link.get("href"):
                continue
            rel = link.get("rel", "alternate")
            if rel == "alternate":
                out.take(link.get("href"), out.exp.pages, False)
            elif rel == "enclosure":
                out.media(link.get("href"), link.get("type", ""))


_READERS = {"urlset": _urlset, "sitemapindex": _sitemapindex, "rss": _rss, "rdf": _rss, "feed": _atom}


def expand(fetcher: Fetcher, url: str, caps: SeedCaps | None = None) -> Expansion:
    """Fetch ``url`` (a sitemap, index, RSS or Atom feed) and the sitemaps it lists, within caps.

    Returns
    -------
    Expansion
        Pages and media from every file read; nested files that failed are listed in
        ``refused`` with the reason, and the rest is kept.

    Raises
    ------
    CrawlError
        The given file itself could not be fetched or read (:class:`SeedFileError` when
        it was fetched but refused).
    """
    caps = caps or SeedCaps()
    total = Expansion()
    queue: deque[tuple[str, int]] = deque([(url, 0)])
    seen = {url}
    fetched = 0
    while queue and fetched < caps.files and len(total.pages) + len(total.media) < caps.urls:
        current, level = queue.popleft()
        fetched += 1
        try:
            resp = fetcher.fetch(current, max_bytes=caps.file_bytes)
            if resp.status != 200:
                raise SeedFileError(f"{current}: HTTP {resp.status}")
            part = parse(resp.body, resp.url, caps)
        except CrawlError as exc:  # robots, guard, caps, HTTP errors, refused XML
            if current == url:
                raise
            total.refused.append(f"{current}: {exc}")
            continue
        total.kind = total.kind or part.kind
        room = caps.urls - len(total.pages) - len(total.media)
        total.pages += part.pages[:room]
        total.media += part.media[: max(room - len(part.pages), 0)]
        total.refused += part.refused
        for child in part.sitemaps:
            if child in seen:
                continue
            seen.add(child)
            if level + 1 > caps.depth:
                total.refused.append(f"{child}: sitemap indexes nested deeper than {caps.depth}")
            else:
                queue.append((child, level + 1))
    if queue:
        total.refused += [f"{u}: beyond {caps.files} sitemap files" for u, _ in queue]
    return total
