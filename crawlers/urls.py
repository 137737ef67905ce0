"""URL normalisation, crawl scope and crawler-trap heuristics: pure functions, no I/O.

A URL is normalised before it is compared or stored, so that the seen set treats
``HTTP://Example.COM:80/a/./b/../c#x`` and ``http://example.com/a/c`` as one page. Scope
rules decide which pages a scan follows from its seeds; trap heuristics refuse URLs
that look machine-generated without end (calendars, session ids, repeated segments).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, quote, unquote, urlencode, urljoin, urlsplit, urlunsplit

from crawlers.errors import CrawlError

#: Longest URL a scan accepts (characters, after normalisation).
MAX_URL_LENGTH = 2048
#: Query keys that carry a session id (lower case); dropped from URLs when normalising.
SESSION_KEYS = frozenset(
    {"phpsessid", "jsessionid", "sid", "sessionid", "session_id", "aspsessionid", "cfid", "cftoken"}
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SAFE_PATH = "/:@!$&'()*+,;=-._~%"
_SAFE_QUERY = "/:@!$'()*+,;-._~%?"
_DATE_VALUE = re.compile(r"^(\d{4})([-/]?\d{1,2}){0,2}$")
_DATE_KEYS = frozenset(
    {"date", "day", "month", "year", "week", "cal", "calendar", "time", "from", "to", "start", "end"}
)

Scope = Literal["page", "prefix", "host", "domain"]
SCOPES: tuple[Scope, ...] = ("page", "prefix", "host", "domain")


class URLError(CrawlError):
    """A URL that cannot be crawled: not http(s), no host, malformed or too long."""


def _requote(part: str, safe: str) -> str:
    """Percent-encoding made canonical: decoded and re-encoded with upper-case hex."""
    return quote(unquote(part), safe=safe)


def normalize(url: str, base: str | None = None) -> str:
    """The canonical form of ``url`` (resolved against ``base`` when given).

    Lower-cases scheme and host (IDNA-encoded), drops the default port, the fragment,
    the ``user:password@`` part and session-id query keys, resolves ``.`` and ``..``
    segments, makes percent-encoding canonical and sorts the query.

    Parameters
    ----------
    url : str
        Absolute, or relative to ``base``.
    base : str, optional
        The page the URL was found on.

    Returns
    -------
    str

    Raises
    ------
    URLError
        Not http or https, no host, a bad port, or longer than :data:`MAX_URL_LENGTH`.

    Examples
    --------
    >>> normalize("HTTP://Example.COM:80/a/./b/../c?b=2&a=1&PHPSESSID=x#frag")
    'http://example.com/a/c?a=1&b=2'
    >>> normalize("../img/x y.png", "https://h.test/p/q/page.html")
    'https://h.test/p/img/x%20y.png'
    """
    raw = url.strip()
    if base is not None:
        raw = urljoin(base, raw)
    if len(raw) > 4 * MAX_URL_LENGTH:
        raise URLError(f"URL longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise URLError(f"malformed URL {raw[:200]!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise URLError(f"not an http(s) URL: {raw[:200]!r}")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise URLError(f"URL without a host: {raw[:200]!r}")
    if ":" in host:  # IPv6 literal
        netloc_host = f"[{host.lower()}]"
    else:
        try:
            netloc_host = host.encode("idna").decode("ascii").lower()
        except UnicodeError as exc:
            raise URLError(f"host {host[:100]!r} is not a valid name: {exc}") from None
    netloc = netloc_host if port in (None, _DEFAULT_PORTS[scheme]) else f"{netloc_host}:{port}"
    path = parts.path or "/"
    trailing = path.endswith("/")
    path = posixpath.normpath(path)
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    if trailing and path != "/":
        path += "/"
    path = _requote(path, _SAFE_PATH)
    pairs = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() not in SESSION_KEYS
    ]
    # ;jsessionid=... path parameters
    path = re.sub(r";(jsessionid|phpsessid|sid)=[^/]*", "", path, flags=re.IGNORECASE)
    query = urlencode(sorted(pairs), quote_via=quote, safe=_SAFE_QUERY)
    out = urlunsplit((scheme, netloc, path, query, ""))
    if len(out) > MAX_URL_LENGTH:
        raise URLError(f"URL longer than {MAX_URL_LENGTH} characters ({len(out)})")
    return out


def host_of(url: str) -> str:
    """The host of a normalised URL (no port), e.g. ``'example.com'`` or ``'::1'``."""
    return urlsplit(url).hostname or ""


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a normalised URL: the key of robots rules and politeness."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def registrable_domain(host: str) -> str:
    """The last two labels of ``host`` (three under common two-level suffixes); IPs unchanged.

    A small rule, not the Public Suffix List: ``a.b.example.com.cn`` gives
    ``example.com.cn``. Used for ``--scope domain`` only.

    Examples
    --------
    >>> registrable_domain("img.cdn.example.com"), registrable_domain("www.x.com.cn")
    ('example.com', 'x.com.cn')
    """
    if ":" in host or re.fullmatch(r"[\d.]+", host):
        return host
    labels = host.split(".")
    two_level = {"com", "net", "org", "gov", "edu", "ac", "co"}
    n = 3 if len(labels) >= 3 and labels[-2] in two_level and len(labels[-1]) == 2 else 2
    return ".".join(labels[-n:])


@dataclass(frozen=True)
class ScopeRule:
    """Which pages a scan follows from one seed.

    Parameters
    ----------
    seed : str
        A normalised seed URL.
    scope : {"page", "prefix", "host", "domain"}
        ``page``: the seed only; ``prefix``: URLs under the seed's directory; ``host``: the
        seed's host and port; ``domain``: any host of the seed's registrable domain.
    """

    seed: str
    scope: Scope

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise CrawlError(f"unknown scope {self.scope!r}; use one of {', '.join(SCOPES)}")

    def allows(self, url: str) -> bool:
        """Whether the normalised ``url`` is in scope.

        Examples
        --------
        >>> r = ScopeRule("http://h.test/docs/index.html", "prefix")
        >>> r.allows("http://h.test/docs/a/b.html"), r.allows("http://h.test/other.html")
        (True, False)
        """
        if self.scope == "page":
            return url == self.seed
        s, u = urlsplit(self.seed), urlsplit(url)
        if s.scheme != u.scheme and self.scope != "domain":
            return False
        if self.scope == "domain":
            return registrable_domain(u.hostname or "") == registrable_domain(s.hostname or "")
        if s.netloc != u.netloc:
            return False
        if self.scope == "host":
            return True
        prefix = s.path if s.path.endswith("/") else s.path.rsplit("/", 1)[0] + "/"
        return u.path.startswith(prefix)


def trap_reason(url: str, *, max_repeats: int = 2, max_depth: int = 16, max_params: int = 12) -> str | None:
    """Why ``url`` looks like a crawler trap, or ``None``.

    Heuristics: a path segment repeated more than ``max_repeats`` times (``/a/b/a/b/a/b``),
    more than ``max_depth`` segments, more than ``max_params`` query parameters, a
    date-like query value (calendars that link to the next day forever), or a long
    numeric path run such as ``/2026/12/05/`` beyond three levels.

    Examples
    --------
    >>> trap_reason("http://h.test/a/b/a/b/a/b/a/")
    'path segment repeated: a'
    >>> trap_reason("http://h.test/cal?date=2031-04-07")
    'calendar-like query: date=2031-04-07'
    >>> trap_reason("http://h.test/gallery/photo.html") is None
    True
    """
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) > max_depth:
        return f"path deeper than {max_depth} segments"
    counts: dict[str, int] = {}
    for seg in segments:
        counts[seg] = counts.get(seg, 0) + 1
        if counts[seg] > max_repeats:
            return f"path segment repeated: {seg}"
    if sum(1 for s in segments if s.isdigit()) > 3:
        return "numeric path run"
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if len(pairs) > max_params:
        return f"more than {max_params} query parameters"
    for k, v in pairs:
        if k.lower() in _DATE_KEYS and _DATE_VALUE.match(v):
            return f"calendar-like query: {k}={v}"
    return None
