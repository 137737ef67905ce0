"""Links and media references in an HTML page, with the stdlib's forgiving parser.

Found: ``a``/``area`` links and frames (pages to follow); ``img`` (``src``, ``srcset``,
lazy-load ``data-src``), ``picture``/``source`` (``srcset``), ``video``/``audio``/``source``
and ``poster``, CSS ``background-image: url(...)`` in ``style`` attributes and ``<style>``
blocks, ``og:image``/``og:video``/``og:audio`` and ``twitter:image`` meta tags, and
``contentUrl``/``thumbnailUrl`` in JSON-LD scripts; HLS/DASH manifests (``.m3u8``,
``.mpd``) wherever they appear — ``video``/``source``, links, and quoted in scripts (player
set-ups), marked with the hint ``"stream"``. Every reference is resolved against
the page URL (and ``<base href>``) and normalised; references that are not http(s) URLs
(``data:``, ``javascript:``) are dropped. Malformed markup never raises: the parser
recovers, and text in a wrong encoding is decoded with replacement characters.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, Literal
from urllib.parse import urlsplit

from crawlers.urls import URLError, normalize

Hint = Literal["image", "audio", "video", "stream", "unknown"]

#: Most links and media references kept from one page (a trap page can list millions).
MAX_REFS = 5000
#: HLS and DASH manifests named in markup or in scripts (player set-ups).
_STREAM_PATH = re.compile(r"\.(m3u8|mpd)$", re.IGNORECASE)
_SCRIPT_STREAM = re.compile(
    r"""["']([^"'\s<>]{1,2000}?\.(?:m3u8|mpd)(?:\?[^"'\s<>]{0,500})?)["']""", re.IGNORECASE
)
_JS_TYPES = frozenset({"", "text/javascript", "application/javascript", "module"})
_CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]+)\1\s*\)""", re.IGNORECASE)
_CHARSET_META = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_\-:.]+)""", re.IGNORECASE)
_META_MEDIA = {
    "og:image": "image",
    "og:image:url": "image",
    "og:image:secure_url": "image",
    "twitter:image": "image",
    "og:video": "video",
    "og:video:url": "video",
    "og:video:secure_url": "video",
    "og:audio": "audio",
    "og:audio:url": "audio",
}


@dataclass(frozen=True)
class MediaRef:
    """A media URL found on a page, with what the markup suggests it is."""

    url: str
    hint: Hint
    source: str  # e.g. "img", "srcset", "css", "og:image", "json-ld"


@dataclass
class PageRefs:
    """What a page links to: pages to follow and media to fingerprint (deduplicated, in order).

    ``scripts``, ``text_chars`` and ``noscript`` (scripts on the page, visible text
    characters, whether it has a ``<noscript>``) tell ``--render auto`` whether the page
    builds itself with JavaScript (:func:`crawlers.render.needs_render`).
    """

    links: list[str] = field(default_factory=list)
    media: list[MediaRef] = field(default_factory=list)
    scripts: int = 0
    text_chars: int = 0
    noscript: bool = False


def decode_html(body: bytes, header_charset: str | None = None) -> str:
    """``body`` as text: BOM, then ``<meta charset>``, then the header, then UTF-8; never raises.

    Examples
    --------
    >>> decode_html('<meta charset="gbk"><p>版权</p>'.encode("gbk"))[-9:]
    '<p>版权</p>'
    >>> decode_html(b"<p>\\xff\\xfe broken</p>", "no-such-charset")
    '<p>\\ufffd\\ufffd broken</p>'
    """
    candidates: list[str] = []
    if body.startswith(b"\xef\xbb\xbf"):
        candidates.append("utf-8-sig")
    elif body.startswith((b"\xff\xfe", b"\xfe\xff")):
        candidates.append("utf-16")
    m = _CHARSET_META.search(body[:4096])
    if m:
        candidates.append(m.group(1).decode("ascii", "replace"))
    if header_charset:
        candidates.append(header_charset)
    for enc in candidates:
        try:
            return body.decode(enc)
        except (LookupError, UnicodeDecodeError):
            continue
    return body.decode("utf-8", errors="replace")


def _srcset_urls(value: str) -> list[str]:
    """The URLs of a ``srcset`` value (descriptors dropped)."""
    out = []
    for candidate in value.split(","):
        parts = candidate.strip().split()
        if parts:
            out.append(parts[0])
    return out


def _json_ld_urls(obj: Any, found: list[tuple[str, Hint]], depth: int = 0) -> None:
    if depth > 20 or len(found) > MAX_REFS:
        return
    if isinstance(obj, dict):
        kind = str(obj.get("@type", "")).lower()
        hint: Hint = (
            "image"
            if "image" in kind
            else "video"
            if "video" in kind
            else "audio"
            if "audio" in kind
            else "unknown"
        )
        for key in ("contentUrl", "thumbnailUrl", "embedUrl"):
            v = obj.get(key)
            if isinstance(v, str):
                found.append((v, "image" if key == "thumbnailUrl" else hint))
        img = obj.get("image")
        if isinstance(img, str):
            found.append((img, "image"))
        for v in obj.values():
            _json_ld_urls(v, found, depth + 1)
    elif isinstance(obj, list):
        for v in obj[:1000]:
            _json_ld_urls(v, found, depth + 1)


class _Parser(HTMLParser):
    def __init__(self, page_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base = page_url
        self.refs = PageRefs()
        self._seen_links: set[str] = set()
        self._seen_media: set[str] = set()
        self._media_stack: list[Hint] = []
        self._script: list[str] | None = None
        self._json_ld = False
        self._style: list[str] | None = None

    def _link(self, raw: str | None) -> None:
        if not raw or len(self.refs.links) >= MAX_REFS:
            return
        try:
            url = normalize(raw, self.base)
        except URLError:
            return
        if _STREAM_PATH.search(urlsplit(url).path):
            self._media(url, "stream", "link")
            return
        if url not in self._seen_links:
            self._seen_links.add(url)
            self.refs.links.append(url)

    def _media(self, raw: str | None, hint: Hint, source: str) -> None:
        if not raw or raw.startswith("data:") or len(self.refs.media) >= MAX_REFS:
            return
        try:
            url = normalize(raw, self.base)
        except URLError:
            return
        if _STREAM_PATH.search(urlsplit(url).path):
            hint = "stream"
        if url not in self._seen_media:
            self._seen_media.add(url)
            self.refs.media.append(MediaRef(url, hint, source))

    def _css(self, text: str, source: str) -> None:
        for m in _CSS_URL.finditer(text):
            self._media(m.group(2).strip(), "image", source)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v for k, v in attrs if v is not None}
        if "style" in a:
            self._css(a["style"], "css")
        if tag == "base" and "href" in a:
            with contextlib.suppress(URLError):
                self.base = normalize(a["href"], self.base)
        elif tag in ("a", "area", "frame", "iframe"):
            self._link(a.get("href") or a.get("src"))
        elif tag == "img":
            for key in ("src", "data-src", "data-original"):
                self._media(a.get(key), "image", "img")
            for key in ("srcset", "data-srcset"):
                for u in _srcset_urls(a.get(key, "")):
                    self._media(u, "image", "srcset")
        elif tag in ("video", "audio"):
            hint: Hint = "video" if tag == "video" else "audio"
            self._media_stack.append(hint)
            self._media(a.get("src"), hint, tag)
            self._media(a.get("poster"), "image", "poster")
        elif tag == "source":
            parent: Hint = self._media_stack[-1] if self._media_stack else "image"
            self._media(a.get("src"), parent, "source")
            for u in _srcset_urls(a.get("srcset", "")):
                self._media(u, "image", "srcset")
        elif tag == "meta":
            key = (a.get("property") or a.get("name") or "").lower()
            if key in _META_MEDIA:
                self._media(a.get("content"), _META_MEDIA[key], key)  # type: ignore[arg-type]
        elif tag == "noscript":
            self.refs.noscript = True
        elif tag == "script":
            if a.get("type", "").lower() in _JS_TYPES:
                self.refs.scripts += 1
            self._script = []
            self._json_ld = a.get("type", "").lower() == "application/ld+json"
        elif tag == "style":
            self._style = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag in ("video", "audio") and self._media_stack:
            self._media_stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag in ("video", "audio") and self._media_stack:
            self._media_stack.pop()
        elif tag == "script" and self._script is not None:
            text, self._script = "".join(self._script), None
            if not self._json_ld:
                for m in _SCRIPT_STREAM.finditer(text):
                    self._media(m.group(1).replace("\\/", "/"), "stream", "script")
                return
            try:
                data = json.loads(text)
            except ValueError:
                return
            found: list[tuple[str, Hint]] = []
            _json_ld_urls(data, found)
            for u, h in found:
                self._media(u, h, "json-ld")
        elif tag == "style" and self._style is not None:
            text, self._style = "".join(self._style), None
            self._css(text, "css")

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            if sum(map(len, self._script)) < 1 << 20:
                self._script.append(data)
        elif self._style is not None:
            if sum(map(len, self._style)) < 1 << 20:
                self._style.append(data)
        else:
            self.refs.text_chars += len(data.strip())


def extract(page_url: str, html: str) -> PageRefs:
    """Links and media references of ``html`` found at ``page_url``.

    Parameters
    ----------
    page_url : str
        The normalised URL the page was fetched from (references are resolved against it).
    html : str
        The decoded page (see :func:`decode_html`).

    Returns
    -------
    PageRefs

    Examples
    --------
    >>> refs = extract("http://h.test/p/", '<img src="a.jpg" srcset="b.jpg 2x, c.jpg 300w">'
    ...                '<div style="background-image:url(\\'d.png\\')"><a href="/next">n</a>')
    >>> [m.url for m in refs.media], refs.links
    (['http://h.test/p/a.jpg', 'http://h.test/p/b.jpg', 'http://h.test/p/c.jpg', 'http://h.test/p/d.png'], ['http://h.test/next'])
    """
    parser = _Parser(page_url)
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError):  # the stdlib parser's last-resort failures on garbage
        pass
    return parser.refs
